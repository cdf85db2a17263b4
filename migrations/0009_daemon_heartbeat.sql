-- Version 9: the running daemon's heartbeat, for `gatherd status` (and
-- status --check, the container's health check): written at start and
-- every stats_interval_s (10 s when that is 0).  daemon_hosts holds the
-- hosts with the most fetches in flight at the last heartbeat (at most
-- 100), for status --hosts.
CREATE TABLE daemon (
    slot          INTEGER PRIMARY KEY CHECK (slot = 1),
    pid           INTEGER NOT NULL,
    host          TEXT,
    version       TEXT,
    started_at    INTEGER NOT NULL,   -- Unix ms
    heartbeat_at  INTEGER NOT NULL,   -- Unix ms
    interval_s    INTEGER NOT NULL,
    in_flight     INTEGER NOT NULL DEFAULT 0,
    stopped_at    INTEGER             -- Unix ms of a clean exit
);
CREATE TABLE daemon_hosts (
    host          TEXT PRIMARY KEY,
    in_flight     INTEGER NOT NULL
);

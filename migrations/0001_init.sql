-- gatherd schema, version 1.
-- `urls` holds one row per submitted queue-file line; `results` (the stable
-- view users query) renders it.  state: 0 queued, 1 done, 2 failed.
CREATE TABLE urls (
    id           INTEGER PRIMARY KEY,
    url          TEXT    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),
    status       INTEGER,
    length       INTEGER,
    error        TEXT,
    error_detail TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    final_url    TEXT,
    redirects    INTEGER,
    content_type TEXT,
    queued_at    INTEGER NOT NULL,  -- Unix time in milliseconds
    fetched_at   INTEGER,           -- Unix time in milliseconds
    elapsed_ms   INTEGER
);

-- The scheduler reads the next window of queued rows in id order; this
-- partial index holds only those rows, so it stays small however many
-- results accumulate.
CREATE INDEX urls_queued ON urls (id) WHERE state = 0;

-- Where ingestion stands in the queue file: advanced in the same
-- transaction that inserts the lines it read (exactly-once ingestion).
CREATE TABLE queue_position (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    dev        INTEGER NOT NULL,
    ino        INTEGER NOT NULL,
    offset     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE VIEW results AS
SELECT id,
       url,
       CASE state WHEN 0 THEN 'queued' WHEN 1 THEN 'done' ELSE 'failed' END
           AS state,
       status,
       length,
       error,
       error_detail,
       attempts,
       final_url,
       redirects,
       content_type,
       strftime('%Y-%m-%dT%H:%M:%fZ', queued_at / 1000.0, 'unixepoch')
           AS queued_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', fetched_at / 1000.0, 'unixepoch')
           AS fetched_at,
       elapsed_ms
FROM urls;

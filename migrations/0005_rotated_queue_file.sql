-- Version 5: queue_position gets a second slot.  Slot 1 is the queue file;
-- slot 2, while present, is a rotated queue file that gatherd still follows
-- for a grace period (a writer that holds the old descriptor may still be
-- appending to it), so that a restart in that window finishes it too.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.
CREATE TABLE queue_position_new (
    slot       INTEGER PRIMARY KEY CHECK (slot IN (1, 2)),
    dev        INTEGER NOT NULL,
    ino        INTEGER NOT NULL,
    offset     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    head_len   INTEGER NOT NULL DEFAULT 0,
    head_hash  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO queue_position_new (slot, dev, ino, offset, updated_at,
                                head_len, head_hash)
    SELECT singleton, dev, ino, offset, updated_at, head_len, head_hash
    FROM queue_position;
DROP TABLE queue_position;
ALTER TABLE queue_position_new RENAME TO queue_position;

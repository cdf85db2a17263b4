-- Version 3: the queue file's identity also includes a hash of its first
-- bytes (up to 1 KiB, head_len of them), because file systems reuse inode
-- numbers: a queue file deleted and recreated while gatherd was stopped can
-- come back with the same (dev, ino).  head_len 0 means "not known".
ALTER TABLE queue_position ADD COLUMN head_len INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_position ADD COLUMN head_hash INTEGER NOT NULL DEFAULT 0;

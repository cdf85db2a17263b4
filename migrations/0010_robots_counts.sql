-- Version 10: robots.txt ([fetch] robots) in the daemon's heartbeat, for
-- `gatherd status`: the robots.txt requests its run made (they are no rows
-- of their own) and the origins whose rules it holds.
ALTER TABLE daemon ADD COLUMN robots_fetches INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daemon ADD COLUMN robots_origins INTEGER NOT NULL DEFAULT 0;

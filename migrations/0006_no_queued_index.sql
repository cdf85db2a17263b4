-- Version 6: drop the partial index of queued rows.  Maintaining it cost
-- an index insert per ingested line and an index delete per result, about
-- a seventh of gatherd's CPU per URL (callgrind: 47.4K -> 40.9K
-- instructions per URL).  The scheduler reads queued rows in id order from
-- a cursor that only moves forward, which the rowid itself serves: rows
-- after the cursor are nearly all still queued.  At start gatherd finds
-- the first queued row with one scan (SELECT count(*), min(id) ... WHERE
-- state = 0) and starts its cursor just before it.
DROP INDEX urls_queued;

-- Version 7: keeping what was fetched.
--   body_sha256   hex SHA-256 of the body bytes `length` counts (done rows;
--                 for a 304, the digest of the earlier response it confirms)
--   etag, last_modified   the response's validators, as sent
--   warc_file, warc_offset  where the WARC record of the response is
--   not_modified  1 when a conditional re-fetch got 304, 0 for other done
--                 rows
--   refetch_of    (not in the views) the earlier row a `gatherd refetch`
--                 row re-fetches: its validators make the request
--                 conditional
-- The view gains the columns at its end; `latest` is one row per URL: its
-- most recent finished row, or its queued row when it has none yet.
ALTER TABLE urls ADD COLUMN body_sha256 TEXT;
ALTER TABLE urls ADD COLUMN etag TEXT;
ALTER TABLE urls ADD COLUMN last_modified TEXT;
ALTER TABLE urls ADD COLUMN warc_file TEXT;
ALTER TABLE urls ADD COLUMN warc_offset INTEGER;
ALTER TABLE urls ADD COLUMN not_modified INTEGER;
ALTER TABLE urls ADD COLUMN refetch_of INTEGER;

DROP VIEW results;
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
       CASE WHEN fetched_at IS NULL OR error = 'invalid_url' THEN final_url
            ELSE coalesce(final_url, url) END AS final_url,
       redirects,
       content_type,
       strftime('%Y-%m-%dT%H:%M:%fZ', queued_at / 1000.0, 'unixepoch')
           AS queued_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', fetched_at / 1000.0, 'unixepoch')
           AS fetched_at,
       elapsed_ms,
       connect_ms,
       tls_ms,
       body_sha256,
       etag,
       last_modified,
       warc_file,
       warc_offset,
       not_modified
FROM urls;

CREATE VIEW latest AS
SELECT id, url, state, status, length, error, error_detail, attempts,
       final_url, redirects, content_type, queued_at, fetched_at,
       elapsed_ms, connect_ms, tls_ms, body_sha256, etag, last_modified,
       warc_file, warc_offset, not_modified
FROM (SELECT results.*,
             row_number() OVER (PARTITION BY url
                                ORDER BY state = 'queued', id DESC) AS rn
      FROM results)
WHERE rn = 1;

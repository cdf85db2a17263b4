-- Version 4: urls.final_url is stored only when it differs from url (a
-- redirect, or a normalised form): most rows were carrying a second copy of
-- their URL.  The view shows the URL itself for fetched rows without one, so
-- what users see does not change.
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
       tls_ms
FROM urls;

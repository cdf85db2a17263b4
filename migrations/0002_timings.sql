-- Version 2: connect and TLS handshake times of the connection a result
-- was fetched on (NULL when a pooled connection was reused).  The view gains
-- the two columns at its end; existing columns keep their names and order.
ALTER TABLE urls ADD COLUMN connect_ms INTEGER;
ALTER TABLE urls ADD COLUMN tls_ms INTEGER;

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
       final_url,
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

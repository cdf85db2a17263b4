-- Version 8: what curl's -w reports, per attempt, and the decoded size.
--   decoded_length  body bytes after Content-Encoding is undone ([fetch]
--                   accept_encoding = gzip); length stays the bytes
--                   received
--   dns_ms          name lookup (NULL: none was needed, an IP literal or
--                   a pooled connection)
--   ttfb_ms         request sent to the first response byte
--   remote_ip       the server's address the response came from
--   tls_version     TLSv1.2, TLSv1.3 (NULL for plain HTTP)
--   tls_resumed     1 when the handshake resumed a session, 0 when it was
--                   full (NULL without a handshake: plain HTTP or a pooled
--                   connection)
ALTER TABLE urls ADD COLUMN decoded_length INTEGER;
ALTER TABLE urls ADD COLUMN dns_ms INTEGER;
ALTER TABLE urls ADD COLUMN ttfb_ms INTEGER;
ALTER TABLE urls ADD COLUMN remote_ip TEXT;
ALTER TABLE urls ADD COLUMN tls_version TEXT;
ALTER TABLE urls ADD COLUMN tls_resumed INTEGER;

DROP VIEW latest;
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
       not_modified,
       decoded_length,
       dns_ms,
       ttfb_ms,
       remote_ip,
       tls_version,
       tls_resumed
FROM urls;

CREATE VIEW latest AS
SELECT id, url, state, status, length, error, error_detail, attempts,
       final_url, redirects, content_type, queued_at, fetched_at,
       elapsed_ms, connect_ms, tls_ms, body_sha256, etag, last_modified,
       warc_file, warc_offset, not_modified, decoded_length, dns_ms,
       ttfb_ms, remote_ip, tls_version, tls_resumed
FROM (SELECT results.*,
             row_number() OVER (PARTITION BY url
                                ORDER BY state = 'queued', id DESC) AS rn
      FROM results)
WHERE rn = 1;

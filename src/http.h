/* HTTP/1.1 response parsing (a wrapper around llhttp) and request building.
 * Pure: no libevent, no sockets, so it can be unit-tested and fuzzed. */
#ifndef GATHERD_HTTP_H
#define GATHERD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errkind.h"
#include "url.h"

struct url;
struct http_resp;

enum http_feed {
	HTTP_MORE,  /* all bytes consumed, the response is not complete yet */
	HTTP_DONE,  /* the final response is complete; *consumed tells how many
	             * bytes belonged to it (the rest is not part of it) */
	HTTP_ERROR, /* the response is bad; see http_resp_error() */
};

/* Stable error kinds, matching the `error` column of the results view. */
enum http_error {
	HTTP_ERR_NONE = 0,
	HTTP_ERR_PROTOCOL,  /* "http_protocol": llhttp's reason in the detail
	                     * ("llhttp: ..."), or "invalid status code N"
	                     * for a status outside 100..599 */
	HTTP_ERR_TOO_LARGE, /* "too_large": headers or body over the limit */
	HTTP_ERR_TRUNCATED, /* "truncated": EOF before the response ended */
};

/* Allocate a parser for one connection; limits apply per response.
 * max_header_bytes bounds each response's header block, interim 1xx ones
 * included, each on its own: the count is every byte fed from the first
 * byte of that response (after the previous one ended) up to and including
 * the LF of the empty line that ends its headers, so a block of exactly
 * max_header_bytes passes and one byte more fails ("headers larger than N
 * bytes").  The trailer section of a chunked body has a budget of its own of
 * the same size, counting field names and values only ("trailers larger than
 * N bytes").  max_body_bytes bounds the de-chunked body bytes of the final
 * response; a Content-Length above it fails as soon as the headers are
 * parsed, without waiting for the body ("body larger than N bytes").
 * Never NULL. */
struct http_resp *http_resp_new(size_t max_header_bytes,
				uint64_t max_body_bytes);
void http_resp_free(struct http_resp *r);

/* Prepare for the next response on the same connection.  Resets all
 * per-response state; changing the limits is allowed here. */
void http_resp_reset(struct http_resp *r, size_t max_header_bytes,
		     uint64_t max_body_bytes);

/* The response has been read (its values and error detail taken): free
 * the buffers they were kept in until the next response needs them. */
void http_resp_trim(struct http_resp *r);

/* Feed `len` bytes received from the server.  1xx interim responses (other
 * than 101) are skipped transparently: only the final response counts.
 * 101 Switching Protocols is treated as a final response without a body
 * (gatherd never asks for an upgrade), never kept alive.  1xx, 204 and 304
 * responses have no body whatever their headers say.
 * Body bytes are counted, never stored.  *consumed is set on every call: on
 * HTTP_MORE it is len, on HTTP_DONE the number of bytes of this call that
 * belonged to the response (bytes after it are not parsed), on HTTP_ERROR 0.
 * After HTTP_DONE or HTTP_ERROR, further feeds return the same value without
 * consuming anything. */
enum http_feed http_resp_feed(struct http_resp *r, const char *data,
			      size_t len, size_t *consumed);

/* The server closed the connection.  Returns HTTP_DONE when that ends a
 * close-delimited body (no Content-Length, not chunked), HTTP_ERROR with
 * HTTP_ERR_TRUNCATED when a response had started but was cut, and also
 * HTTP_ERR_TRUNCATED with detail "connection closed before any response
 * byte" when nothing at all was received. */
enum http_feed http_resp_eof(struct http_resp *r);

/* Accessors, valid after the headers of the final response were parsed
 * (status is 0 and the header values NULL before that).  Header names
 * match case-insensitively; when a header is repeated the last one wins;
 * headers of interim responses and chunked trailers are ignored. */
int http_resp_status(const struct http_resp *r);
/* Body bytes received so far; after a "body larger than N bytes" error it
 * is N + 1 (or 0 when a Content-Length above N was refused up front). */
uint64_t http_resp_body_len(const struct http_resp *r);
/* The Content-Type value (trimmed, at most 255 bytes kept), or NULL when
 * absent or empty (same for the other two). */
const char *http_resp_content_type(const struct http_resp *r);
/* The Location value (trimmed), or NULL.  At most URL_MAX_LEN + 1 bytes are
 * kept: a longer value comes back as 8193 bytes, which url_resolve() rejects
 * as too long rather than following a truncated URL. */
const char *http_resp_location(const struct http_resp *r);
/* The Retry-After value as received (trimmed, at most 63 bytes), or NULL. */
const char *http_resp_retry_after(const struct http_resp *r);
/* The ETag (at most 255 bytes) and Last-Modified (at most 63) values as
 * received (trimmed), or NULL. */
const char *http_resp_etag(const struct http_resp *r);
const char *http_resp_last_modified(const struct http_resp *r);
/* The Content-Encoding value (at most 63 bytes), or NULL. */
const char *http_resp_content_encoding(const struct http_resp *r);

/* The final response's body bytes, de-chunked, as they are parsed (only
 * the bytes within max_body_bytes).  Stays set across resets. */
typedef void (*http_body_cb)(void *arg, const char *p, size_t n);
void http_resp_set_body_cb(struct http_resp *r, http_body_cb cb, void *arg);
/* True if any byte of a response was received since the last reset. */
bool http_resp_started(const struct http_resp *r);
/* After HTTP_DONE: may the connection carry another request?  False for
 * HTTP/1.0 without keep-alive, "Connection: close", close-delimited
 * bodies, 101, and whenever the result is not HTTP_DONE. */
bool http_resp_keep_alive(const struct http_resp *r);

/* After HTTP_ERROR: the kind and a human-readable detail (static or owned by
 * the parser, valid until the next reset/free), e.g. llhttp's reason
 * "Invalid status code" prefixed with "llhttp: ", or "headers larger than
 * 65536 bytes", "body larger than 1048576 bytes", "connection closed after
 * 1234 of 5000 body bytes". */
enum http_error http_resp_error(const struct http_resp *r);
/* For this response, read a body whose Content-Length is over
 * max_body_bytes up to the limit rather than refuse it at once (for a
 * reader that wants its first bytes anyway, such as robots.txt's). */
void http_resp_read_to_limit(struct http_resp *r);

/* After HTTP_ERROR: the headers were whole and the body went past
 * max_body_bytes (what was received is a response cut short).  The feed
 * that failed so reported as consumed the bytes up to the limit (the
 * header block alone when a Content-Length was over it). */
bool http_resp_body_cut(const struct http_resp *r);
const char *http_resp_error_detail(const struct http_resp *r);

/* The result error kind of a parser error (ERR_HTTP_PROTOCOL, ...);
 * ERR_NONE for HTTP_ERR_NONE. */
enum errkind http_error_kind(enum http_error e);

/* Write a GET request for the URL `text`, parsed into `r`, into buf:
 * request line with its target, "Host: <authority>", "User-Agent: <ua>",
 * "Accept: * / *" (without spaces), "Accept-Encoding: identity",
 * "Connection: keep-alive", then `extra` (NULL, or header lines each
 * ending in CRLF, checked by the caller), blank line, each line ending in
 * CRLF, and a NUL.  Returns the length, or -1 if it does not fit or if
 * user_agent holds a control character (CR/LF would let it inject
 * headers). */
int http_build_request(char *buf, size_t size, const struct url_ref *r,
		       const char *text, const char *user_agent,
		       const char *extra);

/* The same with another Accept-Encoding than identity, and with the
 * target in absolute form ("GET http://host/path", for a proxy) when
 * `absolute`. */
int http_build_request_ex(char *buf, size_t size, const struct url_ref *r,
			  const char *text, const char *user_agent,
			  const char *accept_encoding, const char *extra,
			  bool absolute);

/* Whether a header value received from a server can be sent back in a
 * header (no control characters but tab). */
bool http_header_value_ok(const char *v);

/* Is this status a redirect gatherd follows (301, 302, 303, 307, 308)? */
bool http_is_redirect(int status);

/* Parse a Retry-After value (delay-seconds, or an HTTP-date in any of the
 * three forms RFC 9110 section 5.6.7 names) into a delay in milliseconds
 * from now_wall_ms (0 for a date in the past; at most a year); -1 when it
 * is not valid. */
int64_t http_parse_retry_after(const char *v, int64_t now_wall_ms);

/* A buffer size for which http_build_request() always fits. */
size_t http_request_size(const struct url_ref *r, const char *user_agent,
			 const char *extra);

#endif

/* URL parsing for gatherd: pure C, no libevent, no allocation beyond the
 * struct url itself.  Only absolute http and https URLs are accepted. */
#ifndef GATHERD_URL_H
#define GATHERD_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest URL (and queue-file line) gatherd accepts, in bytes. */
#define URL_MAX_LEN 8192

enum url_scheme {
	URL_HTTP = 0,
	URL_HTTPS = 1,
};

/* A parsed URL.  `host` is lower-cased and, for IPv6, holds the address
 * without brackets (host_is_ipv6 tells).  `target` is the request-target for
 * the request line: path and query exactly as submitted, "/" when the path
 * is empty, fragment dropped.  `authority` is what goes into the Host header:
 * host (bracketed for IPv6) plus ":port" when the port is not the scheme's
 * default.  All strings are NUL-terminated and owned by the struct. */
struct url {
	enum url_scheme scheme;
	uint16_t port;          /* explicit or the scheme's default */
	bool port_explicit;
	bool host_is_ipv4;      /* dotted-quad literal */
	bool host_is_ipv6;      /* bracketed literal in the URL */
	char host[256];
	char authority[300];
	char target[URL_MAX_LEN + 2];
};

/* Parse `len` bytes at `s` (no NUL needed) into `out`.  Returns 0 on
 * success; on failure returns -1 and sets *reason to a static string such as
 * "unsupported scheme", "missing host", "invalid port", "invalid character in
 * host", "URL longer than 8192 bytes", "userinfo not supported" (also
 * "missing scheme", "space or control character in URL", "non-ASCII host",
 * "invalid IPv4 address", "invalid IPv6 address", "empty label in host",
 * "host label longer than 63 bytes", "host longer than 253 bytes").
 * Rules: scheme is case-insensitive http or https followed by "://"; optional
 * userinfo is rejected; host is a registered name made of ASCII letters,
 * digits, '-', '_' and '.' (labels 1..63 bytes, total <= 253, one trailing dot
 * allowed and kept; percent-escapes and non-ASCII bytes are rejected),
 * an IPv4 dotted quad, or a bracketed IPv6 literal (validated with
 * inet_pton, zone identifiers rejected).  A name whose last label is a
 * number (decimal, or 0x-hex as inet_aton reads it) is taken as an IPv4
 * literal and must be a strict dotted quad: four decimal parts 0..255
 * without leading zeros and no trailing dot, so "1.2.3", "999.1.1.1",
 * "0x7f.1" and "127.1" are rejected rather than resolved as names.
 * Port 1..65535 when present ("http://h:/" means default port and leaves
 * port_explicit false);
 * path/query may contain any byte from 0x21..0x7e and bytes >= 0x80 (they are
 * kept as submitted) but no spaces, control characters or NUL. */
int url_parse(const char *s, size_t len, struct url *out, const char **reason)
	__attribute__((warn_unused_result));

/* The parts of a URL as offsets into its text, for those that keep the
 * text anyway (a queued row, a fetch): 12 bytes instead of a struct url's
 * 8.7 KiB, and no copy.  The host is in the text as written (upper case
 * and all; without the brackets of an IPv6 literal); the target is
 * text[target_off .. target_off + target_len) with a "/" in front when
 * URL_REF_SLASH (an empty path). */
struct url_ref {
	uint16_t host_off, host_len;
	uint16_t target_off, target_len;
	uint16_t port;  /* explicit or the scheme's default */
	uint8_t scheme; /* enum url_scheme */
	uint8_t flags;  /* URL_REF_* */
};

#define URL_REF_IPV4 0x01          /* dotted-quad literal */
#define URL_REF_IPV6 0x02          /* bracketed literal */
#define URL_REF_PORT_EXPLICIT 0x04 /* a port is written */
#define URL_REF_SLASH 0x08         /* the target needs a leading "/" */
#define URL_REF_NORMAL 0x10        /* the text is url_ref_format()'s form */

/* Parse like url_parse() (same rules, same reasons), into offsets. */
int url_parse_ref(const char *s, size_t len, struct url_ref *out,
		  const char **reason) __attribute__((warn_unused_result));

/* The host of r in text s, lower-cased, without brackets (for DNS, SNI and
 * certificate checks), NUL-terminated.  Returns its length, or -1 if it
 * does not fit. */
int url_ref_host(const struct url_ref *r, const char *s, char *buf,
		 size_t size);

/* The host (bracketed for IPv6) and, if with_port, ":port": the Host
 * header's form without the default-port rule, or, with the port, a key
 * naming the server.  Returns the length, or -1 if it does not fit. */
int url_ref_host_port(const struct url_ref *r, const char *s, char *buf,
		      size_t size, bool with_port);

/* The authority as sent in the Host header: with ":port" only when it is
 * not the scheme's default. */
int url_ref_authority(const struct url_ref *r, const char *s, char *buf,
		      size_t size);

/* "scheme://authority": the origin, which names a server's connections
 * (the connection pool's key). */
int url_ref_origin(const struct url_ref *r, const char *s, char *buf,
		   size_t size);

/* The absolute form ("scheme://authority/target"), as url_format(). */
int url_ref_format(const struct url_ref *r, const char *s, char *buf,
		   size_t size);

/* Fill a struct url from r and its text. */
void url_from_ref(const struct url_ref *r, const char *s, struct url *out);

/* Write host (bracketed for IPv6) and, if with_port, ":port" into buf,
 * NUL-terminated.  Returns the length, or -1 if it does not fit. */
int url_host_port(char *buf, size_t size, const struct url *u,
		  bool with_port);

/* Write the absolute form of `u` ("scheme://authority/target") into buf,
 * NUL-terminated.  Returns the length, or -1 if it does not fit. */
int url_format(const struct url *u, char *buf, size_t size);

/* Resolve reference `ref` (a Location header value, `len` bytes) against
 * base `u` per RFC 3986 section 5.2 (strict: a reference with a scheme is
 * used as is, so "http:g" fails with "missing host"), including dot-segment
 * removal, and parse the result into `out` with url_parse's rules; the
 * reference's fragment is dropped.  `out` may be `u`.  Returns 0, or -1 with
 * *reason (and `out` zeroed, as url_parse also leaves it on failure). */
int url_resolve(const struct url *u, const char *ref, size_t len,
		struct url *out, const char **reason)
	__attribute__((warn_unused_result));

#endif

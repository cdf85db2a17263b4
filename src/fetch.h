/* One URL's fetch: DNS, connection (pooled or new), request, response,
 * timers, result.  The result is always delivered from the event loop
 * (never from inside fetch_start or a bufferevent callback), after which
 * the fetch is freed. */
#ifndef GATHERD_FETCH_H
#define GATHERD_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errkind.h"
#include "url.h"

struct event_base;
struct config;
struct conn_pool;
struct dns;
struct tls;
struct fetch;

/* What the fetch needs from the daemon; the config may change (SIGHUP)
 * between fetches. */
struct fetch_ctx {
	struct event_base *base;
	const struct config *cfg;
	struct conn_pool *pool;
	struct dns *dns;
	struct tls *tls;
	const struct proxies *proxies; /* NULL: every connection direct */
};

/* Whether the response bytes a tap saw form a response worth keeping. */
enum fetch_archive {
	FETCH_ARCHIVE_NONE = 0, /* no response, or only part of one */
	FETCH_ARCHIVE_WHOLE,    /* a complete response (ok, or a body whose
				 * Content-Encoding did not undo) */
	FETCH_ARCHIVE_CUT,      /* complete headers, the body cut at
				 * max_body_bytes */
};

/* An observer of the exchange as it goes over the wire (an archive, see
 * capture.h).  Both callbacks run on the loop, inside the fetch's own
 * callbacks: they may not call back into the fetch, except that block
 * returning true pauses reading until fetch_resume(). */
struct fetch_tap {
	/* The request went out on a connection to ip: the response's bytes
	 * follow.  Runs again if a dead pooled connection is replaced before
	 * any response byte (start over then). */
	void (*start)(void *arg, const char *request, size_t len,
		      const char *ip);
	/* Bytes of the response exactly as received (chunked framing and
	 * all), in order, up to its last byte. */
	bool (*block)(void *arg, const void *p, size_t n);
	/* Or, NULL above, the body as its reader sees it: transfer coding
	 * removed, and Content-Encoding undone where gatherd can (else the
	 * bytes as received). */
	void (*body)(void *arg, const void *p, size_t n);
	/* Not 0: the body limit instead of max_body_bytes, and a longer body
	 * is read up to it (then fails too_large, as cut). */
	uint64_t body_limit;
	void *arg;
};

/* The outcome.  Strings are malloc'd and owned by the receiver; `error`
 * is ERR_NONE when ok. */
struct fetch_result {
	bool ok; /* an HTTP response was received (state done) */
	int status;
	int64_t length;
	enum errkind error;
	char *error_detail;
	char *content_type;
	char *final_url;
	int attempts;
	int redirects;
	int64_t elapsed_ms;
	int64_t connect_ms; /* TCP connect of a new connection, -1 if none */
	int64_t tls_ms;     /* TLS handshake of a new connection, -1 if none */
	int64_t fetched_at_ms;
	char body_sha256[65]; /* hex digest of the body, "" when none */
	char *etag;           /* the validators as sent, or NULL */
	char *last_modified;
	bool not_modified;    /* a 304 to a conditional request */
	int64_t decoded_length; /* after Content-Encoding, -1 if none */
	int64_t dns_ms;       /* name lookup, -1 if none was needed */
	int64_t ttfb_ms;      /* request sent to first response byte, -1 */
	char remote_ip[46];   /* "" if not connected */
	const char *tls_version; /* static ("TLSv1.3"), NULL for plain */
	int tls_resumed;      /* of a new handshake; -1 if none */
	/* For the scheduler's redirect and retry decisions: */
	enum url_scheme scheme; /* of the URL fetched, as parsed */
	char *location;         /* 301/302/303/307/308: absolute target */
	enum url_scheme location_scheme; /* of that target */
	int64_t retry_after_ms; /* from Retry-After, -1 if none */
	bool fd_exhausted;      /* no socket could be made (EMFILE/ENFILE) */
	/* What the bytes given to a tap amount to: */
	enum fetch_archive archive;
	int64_t body_bytes; /* de-chunked body bytes received (archive set) */
};

typedef void (*fetch_done_cb)(void *arg, struct fetch_result *res);

/* Validators that make the request conditional (If-None-Match,
 * If-Modified-Since); NULL members are not sent. */
struct fetch_cond {
	const char *etag;
	const char *last_modified;
};

/* Start fetching `url` (NUL-terminated, parsed into `ref` by
 * url_parse_ref(); the text, and `cond` when not NULL, must stay valid
 * until done runs or the fetch is aborted).  res.final_url is NULL when
 * the URL is already in its normal form.  tap, when not NULL, is copied;
 * with one, every response body is digested (res.body_sha256), whatever
 * [capture] digest says. */
struct fetch *fetch_start(const struct fetch_ctx *ctx, const char *url,
			  const struct url_ref *ref,
			  const struct fetch_cond *cond,
			  const struct fetch_tap *tap, fetch_done_cb done,
			  void *arg);

/* Read again after a tap's block callback paused the fetch. */
void fetch_resume(struct fetch *f);

/* Free the strings of a result (for results that are dropped). */
void fetch_result_free(struct fetch_result *r);

/* Stop a fetch at once without a result (shutdown). */
void fetch_abort(struct fetch *f);

#endif

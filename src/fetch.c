/* One URL's fetch: see fetch.h.
 *
 * States: RESOLVING -> CONNECTING (dial.c races the addresses) ->
 * [HANDSHAKE, for https] -> WAITING (request written, response being read)
 * -> DONE.  A pooled connection skips straight to WAITING.
 * Every exit goes through fetch_finish(), which schedules the reap event:
 * the result callback and the free happen there, outside any bufferevent
 * callback. */
#include "fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <openssl/evp.h>

#include "config.h"
#include "conn.h"
#include "dial.h"
#include "decode.h"
#include "dns.h"
#include "http.h"
#include "idn.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"
#include "url.h"
#include "util.h"

enum fetch_state {
	FETCH_NEW,
	FETCH_RESOLVING,
	FETCH_CONNECTING,
	FETCH_TUNNEL, /* waiting for the proxy's answer to CONNECT */
	FETCH_HANDSHAKE,
	FETCH_WAITING,
	FETCH_DONE,
};

static const char *const fetch_state_names[] = {
	"new", "resolving", "connecting", "tunnel", "handshake", "waiting",
	"done"};

struct fetch {
	struct fetch_ctx ctx;
	const char *url;
	struct url_ref ref; /* the parts of url */
	const struct fetch_cond *cond; /* NULL: not conditional */
	bool digest;        /* the body is digested ([capture] digest, a tap) */
	EVP_MD_CTX *md;     /* that digest, from the body's first byte on */
	struct decode *decoder; /* undoing Content-Encoding */
	bool body_seen;     /* the body callback ran for this response */
	bool encoding_unknown; /* a Content-Encoding gatherd cannot undo */
	struct fetch_tap tap;  /* tap.block == NULL: none */
	bool paused;           /* by the tap: not reading */
	enum fetch_state state;
	enum url_scheme scheme;
	uint16_t port;
	bool literal;
	/* The host, then the pool key (the origin, and the proxy if any),
	 * in one allocation of their own size: 10,000 fetches in flight
	 * would otherwise carry 8 MB of empty buffers. */
	char *host;
	char *key;
	/* What the TCP connection goes to: the origin, or the proxy. */
	const struct proxy *proxy;
	const char *dial_host;
	uint16_t dial_port;
	bool dial_literal;
	char *request;
	size_t request_len;
	struct dns_req *dns;
	struct dial *dial; /* while CONNECTING */
	struct conn *conn;
	struct http_resp *parser;
	bool reused;        /* the current connection came from the pool */
	bool retried_fresh; /* a dead pooled connection was replaced once */
	int64_t start_ms;
	int64_t phase_ms; /* when the TLS handshake began */
	int64_t dns_start_ms;
	int64_t sent_ms;  /* when the request went out */
	struct event timer;
	struct event reap;
	struct fetch_result res;
	fetch_done_cb done;
	void *arg;
	struct tls_slot slot; /* a handshake slot, held or waited for */
};

static void fetch_get_conn(struct fetch *f, bool allow_pool);
static void fetch_arm_timer(struct fetch *f);
static void fetch_event_cb(struct bufferevent *bev, short what, void *arg);
static int fetch_build_request(struct fetch *f);

static void fetch_set_state(struct fetch *f, enum fetch_state s)
{
	/* Forward only, except a dead pooled connection sending a WAITING
	 * fetch back to RESOLVING/CONNECTING once. */
	if (!(s > f->state || (f->state == FETCH_WAITING &&
			       s < FETCH_WAITING && f->retried_fresh)))
		log_error("fetch %s: bad transition %s -> %s", f->url,
			  fetch_state_names[f->state], fetch_state_names[s]);
	log_debug("fetch %s: %s -> %s", f->url, fetch_state_names[f->state],
		  fetch_state_names[s]);
	f->state = s;
}

/* End the fetch: release what it holds and schedule the result. */
static void fetch_finish(struct fetch *f)
{
	fetch_set_state(f, FETCH_DONE);
	if (f->ctx.tls != NULL)
		tls_slot_drop(f->ctx.tls, &f->slot);
	event_del(&f->timer);
	if (f->dns != NULL) {
		dns_cancel(f->dns);
		f->dns = NULL;
	}
	if (f->dial != NULL) {
		dial_cancel(f->dial);
		f->dial = NULL;
	}
	if (f->conn != NULL) {
		conn_release(f->conn, false);
		f->conn = NULL;
	}
	f->res.elapsed_ms = util_mono_ms() - f->start_ms;
	f->res.fetched_at_ms = util_wall_ms();
	event_active(&f->reap, 0, 0);
}

static void fetch_fail(struct fetch *f, enum errkind kind, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));

static void fetch_fail(struct fetch *f, enum errkind kind, const char *fmt,
		       ...)
{
	va_list ap;
	char *detail;

	va_start(ap, fmt);
	if (vasprintf(&detail, fmt, ap) < 0)
		detail = NULL;
	va_end(ap);
	f->res.ok = false;
	f->res.error = kind;
	free(f->res.error_detail);
	f->res.error_detail = detail;
	log_debug("fetch %s: %s: %s", f->url, errkind_name(kind),
		  detail ? detail : "");
	fetch_finish(f);
}

static void fetch_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;

	(void)fd;
	(void)what;
	f->done(f->arg, &f->res); /* takes the result's strings */
	EVP_MD_CTX_free(f->md);
	decode_free(f->decoder);
	free(f->request);
	free(f->host);
	free(f);
}

void fetch_result_free(struct fetch_result *r)
{
	free(r->error_detail);
	free(r->content_type);
	free(r->final_url);
	free(r->location);
	free(r->etag);
	free(r->last_modified);
}

void fetch_abort(struct fetch *f)
{
	if (f == NULL)
		return;
	event_del(&f->timer);
	event_del(&f->reap);
	if (f->ctx.tls != NULL)
		tls_slot_drop(f->ctx.tls, &f->slot);
	if (f->dns != NULL)
		dns_cancel(f->dns);
	dial_cancel(f->dial);
	if (f->conn != NULL)
		conn_release(f->conn, false);
	fetch_result_free(&f->res);
	EVP_MD_CTX_free(f->md);
	decode_free(f->decoder);
	free(f->request);
	free(f->host);
	free(f);
}

/* A redirect: resolve its Location against the URL fetched.  Without a
 * usable Location the response is simply the final one. */
static void fetch_resolve_location(struct fetch *f)
{
	const char *loc = http_resp_location(f->parser);
	const char *reason = NULL;
	struct url base, next;
	char buf[URL_MAX_LEN + 512];

	if (loc == NULL || *loc == '\0') {
		f->res.error_detail = xstrdup("redirect without Location");
		return;
	}
	/* Like browsers and curl, send spaces in a Location as %20 rather
	 * than refuse to follow it. */
	size_t ll = strlen(loc), el = 0;
	for (size_t i = 0; i < ll && el + 3 < sizeof buf; i++) {
		if (loc[i] == ' ') {
			memcpy(buf + el, "%20", 3);
			el += 3;
		} else {
			buf[el++] = loc[i];
		}
	}
	if (el + 3 >= sizeof buf) {
		f->res.error_detail =
			xstrdup("redirect to an invalid Location: too long");
		return;
	}
	url_from_ref(&f->ref, f->url, &base);
	/* An absolute Location with a Unicode host: resolve its ASCII
	 * form (A-labels), as browsers do. */
	char *ascii = NULL;
	size_t al;
	if (url_resolve(&base, buf, el, &next, &reason) != 0 &&
	    idn_ascii_url(buf, el, &ascii, &al, &reason) == 0 && ascii != NULL) {
		reason = NULL;
		if (url_resolve(&base, ascii, al, &next, &reason) != 0)
			reason = reason ? reason : "invalid";
	}
	free(ascii);
	ascii = NULL;
	if (reason != NULL || url_format(&next, buf, sizeof buf) < 0) {
		f->res.error_detail =
			util_printf("redirect to an invalid Location: %s",
				    reason ? reason : "too long");
		return;
	}
	/* Raw non-ASCII bytes in its path or query go as %XX, like the
	 * URLs submitted. */
	if (idn_ascii_url(buf, strlen(buf), &ascii, &al, &reason) == 0 &&
	    ascii != NULL) {
		f->res.location = ascii;
	} else {
		f->res.location = xstrdup(buf);
	}
	f->res.location_scheme = next.scheme;
}

/* Hex of n bytes into out (2n + 1 bytes). */
static void fetch_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* SHA-256, fetched from OpenSSL's provider once (EVP_sha256() would look
 * it up again at every EVP_DigestInit). */
static const EVP_MD *fetch_sha256(void)
{
	static EVP_MD *md;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	return md;
}

/* Start the body's digest.  Only once the body begins: a fetch waiting
 * for its response holds no digest state (10,000 of them in flight). */
static void fetch_digest_begin(struct fetch *f)
{
	f->md = EVP_MD_CTX_new();
	if (f->md == NULL ||
	    EVP_DigestInit_ex2(f->md, fetch_sha256(), NULL) != 1)
		util_oom();
}

/* The bytes received are a response to keep (archive, see fetch_tap):
 * its body's digest and length. */
static void fetch_keep(struct fetch *f, enum fetch_archive archive)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	f->res.archive = archive;
	f->res.body_bytes = (int64_t)http_resp_body_len(f->parser);
	if (f->res.body_bytes > f->ctx.cfg->max_body_bytes)
		f->res.body_bytes = f->ctx.cfg->max_body_bytes;
	if (f->digest && f->md == NULL)
		fetch_digest_begin(f); /* no body: the digest of nothing */
	if (f->md != NULL && EVP_DigestFinal_ex(f->md, md, &n) == 1 &&
	    n == 32)
		fetch_hex(md, n, f->res.body_sha256);
}

/* The response is complete: its validators, and whether it confirms the
 * earlier response a conditional request named. */
static void fetch_take_validators(struct fetch *f)
{
	const char *etag = http_resp_etag(f->parser);
	const char *lm = http_resp_last_modified(f->parser);

	f->res.etag = etag != NULL ? xstrdup(etag) : NULL;
	f->res.last_modified = lm != NULL ? xstrdup(lm) : NULL;
	f->res.not_modified = f->cond != NULL && f->res.status == 304;
}

/* The response is complete: record it and give the connection back. */
static void fetch_complete(struct fetch *f, bool reusable)
{
	const char *ct = http_resp_content_type(f->parser);

	if (f->proxy != NULL && f->scheme == URL_HTTP &&
	    http_resp_status(f->parser) == 407) {
		/* Always the proxy's own answer, never the origin's. */
		conn_release(f->conn, false);
		f->conn = NULL;
		fetch_fail(f, ERR_PROXY,
			   "proxy %s refused the request: 407 Proxy "
			   "Authentication Required",
			   f->proxy->name);
		return;
	}
	fetch_keep(f, FETCH_ARCHIVE_WHOLE);
	if (f->decoder != NULL && decode_finish(f->decoder) != 0) {
		/* The response came whole, but its coding did not undo:
		 * corrupt (or a bomb past max_body_bytes). */
		conn_release(f->conn, reusable);
		f->conn = NULL;
		fetch_fail(f,
			   decode_over_limit(f->decoder) ? ERR_TOO_LARGE
							  : ERR_HTTP_PROTOCOL,
			   "%s", decode_error(f->decoder));
		return;
	}
	f->res.ok = true;
	f->res.status = http_resp_status(f->parser);
	f->res.length = (int64_t)http_resp_body_len(f->parser);
	f->res.content_type = ct ? xstrdup(ct) : NULL;
	/* The page's length as its reader sees it: decoded when a coding
	 * was undone, the bytes received when there was none, unknown for a
	 * coding gatherd cannot undo. */
	if (f->decoder != NULL)
		f->res.decoded_length = (int64_t)decode_length(f->decoder);
	else if (!f->encoding_unknown)
		f->res.decoded_length = f->res.length;
	f->res.retry_after_ms = http_parse_retry_after(
		http_resp_retry_after(f->parser), util_wall_ms());
	fetch_take_validators(f);
	if (http_is_redirect(f->res.status))
		fetch_resolve_location(f);
	conn_release(f->conn, reusable);
	f->conn = NULL;
	fetch_finish(f);
}

/* The connection died before any response byte: a pooled connection the
 * server had already closed gets one retry on a fresh connection. */
static bool fetch_retry_fresh(struct fetch *f)
{
	if (!f->reused || f->retried_fresh || http_resp_started(f->parser))
		return false;
	log_debug("fetch %s: pooled connection died, retrying on a new one",
		  f->url);
	conn_release(f->conn, false);
	f->conn = NULL;
	f->retried_fresh = true;
	fetch_get_conn(f, false);
	return true;
}

/* Act on the parser's verdict; true when the fetch ended.  `rest` says
 * whether bytes beyond the response were received (then the connection
 * is not reused: a confused or pipelining server). */
static bool fetch_after_feed(struct fetch *f, enum http_feed r, bool rest)
{
	if (r == HTTP_DONE) {
		fetch_complete(f, http_resp_keep_alive(f->parser) && !rest);
		return true;
	}
	if (r == HTTP_ERROR) {
		if (http_resp_body_cut(f->parser))
			fetch_keep(f, FETCH_ARCHIVE_CUT);
		fetch_fail(f, http_error_kind(http_resp_error(f->parser)), "%s",
			   http_resp_error_detail(f->parser));
		return true;
	}
	return false;
}

/* Show the tap the bytes of a read that belong to the response: the
 * `used` ones (a body cut at its limit: up to the limit).  True when the
 * tap asks for a pause. */
static bool fetch_tap_block(struct fetch *f, const char *p, size_t used)
{
	if (f->tap.block == NULL)
		return false;
	if (used == 0)
		return false;
	if (f->tap.block(f->tap.arg, p, used))
		f->paused = true;
	return f->paused;
}

/* Feed what the bufferevent has read.  True when the fetch ended.  A tap
 * that asks for a pause stops it (the rest stays buffered) unless `all`
 * (the connection ended: everything buffered is the response's). */
static bool fetch_drain_input(struct fetch *f, bool all)
{
	struct evbuffer *in = bufferevent_get_input(conn_bev(f->conn));

	if (f->res.ttfb_ms < 0 && evbuffer_get_length(in) > 0)
		f->res.ttfb_ms = util_mono_ms() - f->sent_ms;
	while (evbuffer_get_length(in) > 0 && (all || !f->paused)) {
		struct evbuffer_iovec v[8];
		int n = evbuffer_peek(in, -1, NULL, v, 8);
		size_t used = 0, c;
		enum http_feed r = HTTP_MORE;

		if (n > 8)
			n = 8;
		for (int i = 0; i < n && r == HTTP_MORE; i++) {
			r = http_resp_feed(f->parser, v[i].iov_base,
					   v[i].iov_len, &c);
			used += c;
			fetch_tap_block(f, v[i].iov_base, c);
		}
		evbuffer_drain(in, used);
		if (fetch_after_feed(f, r, evbuffer_get_length(in) > 0))
			return true;
	}
	if (f->paused && !all)
		bufferevent_disable(conn_bev(f->conn), EV_READ);
	return false;
}

static void fetch_closed(struct fetch *f, short what, int err);

/* Plain TCP responses are read straight from the socket into this buffer
 * and counted there (see conn_watch): no copy into evbuffer chains.  Only
 * the loop thread uses it. */
static char fetch_rbuf[64 * 1024];

/* A plain TCP connection is readable, or was silent for idle_timeout_ms. */
static void fetch_io_cb(struct conn *c, short what, void *arg)
{
	struct fetch *f = arg;

	(void)c;
	if (f->state != FETCH_WAITING)
		return;
	if (what & EV_TIMEOUT) {
		fetch_fail(f, ERR_TIMEOUT, "no data received for %d ms",
			   f->ctx.cfg->idle_timeout_ms);
		return;
	}
	for (int i = 0; i < 16; i++) {
		ssize_t n = conn_read(f->conn, fetch_rbuf, sizeof fetch_rbuf);

		if (n > 0) {
			size_t used = 0;

			if (f->res.ttfb_ms < 0)
				f->res.ttfb_ms = util_mono_ms() - f->sent_ms;
			enum http_feed r = http_resp_feed(
				f->parser, fetch_rbuf, (size_t)n, &used);

			fetch_tap_block(f, fetch_rbuf, used);
			if (fetch_after_feed(f, r, used < (size_t)n))
				return;
			if (f->paused) {
				conn_unwatch(f->conn);
				return;
			}
			if ((size_t)n < sizeof fetch_rbuf)
				return; /* drained: wait for the next event */
			continue;
		}
		if (n == 0) {
			fetch_closed(f, BEV_EVENT_EOF, 0);
			return;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			fetch_closed(f, BEV_EVENT_ERROR, errno);
		return;
	}
}

/* TLS: what the OpenSSL bufferevent decrypted. */
static void fetch_read_cb(struct bufferevent *bev, void *arg)
{
	struct fetch *f = arg;

	(void)bev;
	if (f->state != FETCH_WAITING)
		return;
	fetch_drain_input(f, false);
}

/* Body bytes, de-chunked: into the digest and through the decoder.  A
 * decoding failure is acted on when the response is complete. */
static void fetch_body_cb(void *arg, const char *p, size_t n)
{
	struct fetch *f = arg;

	if (!f->body_seen) {
		/* The headers are all in: is there a coding to undo? */
		const char *ce = http_resp_content_encoding(f->parser);

		f->body_seen = true;
		if (f->digest)
			fetch_digest_begin(f);
		if (ce != NULL && strcasecmp(ce, "identity") != 0) {
			f->decoder = decode_new(ce);
			f->encoding_unknown = f->decoder == NULL;
			if (f->decoder != NULL) {
				decode_set_limit(
					f->decoder,
					(uint64_t)f->ctx.cfg->max_body_bytes);
				if (f->tap.body != NULL)
					decode_set_sink(f->decoder, f->tap.body,
							f->tap.arg);
			}
		}
	}
	if (f->md != NULL)
		EVP_DigestUpdate(f->md, p, n);
	if (f->tap.body != NULL && f->decoder == NULL)
		f->tap.body(f->tap.arg, p, n);
	if (f->decoder != NULL && decode_feed(f->decoder, p, n) != 0) {
		/* Sticky: decode_finish() reports it when the response is
		 * complete. */
	}
}

static void fetch_send(struct fetch *f)
{
	const struct config *cfg = f->ctx.cfg;
	struct bufferevent *bev = conn_bev(f->conn);
	struct timeval idle = {cfg->idle_timeout_ms / 1000,
			       (cfg->idle_timeout_ms % 1000) * 1000};

	fetch_set_state(f, FETCH_WAITING);
	f->parser = conn_parser(f->conn, (size_t)cfg->max_header_bytes,
				f->tap.body_limit != 0
					? f->tap.body_limit
					: (uint64_t)cfg->max_body_bytes);
	if (f->tap.body_limit != 0)
		http_resp_read_to_limit(f->parser);
	/* The parser belongs to the connection: point its body bytes at
	 * this fetch (or nowhere), every time. */
	f->body_seen = f->encoding_unknown = false;
	decode_free(f->decoder);
	f->decoder = NULL;
	f->paused = false;
	f->digest = cfg->capture_digest == CONFIG_DIGEST_SHA256 ||
		    f->tap.block != NULL;
	EVP_MD_CTX_free(f->md); /* an earlier attempt's */
	f->md = NULL;
	if (f->digest || f->tap.body != NULL ||
	    cfg->accept_encoding == CONFIG_ENCODING_GZIP)
		http_resp_set_body_cb(f->parser, fetch_body_cb, f);
	else
		http_resp_set_body_cb(f->parser, NULL, NULL);
	fetch_arm_timer(f);
	conn_set_cbs(f->conn, fetch_read_cb, fetch_event_cb, f);
	if (conn_ssl(f->conn) == NULL) {
		/* Plain TCP: read the socket directly (conn_watch); its
		 * timeout is the idle timeout, restarted on every read. */
		if (conn_watch(f->conn, cfg->idle_timeout_ms, fetch_io_cb, f) !=
		    0) {
			fetch_fail(f, ERR_CONNECT,
				   "cannot read from the connection");
			return;
		}
	} else {
		/* The read timeout is the idle timeout: libevent restarts it
		 * on every read. */
		bufferevent_set_timeouts(bev, &idle, NULL);
		if (bufferevent_enable(bev, EV_READ) != 0) {
			fetch_fail(f, ERR_CONNECT,
				   "cannot read from the connection");
			return;
		}
	}
	snprintf(f->res.remote_ip, sizeof f->res.remote_ip, "%s",
		 conn_peer(f->conn));
	if (conn_ssl(f->conn) != NULL)
		f->res.tls_version = SSL_get_version(conn_ssl(f->conn));
	f->sent_ms = util_mono_ms();
	f->res.ttfb_ms = -1;
	if (fetch_build_request(f) != 0) {
		fetch_fail(f, ERR_INVALID_URL, "request does not fit");
		return;
	}
	if (f->tap.start != NULL)
		f->tap.start(f->tap.arg, f->request, f->request_len,
			     f->res.remote_ip);
	int rc = conn_write(f->conn, f->request, f->request_len);
	int err = errno;

	free(f->request); /* sent, or copied into the output buffer */
	f->request = NULL;
	if (rc != 0)
		fetch_closed(f, BEV_EVENT_ERROR | BEV_EVENT_WRITING, err);
}

/* The handshake holds its slot: begin it. */
static void fetch_begin_tls(struct fetch *f)
{
	f->phase_ms = util_mono_ms();
	if (conn_start_tls(f->conn, f->ctx.tls, f->host, f->literal,
			   fetch_read_cb, fetch_event_cb, f) != 0) {
		fetch_fail(f, ERR_TLS, "cannot set up TLS for %s", f->host);
		return;
	}
	bufferevent_enable(conn_bev(f->conn), EV_READ | EV_WRITE);
}

static void fetch_slot_go(struct tls_slot *s)
{
	fetch_begin_tls((struct fetch *)((char *)s - offsetof(struct fetch,
							       slot)));
}

/* TCP is up on an https connection: start the handshake once it has one
 * of the handshake slots (tls.c bounds how many run at once). */
static void fetch_start_tls(struct fetch *f)
{
	fetch_set_state(f, FETCH_HANDSHAKE);
	f->slot.go = fetch_slot_go;
	if (tls_slot_take(f->ctx.tls, &f->slot))
		fetch_begin_tls(f);
	else
		log_debug("fetch %s: waiting for a TLS handshake slot",
			  f->url);
}

static void fetch_handshake_event(struct fetch *f, struct bufferevent *bev,
				  short what)
{
	SSL *ssl = conn_ssl(f->conn);
	char why[256];

	tls_slot_drop(f->ctx.tls, &f->slot); /* the handshake has ended */
	if (what & BEV_EVENT_CONNECTED) {
		f->res.tls_ms = util_mono_ms() - f->phase_ms;
		f->res.tls_resumed = SSL_session_reused(ssl) ? 1 : 0;
		tls_handshake_done(f->ctx.tls, ssl);
		fetch_send(f);
		return;
	}
	tls_describe_error(ssl, bufferevent_get_openssl_error(bev),
			   (what & BEV_EVENT_EOF)
				   ? "server closed the connection during the "
				     "TLS handshake"
				   : evutil_socket_error_to_string(
					     EVUTIL_SOCKET_ERROR()),
			   why, sizeof why);
	fetch_fail(f, ERR_TLS, "%s", why);
}

static void fetch_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fetch *f = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (f->state == FETCH_HANDSHAKE) {
		fetch_handshake_event(f, bev, what);
		return;
	}
	if (f->state == FETCH_TUNNEL) {
		fetch_fail(f, ERR_PROXY, "proxy %s %s during CONNECT",
			   f->proxy->name,
			   (what & BEV_EVENT_EOF) ? "closed the connection"
						  : evutil_socket_error_to_string(
							    err));
		return;
	}
	if (f->state != FETCH_WAITING)
		return;
	if (what & BEV_EVENT_TIMEOUT) {
		fetch_fail(f, ERR_TIMEOUT, "no data received for %d ms",
			   f->ctx.cfg->idle_timeout_ms);
		return;
	}
	fetch_closed(f, what, err);
}

/* The connection ended (EOF or error, `err` its errno) while waiting for
 * the response. */
static void fetch_closed(struct fetch *f, short what, int err)
{
	struct bufferevent *bev = conn_bev(f->conn);

	if (fetch_retry_fresh(f))
		return;
	/* Whatever is still buffered belongs to the response. */
	if (fetch_drain_input(f, true))
		return;
	enum http_feed r = http_resp_eof(f->parser);
	if (what & BEV_EVENT_ERROR) {
		/* A reset, or a TLS close without close_notify, may have cut
		 * data: never take it as the end of a close-delimited body. */
		char why[256];
		unsigned long ssl_err = bufferevent_get_openssl_error(bev);

		if (conn_ssl(f->conn) != NULL && (ssl_err != 0 || err == 0))
			tls_describe_error(NULL, ssl_err,
					   "TLS connection closed without "
					   "close_notify",
					   why, sizeof why);
		else
			snprintf(why, sizeof why, "%s",
				 evutil_socket_error_to_string(err));
		fetch_fail(f, ERR_TRUNCATED, "%s (%s)",
			   r == HTTP_ERROR ? http_resp_error_detail(f->parser)
					   : "connection cut during a "
					     "close-delimited body",
			   why);
		return;
	}
	if (r == HTTP_DONE) {
		fetch_complete(f, false);
		return;
	}
	fetch_fail(f, http_error_kind(http_resp_error(f->parser)), "%s",
		   http_resp_error_detail(f->parser));
}

/* The dial ended: go on over the connection that won, or fail. */
/* The CONNECT reply is in (its header block, `n` bytes): on 2xx the
 * tunnel is open and TLS to the origin starts inside it. */
static void fetch_tunnel_reply(struct fetch *f, const char *head, size_t n)
{
	int status = 0;
	char reason[64] = "";

	if (n < 12 || strncmp(head, "HTTP/1.", 7) != 0 ||
	    sscanf(head + 9, "%3d %63[^\r\n]", &status, reason) < 1) {
		fetch_fail(f, ERR_PROXY,
			   "proxy %s sent a malformed reply to CONNECT",
			   f->proxy->name);
		return;
	}
	if (status < 200 || status > 299) {
		fetch_fail(f, ERR_PROXY, "proxy %s refused CONNECT to %s:%u: %d%s%s",
			   f->proxy->name, f->host, f->port, status,
			   reason[0] ? " " : "", reason);
		return;
	}
	bufferevent_disable(conn_bev(f->conn), EV_READ);
	fetch_start_tls(f);
}

/* The proxy's answer to CONNECT, read up to the end of its headers. */
static void fetch_tunnel_read_cb(struct bufferevent *bev, void *arg)
{
	struct fetch *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	char head[8192];

	if (f->state != FETCH_TUNNEL)
		return;
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) >= sizeof head)
			fetch_fail(f, ERR_PROXY,
				   "proxy %s: reply to CONNECT longer than "
				   "%zu bytes",
				   f->proxy->name, sizeof head);
		return;
	}
	size_t n = (size_t)end.pos + 4;
	if (n >= sizeof head) {
		fetch_fail(f, ERR_PROXY,
			   "proxy %s: reply to CONNECT longer than %zu bytes",
			   f->proxy->name, sizeof head);
		return;
	}
	evbuffer_remove(in, head, n);
	head[n] = '\0';
	fetch_tunnel_reply(f, head, n);
}

/* HTTPS through a proxy: ask it for a tunnel to the origin (RFC 9110
 * section 9.3.6). */
static void fetch_tunnel(struct fetch *f)
{
	struct bufferevent *bev = conn_bev(f->conn);
	char *req;

	fetch_set_state(f, FETCH_TUNNEL);
	req = util_printf("CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
			  "%s\r\n",
			  strchr(f->host, ':') ? "[" : "", f->host,
			  strchr(f->host, ':') ? "]" : "", f->port,
			  strchr(f->host, ':') ? "[" : "", f->host,
			  strchr(f->host, ':') ? "]" : "", f->port,
			  f->proxy->auth ? f->proxy->auth : "");
	conn_set_cbs(f->conn, fetch_tunnel_read_cb, fetch_event_cb, f);
	if (bufferevent_enable(bev, EV_READ) != 0 ||
	    conn_write(f->conn, req, strlen(req)) != 0)
		fetch_fail(f, ERR_PROXY, "cannot write to proxy %s: %s",
			   f->proxy->name, strerror(errno));
	free(req);
}

static void fetch_dial_cb(void *arg, const struct dial_result *res)
{
	struct fetch *f = arg;

	f->dial = NULL;
	if (res->conn == NULL) {
		if (res->err == EMFILE || res->err == ENFILE)
			f->res.fd_exhausted = true;
		if (f->proxy != NULL && !f->res.fd_exhausted)
			fetch_fail(f, ERR_PROXY,
				   "cannot connect to proxy %s: %s",
				   f->proxy->name,
				   strerror(res->err != 0 ? res->err : EIO));
		else
			fetch_fail(f, ERR_CONNECT,
				   "cannot connect to %s port %u: %s",
				   f->dial_host, f->dial_port,
				   strerror(res->err != 0 ? res->err : EIO));
		return;
	}
	f->conn = res->conn;
	f->res.connect_ms = res->connect_ms;
	conn_set_peer(f->conn, &res->addr.sa);
	if (!f->dial_literal)
		dns_note_connected(f->ctx.dns, f->dial_host, &res->addr);
	if (f->scheme == URL_HTTPS && f->proxy != NULL) {
		fetch_tunnel(f);
		return;
	}
	if (f->scheme == URL_HTTPS) {
		fetch_start_tls(f);
		return;
	}
	fetch_send(f);
}

/* Open a new connection to one of addrs (the dial keeps its copy). */
static void fetch_connect(struct fetch *f, const struct dns_addrs *addrs)
{
	fetch_set_state(f, FETCH_CONNECTING);
	f->dial = dial_start(f->ctx.base, f->ctx.pool, f->key,
			     f->scheme == URL_HTTPS, addrs, f->dial_port,
			     fetch_dial_cb, f);
}

static void fetch_dns_cb(void *arg, const struct dns_addrs *addrs,
			 const char *error)
{
	struct fetch *f = arg;

	f->dns = NULL;
	f->res.dns_ms = util_mono_ms() - f->dns_start_ms;
	if (addrs == NULL) {
		if (f->proxy != NULL)
			fetch_fail(f, ERR_PROXY, "proxy %s: %s",
				   f->proxy->name, error);
		else
			fetch_fail(f, ERR_DNS, "%s", error);
		return;
	}
	fetch_connect(f, addrs);
}

/* The address of an IP literal host into *out. */
static void fetch_literal_addr(const struct fetch *f, struct dns_addrs *out)
{
	union dns_sockaddr *a = &out->addr[0];

	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, f->dial_host, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		out->len[0] = sizeof a->in;
		out->n = 1;
	} else if (inet_pton(AF_INET6, f->dial_host, &a->in6.sin6_addr) ==
		   1) {
		a->in6.sin6_family = AF_INET6;
		out->len[0] = sizeof a->in6;
		out->n = 1;
	}
}

static void fetch_get_conn(struct fetch *f, bool allow_pool)
{
	if (allow_pool) {
		f->conn = conn_pool_take(f->ctx.pool, f->key);
		if (f->conn != NULL) {
			f->reused = true;
			fetch_send(f);
			return;
		}
	}
	f->reused = false;
	fetch_arm_timer(f);
	if (f->dial_literal) {
		struct dns_addrs addrs;

		fetch_literal_addr(f, &addrs);
		fetch_connect(f, &addrs);
		return;
	}
	fetch_set_state(f, FETCH_RESOLVING);
	f->dns_start_ms = util_mono_ms();
	f->dns = dns_resolve(f->ctx.dns, f->dial_host, fetch_dns_cb, f);
}

/* Arm the timer for the nearest deadline: connecting (DNS included) must
 * end within connect_timeout_ms, the whole request within
 * request_timeout_ms, both counted from when the fetch really started. */
static void fetch_arm_timer(struct fetch *f)
{
	const struct config *cfg = f->ctx.cfg;
	int64_t deadline = f->start_ms + cfg->request_timeout_ms;
	int64_t now = util_mono_ms(), left;

	if (f->state < FETCH_WAITING &&
	    f->start_ms + cfg->connect_timeout_ms < deadline)
		deadline = f->start_ms + cfg->connect_timeout_ms;
	left = deadline > now ? deadline - now : 0;
	struct timeval tv = {(time_t)(left / 1000),
			     (suseconds_t)(left % 1000) * 1000};
	event_add(&f->timer, &tv);
}

static void fetch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	const struct config *cfg = f->ctx.cfg;
	int64_t elapsed = util_mono_ms() - f->start_ms;

	(void)fd;
	(void)what;
	if (f->state < FETCH_WAITING && elapsed >= cfg->connect_timeout_ms) {
		fetch_fail(f, ERR_TIMEOUT, "%s not finished within %d ms",
			   f->state == FETCH_RESOLVING ? "DNS lookup"
			   : f->slot.queued ? "TLS handshake (still waiting "
					      "for one of the handshake slots)"
			   : f->state == FETCH_HANDSHAKE ? "TLS handshake"
			   : f->state == FETCH_TUNNEL	  ? "CONNECT through the "
							    "proxy"
							  : "connect",
			   cfg->connect_timeout_ms);
		return;
	}
	if (elapsed >= cfg->request_timeout_ms) {
		fetch_fail(f, ERR_TIMEOUT, "request took longer than %d ms",
			   cfg->request_timeout_ms);
		return;
	}
	fetch_arm_timer(f);
}

/* The configured header lines ([fetch] header), then those of a
 * conditional request (RFC 9110 section 13): the validators of the
 * earlier response, when they can be sent back.  NULL when none. */
static char *fetch_extra_headers(const struct config *cfg,
				 const struct fetch_cond *c)
{
	bool etag = c != NULL && c->etag != NULL &&
		    http_header_value_ok(c->etag);
	bool lm = c != NULL && c->last_modified != NULL &&
		  http_header_value_ok(c->last_modified);

	if (!etag && !lm)
		return cfg->header_lines != NULL ? xstrdup(cfg->header_lines)
						 : NULL;
	return util_printf("%s%s%s%s%s%s%s",
			   cfg->header_lines ? cfg->header_lines : "",
			   etag ? "If-None-Match: " : "", etag ? c->etag : "",
			   etag ? "\r\n" : "", lm ? "If-Modified-Since: " : "",
			   lm ? c->last_modified : "", lm ? "\r\n" : "");
}

/* The request into f->request: built as it is sent and freed right after,
 * so that fetches connecting or waiting for their responses hold none
 * (10,000 in flight).  It cannot fail for a URL that parsed and a
 * user agent the configuration accepted; if it did, the fetch fails. */
static int fetch_build_request(struct fetch *f)
{
	const struct config *cfg = f->ctx.cfg;
	/* Plain HTTP through a proxy: the target in absolute form, and the
	 * proxy's credentials with it. */
	bool via = f->proxy != NULL && f->scheme == URL_HTTP;
	char *extra = fetch_extra_headers(cfg, f->cond);
	size_t size;
	int n;

	if (via && f->proxy->auth != NULL) {
		char *both = util_printf("%s%s", extra ? extra : "",
					 f->proxy->auth);

		free(extra);
		extra = both;
	}
	size = http_request_size(&f->ref, cfg->user_agent, extra);
	free(f->request);
	f->request = xmalloc(size);
	n = http_build_request_ex(
		f->request, size, &f->ref, f->url, cfg->user_agent,
		cfg->accept_encoding == CONFIG_ENCODING_GZIP ? "gzip"
							     : "identity",
		extra, via);
	free(extra);
	if (n < 0) {
		free(f->request);
		f->request = NULL;
		return -1;
	}
	f->request_len = (size_t)n;
	return 0;
}

struct fetch *fetch_start(const struct fetch_ctx *ctx, const char *url,
			  const struct url_ref *ref,
			  const struct fetch_cond *cond,
			  const struct fetch_tap *tap, fetch_done_cb done,
			  void *arg)
{
	struct fetch *f = xcalloc(1, sizeof *f);
	int n;

	f->ctx = *ctx;
	f->url = url;
	f->ref = *ref;
	f->cond = cond;
	if (tap != NULL)
		f->tap = *tap;
	f->done = done;
	f->arg = arg;
	f->start_ms = util_mono_ms();
	f->res.attempts = 1;
	f->res.redirects = 0;
	f->res.length = -1;
	f->res.connect_ms = -1;
	f->res.tls_ms = -1;
	f->res.retry_after_ms = -1;
	f->res.decoded_length = -1;
	f->res.dns_ms = -1;
	f->res.ttfb_ms = -1;
	f->res.tls_resumed = -1;
	event_assign(&f->timer, ctx->base, -1, 0, fetch_timer_cb, f);
	event_assign(&f->reap, ctx->base, -1, 0, fetch_reap_cb, f);

	f->scheme = (enum url_scheme)ref->scheme;
	f->res.scheme = f->scheme;
	f->port = ref->port;
	f->literal = (ref->flags & (URL_REF_IPV4 | URL_REF_IPV6)) != 0;
	/* The formatted form only when the text is not already in it (the
	 * receiver takes NULL as "the URL fetched, as it is"). */
	if (!(ref->flags & URL_REF_NORMAL)) {
		char buf[URL_MAX_LEN + 400];

		n = url_ref_format(ref, url, buf, sizeof buf);
		f->res.final_url = n < 0 ? NULL : xstrndup(buf, (size_t)n);
	}
	/* The pool key is the origin (both fit: the host is at most 253
	 * bytes). */
	char host[256], key[600];
	url_ref_host(ref, url, host, sizeof host);
	url_ref_origin(ref, url, key, sizeof key);
	f->proxy = proxies_for(ctx->proxies, f->scheme, host);
	if (f->proxy != NULL) {
		/* Plain HTTP: one pool of connections to the proxy for every
		 * origin.  HTTPS: a tunnel per origin. */
		size_t kl = strlen(key);

		if (f->scheme == URL_HTTP)
			snprintf(key, sizeof key, "proxy:%s", f->proxy->name);
		else
			snprintf(key + kl, sizeof key - kl, " via %s",
				 f->proxy->name);
	}
	size_t hl = strlen(host) + 1, kl = strlen(key) + 1;
	f->host = xmalloc(hl + kl);
	memcpy(f->host, host, hl);
	f->key = f->host + hl;
	memcpy(f->key, key, kl);
	f->dial_host = f->host;
	f->dial_port = f->port;
	f->dial_literal = f->literal;
	if (f->proxy != NULL) {
		f->dial_host = f->proxy->host;
		f->dial_port = f->proxy->port;
		f->dial_literal = f->proxy->literal;
	}
	fetch_get_conn(f, true);
	return f;
}

void fetch_resume(struct fetch *f)
{
	if (f == NULL || !f->paused)
		return;
	f->paused = false;
	if (f->state != FETCH_WAITING)
		return;
	if (conn_ssl(f->conn) == NULL) {
		/* Level-triggered: bytes already waiting wake it at once. */
		if (conn_watch(f->conn, f->ctx.cfg->idle_timeout_ms,
			       fetch_io_cb, f) != 0)
			fetch_fail(f, ERR_CONNECT,
				   "cannot read from the connection");
		return;
	}
	bufferevent_enable(conn_bev(f->conn), EV_READ);
	/* What is buffered already gets no new read callback. */
	fetch_drain_input(f, false);
}

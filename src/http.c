/* HTTP/1.1 response parsing on top of llhttp, and request building.
 *
 * llhttp does the protocol work; this file adds what a scraper needs on top:
 * limits on header and body size, skipping of 1xx interim responses, exact
 * accounting of which fed bytes belong to the response (so a keep-alive
 * connection can hand the rest on), and capture of the three header values
 * gatherd uses.  Bodies are counted, never stored.
 *
 * Two llhttp pauses make the byte accounting exact.  on_headers_complete
 * pauses (when a body may follow) so that feed() learns where the header
 * block ended before any body byte is parsed, and on_message_complete always
 * pauses so that nothing after the response is parsed.  llhttp reports the
 * position of a pause through llhttp_get_error_pos(). */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llhttp.h>

#include "url.h"
#include "util.h"

/* Kept sizes of the captured header values, including the NUL.  Location
 * keeps one byte more than URL_MAX_LEN so that an over-long value reaches
 * url_resolve() too long and is rejected there, instead of being followed
 * truncated to some other URL. */
#define CONTENT_TYPE_SIZE 256
#define LOCATION_SIZE	  (URL_MAX_LEN + 2)
#define RETRY_AFTER_SIZE  64
#define ETAG_SIZE	  256 /* an entity tag longer than this is cut */
#define LAST_MODIFIED_SIZE 64
#define CONTENT_ENCODING_SIZE 64

/* Long enough for every header name we look for. */
#define FIELD_NAME_SIZE 16
#define DETAIL_SIZE 192

/* Why the parser failed, when the failure was ours rather than llhttp's. */
enum http_fail {
	FAIL_NONE = 0,
	FAIL_BODY_TOO_LARGE,
	FAIL_TRAILERS_TOO_LARGE,
	FAIL_BAD_STATUS,
};

/* One captured header value: bytes accumulate across llhttp callbacks (and
 * feeds) up to size - 1; the rest is dropped. */
struct hvalue {
	char *buf;
	size_t size;
	size_t len;
	bool present;
};

/* The per-connection parser.  Everything after the limits is per-response
 * state and is cleared by http_resp_reset(); the captured values are
 * cleared again at the start of every response, interim ones included, so
 * only the final response's headers are reported. */
struct http_resp {
	llhttp_t parser;
	size_t max_header_bytes;
	uint64_t max_body_bytes;

	enum http_feed result; /* HTTP_MORE until done or failed */
	enum http_error error;
	enum http_fail fail; /* set by a callback that returned an error */
	const char *cut_at;  /* FAIL_BODY_TOO_LARGE in a body span: where the
			      * limit fell in the bytes being fed */
	char *detail; /* why it failed (DETAIL_SIZE), NULL until it does */

	bool started;	      /* a byte was fed since the last reset */
	bool interim_seen;    /* a 1xx response was skipped */
	bool read_to_limit;   /* no early refusal of a long Content-Length */
	bool in_headers;      /* current response's header block not done */
	size_t header_bytes;  /* bytes fed for the current header block */
	size_t trailer_bytes; /* names + values of chunked trailers */
	bool headers_done;    /* headers of the final response parsed */
	bool message_done;    /* on_message_complete ran for a response */
	bool in_finish;	      /* inside llhttp_finish() from http_resp_eof */

	int status; /* of the final response, 0 before */
	bool chunked;
	bool has_length; /* Content-Length given */
	uint64_t content_length;
	uint64_t body_len;
	bool keep_alive;

	/* Header capture: the name being received and where its value goes. */
	char field[FIELD_NAME_SIZE];
	size_t field_len;
	struct hvalue *target; /* NULL: a header we do not keep */

	struct hvalue content_type;
	struct hvalue location;
	struct hvalue retry_after;
	struct hvalue etag;
	struct hvalue last_modified;
	struct hvalue content_encoding;
	/* Where the final response's body bytes go (http_resp_set_body_cb). */
	http_body_cb body_cb;
	void *body_arg;
	/* The values' buffers (and detail) are allocated when a response
	 * first needs them and freed by http_resp_trim() once it has been
	 * read, so a connection waiting for its response holds none: memory
	 * per connection is what bounds 10,000 in flight. */
};

static bool status_is_interim(int status)
{
	/* 101 is final: the connection would switch protocols, which gatherd
	 * never asks for, so the fetch ends there (and is not reused). */
	return status >= 100 && status < 200 && status != 101;
}

static bool status_has_no_body(int status)
{
	/* RFC 9112 section 6.3: these never carry a body, whatever their
	 * Content-Length or Transfer-Encoding say. */
	return (status >= 100 && status < 200) || status == 204 ||
	       status == 304;
}

static void hvalue_clear(struct hvalue *v)
{
	v->len = 0;
	v->present = false;
	if (v->buf != NULL)
		v->buf[0] = '\0';
}

static void capture_clear(struct http_resp *r)
{
	hvalue_clear(&r->content_type);
	hvalue_clear(&r->location);
	hvalue_clear(&r->retry_after);
	hvalue_clear(&r->etag);
	hvalue_clear(&r->last_modified);
	hvalue_clear(&r->content_encoding);
	r->field_len = 0;
	r->target = NULL;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool ascii_case_eq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		char c = a[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != b[i])
			return false;
	}
	return true;
}

static struct http_resp *resp_of(llhttp_t *p)
{
	return p->data;
}

static int on_message_begin(llhttp_t *p)
{
	capture_clear(resp_of(p));
	return 0;
}

/* Trailer fields are parsed by llhttp through the same callbacks as header
 * fields; they are not captured, only counted, so that a server cannot
 * stream an endless trailer section. */
static int count_trailer(struct http_resp *r, size_t len)
{
	r->trailer_bytes += len;
	if (r->trailer_bytes > r->max_header_bytes) {
		r->fail = FAIL_TRAILERS_TOO_LARGE;
		return -1;
	}
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);

	if (r->headers_done)
		return count_trailer(r, len);
	/* A name longer than the buffer is none of the ones we keep; note
	 * its length anyway so that it cannot match by truncation. */
	if (r->field_len < sizeof(r->field)) {
		size_t n = sizeof(r->field) - r->field_len;

		memcpy(r->field + r->field_len, at, len < n ? len : n);
	}
	r->field_len += len;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);
	size_t n = r->field_len;

	if (r->headers_done)
		return 0;
	/* llhttp (outside its strict build) lets "Location : x" through;
	 * RFC 9112 section 5.1 has proxies drop that space, so do the same
	 * rather than silently miss the header. */
	while (n > 0 && n <= sizeof(r->field) && is_ows(r->field[n - 1]))
		n--;
	r->field_len = 0;
	r->target = NULL;
	if (ascii_case_eq(r->field, n, "content-type"))
		r->target = &r->content_type;
	else if (ascii_case_eq(r->field, n, "location"))
		r->target = &r->location;
	else if (ascii_case_eq(r->field, n, "retry-after"))
		r->target = &r->retry_after;
	else if (ascii_case_eq(r->field, n, "etag"))
		r->target = &r->etag;
	else if (ascii_case_eq(r->field, n, "last-modified"))
		r->target = &r->last_modified;
	else if (ascii_case_eq(r->field, n, "content-encoding"))
		r->target = &r->content_encoding;
	if (r->target != NULL && r->target->buf == NULL) {
		r->target->buf = xmalloc(r->target->size);
	}
	/* A repeated header replaces the earlier value: the last one wins,
	 * as in most user agents. */
	if (r->target != NULL) {
		r->target->len = 0;
		r->target->present = false;
	}
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);
	struct hvalue *v = r->target;

	if (r->headers_done)
		return count_trailer(r, len);
	if (v != NULL && v->len < v->size - 1) {
		size_t n = v->size - 1 - v->len;

		if (len < n)
			n = len;
		memcpy(v->buf + v->len, at, n);
		v->len += n;
	}
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);
	struct hvalue *v = r->target;
	size_t start = 0;

	if (r->headers_done || v == NULL)
		return 0;
	/* llhttp drops leading whitespace but keeps trailing whitespace. */
	while (v->len > 0 && is_ows(v->buf[v->len - 1]))
		v->len--;
	while (start < v->len && is_ows(v->buf[start]))
		start++;
	if (start > 0) {
		memmove(v->buf, v->buf + start, v->len - start);
		v->len -= start;
	}
	v->buf[v->len] = '\0';
	v->present = v->len > 0;
	r->target = NULL;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);
	int status = p->status_code;

	r->in_headers = false;
	/* llhttp lets "HTTP/1.1 20 OK" through as status 20 (and a doubled
	 * space as status 0); RFC 9110 section 15 calls anything outside
	 * 100..599 invalid. */
	if (status < 100 || status > 599) {
		r->fail = FAIL_BAD_STATUS;
		return -1;
	}
	if (status_is_interim(status))
		return 1; /* no body; on_message_complete pauses next */
	r->status = status;
	r->headers_done = true;
	if (status_has_no_body(status))
		return 1;
	r->chunked = (p->flags & F_CHUNKED) != 0;
	r->has_length = !r->chunked && (p->flags & F_CONTENT_LENGTH) != 0;
	r->content_length = r->has_length ? p->content_length : 0;
	/* Refuse a declared body that is over the limit before reading any
	 * of it: waiting for the bytes would only waste bandwidth. */
	if (r->has_length && r->content_length > r->max_body_bytes &&
	    !r->read_to_limit) {
		r->fail = FAIL_BODY_TOO_LARGE;
		return -1;
	}
	/* Pause so that feed() can check the header size before the body. */
	return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_resp *r = resp_of(p);

	if (len > r->max_body_bytes - r->body_len) {
		/* How far past the limit llhttp's span reached depends on
		 * how the bytes arrived; report one byte over, always.  The
		 * receiver gets the bytes up to the limit. */
		if (r->body_cb != NULL && r->max_body_bytes > r->body_len)
			r->body_cb(r->body_arg, at,
				   (size_t)(r->max_body_bytes - r->body_len));
		r->cut_at = at + (r->max_body_bytes - r->body_len);
		r->body_len = r->max_body_bytes + 1;
		r->fail = FAIL_BODY_TOO_LARGE;
		return -1;
	}
	r->body_len += len;
	if (r->body_cb != NULL)
		r->body_cb(r->body_arg, at, len);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct http_resp *r = resp_of(p);

	r->message_done = true;
	if (r->in_finish) {
		/* A close-delimited body ended with the connection. */
		r->keep_alive = false;
		return 0;
	}
	if (status_is_interim(p->status_code)) {
		r->interim_seen = true;
	} else {
		/* Ask now: llhttp clears its flags right after this
		 * callback.  After a 101 the connection is not HTTP any
		 * more. */
		r->keep_alive =
		    llhttp_should_keep_alive(p) && p->status_code != 101;
	}
	/* Stop right after the response so trailing bytes stay unparsed. */
	return HPE_PAUSED;
}

static const llhttp_settings_t http_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Start parsing a fresh response with llhttp (after a reset, or after an
 * interim response: a new llhttp state per response also keeps llhttp from
 * treating bytes after an HTTP/1.0-style interim response as "data after
 * Connection: close"). */
static void parser_restart(struct http_resp *r)
{
	llhttp_init(&r->parser, HTTP_RESPONSE, &http_settings);
	r->parser.data = r;
	r->in_headers = true;
	r->header_bytes = 0;
	r->message_done = false;
	capture_clear(r);
}

struct http_resp *http_resp_new(size_t max_header_bytes,
				uint64_t max_body_bytes)
{
	struct http_resp *r = xcalloc(1, sizeof(*r));

	r->content_type.size = CONTENT_TYPE_SIZE;
	r->location.size = LOCATION_SIZE;
	r->retry_after.size = RETRY_AFTER_SIZE;
	r->etag.size = ETAG_SIZE;
	r->last_modified.size = LAST_MODIFIED_SIZE;
	r->content_encoding.size = CONTENT_ENCODING_SIZE;
	http_resp_reset(r, max_header_bytes, max_body_bytes);
	return r;
}

static void hvalue_trim(struct hvalue *v)
{
	free(v->buf);
	v->buf = NULL;
	v->len = 0;
	v->present = false;
}

void http_resp_trim(struct http_resp *r)
{
	hvalue_trim(&r->content_type);
	hvalue_trim(&r->location);
	hvalue_trim(&r->retry_after);
	hvalue_trim(&r->etag);
	hvalue_trim(&r->last_modified);
	hvalue_trim(&r->content_encoding);
	r->target = NULL;
	free(r->detail);
	r->detail = NULL;
}

void http_resp_free(struct http_resp *r)
{
	if (r == NULL)
		return;
	http_resp_trim(r);
	free(r);
}

void http_resp_reset(struct http_resp *r, size_t max_header_bytes,
		     uint64_t max_body_bytes)
{
	r->max_header_bytes = max_header_bytes;
	r->max_body_bytes = max_body_bytes;
	r->result = HTTP_MORE;
	r->error = HTTP_ERR_NONE;
	r->fail = FAIL_NONE;
	r->cut_at = NULL;
	if (r->detail != NULL)
		r->detail[0] = '\0';
	r->started = false;
	r->interim_seen = false;
	r->read_to_limit = false;
	r->trailer_bytes = 0;
	r->headers_done = false;
	r->in_finish = false;
	r->status = 0;
	r->chunked = false;
	r->has_length = false;
	r->content_length = 0;
	r->body_len = 0;
	r->keep_alive = false;
	parser_restart(r);
}

static enum http_feed fail(struct http_resp *r, enum http_error e,
			   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum http_feed fail(struct http_resp *r, enum http_error e,
			   const char *fmt, ...)
{
	va_list ap;

	if (r->detail == NULL)
		r->detail = xmalloc(DETAIL_SIZE);
	va_start(ap, fmt);
	vsnprintf(r->detail, DETAIL_SIZE, fmt, ap);
	va_end(ap);
	r->error = e;
	r->keep_alive = false;
	r->result = HTTP_ERROR;
	return HTTP_ERROR;
}

/* Turn a failed llhttp_execute() into our error, preferring the failures
 * our callbacks signalled over llhttp's generic "callback error". */
static enum http_feed fail_parse(struct http_resp *r, llhttp_errno_t err)
{
	const char *reason;

	switch (r->fail) {
	case FAIL_BODY_TOO_LARGE:
		return fail(r, HTTP_ERR_TOO_LARGE,
			    "body larger than %" PRIu64 " bytes",
			    r->max_body_bytes);
	case FAIL_TRAILERS_TOO_LARGE:
		return fail(r, HTTP_ERR_TOO_LARGE,
			    "trailers larger than %zu bytes",
			    r->max_header_bytes);
	case FAIL_BAD_STATUS:
		return fail(r, HTTP_ERR_PROTOCOL, "invalid status code %d",
			    (int)r->parser.status_code);
	case FAIL_NONE:
		break;
	}
	reason = llhttp_get_error_reason(&r->parser);
	if (reason == NULL || reason[0] == '\0')
		reason = llhttp_errno_name(err);
	return fail(r, HTTP_ERR_PROTOCOL, "llhttp: %s", reason);
}

enum http_feed http_resp_feed(struct http_resp *r, const char *data, size_t len,
			      size_t *consumed)
{
	size_t off = 0;

	*consumed = 0;
	if (r->result != HTTP_MORE || len == 0)
		return r->result;
	r->started = true;

	for (;;) {
		const char *chunk = data + off;
		bool counting = r->in_headers;
		llhttp_errno_t err;
		size_t used;

		err = llhttp_execute(&r->parser, chunk, len - off);
		if (err == HPE_OK)
			used = len - off;
		else
			used =
			    (size_t)(llhttp_get_error_pos(&r->parser) - chunk);
		off += used;
		/* Both pauses stop exactly at the end of the header block
		 * when it ends in this chunk, so `used` counts header bytes
		 * and nothing of the body. */
		if (counting) {
			r->header_bytes += used;
			if (r->header_bytes > r->max_header_bytes) {
				/* Whether llhttp got to the end of the
				 * block depends on how the bytes arrived;
				 * report nothing of it either way. */
				r->status = 0;
				r->headers_done = false;
				return fail(r, HTTP_ERR_TOO_LARGE,
					    "headers larger than %zu bytes",
					    r->max_header_bytes);
			}
		}
		if (err == HPE_OK) {
			*consumed = off;
			return HTTP_MORE;
		}
		if (err != HPE_PAUSED) {
			/* A body over the limit: what came up to the limit is
			 * the response's (cut short), and so consumed. */
			if (r->fail == FAIL_BODY_TOO_LARGE)
				*consumed = r->cut_at != NULL
						    ? (size_t)(r->cut_at - data)
						    : off;
			return fail_parse(r, err);
		}

		if (!r->message_done) {
			/* Paused by on_headers_complete. */
			llhttp_resume(&r->parser);
			continue;
		}
		if (r->headers_done) {
			*consumed = off;
			r->result = HTTP_DONE;
			return HTTP_DONE;
		}
		/* An interim 1xx response ended: parse what follows as a new
		 * response, with its own header budget. */
		parser_restart(r);
	}
}

enum http_feed http_resp_eof(struct http_resp *r)
{
	llhttp_errno_t err;

	if (r->result != HTTP_MORE)
		return r->result;
	if (!r->started)
		return fail(r, HTTP_ERR_TRUNCATED,
			    "connection closed before any response byte");

	r->in_finish = true;
	err = llhttp_finish(&r->parser);
	r->in_finish = false;
	if (err == HPE_OK && r->message_done && r->headers_done) {
		r->result = HTTP_DONE;
		r->keep_alive = false;
		return HTTP_DONE;
	}

	if (r->headers_done && r->chunked)
		return fail(r, HTTP_ERR_TRUNCATED,
			    "connection closed in the middle of a chunked "
			    "body");
	if (r->headers_done && r->has_length)
		return fail(r, HTTP_ERR_TRUNCATED,
			    "connection closed after %" PRIu64 " of %" PRIu64
			    " body bytes",
			    r->body_len, r->content_length);
	if (r->headers_done)
		return fail(r, HTTP_ERR_TRUNCATED,
			    "connection closed in the middle of the body");
	if (r->interim_seen && r->header_bytes == 0)
		return fail(r, HTTP_ERR_TRUNCATED,
			    "connection closed after an interim 1xx "
			    "response");
	return fail(r, HTTP_ERR_TRUNCATED,
		    "connection closed in the middle of the headers");
}

int http_resp_status(const struct http_resp *r)
{
	return r->status;
}

uint64_t http_resp_body_len(const struct http_resp *r)
{
	return r->body_len;
}

static const char *hvalue_get(const struct http_resp *r, const struct hvalue *v)
{
	if (!r->headers_done || !v->present)
		return NULL;
	return v->buf;
}

const char *http_resp_content_type(const struct http_resp *r)
{
	return hvalue_get(r, &r->content_type);
}

const char *http_resp_location(const struct http_resp *r)
{
	return hvalue_get(r, &r->location);
}

const char *http_resp_retry_after(const struct http_resp *r)
{
	return hvalue_get(r, &r->retry_after);
}

const char *http_resp_etag(const struct http_resp *r)
{
	return hvalue_get(r, &r->etag);
}

const char *http_resp_last_modified(const struct http_resp *r)
{
	return hvalue_get(r, &r->last_modified);
}

const char *http_resp_content_encoding(const struct http_resp *r)
{
	return hvalue_get(r, &r->content_encoding);
}

void http_resp_set_body_cb(struct http_resp *r, http_body_cb cb, void *arg)
{
	r->body_cb = cb;
	r->body_arg = arg;
}

bool http_resp_started(const struct http_resp *r)
{
	return r->started;
}

bool http_resp_keep_alive(const struct http_resp *r)
{
	return r->result == HTTP_DONE && r->keep_alive;
}

enum http_error http_resp_error(const struct http_resp *r)
{
	return r->error;
}

void http_resp_read_to_limit(struct http_resp *r)
{
	r->read_to_limit = true;
}

bool http_resp_body_cut(const struct http_resp *r)
{
	return r->result == HTTP_ERROR && r->fail == FAIL_BODY_TOO_LARGE;
}

const char *http_resp_error_detail(const struct http_resp *r)
{
	return r->detail != NULL ? r->detail : "";
}

enum errkind http_error_kind(enum http_error e)
{
	switch (e) {
	case HTTP_ERR_PROTOCOL:
		return ERR_HTTP_PROTOCOL;
	case HTTP_ERR_TOO_LARGE:
		return ERR_TOO_LARGE;
	case HTTP_ERR_TRUNCATED:
		return ERR_TRUNCATED;
	case HTTP_ERR_NONE:
		break;
	}
	return ERR_NONE;
}

/* A header value we write must not be able to end the header early. */
static bool header_value_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

bool http_header_value_ok(const char *v)
{
	return header_value_ok(v);
}

/* Append len bytes at *pos if they fit (always leaving room for a NUL). */
static bool put(char *buf, size_t size, size_t *pos, const char *s,
		size_t len)
{
	if (len >= size - *pos)
		return false;
	memcpy(buf + *pos, s, len);
	*pos += len;
	return true;
}

#define PUT_LIT(lit) put(buf, size, &pos, lit, sizeof(lit) - 1)
#define PUT_STR(str) put(buf, size, &pos, str, strlen(str))

size_t http_request_size(const struct url_ref *r, const char *user_agent,
			 const char *extra)
{
	/* The fixed text, the target, the authority (at most a 253-byte
	 * host, brackets and ":65535"), the user agent and the extra
	 * header lines, plus a NUL. */
	return 128 + 1 + r->target_len + 2 * 264 + strlen(user_agent) +
	       (extra != NULL ? strlen(extra) : 0) + 1;
}

int http_build_request(char *buf, size_t size, const struct url_ref *r,
		       const char *text, const char *user_agent,
		       const char *extra)
{
	return http_build_request_ex(buf, size, r, text, user_agent,
				     "identity", extra, false);
}

int http_build_request_ex(char *buf, size_t size, const struct url_ref *r,
			  const char *text, const char *user_agent,
			  const char *accept_encoding, const char *extra,
			  bool absolute)
{
	char authority[300];
	size_t pos = 0;

	if (size == 0 || !header_value_ok(user_agent) ||
	    url_ref_authority(r, text, authority, sizeof authority) < 0)
		return -1;
	/* Built with memcpy rather than snprintf: this runs for every
	 * request, and formatting was a visible share of the CPU time. */
	if (!PUT_LIT("GET ") ||
	    (absolute && !PUT_STR(r->scheme == URL_HTTPS ? "https://"
							 : "http://")) ||
	    (absolute && !PUT_STR(authority)) ||
	    ((r->flags & URL_REF_SLASH) && !PUT_LIT("/")) ||
	    !put(buf, size, &pos, text + r->target_off, r->target_len) ||
	    !PUT_LIT(" HTTP/1.1\r\nHost: ") || !PUT_STR(authority) ||
	    !PUT_LIT("\r\nUser-Agent: ") || !PUT_STR(user_agent) ||
	    !PUT_LIT("\r\nAccept: */*\r\nAccept-Encoding: ") ||
	    !PUT_STR(accept_encoding) ||
	    !PUT_LIT("\r\nConnection: keep-alive\r\n") ||
	    (extra != NULL && !PUT_STR(extra)) || !PUT_LIT("\r\n"))
		return -1;
	buf[pos] = '\0';
	return (int)pos;
}

bool http_is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

int64_t http_parse_retry_after(const char *v, int64_t now_wall_ms)
{
	char *end;
	struct tm tm;

	if (v == NULL)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		errno = 0;
		unsigned long long s = strtoull(v, &end, 10);

		while (*end == ' ' || *end == '\t')
			end++;
		if (*end != '\0' || errno != 0)
			return -1;
		return s > 86400ULL * 365 ? 86400LL * 365 * 1000
					  : (int64_t)s * 1000;
	}
	/* RFC 9110 section 5.6.7: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
	 * GMT"), and recipients must also accept the obsolete RFC 850
	 * ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6
	 * 08:49:37 1994") forms. */
	static const char *const formats[] = {
		"%a, %d %b %Y %H:%M:%S GMT",
		"%A, %d-%b-%y %H:%M:%S GMT",
		"%a %b %e %H:%M:%S %Y",
	};
	end = NULL;
	for (size_t i = 0; i < sizeof formats / sizeof formats[0] && !end;
	     i++) {
		memset(&tm, 0, sizeof tm);
		end = strptime(v, formats[i], &tm);
	}
	if (end == NULL)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0')
		return -1;
	int64_t at = (int64_t)timegm(&tm) * 1000;
	return at > now_wall_ms ? at - now_wall_ms : 0;
}

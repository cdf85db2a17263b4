/* Unit tests for http.c.
 *
 * Every canned response is parsed fed whole, split in two at every byte
 * boundary, and one byte at a time; all three must give the same outcome,
 * since a server's bytes can arrive in any segmentation. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "tap.h"
#include "url.h"

/* Record a failed check with a message saying what went wrong. */
#define FAIL(msg)                                                              \
	do {                                                                   \
		printf("# %s\n", (msg));                                       \
		TAP_CHECK(0);                                                  \
	} while (0)

#define DEF_HDR	 65536
#define DEF_BODY 1048576

/* What parsing a response must end with.  For HTTP_DONE, `trailing` is how
 * many bytes at the end of the data are not part of the response (so the
 * total consumed over all feeds must be len - trailing); strings may be NULL
 * (expect NULL). */
struct outcome {
	enum http_feed result;
	int status;
	uint64_t body_len;
	const char *content_type;
	const char *location;
	const char *retry_after;
	bool keep_alive;
	size_t trailing;
	enum http_error error;
	const char *detail;
};

struct limits {
	size_t max_header;
	uint64_t max_body;
	bool eof; /* the server closes after the last byte */
};

#define DEFAULTS                                                               \
	{                                                                      \
		DEF_HDR, DEF_BODY, false                                       \
	}
#define DEFAULTS_EOF                                                           \
	{                                                                      \
		DEF_HDR, DEF_BODY, true                                        \
	}

struct canned {
	const char *name;
	const char *data;
	size_t len;
	struct limits lim;
	struct outcome want;
};

#define RESP(s) s, sizeof(s) - 1

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static const char *show(const char *s)
{
	return s ? s : "(null)";
}

/* Compare the parser's state with the expectation; print what differs,
 * labelled with how the bytes were fed. */
static bool outcome_matches(const struct canned *c, const char *mode,
			    struct http_resp *r, enum http_feed res,
			    size_t consumed)
{
	const struct outcome *w = &c->want;
	bool ok = true;

#define DIFF(cond, ...)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("# %s [%s]: ", c->name, mode);                  \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
			ok = false;                                            \
		}                                                              \
	} while (0)

	DIFF(res == w->result, "result %d, want %d (%s)", res, w->result,
	     http_resp_error_detail(r));
	DIFF(http_resp_error(r) == w->error, "error %d, want %d",
	     http_resp_error(r), w->error);
	DIFF(str_eq(http_resp_error_detail(r), w->detail ? w->detail : ""),
	     "detail \"%s\", want \"%s\"", http_resp_error_detail(r),
	     show(w->detail));
	DIFF(http_resp_status(r) == w->status, "status %d, want %d",
	     http_resp_status(r), w->status);
	DIFF(http_resp_body_len(r) == w->body_len,
	     "body %" PRIu64 ", want %" PRIu64, http_resp_body_len(r),
	     w->body_len);
	DIFF(str_eq(http_resp_content_type(r), w->content_type),
	     "content type %s, want %s", show(http_resp_content_type(r)),
	     show(w->content_type));
	DIFF(str_eq(http_resp_location(r), w->location), "location %s, want %s",
	     show(http_resp_location(r)), show(w->location));
	DIFF(str_eq(http_resp_retry_after(r), w->retry_after),
	     "retry-after %s, want %s", show(http_resp_retry_after(r)),
	     show(w->retry_after));
	DIFF(http_resp_keep_alive(r) == w->keep_alive, "keep-alive %d",
	     http_resp_keep_alive(r));
	if (w->result == HTTP_DONE)
		DIFF(consumed == c->len - w->trailing, "consumed %zu, want %zu",
		     consumed, c->len - w->trailing);
	DIFF(http_resp_started(r) == (c->len > 0), "started %d",
	     http_resp_started(r));
#undef DIFF
	return ok;
}

/* Feed c->data in pieces ending at the offsets in cuts[] (the last one
 * being c->len), then EOF if asked; check the outcome and that the parser
 * stays put afterwards. */
/* The bytes consumed by a feed that ended in a body cut at the limit:
 * the same however the response was split (-1: not known yet). */
static long cut_consumed = -1;

static bool run_cuts(const struct canned *c, const size_t *cuts, size_t n,
		     const char *mode)
{
	struct http_resp *r;
	enum http_feed res = HTTP_MORE;
	size_t start = 0, total = 0, used;
	bool ok;

	r = http_resp_new(c->lim.max_header, c->lim.max_body);
	if (r == NULL)
		return false;
	for (size_t i = 0; i < n && res == HTTP_MORE; i++) {
		res =
		    http_resp_feed(r, c->data + start, cuts[i] - start, &used);
		if (res == HTTP_MORE && used != cuts[i] - start) {
			printf("# %s [%s]: MORE consumed %zu of %zu\n", c->name,
			       mode, used, cuts[i] - start);
			http_resp_free(r);
			return false;
		}
		/* A failure consumes nothing, but a body cut at the limit:
		 * the bytes up to the limit are the response's. */
		if (res == HTTP_ERROR && used != 0 && !http_resp_body_cut(r)) {
			printf("# %s [%s]: ERROR consumed %zu\n", c->name, mode,
			       used);
			http_resp_free(r);
			return false;
		}
		total += used;
		start = cuts[i];
	}
	if (res == HTTP_ERROR && http_resp_body_cut(r)) {
		if (cut_consumed < 0)
			cut_consumed = (long)total;
		if ((long)total != cut_consumed || total > c->len) {
			printf("# %s [%s]: cut after %zu bytes, whole: %ld\n",
			       c->name, mode, total, cut_consumed);
			http_resp_free(r);
			return false;
		}
	}
	if (res == HTTP_MORE && c->lim.eof)
		res = http_resp_eof(r);
	ok = outcome_matches(c, mode, r, res, total);

	/* Once finished, the parser neither consumes nor changes. */
	if (res != HTTP_MORE) {
		enum http_feed again = http_resp_feed(r, "HTTP/1.1", 8, &used);

		if (again != res || used != 0 || http_resp_eof(r) != res) {
			printf("# %s [%s]: not sticky\n", c->name, mode);
			ok = false;
		}
		ok = ok && outcome_matches(c, "after", r, res, total);
	}
	http_resp_free(r);
	return ok;
}

/* Whole, split at every boundary, and byte by byte. */
static void check_canned(const struct canned *c)
{
	size_t *cuts = malloc((c->len + 2) * sizeof(*cuts));
	char mode[64];

	cut_consumed = -1;

	cuts[0] = c->len;
	TAP_CHECK(run_cuts(c, cuts, 1, "whole"));
	for (size_t i = 0; i <= c->len; i++) {
		cuts[0] = i;
		cuts[1] = c->len;
		snprintf(mode, sizeof(mode), "split at %zu", i);
		if (!run_cuts(c, cuts, 2, mode)) {
			FAIL("split feed differs");
			break;
		}
	}
	for (size_t i = 0; i < c->len; i++)
		cuts[i] = i + 1;
	TAP_CHECK(run_cuts(c, cuts, c->len, "bytewise"));
	free(cuts);
}

static void check_table(const struct canned *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_canned(&t[i]);
}

#define TRAILING "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
#define TL	 (sizeof(TRAILING) - 1)

static const struct canned good[] = {
    {"content-length",
     RESP("HTTP/1.1 200 OK\r\n"
	  "Content-Type: text/html; charset=utf-8\r\n"
	  "Content-Length: 5\r\n"
	  "\r\n"
	  "hello"),
     DEFAULTS,
     {HTTP_DONE, 200, 5, "text/html; charset=utf-8", NULL, NULL, true, 0,
      HTTP_ERR_NONE, NULL}},
    {"content-length then trailing bytes",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 200, 3, NULL, NULL, NULL, true, TL, HTTP_ERR_NONE, NULL}},
    {"content-length 0",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 200, 0, NULL, NULL, NULL, true, TL, HTTP_ERR_NONE, NULL}},
    {"chunked with extensions and trailers",
     RESP("HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: chunked\r\n"
	  "Content-Type: text/plain\r\n"
	  "\r\n"
	  "5;name=value\r\nhello\r\n"
	  "6;flag\r\n world\r\n"
	  "3;q=\"a b\"\r\n!!!\r\n"
	  "A\r\n0123456789\r\n"
	  "0;last\r\n"
	  "Expires: never\r\n"
	  "Location: /from-trailer\r\n"
	  "\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 200, 24, "text/plain", NULL, NULL, true, TL, HTTP_ERR_NONE,
      NULL}},
    {"chunked without trailers",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "1\r\nx\r\n0\r\n\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 200, 1, NULL, NULL, NULL, true, TL, HTTP_ERR_NONE, NULL}},
    /* A transfer coding other than chunked last: read until close. */
    {"chunked, then gzip is close-delimited",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
	  "abc"),
     DEFAULTS_EOF,
     {HTTP_DONE, 200, 3, NULL, NULL, NULL, false, 0, HTTP_ERR_NONE, NULL}},
    {"close-delimited",
     RESP("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
	  "body until close\r\n\r\nHTTP/1.1 200 OK\r\n"),
     DEFAULTS_EOF,
     {HTTP_DONE, 200, 37, "text/plain", NULL, NULL, false, 0, HTTP_ERR_NONE,
      NULL}},
    {"close-delimited empty body",
     RESP("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"),
     DEFAULTS_EOF,
     {HTTP_DONE, 200, 0, "text/plain", NULL, NULL, false, 0, HTTP_ERR_NONE,
      NULL}},
    {"204 has no body",
     RESP("HTTP/1.1 204 No Content\r\nRetry-After: 120\r\n\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 204, 0, NULL, NULL, "120", true, TL, HTTP_ERR_NONE, NULL}},
    {"304 has no body despite Content-Length",
     RESP("HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 304, 0, NULL, NULL, NULL, true, TL, HTTP_ERR_NONE, NULL}},
    {"204 with chunked has no body",
     RESP("HTTP/1.1 204 No Content\r\nTransfer-Encoding: "
	  "chunked\r\n\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 204, 0, NULL, NULL, NULL, true, TL, HTTP_ERR_NONE, NULL}},
    /* 1xx headers are not the final response's. */
    {"100 then 200",
     RESP("HTTP/1.1 100 Continue\r\n"
	  "Location: /interim\r\n"
	  "Content-Type: interim/x\r\n"
	  "\r\n"
	  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 200, 2, NULL, NULL, NULL, true, TL, HTTP_ERR_NONE, NULL}},
    {"100, 102, 103 then 302",
     RESP("HTTP/1.1 100 Continue\r\n\r\n"
	  "HTTP/1.1 102 Processing\r\n\r\n"
	  "HTTP/1.1 103 Early Hints\r\n"
	  "Link: </s.css>; rel=preload\r\n"
	  "Retry-After: 5\r\n"
	  "\r\n"
	  "HTTP/1.1 302 Found\r\n"
	  "Location: /next\r\n"
	  "Content-Length: 0\r\n"
	  "\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 302, 0, NULL, "/next", NULL, true, TL, HTTP_ERR_NONE, NULL}},
    /* An interim response's Content-Length or "close" is ignored. */
    {"odd interim headers",
     RESP("HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n"
	  "Connection: close\r\n\r\n"
	  "HTTP/1.0 100 Continue\r\n\r\n"
	  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
     DEFAULTS,
     {HTTP_DONE, 200, 1, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE, NULL}},
    /* 101 is final: gatherd never asked to switch. */
    {"101 switching protocols",
     RESP("HTTP/1.1 101 Switching Protocols\r\n"
	  "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	  "\x81\x05hello"),
     DEFAULTS,
     {HTTP_DONE, 101, 0, NULL, NULL, NULL, false, 7, HTTP_ERR_NONE, NULL}},
    {"101 without upgrade headers",
     RESP("HTTP/1.1 101 Switching Protocols\r\n\r\n" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 101, 0, NULL, NULL, NULL, false, TL, HTTP_ERR_NONE, NULL}},
    {"HTTP/1.0 without keep-alive",
     RESP("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
     DEFAULTS,
     {HTTP_DONE, 200, 2, NULL, NULL, NULL, false, 0, HTTP_ERR_NONE, NULL}},
    {"HTTP/1.0 with keep-alive",
     RESP("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
	  "Content-Length: 2\r\n\r\nhi" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 200, 2, NULL, NULL, NULL, true, TL, HTTP_ERR_NONE, NULL}},
    {"HTTP/1.0 close-delimited",
     RESP("HTTP/1.0 200 OK\r\n\r\nabc"),
     DEFAULTS_EOF,
     {HTTP_DONE, 200, 3, NULL, NULL, NULL, false, 0, HTTP_ERR_NONE, NULL}},
    {"Connection: close",
     RESP("HTTP/1.1 200 OK\r\nConnection: close\r\n"
	  "Content-Length: 2\r\n\r\nhi" TRAILING),
     DEFAULTS,
     {HTTP_DONE, 200, 2, NULL, NULL, NULL, false, TL, HTTP_ERR_NONE, NULL}},
    {"header names are case-insensitive, values trimmed",
     RESP("HTTP/1.1 503 Service Unavailable\r\n"
	  "cOnTeNt-TyPe:   \t text/html \t \r\n"
	  "LOCATION:\t/x y \r\n"
	  "retry-AFTER: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
	  "Content-Locations: /not-location\r\n"
	  "X-Location: /not-location\r\n"
	  "Content-Length: 0\r\n"
	  "\r\n"),
     DEFAULTS,
     {HTTP_DONE, 503, 0, "text/html", "/x y", "Wed, 21 Oct 2015 07:28:00 GMT",
      true, 0, HTTP_ERR_NONE, NULL}},
    /* llhttp 8 lets a space before the colon through; RFC 9112 has
     * proxies strip it, so the header still counts. */
    {"space before the colon",
     RESP("HTTP/1.1 302 Found\r\nLocation  : /sp\r\n"
	  "Content-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_DONE, 302, 0, NULL, "/sp", NULL, true, 0, HTTP_ERR_NONE, NULL}},
    {"repeated headers: last wins",
     RESP("HTTP/1.1 301 Moved\r\n"
	  "Location: /first\r\n"
	  "Content-Type: a/b\r\n"
	  "Location: /second\r\n"
	  "Content-Type: c/d\r\n"
	  "Content-Length: 0\r\n"
	  "\r\n"),
     DEFAULTS,
     {HTTP_DONE, 301, 0, "c/d", "/second", NULL, true, 0, HTTP_ERR_NONE, NULL}},
    {"empty values are absent",
     RESP("HTTP/1.1 302 Found\r\nLocation:\r\nContent-Type:   \r\n"
	  "Retry-After: \r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_DONE, 302, 0, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE, NULL}},
    {"status line without reason phrase",
     RESP("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_DONE, 404, 0, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE, NULL}},
    {"leading CRLF before the status line",
     RESP("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_DONE, 200, 0, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE, NULL}},
    {"body exactly at the limit (Content-Length)",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
     {DEF_HDR, 5, false},
     {HTTP_DONE, 200, 5, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE, NULL}},
    {"body exactly at the limit (chunked)",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
     {DEF_HDR, 5, false},
     {HTTP_DONE, 200, 5, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE, NULL}},
    {"body exactly at the limit (close-delimited)",
     RESP("HTTP/1.1 200 OK\r\n\r\nhello"),
     {DEF_HDR, 5, true},
     {HTTP_DONE, 200, 5, NULL, NULL, NULL, false, 0, HTTP_ERR_NONE, NULL}},
    {"empty body with a zero limit",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
     {DEF_HDR, 0, false},
     {HTTP_DONE, 200, 0, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE, NULL}},
};

static void test_good_responses(void)
{
	check_table(good, sizeof(good) / sizeof(good[0]));
}

static const struct canned bad[] = {
    {"status line without a code",
     RESP("HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid response status"}},
    {"not HTTP at all",
     RESP("<html><body>hi</body></html>\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Expected HTTP/"}},
    {"bad version",
     RESP("HTTP/1.x 200 OK\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid minor version"}},
    {"two-digit status",
     RESP("HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "invalid status code 20"}},
    {"status 600",
     RESP("HTTP/1.1 600 What\r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "invalid status code 600"}},
    {"bad chunk size",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "zz\r\nhello\r\n0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 200, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid character in chunk size"}},
    {"chunk longer than its size",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3\r\nabcd\r\n0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 200, 3, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid character in chunk size"}},
    {"chunk size overflow",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "1FFFFFFFFFFFFFFFF\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 200, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Chunk size overflow"}},
    {"conflicting Content-Length",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n"
	  "\r\nhello!"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Duplicate Content-Length"}},
    /* llhttp refuses even an identical repeat. */
    {"repeated equal Content-Length",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n"
	  "\r\nhello"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Duplicate Content-Length"}},
    {"negative Content-Length",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid character in Content-Length"}},
    {"Content-Length overflow",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 184467440737095516160\r\n"
	  "\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Content-Length overflow"}},
    /* Request smuggling material: both framings at once is refused
     * whichever comes first. */
    {"Transfer-Encoding with Content-Length",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	  "Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Content-Length can't be present with Transfer-Encoding"}},
    {"Content-Length with Transfer-Encoding",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Content-Length can't be present with Transfer-Encoding"}},
    {"NUL in a header value",
     RESP("HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid header value char"}},
    {"NUL in a header name",
     RESP("HTTP/1.1 200 OK\r\nX\0A: ab\r\nContent-Length: 0\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid header token"}},
    {"header line without a colon",
     RESP("HTTP/1.1 200 OK\r\nFoo\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_PROTOCOL,
      "llhttp: Invalid header token"}},
    {"body over the limit (Content-Length, refused early)",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
     {DEF_HDR, 4, false},
     {HTTP_ERROR, 200, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TOO_LARGE,
      "body larger than 4 bytes"}},
    {"Content-Length over the limit, body never sent",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"),
     DEFAULTS,
     {HTTP_ERROR, 200, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TOO_LARGE,
      "body larger than 1048576 bytes"}},
    {"body over the limit (chunked)",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
     {DEF_HDR, 5, false},
     {HTTP_ERROR, 200, 6, NULL, NULL, NULL, false, 0, HTTP_ERR_TOO_LARGE,
      "body larger than 5 bytes"}},
    {"body over the limit (close-delimited)",
     RESP("HTTP/1.1 200 OK\r\n\r\nhello!"),
     {DEF_HDR, 5, true},
     {HTTP_ERROR, 200, 6, NULL, NULL, NULL, false, 0, HTTP_ERR_TOO_LARGE,
      "body larger than 5 bytes"}},
    {"any body with a zero limit",
     RESP("HTTP/1.1 200 OK\r\n\r\nx"),
     {DEF_HDR, 0, true},
     {HTTP_ERROR, 200, 1, NULL, NULL, NULL, false, 0, HTTP_ERR_TOO_LARGE,
      "body larger than 0 bytes"}},
    {"trailers over the limit",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "0\r\nX-Trailer: 0123456789012345678901234567890123456789\r\n"
	  "X-More: 01234567890\r\n\r\n"),
     {60, DEF_BODY, false},
     {HTTP_ERROR, 200, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TOO_LARGE,
      "trailers larger than 60 bytes"}},
    {"EOF before any byte",
     RESP(""),
     DEFAULTS_EOF,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed before any response byte"}},
    {"EOF in the status line",
     RESP("HTTP/1.1 20"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed in the middle of the headers"}},
    /* Values of an unfinished header block are not reported. */
    {"EOF in the headers",
     RESP("HTTP/1.1 200 OK\r\nLocation: /x\r\nContent-Length: 5\r\n"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed in the middle of the headers"}},
    {"EOF in the body",
     RESP("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	  "Content-Length: 5000\r\n\r\n0123456789"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 200, 10, "text/html", NULL, NULL, false, 0,
      HTTP_ERR_TRUNCATED, "connection closed after 10 of 5000 body bytes"}},
    {"EOF right after the headers",
     RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 200, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed after 0 of 5 body bytes"}},
    {"EOF in a chunked body",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhel"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 200, 3, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed in the middle of a chunked body"}},
    {"EOF before the last chunk",
     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhello\r\n"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 200, 5, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed in the middle of a chunked body"}},
    {"EOF after an interim response",
     RESP("HTTP/1.1 100 Continue\r\n\r\n"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed after an interim 1xx response"}},
    {"EOF in the headers after an interim response",
     RESP("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
     DEFAULTS_EOF,
     {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0, HTTP_ERR_TRUNCATED,
      "connection closed in the middle of the headers"}},
};

/* Trailers have their own budget: names and values only. */
static void test_trailer_limit(void)
{
	static const struct canned c[] = {
	    {"trailers exactly at the limit",
	     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "0\r\nX-Trailer: 0123456789012345678901234567890123456789"
		  "\r\nX-More: 0123456789\r\n\r\n"),
	     {65, DEF_BODY, false},
	     {HTTP_DONE, 200, 0, NULL, NULL, NULL, true, 0, HTTP_ERR_NONE,
	      NULL}},
	    {"trailers one byte over the limit",
	     RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "0\r\nX-Trailer: 0123456789012345678901234567890123456789"
		  "\r\nX-More: 0123456789\r\n\r\n"),
	     {64, DEF_BODY, false},
	     {HTTP_ERROR, 200, 0, NULL, NULL, NULL, false, 0,
	      HTTP_ERR_TOO_LARGE, "trailers larger than 64 bytes"}},
	};

	check_table(c, sizeof(c) / sizeof(c[0]));
}

static void test_bad_responses(void)
{
	check_table(bad, sizeof(bad) / sizeof(bad[0]));
}

/* Without EOF, an incomplete response is simply not done yet. */
static void test_incomplete_is_more(void)
{
	static const char s[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
	struct http_resp *r = http_resp_new(DEF_HDR, DEF_BODY);
	size_t used = 99;

	TAP_CHECK(!http_resp_started(r));
	TAP_CHECK(http_resp_feed(r, s, 0, &used) == HTTP_MORE);
	TAP_CHECK(used == 0);
	TAP_CHECK(!http_resp_started(r));
	TAP_CHECK(http_resp_status(r) == 0);
	TAP_CHECK(http_resp_feed(r, s, 10, &used) == HTTP_MORE);
	TAP_CHECK(used == 10);
	TAP_CHECK(http_resp_started(r));
	TAP_CHECK(http_resp_status(r) == 0);
	TAP_CHECK(http_resp_feed(r, s + 10, sizeof(s) - 11, &used) ==
		  HTTP_MORE);
	TAP_CHECK(used == sizeof(s) - 11);
	TAP_CHECK(http_resp_status(r) == 200);
	TAP_CHECK(http_resp_body_len(r) == 3);
	TAP_CHECK(!http_resp_keep_alive(r));
	TAP_CHECK(http_resp_error(r) == HTTP_ERR_NONE);
	TAP_CHECK(http_resp_feed(r, "lo", 2, &used) == HTTP_DONE);
	TAP_CHECK(used == 2);
	TAP_CHECK(http_resp_keep_alive(r));
	http_resp_free(r);
}

/* Build a response whose header block is `hdr_len` bytes long (padding
 * with an X-Pad header) followed by "ok". */
static char *padded_response(size_t hdr_len, const char *status_line)
{
	static const char cl[] = "Content-Length: 2\r\nLocation: /p\r\n";
	size_t fixed =
	    strlen(status_line) + strlen(cl) + strlen("X-Pad: ") + 2 + 2;
	char *s = malloc(hdr_len + 3);
	size_t n = 0;

	n += (size_t)sprintf(s + n, "%s%sX-Pad: ", status_line, cl);
	memset(s + n, 'p', hdr_len - fixed);
	n += hdr_len - fixed;
	n += (size_t)sprintf(s + n, "\r\n\r\nok");
	return s;
}

/* The header count covers status line through the blank line's LF,
 * exactly. */
static void test_header_limit_boundary(void)
{
	const size_t limit = 300;
	char *at = padded_response(limit, "HTTP/1.1 200 OK\r\n");
	char *over = padded_response(limit + 1, "HTTP/1.1 200 OK\r\n");
	char detail[64];
	struct canned c = {"header block exactly at the limit",
			   at,
			   limit + 2,
			   {limit, DEF_BODY, false},
			   {HTTP_DONE, 200, 2, NULL, "/p", NULL, true, 0,
			    HTTP_ERR_NONE, NULL}};

	TAP_CHECK(memcmp(at + limit - 4, "\r\n\r\nok", 6) == 0);
	check_canned(&c);

	snprintf(detail, sizeof(detail), "headers larger than %zu bytes",
		 limit);
	c = (struct canned){"header block one byte over the limit",
			    over,
			    limit + 3,
			    {limit, DEF_BODY, false},
			    {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0,
			     HTTP_ERR_TOO_LARGE, detail}};
	check_canned(&c);

	/* Truncated at the limit, the block is incomplete, not too large;
	 * the next byte tips it over. */
	c = (struct canned){"header bytes up to the limit, then EOF",
			    over,
			    limit,
			    {limit, DEF_BODY, true},
			    {HTTP_ERROR, 0, 0, NULL, NULL, NULL, false, 0,
			     HTTP_ERR_TRUNCATED,
			     "connection closed in the middle of the headers"}};
	check_canned(&c);
	c.name = "header bytes one over the limit";
	c.len = limit + 1;
	c.lim.eof = false;
	c.want.error = HTTP_ERR_TOO_LARGE;
	c.want.detail = detail;
	check_canned(&c);
	free(at);
	free(over);
}

/* Each response, interim or final, has the whole budget to itself. */
static void test_header_limit_interim(void)
{
	const size_t limit = 200;
	char *fin = padded_response(limit, "HTTP/1.1 200 OK\r\n");
	char *interim = padded_response(limit, "HTTP/1.1 103 Early\r\n");
	char *both = malloc(2 * limit + 4);
	char detail[64];
	struct canned c;

	/* The interim one has "ok" after it, which must go: cut it. */
	memcpy(both, interim, limit);
	memcpy(both + limit, fin, limit + 2);
	c = (struct canned){"interim and final each exactly at the limit",
			    both,
			    2 * limit + 2,
			    {limit, DEF_BODY, false},
			    {HTTP_DONE, 200, 2, NULL, "/p", NULL, true, 0,
			     HTTP_ERR_NONE, NULL}};
	check_canned(&c);

	snprintf(detail, sizeof(detail), "headers larger than %zu bytes",
		 limit - 1);
	c.name = "interim over the limit";
	c.lim.max_header = limit - 1;
	c.want.result = HTTP_ERROR;
	c.want.status = 0;
	c.want.body_len = 0;
	c.want.location = NULL;
	c.want.keep_alive = false;
	c.want.error = HTTP_ERR_TOO_LARGE;
	c.want.detail = detail;
	check_canned(&c);
	free(fin);
	free(interim);
	free(both);
}

/* Values longer than what is kept are cut, never an error. */
static void test_long_values(void)
{
	size_t loc_len = 9000, ct_len = 300, ra_len = 100;
	size_t size = loc_len + ct_len + ra_len + 200;
	char *s = malloc(size), *loc = malloc(loc_len + 1);
	char ct[301], ra[101];
	struct canned c;
	int n;

	memset(loc, 'l', loc_len);
	loc[0] = '/';
	loc[loc_len] = '\0';
	memset(ct, 'c', ct_len);
	ct[ct_len] = '\0';
	memset(ra, '9', ra_len);
	ra[ra_len] = '\0';
	n = snprintf(s, size,
		     "HTTP/1.1 301 Moved\r\nLocation: %s\r\n"
		     "Content-Type: %s\r\nRetry-After: %s\r\n"
		     "Content-Length: 0\r\n\r\n",
		     loc, ct, ra);
	/* Location keeps URL_MAX_LEN + 1 bytes so url_resolve refuses it. */
	loc[URL_MAX_LEN + 1] = '\0';
	ct[255] = '\0';
	ra[63] = '\0';
	c = (struct canned){
	    "long header values",
	    s,
	    (size_t)n,
	    DEFAULTS,
	    {HTTP_DONE, 301, 0, ct, loc, ra, true, 0, HTTP_ERR_NONE, NULL}};
	check_canned(&c);

	{
		struct http_resp *r = http_resp_new(DEF_HDR, DEF_BODY);
		struct url base, out;
		const char *reason = NULL;
		size_t used;

		TAP_CHECK(http_resp_feed(r, s, (size_t)n, &used) == HTTP_DONE);
		TAP_CHECK(strlen(http_resp_location(r)) == URL_MAX_LEN + 1);
		TAP_CHECK(url_parse("http://h/", 9, &base, &reason) == 0);
		TAP_CHECK(url_resolve(&base, http_resp_location(r),
				      strlen(http_resp_location(r)), &out,
				      &reason) == -1);
		TAP_CHECK_STR(reason, "URL longer than 8192 bytes");
		http_resp_free(r);
	}
	free(s);
	free(loc);
}

/* A simulated keep-alive connection: feed the stream in the given pieces;
 * whenever a response is done, record it, reset the parser and go on with
 * the unconsumed rest.  Returns how many responses completed. */
struct seen {
	int status;
	uint64_t body_len;
	bool keep_alive;
	char location[64];
};

static int run_connection(const char *data, size_t len, size_t cut,
			  struct seen *out, int max_out)
{
	struct http_resp *r = http_resp_new(DEF_HDR, DEF_BODY);
	size_t piece_end[2] = {cut, len};
	size_t pos = 0;
	int n = 0;

	for (int i = 0; i < 2; i++) {
		while (pos < piece_end[i]) {
			size_t used;
			enum http_feed res = http_resp_feed(
			    r, data + pos, piece_end[i] - pos, &used);

			pos += used;
			if (res == HTTP_ERROR || n == max_out) {
				http_resp_free(r);
				return -1;
			}
			if (res == HTTP_DONE) {
				const char *loc = http_resp_location(r);

				out[n].status = http_resp_status(r);
				out[n].body_len = http_resp_body_len(r);
				out[n].keep_alive = http_resp_keep_alive(r);
				snprintf(out[n].location,
					 sizeof(out[n].location), "%s",
					 loc ? loc : "");
				n++;
				http_resp_reset(r, DEF_HDR, DEF_BODY);
				/* Reset means a fresh response. */
				if (http_resp_started(r) ||
				    http_resp_status(r) != 0 ||
				    http_resp_location(r) != NULL) {
					http_resp_free(r);
					return -1;
				}
			}
		}
	}
	http_resp_free(r);
	return n;
}

static void test_keep_alive_reuse(void)
{
	static const char stream[] =
	    "HTTP/1.1 301 Moved\r\nLocation: /a\r\nContent-Length: 3\r\n"
	    "\r\nabc"
	    "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "4\r\nwxyz\r\n0\r\n\r\n"
	    "HTTP/1.1 204 No Content\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n"
	    "\r\nZ";
	const size_t len = sizeof(stream) - 1;
	static const struct seen want[] = {
	    {301, 3, true, "/a"},
	    {200, 4, true, ""},
	    {204, 0, true, ""},
	    {200, 1, false, ""},
	};

	for (size_t cut = 0; cut <= len; cut++) {
		struct seen got[8];
		int n = run_connection(stream, len, cut, got, 8);
		bool ok = n == 4;

		for (int i = 0; ok && i < 4; i++)
			ok = got[i].status == want[i].status &&
			     got[i].body_len == want[i].body_len &&
			     got[i].keep_alive == want[i].keep_alive &&
			     strcmp(got[i].location, want[i].location) == 0;
		if (!ok) {
			printf("# connection split at %zu: %d responses\n", cut,
			       n);
			FAIL("keep-alive stream differs");
			break;
		}
	}
}

/* Limits may change at reset, and they apply to the next response. */
static void test_reset_changes_limits(void)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
				"abcd";
	struct http_resp *r = http_resp_new(DEF_HDR, 3);
	size_t used;

	TAP_CHECK(http_resp_feed(r, s, sizeof(s) - 1, &used) == HTTP_ERROR);
	TAP_CHECK(http_resp_error(r) == HTTP_ERR_TOO_LARGE);
	TAP_CHECK_STR(http_resp_error_detail(r), "body larger than 3 bytes");
	http_resp_reset(r, DEF_HDR, 4);
	TAP_CHECK(http_resp_error(r) == HTTP_ERR_NONE);
	TAP_CHECK_STR(http_resp_error_detail(r), "");
	TAP_CHECK(http_resp_feed(r, s, sizeof(s) - 1, &used) == HTTP_DONE);
	TAP_CHECK(used == sizeof(s) - 1);
	TAP_CHECK(http_resp_body_len(r) == 4);
	http_resp_reset(r, 10, 4);
	TAP_CHECK(http_resp_feed(r, s, sizeof(s) - 1, &used) == HTTP_ERROR);
	TAP_CHECK_STR(http_resp_error_detail(r),
		      "headers larger than 10 bytes");
	http_resp_free(r);
}

/* http_resp_trim() drops what the last response left (values, error
 * detail) and the next response captures its own afresh. */
static void test_trim_between_responses(void)
{
	static const char a[] = "HTTP/1.1 200 OK\r\nETag: \"one\"\r\n"
				"Last-Modified: Sun, 29 Nov 2026 10:00:00 GMT\r\n"
				"Content-Type: text/html\r\n"
				"Content-Length: 0\r\n\r\n";
	static const char b[] = "HTTP/1.1 200 OK\r\nETag: \"two\"\r\n"
				"Content-Length: 0\r\n\r\n";
	static const char bad[] = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
				  "\r\nabcdefghi";
	struct http_resp *r = http_resp_new(DEF_HDR, 4);
	size_t used;

	TAP_CHECK(http_resp_feed(r, a, sizeof(a) - 1, &used) == HTTP_DONE);
	TAP_CHECK_STR(http_resp_etag(r), "\"one\"");
	TAP_CHECK_STR(http_resp_content_type(r), "text/html");
	http_resp_trim(r);
	TAP_CHECK(http_resp_etag(r) == NULL);
	TAP_CHECK(http_resp_last_modified(r) == NULL);
	TAP_CHECK(http_resp_content_type(r) == NULL);
	http_resp_reset(r, DEF_HDR, 4);
	TAP_CHECK(http_resp_feed(r, b, sizeof(b) - 1, &used) == HTTP_DONE);
	TAP_CHECK_STR(http_resp_etag(r), "\"two\"");
	TAP_CHECK(http_resp_last_modified(r) == NULL);
	TAP_CHECK(http_resp_content_type(r) == NULL);
	http_resp_reset(r, DEF_HDR, 4);
	TAP_CHECK(http_resp_feed(r, bad, sizeof(bad) - 1, &used) ==
		  HTTP_ERROR);
	TAP_CHECK_STR(http_resp_error_detail(r), "body larger than 4 bytes");
	http_resp_trim(r);
	TAP_CHECK_STR(http_resp_error_detail(r), "");
	http_resp_trim(r); /* twice is harmless */
	http_resp_free(r);
}

static void test_build_request(void)
{
	struct url_ref u;
	const char *reason = NULL;
	char buf[512];
	static const char u1[] = "http://Example.com:8080/a/b?c=d#f";
	static const char u2[] = "https://[::1]";
	static const char want[] = "GET /a/b?c=d HTTP/1.1\r\n"
				   "Host: example.com:8080\r\n"
				   "User-Agent: gatherd/0.1\r\n"
				   "Accept: */*\r\n"
				   "Accept-Encoding: identity\r\n"
				   "Connection: keep-alive\r\n"
				   "\r\n";
	const int want_len = (int)sizeof(want) - 1;

	TAP_CHECK(url_parse_ref(u1, strlen(u1), &u, &reason) == 0);
	TAP_CHECK(http_build_request(buf, sizeof(buf), &u, u1,
				     "gatherd/0.1", NULL) == want_len);
	TAP_CHECK_STR(buf, want);
	TAP_CHECK(http_request_size(&u, "gatherd/0.1", NULL) > (size_t)want_len);
	/* Exactly enough room, and one byte short (the NUL). */
	TAP_CHECK(http_build_request(buf, (size_t)want_len + 1, &u, u1,
				     "gatherd/0.1", NULL) == want_len);
	TAP_CHECK(http_build_request(buf, (size_t)want_len, &u, u1,
				     "gatherd/0.1", NULL) == -1);
	/* A user agent that would inject a header is refused. */
	TAP_CHECK(http_build_request(buf, sizeof(buf), &u, u1,
				     "ua\r\nX-Evil: 1", NULL) == -1);
	TAP_CHECK(http_build_request(buf, sizeof(buf), &u, u1, "ua\n", NULL) == -1);

	/* An empty path is sent as "/". */
	TAP_CHECK(url_parse_ref(u2, strlen(u2), &u, &reason) == 0);
	TAP_CHECK(http_build_request(buf, sizeof(buf), &u, u2, "x y (z)", NULL) > 0);
	TAP_CHECK_STR(buf, "GET / HTTP/1.1\r\nHost: [::1]\r\n"
			   "User-Agent: x y (z)\r\nAccept: */*\r\n"
			   "Accept-Encoding: identity\r\n"
			   "Connection: keep-alive\r\n\r\n");
	/* Extra header lines go last. */
	TAP_CHECK(http_build_request(buf, sizeof(buf), &u, u2, "ua",
				     "If-None-Match: \"x\"\r\n") > 0);
	TAP_CHECK_STR(buf, "GET / HTTP/1.1\r\nHost: [::1]\r\n"
			   "User-Agent: ua\r\nAccept: */*\r\n"
			   "Accept-Encoding: identity\r\n"
			   "Connection: keep-alive\r\n"
			   "If-None-Match: \"x\"\r\n\r\n");
	TAP_CHECK(http_header_value_ok("W/\"a b\"\t"));
	TAP_CHECK(!http_header_value_ok("a\r\nX: y"));

	/* The request it builds is what a parser expects: check with the
	 * longest target. */
	{
		char *s = malloc(URL_MAX_LEN), *req;

		memcpy(s, "http://h/", 9);
		memset(s + 9, 'a', URL_MAX_LEN - 9);
		TAP_CHECK(url_parse_ref(s, URL_MAX_LEN, &u, &reason) == 0);
		req = malloc(http_request_size(&u, "ua", NULL));
		TAP_CHECK(http_build_request(req, http_request_size(&u, "ua", NULL),
					     &u, s, "ua", NULL) > URL_MAX_LEN);
		TAP_CHECK(strncmp(req, "GET /aaa", 8) == 0);
		free(s);
		free(req);
	}
}

static void test_retry_after(void)
{
	/* 2024-01-01T00:00:00Z */
	const int64_t now = INT64_C(1704067200000);

	TAP_CHECK(http_parse_retry_after(NULL, now) == -1);
	TAP_CHECK(http_parse_retry_after("", now) == -1);
	TAP_CHECK(http_parse_retry_after("0", now) == 0);
	TAP_CHECK(http_parse_retry_after("120", now) == 120000);
	TAP_CHECK(http_parse_retry_after("  7  ", now) == 7000);
	TAP_CHECK(http_parse_retry_after("-1", now) == -1);
	TAP_CHECK(http_parse_retry_after("1.5", now) == -1);
	TAP_CHECK(http_parse_retry_after("12abc", now) == -1);
	/* Capped at a year. */
	TAP_CHECK(http_parse_retry_after("99999999999", now) ==
		  INT64_C(86400) * 365 * 1000);
	/* The three date forms, 30 s ahead. */
	TAP_CHECK(http_parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT",
					 now) == 30000);
	TAP_CHECK(http_parse_retry_after("Monday, 01-Jan-24 00:00:30 GMT",
					 now) == 30000);
	TAP_CHECK(http_parse_retry_after("Mon Jan  1 00:00:30 2024", now) ==
		  30000);
	/* A date in the past means now. */
	TAP_CHECK(http_parse_retry_after("Sun, 31 Dec 2023 23:59:00 GMT",
					 now) == 0);
	TAP_CHECK(http_parse_retry_after("Mon, 01 Jan 2024 00:00:30 XYZ",
					 now) == -1);
	TAP_CHECK(http_parse_retry_after("tomorrow", now) == -1);
}

static void test_redirect_statuses(void)
{
	static const int yes[] = {301, 302, 303, 307, 308};
	static const int no[] = {200, 300, 304, 305, 306, 309, 399, 404};

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		TAP_CHECK(http_is_redirect(yes[i]));
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		TAP_CHECK(!http_is_redirect(no[i]));
}

static void test_error_names(void)
{
	TAP_CHECK(http_error_kind(HTTP_ERR_NONE) == ERR_NONE);
	TAP_CHECK(errkind_name(http_error_kind(HTTP_ERR_NONE)) == NULL);
	TAP_CHECK_STR(errkind_name(http_error_kind(HTTP_ERR_PROTOCOL)),
		      "http_protocol");
	TAP_CHECK_STR(errkind_name(http_error_kind(HTTP_ERR_TOO_LARGE)),
		      "too_large");
	TAP_CHECK_STR(errkind_name(http_error_kind(HTTP_ERR_TRUNCATED)),
		      "truncated");
}

/* Collects the body callback's bytes. */
static char cut_body[64];
static size_t cut_body_len;

static void cut_body_cb(void *arg, const char *p, size_t n)
{
	(void)arg;
	if (cut_body_len + n <= sizeof cut_body) {
		memcpy(cut_body + cut_body_len, p, n);
		cut_body_len += n;
	}
}

/* Feed `resp` whole with a body limit of `max`: what was consumed (the
 * response's bytes up to the limit) and handed to the body callback. */
static size_t cut_feed(const char *resp, uint64_t max, bool to_limit)
{
	struct http_resp *r = http_resp_new(8192, max);
	size_t used = 99;

	cut_body_len = 0;
	if (to_limit)
		http_resp_read_to_limit(r);
	http_resp_set_body_cb(r, cut_body_cb, NULL);
	TAP_CHECK(http_resp_feed(r, resp, strlen(resp), &used) == HTTP_ERROR);
	TAP_CHECK(http_resp_body_cut(r));
	TAP_CHECK(http_resp_error(r) == HTTP_ERR_TOO_LARGE);
	http_resp_free(r);
	return used;
}

static void test_body_cut(void)
{
	static const char cl[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
				 "\r\n0123456789";
	static const char ch[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
				 "chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n"
				 "0\r\n\r\n";
	size_t head = strstr(cl, "\r\n\r\n") + 4 - cl;
	size_t chead = strstr(ch, "\r\n\r\n") + 4 - ch;

	/* Refused at the headers: only they are the response's. */
	TAP_CHECK(cut_feed(cl, 4, false) == head);
	TAP_CHECK(cut_body_len == 0);
	/* Read to the limit: the headers and 4 body bytes. */
	TAP_CHECK(cut_feed(cl, 4, true) == head + 4);
	TAP_CHECK(cut_body_len == 4 && memcmp(cut_body, "0123", 4) == 0);
	/* Chunked: up to the 6th body byte, inside the second chunk. */
	TAP_CHECK(cut_feed(ch, 6, false) ==
		  chead + strlen("4\r\nabcd\r\n4\r\nef"));
	TAP_CHECK(cut_body_len == 6 && memcmp(cut_body, "abcdef", 6) == 0);
	/* Other failures consume nothing and are no cut. */
	struct http_resp *r = http_resp_new(8192, 100);
	size_t used = 99;
	TAP_CHECK(http_resp_feed(r, "HTTP/1.1 999 X\r\n\r\n", 19, &used) ==
		  HTTP_ERROR);
	TAP_CHECK(used == 0 && !http_resp_body_cut(r));
	http_resp_free(r);
}

static const struct tap_test tests[] = {
    {"a body cut at the limit", test_body_cut},
    {"good responses, whole/split/bytewise", test_good_responses},
    {"bad responses, whole/split/bytewise", test_bad_responses},
    {"trailer limit boundary", test_trailer_limit},
    {"an incomplete response is MORE", test_incomplete_is_more},
    {"header limit boundary", test_header_limit_boundary},
    {"header limit per interim response", test_header_limit_interim},
    {"long header values are truncated", test_long_values},
    {"keep-alive reuse with reset", test_keep_alive_reuse},
    {"reset changes limits", test_reset_changes_limits},
    {"trim between responses", test_trim_between_responses},
    {"request building", test_build_request},
    {"Retry-After: seconds and the three date forms", test_retry_after},
    {"redirect statuses", test_redirect_statuses},
    {"error names", test_error_names},
    {NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

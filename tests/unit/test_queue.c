/* Unit tests for queue-file line classification and splitting. */
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "tap.h"

struct emitted {
	int n;
	char lines[16][64];
	uint64_t total[16];
	size_t lens[16];
};

static void collect(void *ctx, const char *line, size_t len,
		    uint64_t total_len)
{
	struct emitted *e = ctx;

	if (e->n < 16) {
		size_t k = len < 63 ? len : 63;

		memcpy(e->lines[e->n], line, k);
		e->lines[e->n][k] = '\0';
		e->lens[e->n] = len;
		e->total[e->n] = total_len;
	}
	e->n++;
}

static enum queue_line_kind classify(const char *s, char *out, size_t size,
				     const char **detail)
{
	const char *start;
	size_t tlen;
	enum queue_line_kind k =
		queue_classify_line(s, strlen(s), strlen(s), &start, &tlen,
				    detail);

	snprintf(out, size, "%.*s", (int)tlen, start);
	return k;
}

static void test_classify_skip(void)
{
	char out[128];
	const char *d;

	TAP_CHECK(classify("", out, sizeof out, &d) == QUEUE_LINE_SKIP);
	TAP_CHECK(classify("   \t", out, sizeof out, &d) == QUEUE_LINE_SKIP);
	TAP_CHECK(classify("\r", out, sizeof out, &d) == QUEUE_LINE_SKIP);
	TAP_CHECK(classify("# comment", out, sizeof out, &d) ==
		  QUEUE_LINE_SKIP);
	TAP_CHECK(classify("   # indented comment", out, sizeof out, &d) ==
		  QUEUE_LINE_SKIP);
}

static void test_classify_trim(void)
{
	char out[128];
	const char *d;

	TAP_CHECK(classify("  http://a.example/x \t\r", out, sizeof out,
			   &d) == QUEUE_LINE_URL);
	TAP_CHECK_STR(out, "http://a.example/x");
	TAP_CHECK(d == NULL);
	TAP_CHECK(classify("https://b.example/p?q=1#frag", out, sizeof out,
			   &d) == QUEUE_LINE_URL);
	TAP_CHECK_STR(out, "https://b.example/p?q=1#frag");
}

static void test_classify_invalid(void)
{
	char out[128];
	const char *d = NULL;

	TAP_CHECK(classify("ftp://a.example/", out, sizeof out, &d) ==
		  QUEUE_LINE_INVALID);
	TAP_CHECK(d != NULL && *d != '\0');
	TAP_CHECK_STR(out, "ftp://a.example/");
	TAP_CHECK(classify("not a url", out, sizeof out, &d) ==
		  QUEUE_LINE_INVALID);
	TAP_CHECK(classify("http://", out, sizeof out, &d) ==
		  QUEUE_LINE_INVALID);
	TAP_CHECK(classify("http://a.example:99999/", out, sizeof out, &d) ==
		  QUEUE_LINE_INVALID);
}

static void test_classify_length_limit(void)
{
	size_t n = URL_MAX_LEN;
	char *s = malloc(n + 3);
	const char *start, *d;
	size_t tlen;

	/* exactly 8192 bytes: valid; plus a CR: still valid */
	memcpy(s, "http://a.example/", 17);
	memset(s + 17, 'x', n - 17);
	s[n] = '\0';
	TAP_CHECK(queue_classify_line(s, n, n, &start, &tlen, &d) ==
		  QUEUE_LINE_URL);
	s[n] = '\r';
	TAP_CHECK(queue_classify_line(s, n + 1, n + 1, &start, &tlen, &d) ==
		  QUEUE_LINE_URL);
	TAP_CHECK(tlen == n);
	/* 8193 bytes: too long */
	s[n] = 'x';
	TAP_CHECK(queue_classify_line(s, n + 1, n + 1, &start, &tlen, &d) ==
		  QUEUE_LINE_INVALID);
	TAP_CHECK(d != NULL && strstr(d, "8192") != NULL);
	/* a prefix of a longer line is invalid whatever the prefix says */
	TAP_CHECK(queue_classify_line(s, 100, 100000, &start, &tlen, &d) ==
		  QUEUE_LINE_INVALID);
	free(s);
}

static void test_split_complete_lines_only(void)
{
	struct queue_splitter sp;
	struct emitted e = {0};
	const char *buf = "a\nbb\r\nccc";
	struct queue_split_result r;

	memset(&sp, 0, sizeof sp);
	r = queue_split(&sp, buf, strlen(buf), collect, &e);
	TAP_CHECK(e.n == 2);
	TAP_CHECK_STR(e.lines[0], "a");
	TAP_CHECK_STR(e.lines[1], "bb\r");
	TAP_CHECK(r.any_complete);
	TAP_CHECK(r.complete_end == 6);
	TAP_CHECK(r.consumed == 6); /* "ccc" waits for its newline */
}

static void test_split_no_newline(void)
{
	struct queue_splitter sp;
	struct emitted e = {0};
	struct queue_split_result r;

	memset(&sp, 0, sizeof sp);
	r = queue_split(&sp, "http://x/", 9, collect, &e);
	TAP_CHECK(e.n == 0);
	TAP_CHECK(!r.any_complete);
	TAP_CHECK(r.consumed == 0);
}

static void test_split_every_boundary(void)
{
	const char *text = "http://a/1\n# c\n\nhttp://b/2\r\n  http://c/3  \n";
	size_t len = strlen(text);

	/* Feeding the stream in two reads at any split point, resuming after
	 * what was consumed, yields the same lines. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct queue_splitter sp;
		struct emitted e = {0};
		struct queue_split_result r;
		char buf[128];
		size_t have;

		memset(&sp, 0, sizeof sp);
		memcpy(buf, text, cut);
		r = queue_split(&sp, buf, cut, collect, &e);
		have = cut - r.consumed;
		memmove(buf, buf + r.consumed, have);
		memcpy(buf + have, text + cut, len - cut);
		r = queue_split(&sp, buf, have + len - cut, collect, &e);
		TAP_CHECK(r.consumed == have + len - cut);
		TAP_CHECK(e.n == 5);
		TAP_CHECK_STR(e.lines[0], "http://a/1");
		TAP_CHECK_STR(e.lines[3], "http://b/2\r");
		TAP_CHECK_STR(e.lines[4], "  http://c/3  ");
	}
}

static void test_split_long_line(void)
{
	struct queue_splitter *sp = calloc(1, sizeof *sp);
	struct emitted e = {0};
	size_t big = 20000;
	char *buf = malloc(big);
	struct queue_split_result r;

	memset(buf, 'y', big);
	/* A partial line already over the limit is consumed into the
	 * long-line state, keeping only a prefix... */
	r = queue_split(sp, buf, big, collect, &e);
	TAP_CHECK(e.n == 0);
	TAP_CHECK(r.consumed == big);
	TAP_CHECK(!r.any_complete);
	TAP_CHECK(sp->in_long);
	/* ...and emitted once, with its full length, at its newline. */
	memcpy(buf, "yyy\nhttp://ok/\n", 15);
	r = queue_split(sp, buf, 15, collect, &e);
	TAP_CHECK(e.n == 2);
	TAP_CHECK(e.total[0] == big + 3);
	TAP_CHECK(e.lens[0] == URL_MAX_LEN);
	TAP_CHECK_STR(e.lines[1], "http://ok/");
	TAP_CHECK(r.complete_end == 15);
	TAP_CHECK(!sp->in_long);
	free(buf);
	free(sp);
}

static void test_split_limit_boundary(void)
{
	struct queue_splitter *sp = calloc(1, sizeof *sp);
	struct emitted e = {0};
	char *buf = malloc(URL_MAX_LEN + 2);
	struct queue_split_result r;

	/* 8192 bytes plus a CR may still become a valid line: it waits. */
	memset(buf, 'z', URL_MAX_LEN + 1);
	r = queue_split(sp, buf, URL_MAX_LEN + 1, collect, &e);
	TAP_CHECK(r.consumed == 0);
	TAP_CHECK(!sp->in_long);
	/* One byte more cannot: it goes into the long-line state. */
	r = queue_split(sp, buf, URL_MAX_LEN + 2, collect, &e);
	TAP_CHECK(r.consumed == URL_MAX_LEN + 2);
	TAP_CHECK(sp->in_long);
	free(buf);
	free(sp);
}

static const struct tap_test tests[] = {
	{"classify skips blank and comment lines", test_classify_skip},
	{"classify trims whitespace and CR", test_classify_trim},
	{"classify rejects invalid URLs with a reason", test_classify_invalid},
	{"classify enforces the 8 KiB limit", test_classify_length_limit},
	{"split emits complete lines only", test_split_complete_lines_only},
	{"split leaves a partial line", test_split_no_newline},
	{"split is the same at every boundary", test_split_every_boundary},
	{"split bounds memory for long lines", test_split_long_line},
	{"split long-line threshold", test_split_limit_boundary},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

/* libFuzzer target for the response parser.  Byte 0 picks where the input
 * is split into two feeds, byte 1 picks the limits; the rest is what the
 * server sent.  Beyond "no crash, no leak", it checks that the split gives
 * the same outcome as one whole feed (a server's bytes can arrive in any
 * segmentation) and that *consumed is consistent; after a complete
 * response, the rest is parsed as the next response on the connection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

struct result {
	enum http_feed res;
	size_t consumed;
	int status;
	uint64_t body_len;
	enum http_error error;
	bool keep_alive;
	char detail[256];
	char location[16];
};

static void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Parse one response from data[0..len) fed in up to two pieces. */
static void parse(struct http_resp *r, const char *data, size_t len, size_t cut,
		  struct result *out)
{
	size_t used, total = 0;
	enum http_feed res;

	res = http_resp_feed(r, data, cut, &used);
	CHECK(used <= cut);
	CHECK(res != HTTP_MORE || used == cut);
	CHECK(res != HTTP_ERROR || used == 0);
	total += used;
	if (res == HTTP_MORE) {
		res = http_resp_feed(r, data + cut, len - cut, &used);
		CHECK(used <= len - cut);
		CHECK(res != HTTP_MORE || used == len - cut);
		CHECK(res != HTTP_ERROR || used == 0);
		total += used;
	}
	if (res == HTTP_MORE)
		res = http_resp_eof(r);
	CHECK(res != HTTP_MORE);
	CHECK((res == HTTP_ERROR) == (http_resp_error(r) != HTTP_ERR_NONE));
	CHECK(res != HTTP_ERROR || http_error_kind(http_resp_error(r)) != ERR_NONE);
	CHECK(res == HTTP_DONE || !http_resp_keep_alive(r));
	if (res == HTTP_DONE) {
		int st = http_resp_status(r);

		CHECK(st >= 100 && st <= 599);
	}
	/* Finished parsers stay finished. */
	CHECK(http_resp_feed(r, data, len, &used) == res && used == 0);
	CHECK(http_resp_eof(r) == res);

	out->res = res;
	out->consumed = total;
	out->status = http_resp_status(r);
	out->body_len = http_resp_body_len(r);
	out->error = http_resp_error(r);
	out->keep_alive = http_resp_keep_alive(r);
	str_copy(out->detail, sizeof(out->detail), http_resp_error_detail(r));
	str_copy(out->location, sizeof(out->location), http_resp_location(r));
	/* Touch the other accessors for the sanitizers. */
	if (http_resp_content_type(r) != NULL)
		CHECK(strlen(http_resp_content_type(r)) < 256);
	if (http_resp_retry_after(r) != NULL)
		CHECK(strlen(http_resp_retry_after(r)) < 64);
}

static bool same(const struct result *a, const struct result *b)
{
	return a->res == b->res &&
	       (a->res != HTTP_DONE || a->consumed == b->consumed) &&
	       a->status == b->status && a->body_len == b->body_len &&
	       a->error == b->error && a->keep_alive == b->keep_alive &&
	       strcmp(a->detail, b->detail) == 0 &&
	       strcmp(a->location, b->location) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t hdr_limits[] = {65536, 64, 200, 1024};
	static const uint64_t body_limits[] = {1048576, 0, 10, 100};
	const char *body;
	size_t len, cut, max_hdr;
	uint64_t max_body;
	struct http_resp *r;
	struct result whole, split;

	if (size < 2)
		return 0;
	max_hdr = hdr_limits[data[1] & 3];
	max_body = body_limits[(data[1] >> 2) & 3];
	body = (const char *)data + 2;
	len = size - 2;
	cut = len ? data[0] % (len + 1) : 0;

	r = http_resp_new(max_hdr, max_body);
	if (r == NULL)
		return 0;
	parse(r, body, len, len, &whole);
	http_resp_reset(r, max_hdr, max_body);
	CHECK(!http_resp_started(r) && http_resp_status(r) == 0);
	parse(r, body, len, cut, &split);
	CHECK(same(&whole, &split));

	/* Keep-alive: what follows a complete response is the next one. */
	if (whole.res == HTTP_DONE && whole.consumed < len) {
		struct result next;
		size_t rest = len - whole.consumed;

		http_resp_reset(r, max_hdr, max_body);
		parse(r, body + whole.consumed, rest, rest / 2, &next);
	}
	http_resp_free(r);
	return 0;
}

/* Unit tests for decode.c: gzip and deflate undone as they stream. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "decode.h"
#include "tap.h"

/* Compress `in` with zlib: windowBits 15 (zlib), 15 + 16 (gzip) or -15
 * (raw deflate).  *out_len is set; the result is malloc'd. */
static unsigned char *squeeze(const unsigned char *in, size_t n, int bits,
			      size_t *out_len)
{
	z_stream z;
	size_t cap = compressBound(n) + 64;
	unsigned char *out = malloc(cap);

	memset(&z, 0, sizeof z);
	deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static unsigned char *sample(size_t n)
{
	unsigned char *p = malloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)("abcdefghij"[i % 10] + (i / 977) % 7);
	return p;
}

/* Feed `data` in pieces of `step` bytes. */
static int feed_all(struct decode *d, const unsigned char *data, size_t n,
		    size_t step)
{
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;

		if (decode_feed(d, (const char *)data + off, k) != 0)
			return -1;
	}
	return decode_finish(d);
}

static void test_kinds(void)
{
	TAP_CHECK(decode_new(NULL) == NULL);
	TAP_CHECK(decode_new("br") == NULL);
	TAP_CHECK(decode_new("identity") == NULL);
	struct decode *d = decode_new("GZIP");
	TAP_CHECK(d != NULL);
	decode_free(d);
	d = decode_new("x-gzip");
	TAP_CHECK(d != NULL);
	decode_free(d);
	d = decode_new("deflate");
	TAP_CHECK(d != NULL);
	decode_free(d);
}

static void test_gzip_any_split(void)
{
	size_t n = 300000, zn;
	unsigned char *plain = sample(n), *z = squeeze(plain, n, 31, &zn);
	static const size_t steps[] = {1, 7, 4096, 65536, 1 << 20};

	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct decode *d = decode_new("gzip");

		TAP_CHECK(feed_all(d, z, zn, steps[i]) == 0);
		TAP_CHECK(decode_length(d) == n);
		decode_free(d);
	}
	free(plain);
	free(z);
}

static void test_deflate_zlib_and_raw(void)
{
	size_t n = 50000, zn;
	unsigned char *plain = sample(n);

	for (int bits = 15; bits >= -15; bits -= 30) {
		unsigned char *z = squeeze(plain, n, bits, &zn);
		struct decode *d = decode_new("deflate");

		TAP_CHECK(feed_all(d, z, zn, 1000) == 0);
		TAP_CHECK(decode_length(d) == n);
		decode_free(d);
		free(z);
	}
	free(plain);
}

static void test_corrupt_cut_and_limit(void)
{
	size_t n = 100000, zn;
	unsigned char *plain = sample(n), *z = squeeze(plain, n, 31, &zn);
	struct decode *d;

	/* Cut before its end. */
	d = decode_new("gzip");
	TAP_CHECK(decode_feed(d, (const char *)z, zn / 2) == 0);
	TAP_CHECK(decode_finish(d) == -1);
	TAP_CHECK(strstr(decode_error(d), "gzip: ") == decode_error(d));
	TAP_CHECK(!decode_over_limit(d));
	decode_free(d);
	/* Not gzip at all. */
	d = decode_new("gzip");
	TAP_CHECK(decode_feed(d, "this is not gzip at all", 23) == -1);
	TAP_CHECK(!decode_over_limit(d));
	decode_free(d);
	/* A corrupt byte in the middle. */
	z[zn / 2] ^= 0x55;
	d = decode_new("gzip");
	TAP_CHECK(feed_all(d, z, zn, 4096) == -1);
	decode_free(d);
	z[zn / 2] ^= 0x55;
	/* A limit on the decoded size (a bomb): too large, not corrupt. */
	d = decode_new("gzip");
	decode_set_limit(d, 1000);
	TAP_CHECK(feed_all(d, z, zn, 4096) == -1);
	TAP_CHECK(decode_over_limit(d));
	decode_free(d);
	/* Bytes after the end are ignored. */
	d = decode_new("gzip");
	TAP_CHECK(decode_feed(d, (const char *)z, zn) == 0);
	TAP_CHECK(decode_feed(d, "junk", 4) == 0);
	TAP_CHECK(decode_finish(d) == 0 && decode_length(d) == n);
	decode_free(d);
	free(plain);
	free(z);
}

static const struct tap_test tests[] = {
	{"which encodings are known", test_kinds},
	{"gzip, split anywhere", test_gzip_any_split},
	{"deflate, zlib-wrapped and raw", test_deflate_zlib_and_raw},
	{"corrupt, cut and over the limit", test_corrupt_cut_and_limit},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

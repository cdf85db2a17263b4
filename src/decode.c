/* Content-Encoding decoding: see decode.h. */
#include "decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "util.h"

#define DECODE_SCRATCH 16384

struct decode {
	z_stream z;
	bool raw_tried; /* "deflate" sent raw: retried without a header */
	bool ended;     /* the stream's end was seen */
	bool over;      /* past the limit */
	bool failed;
	uint64_t decoded;
	uint64_t max;
	const char *name;
	char error[96];
	unsigned char scratch[DECODE_SCRATCH];
	decode_sink sink; /* who wants the decoded bytes, or NULL */
	void *sink_arg;
};

struct decode *decode_new(const char *ce)
{
	struct decode *d;
	int bits;

	if (ce == NULL)
		return NULL;
	if (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0)
		bits = 15 + 16; /* gzip wrapper only */
	else if (strcasecmp(ce, "deflate") == 0)
		bits = 15; /* zlib wrapper (RFC 9110 8.4.1.2) */
	else
		return NULL;
	d = xcalloc(1, sizeof *d);
	d->name = bits == 15 ? "deflate" : "gzip";
	d->max = UINT64_MAX;
	if (inflateInit2(&d->z, bits) != Z_OK)
		util_oom(); /* only a memory failure is possible here */
	return d;
}

void decode_free(struct decode *d)
{
	if (d == NULL)
		return;
	inflateEnd(&d->z);
	free(d);
}

void decode_set_limit(struct decode *d, uint64_t max)
{
	d->max = max;
}

static int decode_fail(struct decode *d, const char *why)
{
	d->failed = true;
	snprintf(d->error, sizeof d->error, "%s: %s", d->name,
		 why != NULL ? why : "corrupt data");
	return -1;
}

int decode_feed(struct decode *d, const char *p, size_t n)
{
	if (d->failed)
		return -1;
	if (d->ended)
		return 0; /* bytes after the end: ignored, as browsers do */
	uLong in_before = d->z.total_in;

	d->z.next_in = (unsigned char *)(uintptr_t)p;
	d->z.avail_in = (uInt)n;
	while (d->z.avail_in > 0 && !d->ended) {
		int rc;

		d->z.next_out = d->scratch;
		d->z.avail_out = sizeof d->scratch;
		rc = inflate(&d->z, Z_NO_FLUSH);
		if (rc == Z_DATA_ERROR && !d->raw_tried && in_before == 0 &&
		    d->z.total_out == 0 && strcmp(d->name, "deflate") == 0) {
			/* Some servers send "deflate" without the zlib
			 * header, as browsers tolerate: the header check
			 * fails on the first bytes, and those are all in
			 * this call: start again raw. */
			d->raw_tried = true;
			if (inflateReset2(&d->z, -15) != Z_OK)
				return decode_fail(d, NULL);
			d->z.next_in = (unsigned char *)(uintptr_t)p;
			d->z.avail_in = (uInt)n;
			continue;
		}
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
			return decode_fail(d, d->z.msg);
		size_t got = sizeof d->scratch - d->z.avail_out;

		d->decoded += got;
		if (d->decoded > d->max) {
			d->over = true;
			return decode_fail(d, "decoded body over the limit");
		}
		if (d->sink != NULL && got > 0)
			d->sink(d->sink_arg, d->scratch, got);
		if (rc == Z_STREAM_END)
			d->ended = true;
		else if (rc == Z_BUF_ERROR && d->z.avail_out > 0)
			break; /* needs more input */
	}
	return 0;
}

void decode_set_sink(struct decode *d, decode_sink sink, void *arg)
{
	d->sink = sink;
	d->sink_arg = arg;
}

int decode_finish(struct decode *d)
{
	if (d->failed)
		return -1;
	if (!d->ended)
		return decode_fail(d, "stream cut before its end");
	return 0;
}

uint64_t decode_length(const struct decode *d)
{
	return d->decoded;
}

const char *decode_error(const struct decode *d)
{
	return d->error;
}

bool decode_over_limit(const struct decode *d)
{
	return d->over;
}

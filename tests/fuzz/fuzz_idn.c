/* libFuzzer target for idn.c: arbitrary bytes as a submitted URL, checking
 * what the rest of gatherd relies on (ASCII in, nothing done; a converted
 * URL is clean ASCII that the parser takes, with only the host changed
 * and everything else percent-encoded byte for byte). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idn.h"
#include "url.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static bool is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* s with every byte >= 0x80 as %XX, written independently of idn.c. */
static char *encode_all(const char *s, size_t len, size_t *out_len)
{
	char *e = malloc(3 * len + 1);
	size_t n = 0;

	CHECK(e != NULL);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80)
			e[n++] = (char)c;
		else
			n += (size_t)sprintf(e + n, "%%%02X", c);
	}
	e[n] = '\0';
	*out_len = n;
	return e;
}

/* Everything idn.h promises of a converted URL. */
static void check_converted(const char *in, size_t len, const char *out,
			    size_t out_len)
{
	struct url_ref r;
	const char *reason = NULL;
	char host[300], *again = NULL, *enc;
	size_t again_len = 1, enc_len, tail;
	int hl;

	CHECK(out_len == strlen(out) && out_len <= URL_MAX_LEN);
	for (size_t i = 0; i < out_len; i++)
		CHECK(out[i] > 0x20 && out[i] < 0x7f);
	CHECK(url_parse_ref(out, out_len, &r, &reason) == 0);
	CHECK(idn_ascii_url(out, out_len, &again, &again_len, &reason) == 0 &&
	      again == NULL && again_len == 0);
	hl = url_ref_host(&r, out, host, sizeof host);
	CHECK(hl > 0);
	if (!(r.flags & URL_REF_IPV6))
		for (int i = 0; i < hl; i++)
			CHECK((host[i] >= 'a' && host[i] <= 'z') ||
			      (host[i] >= '0' && host[i] <= '9') ||
			      host[i] == '-' || host[i] == '_' ||
			      host[i] == '.');

	/* Only the host may differ from the input percent-encoded: the same
	 * bytes before it ("scheme://") and after it (port, path, query,
	 * fragment). */
	enc = encode_all(in, len, &enc_len);
	CHECK(r.host_off <= enc_len && memcmp(out, enc, r.host_off) == 0);
	tail = out_len - (r.host_off + r.host_len);
	CHECK(tail <= enc_len &&
	      memcmp(out + out_len - tail, enc + enc_len - tail, tail) == 0);
	/* A URL the parser took as it was keeps its host: it only had
	 * non-ASCII bytes past it. */
	if (url_parse_ref(in, len, &r, &reason) == 0)
		CHECK(out_len == enc_len && memcmp(out, enc, enc_len) == 0);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *reason = NULL;
	char *out = (char *)data; /* must be overwritten */
	size_t out_len = 1;
	int rc = idn_ascii_url(s, size, &out, &out_len, &reason);

	if (rc == 0 && out == NULL) {
		CHECK(out_len == 0 && is_ascii(s, size));
	} else if (rc == 0) {
		CHECK(!is_ascii(s, size));
		check_converted(s, size, out, out_len);
		free(out);
	} else {
		CHECK(rc == -1 && out == NULL && out_len == 0);
		CHECK(reason != NULL && reason[0] != '\0');
		CHECK(!is_ascii(s, size));
	}
	return 0;
}

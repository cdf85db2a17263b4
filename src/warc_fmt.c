/* Pieces of the WARC format shared by the writer (warc.c) and the reader
 * (warc_read.c): see warc_fmt.h. */
#include "warc_fmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "util.h"

/* zlib allocates through these, so out of memory follows util.h's rule. */
voidpf warc_zalloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return xmalloc((size_t)items * size);
}

/* The matching free. */
void warc_zfree(voidpf opaque, voidpf p)
{
	(void)opaque;
	free(p);
}

/* write() all of p, retrying short writes and EINTR; -1 with errno. */
int warc_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t k = write(fd, s, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

/* A SHA-256 context; it can only fail for lack of memory. */
EVP_MD_CTX *warc_sha_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		util_oom();
	return c;
}

/* Feed c; fails only for lack of memory too. */
void warc_sha_update(EVP_MD_CTX *c, const void *p, size_t n)
{
	if (EVP_DigestUpdate(c, p, n) != 1)
		util_oom();
}

/* The digest of what c has seen so far, leaving c open for more. */
void warc_sha_peek(const EVP_MD_CTX *c, unsigned char md[32])
{
	EVP_MD_CTX *copy = EVP_MD_CTX_new();

	if (copy == NULL || EVP_MD_CTX_copy_ex(copy, c) != 1 ||
	    EVP_DigestFinal_ex(copy, md, NULL) != 1)
		util_oom();
	EVP_MD_CTX_free(copy);
}

/* The SHA-256 of one buffer. */
void warc_sha256(const void *p, size_t n, unsigned char md[32])
{
	if (EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL) != 1)
		util_oom();
}

/* Lowercase hex, for body_sha256 and record IDs. */
void warc_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The value of one hex digit, or -1. */
int warc_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits into 32 bytes; -1 if s is anything else. */
int warc_unhex(const char *s, unsigned char md[32])
{
	if (strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		int hi = warc_hex_value(s[2 * i]),
		    lo = warc_hex_value(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		md[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static const char warc_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* "sha256:" and the RFC 4648 base32 of md, padded: the form of the WARC
 * standard's examples (sha1 there), which the readers that check digests
 * (python warcio, pywb) take, as they take hex. */
void warc_labelled(const unsigned char md[32], char out[WARC_DIGEST_SIZE])
{
	char *o = out + sizeof "sha256:" - 1;
	unsigned bits = 0, acc = 0;

	memcpy(out, "sha256:", sizeof "sha256:" - 1);
	for (int i = 0; i < 32; i++) {
		acc = (acc << 8 | md[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			*o++ = warc_b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		*o++ = warc_b32[(acc << (5 - bits)) & 31];
	while ((o - out - 7) % 8 != 0)
		*o++ = '=';
	*o = '\0';
}

/* Decode the value of a labelled SHA-256 digest in base32 (padded or not)
 * or hex; -1 for anything else. */
int warc_unlabel(const char *v, unsigned char md[32])
{
	size_t n;
	unsigned bits = 0, acc = 0;
	int k = 0;

	if (strncasecmp(v, "sha256:", 7) != 0 &&
	    strncasecmp(v, "sha-256:", 8) != 0)
		return -1;
	v = strchr(v, ':') + 1;
	if (warc_unhex(v, md) == 0)
		return 0;
	n = strlen(v);
	while (n > 0 && v[n - 1] == '=')
		n--;
	if (n != 52)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *c = strchr(warc_b32, v[i] >= 'a' && v[i] <= 'z'
						     ? v[i] - 'a' + 'A'
						     : v[i]);

		if (c == NULL)
			return -1;
		acc = (acc << 5 | (unsigned)(c - warc_b32)) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			md[k++] = (unsigned char)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return k == 32 ? 0 : -1;
}

/* WARC-Date: UTC with milliseconds, which WARC/1.1 allows. */
void warc_date(int64_t ms, char out[WARC_DATE_SIZE])
{
	time_t sec;
	struct tm tm;
	size_t n;

	if (ms < 0)
		ms = 0;
	sec = (time_t)(ms / 1000);
	gmtime_r(&sec, &tm);
	n = strftime(out, WARC_DATE_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, WARC_DATE_SIZE - n, ".%03dZ", (int)(ms % 1000));
}

/* The inverse of warc_date(), fractions of any length accepted (only the
 * milliseconds kept). */
int64_t warc_parse_date(const char *s)
{
	struct tm tm;
	const char *p;
	int64_t ms = 0, scale = 100;

	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return -1;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return (int64_t)t * 1000 + ms;
}

/* A random (version 4) UUID as a WARC-Record-ID; -1 if OpenSSL's generator
 * fails (it is seeded from the kernel, so that means a broken system). */
int warc_uuid(char out[WARC_ID_SIZE])
{
	unsigned char b[16];
	char h[33];

	if (RAND_bytes(b, sizeof b) != 1)
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	warc_hex(b, sizeof b, h);
	snprintf(out, WARC_ID_SIZE, "<urn:uuid:%.8s-%.4s-%.4s-%.4s-%.12s>", h,
		 h + 8, h + 12, h + 16, h + 20);
	return 0;
}

/* A value that can go into a WARC header as a token (a URI, an address, a
 * record ID): not empty, no space or control character.  Bytes past ASCII
 * pass, since WARC/1.1 headers are UTF-8. */
bool warc_token_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

/* Free text for a header value (the software name): no control
 * characters, so no header can be smuggled in. */
bool warc_text_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return false;
	return true;
}

/* Append n raw bytes. */
void warc_buf_put(struct warc_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Append printf output. */
void warc_buf_add(struct warc_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	size_t n;

	va_start(ap, fmt);
	s = util_vprintf(fmt, ap);
	va_end(ap);
	n = strlen(s);
	warc_buf_put(b, s, n);
	free(s);
}

/* Scan for the empty line ending an HTTP header block (see warc_fmt.h). */
size_t warc_head_end(int *state, const unsigned char *p, size_t n)
{
	/* 0: inside a line, 1: at the start of a line, 2: a CR there. */
	int st = *state;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (st != 0) {
				*state = st;
				return i + 1;
			}
			st = 1;
		} else if (p[i] == '\r') {
			st = st == 1 ? 2 : 0;
		} else {
			st = 0;
		}
	}
	*state = st;
	return 0;
}

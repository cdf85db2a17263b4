/* Pieces of the WARC format shared by the writer (warc.c) and the reader
 * (warc_read.c): digests and their labels, dates, record IDs, header
 * values, the end of an HTTP header block.  Not for other modules: they
 * use warc.h. */
#ifndef GATHERD_WARC_FMT_H
#define GATHERD_WARC_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "warc.h"

/* Size of the read, write and deflate buffers. */
#define WARC_IO_SIZE (64 * 1024)
/* A labelled digest: "sha256:" and 56 base32 characters, NUL. */
#define WARC_DIGEST_SIZE 64
/* A WARC-Date with milliseconds, NUL. */
#define WARC_DATE_SIZE 32

/* zlib's allocator: out of memory follows util.h's rule. */
voidpf warc_zalloc(voidpf opaque, uInt items, uInt size);
void warc_zfree(voidpf opaque, voidpf p);

/* write() all of p, retrying short writes and EINTR; -1 with errno. */
int warc_write_all(int fd, const void *p, size_t n)
    __attribute__((warn_unused_result));

/* SHA-256 through OpenSSL's EVP; these fail only for lack of memory, and
 * then abort like xmalloc. */
EVP_MD_CTX *warc_sha_new(void);
void warc_sha_update(EVP_MD_CTX *c, const void *p, size_t n);
void warc_sha_peek(const EVP_MD_CTX *c, unsigned char md[32]);
void warc_sha256(const void *p, size_t n, unsigned char md[32]);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void warc_hex(const unsigned char *p, size_t n, char *out);
/* The value of a hex digit, or -1. */
int warc_hex_value(int c);
/* 64 hex digits into 32 bytes; -1 for anything else. */
int warc_unhex(const char *s, unsigned char md[32]);

/* A labelled digest for a WARC header: "sha256:" and base32. */
void warc_labelled(const unsigned char md[32], char out[WARC_DIGEST_SIZE]);
/* The digest in a labelled SHA-256 value, base32 or hex; -1 otherwise. */
int warc_unlabel(const char *v, unsigned char md[32]);

/* A WARC-Date for Unix milliseconds. */
void warc_date(int64_t ms, char out[WARC_DATE_SIZE]);
/* Unix milliseconds of a WARC-Date (YYYY-MM-DDThh:mm:ss, optional
 * fraction, Z); -1 when it is not one. */
int64_t warc_parse_date(const char *s);

/* A new WARC-Record-ID; -1 when no random bytes can be had. */
int warc_uuid(char out[WARC_ID_SIZE]) __attribute__((warn_unused_result));

/* Whether s can be a header value that is a token (URI, address, record
 * ID), and whether it can be free text (no control characters). */
bool warc_token_ok(const char *s);
bool warc_text_ok(const char *s);

/* A growing NUL-terminated string (zero-initialised to start; free p). */
struct warc_buf {
	char *p;
	size_t len, cap;
};
void warc_buf_put(struct warc_buf *b, const void *p, size_t n);
void warc_buf_add(struct warc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Find the empty line that ends an HTTP header block, across pieces:
 * *state carries over between calls (start at 0).  Returns how many bytes
 * of p belong to the header block, the empty line included, or 0 when it
 * has not ended within p.  A bare LF ends a line too, as HTTP parsers
 * accept. */
size_t warc_head_end(int *state, const unsigned char *p, size_t n);

#endif

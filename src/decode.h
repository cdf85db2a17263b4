/* Content-Encoding undone as the body streams ([fetch] accept_encoding =
 * gzip): gzip and zlib-wrapped deflate through zlib, into a fixed scratch
 * buffer.  The decoded bytes are only counted (and handed to a callback,
 * for whoever wants them): memory is one inflate state and a buffer,
 * whatever the body's size.  Pure, no I/O: unit-tested and fuzzed. */
#ifndef GATHERD_DECODE_H
#define GATHERD_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct decode;

/* A decoder for a Content-Encoding value, or NULL when gatherd cannot undo
 * it (then only the received bytes are known).  "gzip", "x-gzip" and
 * "deflate" (zlib-wrapped, or raw as some servers send it) are known;
 * matching is case-insensitive. */
struct decode *decode_new(const char *content_encoding);
void decode_free(struct decode *d);

/* Feed received body bytes.  Returns 0, or -1 when the stream is corrupt
 * or decodes past max_decoded bytes (see decode_error()). */
int decode_feed(struct decode *d, const char *p, size_t n)
	__attribute__((warn_unused_result));

/* The body ended: 0 when the stream ended properly, -1 when it was cut. */
int decode_finish(struct decode *d) __attribute__((warn_unused_result));

/* Decoded bytes so far. */
uint64_t decode_length(const struct decode *d);

/* Hand the decoded bytes, as they come, to sink(arg, p, n). */
typedef void (*decode_sink)(void *arg, const void *p, size_t n);
void decode_set_sink(struct decode *d, decode_sink sink, void *arg);

/* Stop with an error once more than `max` bytes decode (a gzip bomb). */
void decode_set_limit(struct decode *d, uint64_t max);

/* Why the last call failed ("gzip: invalid stored block lengths"...). */
const char *decode_error(const struct decode *d);

/* Whether the failure was the limit (too_large) rather than corruption
 * (http_protocol). */
bool decode_over_limit(const struct decode *d);

#endif

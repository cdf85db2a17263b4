/* Queue-file lines: how a line is classified (blank or comment, URL,
 * invalid) and how a byte stream is split into lines across reads.  Pure
 * (no I/O), shared by the watcher and `gatherd submit`, unit-tested in
 * tests/unit/test_queue.c. */
#ifndef GATHERD_QUEUE_LINE_H
#define GATHERD_QUEUE_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

enum queue_line_kind {
	QUEUE_LINE_SKIP,    /* blank or comment */
	QUEUE_LINE_URL,     /* a valid http(s) URL */
	QUEUE_LINE_INVALID, /* recorded as failed, error invalid_url */
};

/* Classify one line (without its '\n'; a trailing '\r' and surrounding
 * whitespace are stripped).  *start and *tlen give the trimmed text; *detail
 * the reason when invalid.  total_len is the line's full length when only
 * a prefix is passed (over-long lines); pass len otherwise. */
enum queue_line_kind queue_classify_line(const char *line, size_t len,
					 uint64_t total_len,
					 const char **start, size_t *tlen,
					 const char **detail);

/* Splits a byte stream into lines across reads, keeping at most an 8 KiB
 * prefix of an over-long line in memory. */
struct queue_splitter {
	bool in_long;        /* inside a line longer than URL_MAX_LEN */
	uint64_t long_len;   /* bytes of that line so far */
	size_t prefix_len;
	char prefix[URL_MAX_LEN];
};

typedef void (*queue_emit_fn)(void *ctx, const char *line, size_t len,
			      uint64_t total_len);

struct queue_split_result {
	size_t consumed;     /* bytes scanned; the caller resumes after them */
	size_t complete_end; /* end of the last complete line (0 if none) */
	bool any_complete;   /* at least one '\n' was found */
};

/* Emit every complete line in buf[0..len).  A trailing partial line is
 * left unconsumed unless it is already longer than URL_MAX_LEN, in which
 * case it is consumed into the splitter's long-line state. */
struct queue_split_result queue_split(struct queue_splitter *sp,
				      const char *buf, size_t len,
				      queue_emit_fn emit, void *ctx);

#endif

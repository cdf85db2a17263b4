/* The queue-file watcher: reads complete lines from the stored offset,
 * ingests them together with the new offset in one transaction (on the
 * worker thread), and follows appends, truncation and rotation. */
#ifndef GATHERD_QUEUE_H
#define GATHERD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

struct event_base;
struct worker;
struct store;
struct store_queue_pos;
struct queue;

/* Called on the loop after each committed ingest. */
typedef void (*queue_ingested_cb)(void *arg, size_t n_queued,
				  size_t n_failed);

/* Open (creating if needed) the queue file at `path` and start watching
 * it.  `pos` is the stored position (NULL on a fresh database). */
int queue_open(struct event_base *base, struct worker *w, struct store *st,
	       const char *path, const struct store_queue_pos *pos,
	       queue_ingested_cb cb, void *arg, struct queue **out,
	       char **cause) __attribute__((warn_unused_result));

/* True when every complete line written so far is committed and nothing
 * is being read or ingested. */
bool queue_caught_up(const struct queue *q);

/* Stop reading new lines (shutdown); an ingest in flight still commits. */
void queue_stop(struct queue *q);

/* True while an ingest is in flight (shutdown waits for it). */
bool queue_busy(const struct queue *q);

void queue_free(struct queue *q);

/* --- Line splitting, pure, exposed for the unit tests. --- */

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

/* The result batcher: results are written in batches, one transaction per
 * batch, on the worker thread (group commit).  A result waits at most
 * BATCHER_FLUSH_MS for others; while a batch is being written, new results
 * gather for the next one.  A batch whose write fails is kept whole and
 * written again a second later, so no row ever leaves `queued` without its
 * result, and none is lost. */
#ifndef GATHERD_BATCHER_H
#define GATHERD_BATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

struct event_base;
struct worker;
struct store;
struct store_result;
struct batcher;

/* Runs on the loop for each written batch: `owners` are the pointers given
 * to batcher_add() with each result, in order (owned by the callee now). */
typedef void (*batcher_written_cb)(void *arg, void **owners, size_t n);

struct batcher *batcher_new(struct event_base *base, struct worker *w,
			    struct store *st, batcher_written_cb cb,
			    void *arg);

/* Queue one result.  `r` is copied, but its strings are not: they must stay
 * valid until `owner` comes back through the callback. */
void batcher_add(struct batcher *b, const struct store_result *r,
		 void *owner);

/* Nothing waits and nothing is being written. */
bool batcher_idle(const struct batcher *b);

/* Results waiting or being written (for stats). */
size_t batcher_pending(const struct batcher *b);

/* Since start, for the metrics: batches written, write failures, and how
 * long each write took on the worker (seconds). */
struct batcher_stats {
	uint64_t batches, rows, failures;
	bool failing; /* the last write failed (the database takes none) */
	struct metrics_hist latency;
};
void batcher_get_stats(const struct batcher *b, struct batcher_stats *st);

/* Free the batcher; `free_owner` is called on the owner of every result
 * not written.  Only when the worker holds none of its batches. */
void batcher_free(struct batcher *b, void (*free_owner)(void *));

#endif

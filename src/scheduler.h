/* The scheduler: keeps a bounded window of queued rows in memory, starts
 * fetches within the global and per-host limits (round-robin over ready
 * hosts, so a host at its limit never blocks others), and writes results
 * back in batches, one transaction each, on the worker thread. */
#ifndef GATHERD_SCHEDULER_H
#define GATHERD_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errkind.h"
#include "metrics.h"

struct event_base;
struct worker;
struct store;
struct captures;
struct config;
struct fetch_ctx;
struct sched;
struct store_line;

struct sched_stats {
	uint64_t done;      /* results recorded as done this run */
	uint64_t failed;    /* recorded as failed (fetch errors) */
	uint64_t in_flight;
	uint64_t in_memory; /* rows loaded and not yet recorded */
	/* Since start, for the metrics: */
	uint64_t by_error[ERR_KIND_COUNT]; /* [ERR_NONE]: done */
	uint64_t by_class[6];   /* done by status: [1] 1xx .. [5] 5xx */
	uint64_t bytes;         /* body bytes of recorded responses */
	uint64_t retries, redirects, requeued;
	size_t hosts;           /* hosts with work in memory */
	uint64_t robots_fetches; /* robots.txt requests (no rows) */
	size_t robots_origins;  /* origins whose rules are cached */
	/* Per attempt: */
	struct metrics_hist total, connect, tls, ttfb;
};

/* idle_cb runs whenever the scheduler may have become idle.  Queued rows
 * are read from the database in id order after `cursor` (so: just before
 * the first queued row). */
struct sched *sched_new(struct event_base *base, struct worker *w,
			struct store *st, const struct config *cfg,
			const struct fetch_ctx *fctx, int64_t cursor,
			void (*idle_cb)(void *), void *arg);

/* Archive every response in cs (see capture.h); NULL: none.  Before the
 * first fetch. */
void sched_set_captures(struct sched *s, struct captures *cs);

/* New rows may be queued: load and dispatch. */
void sched_kick(struct sched *s);

/* Whether more rows may come (--once: the queue file is read to its end,
 * until a line is appended): while none may, a connection whose host has
 * nothing left to fetch is closed as soon as it is idle, not kept for
 * rows that cannot come. */
void sched_set_input_ended(struct sched *s, bool ended);

/* A shared store: start no fetch at or after `fence_ms` (util_mono_ms()),
 * when this node's leases may soon run out, and at `end_ms`, just before
 * they can, abort the fetches still running (their jobs wait again, to start once
 * the leases are renewed or to be dropped if their rows went to other
 * nodes); until a later call moves both (see upkeep.h).  0: no such limit
 * (the default). */
void sched_set_fence(struct sched *s, int64_t fence_ms, int64_t end_ms);

/* Rows ids[0..n) are no longer this node's: those not started are
 * dropped (nothing is recorded for them here); those in flight finish,
 * and the store refuses their results. */
void sched_forget(struct sched *s, const int64_t *ids, size_t n);

/* Rows ids[0..n) belong to host shards this node is giving back: those
 * waiting and not yet begun go back to the store unclaimed, so that the
 * shards are free for their next node once the fetches in flight end
 * (not once every row claimed in them is fetched here). */
void sched_give_back(struct sched *s, const int64_t *ids, size_t n);

/* Rows were just ingested (`lines`, with their ids; invalid ones are
 * skipped): take them directly when the window has room and every older
 * queued row is already loaded, which spares reading them back from the
 * database; else load them in turn (as sched_kick).  From a shared store
 * it takes exactly the rows claimed for this node as they were inserted
 * (those with an id; see sched_room), and looks for more. */
void sched_offer(struct sched *s, const struct store_line *lines, size_t n);

/* How many rows a shared store may claim for this node as it ingests
 * them: the window's room (0 for SQLite, whose rows sched_offer takes by
 * their ids anyway). */
size_t sched_room(const struct sched *s);

/* Nothing loaded, nothing in flight, nothing to write, and the last load
 * found no more queued rows. */
bool sched_idle(const struct sched *s);

/* Stop starting fetches and drop rows not yet started (they stay queued in
 * the database); in-flight fetches go on and their results are written. */
void sched_drain(struct sched *s);

/* Abort every in-flight fetch (its row stays queued). */
void sched_abort_in_flight(struct sched *s);

/* Draining is over: nothing in flight and every result written. */
bool sched_drained(const struct sched *s);

void sched_get_stats(const struct sched *s, struct sched_stats *st);

/* The result batcher's counters (batcher.h). */
struct batcher_stats;
void sched_get_batch_stats(const struct sched *s, struct batcher_stats *st);

/* Up to `max` hosts with the most fetches in flight, busiest first, into
 * out (keys valid until the scheduler runs again); returns how many. */
struct store_host_load;
size_t sched_busiest_hosts(const struct sched *s, struct store_host_load *out,
			   size_t max);

void sched_free(struct sched *s);

#endif

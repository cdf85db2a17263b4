/* The periodic upkeep a shared store needs (store_tick(): the node's
 * heartbeat, its lease renewals, taking and giving back host shards),
 * run on the worker every store_tick_ms() from a timer on the loop.  For a
 * store that needs none (SQLite) nothing is started. */
#ifndef GATHERD_UPKEEP_H
#define GATHERD_UPKEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;
struct worker;
struct upkeep;

/* What a tick brought, for the scheduler. */
struct upkeep_news {
	bool gained; /* the node took host shards: there may be rows to claim */
	/* The leases were renewed: start no fetch at or after fence_ms
	 * (util_mono_ms()), and abort those still running at end_ms (just
	 * before the leases can run out), unless a later tick moves both;
	 * 0: unchanged. */
	int64_t fence_ms, end_ms;
	/* Rows that are no longer this node's: do not fetch them. */
	const int64_t *lost;
	size_t n_lost;
	/* Rows of host shards this node is giving back: hand back those
	 * not yet begun (see store_tick_out). */
	const int64_t *release;
	size_t n_release;
};

/* Up to when a node whose leases (lease_s long) were renewed by a
 * statement sent at `sent_ms` (util_mono_ms()) may start fetches: a
 * sixth of the lease before it ends, so that no host is fetched here
 * once another node may hold its shard. */
int64_t upkeep_fence_ms(int lease_s, int64_t sent_ms);

/* When the fetches still running must end: a twelfth of the lease before
 * it can run out (another node may take the host shards from then on), so
 * that their servers have seen this node's connections close before the
 * next node's requests can come. */
int64_t upkeep_end_ms(int lease_s, int64_t sent_ms);

/* news_cb runs on the loop after each tick that brought news.  Returns
 * NULL when the store needs no upkeep. */
struct upkeep *upkeep_start(struct event_base *base, struct worker *w,
			    struct store *st, int lease_s,
			    void (*news_cb)(void *, const struct upkeep_news *),
			    void *arg);

/* Stop the timer (a tick already at the worker finishes first: call
 * before the worker is drained), then free. */
void upkeep_free(struct upkeep *u);

#endif

/* The periodic upkeep a shared store needs (store_tick(): the node's
 * heartbeat, its lease renewals, taking and giving back host shards),
 * run on the worker every store_tick_ms() from a timer on the loop.  For a
 * store that needs none (SQLite) nothing is started. */
#ifndef GATHERD_UPKEEP_H
#define GATHERD_UPKEEP_H

struct event_base;
struct store;
struct worker;
struct upkeep;

/* gained_cb runs on the loop when the node took host shards it did not
 * hold (there may be rows to claim).  Returns NULL when the store needs
 * no upkeep. */
struct upkeep *upkeep_start(struct event_base *base, struct worker *w,
			    struct store *st, void (*gained_cb)(void *),
			    void *arg);

/* Stop the timer (a tick already at the worker finishes first: call
 * before the worker is drained), then free. */
void upkeep_free(struct upkeep *u);

#endif

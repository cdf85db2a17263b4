/* Counters, the periodic stats line (also sent as systemd STATUS=), and
 * the heartbeat `gatherd status` reads from the database: written at
 * start, every stats_interval_s (10 s when that is 0), and at exit. */
#ifndef GATHERD_STATS_H
#define GATHERD_STATS_H

#include <stdint.h>

struct event_base;
struct config;
struct sched;
struct stats;
struct store;
struct worker;

/* queued: rows queued in the database at start. */
struct stats *stats_new(struct event_base *base, const struct config *cfg,
			const struct sched *sched, struct worker *w,
			struct store *store, int64_t queued);
/* Lines ingested: n_queued new queued rows, n_failed invalid ones. */
void stats_ingested(struct stats *st, uint64_t n_queued, uint64_t n_failed);
/* Log the final summary line and write the last heartbeat (the worker
 * must still run). */
void stats_final(struct stats *st);
void stats_free(struct stats *st);

#endif

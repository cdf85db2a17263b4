/* Counters and the periodic stats line (also sent as systemd STATUS=). */
#ifndef GATHERD_STATS_H
#define GATHERD_STATS_H

#include <stdint.h>

struct event_base;
struct config;
struct sched;
struct stats;

/* queued: rows queued in the database at start. */
struct stats *stats_new(struct event_base *base, const struct config *cfg,
			const struct sched *sched, int64_t queued);
/* Lines ingested: n_queued new queued rows, n_failed invalid ones. */
void stats_ingested(struct stats *st, uint64_t n_queued, uint64_t n_failed);
/* Log the final summary line. */
void stats_final(struct stats *st);
void stats_free(struct stats *st);

#endif

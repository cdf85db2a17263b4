/* Counters, the periodic stats line (also sent as systemd STATUS=), and
 * the heartbeat `gatherd status` reads from the database: written at
 * start, every stats_interval_s (10 s when that is 0), and at exit. */
#ifndef GATHERD_STATS_H
#define GATHERD_STATS_H

#include <stdbool.h>
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
/* What the metrics read besides the scheduler (any may be NULL). */
struct conn_pool;
struct tls;
struct dns;
struct queue;
struct captures;
struct stats_sources {
	struct conn_pool *pool;
	struct tls *tls;
	struct dns *dns;
	struct queue *queue;
	struct captures *captures; /* NULL: no WARC archive */
};
void stats_set_sources(struct stats *st, const struct stats_sources *src);

/* Results in the database at start, per error kind ([0]: done), so that
 * the metrics' totals match the results view. */
void stats_set_baseline(struct stats *st, const int64_t *by_error);

/* The Prometheus text of every metric ([metrics] listen). */
struct evbuffer;
void stats_write_metrics(void *st, struct evbuffer *out);
/* Healthy: the loop runs (it answers) and the database takes writes. */
bool stats_healthy(void *st, const char **why);

/* Log the final summary line and write the last heartbeat (the worker
 * must still run). */
void stats_final(struct stats *st);
void stats_free(struct stats *st);

#endif

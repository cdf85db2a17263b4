/* The Prometheus endpoint ([metrics] listen): libevent's own evhttp on the
 * daemon's event loop serves GET /metrics in the text exposition format
 * (version 0.0.4) and GET /healthz (200 while the loop runs and the
 * database takes writes, 503 with the reason otherwise).  What is exposed
 * comes from the caller (stats.c) through a collect callback, written
 * with the helpers below; histograms are kept in struct metrics_hist. */
#ifndef GATHERD_METRICS_H
#define GATHERD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct metrics;

/* A histogram of durations in seconds, with fixed buckets from 5 ms to
 * 60 s (what web fetches take). */
#define METRICS_BUCKETS 14
struct metrics_hist {
	uint64_t count[METRICS_BUCKETS]; /* observations <= bucket bound */
	uint64_t n;
	double sum; /* seconds */
};

/* Record one duration in milliseconds (negative: unknown, ignored). */
void metrics_hist_observe(struct metrics_hist *h, int64_t ms);

/* Writers of the exposition format: a family's HELP and TYPE lines, then
 * its samples; labels are preformatted ("state=\"done\"", or NULL). */
void metrics_family(struct evbuffer *b, const char *name, const char *type,
		    const char *help);
void metrics_sample(struct evbuffer *b, const char *name,
		    const char *labels, double value);
void metrics_write_hist(struct evbuffer *b, const char *name,
			const char *help, const struct metrics_hist *h);

typedef void (*metrics_collect_fn)(void *arg, struct evbuffer *out);
/* True when healthy; else *why says why (static or owned by the caller
 * until the next call). */
typedef bool (*metrics_health_fn)(void *arg, const char **why);

/* Listen on `listen` ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464").
 * NULL with *cause when the address is bad or taken. */
struct metrics *metrics_new(struct event_base *base, const char *listen,
			    metrics_collect_fn collect,
			    metrics_health_fn health, void *arg,
			    char **cause);
void metrics_free(struct metrics *m);

#endif

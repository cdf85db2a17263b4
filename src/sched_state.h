/* Shared by the scheduler's files only (see scheduler.h for its
 * interface): scheduler.c (jobs on their hosts, dispatch, what an attempt
 * means, robots.txt parking, drain), sched_load.c (the window of queued
 * rows: loads, offers, polls), sched_result.c (a job's result to the
 * batcher, through the archive when there is one) and sched_shard.c (a
 * shared store: the fence at lease end, rows of host shards given back or
 * lost).
 *
 * A job is one queued row in memory.  It is, in turn, on its host's
 * waiting list, in flight (on the in-flight list, with a fetch), possibly
 * asleep before a retry (on the sleeping list, holding no slot and no
 * connection), parked while its origin's robots.txt is fetched, or back on
 * a waiting list after a redirect, then with the batcher (batcher.c) until
 * its result is committed, when it is freed.  `in_mem` counts jobs in all
 * these places; the window bounds it, so memory does not grow with the
 * queue. */
#ifndef GATHERD_SCHED_STATE_H
#define GATHERD_SCHED_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "errkind.h"
#include "fetch.h"
#include "scheduler.h"
#include "url.h"

struct host;

struct job {
	TAILQ_ENTRY(job) link;
	int64_t id;
	char *url;       /* as submitted */
	char *ascii;     /* its ASCII form when it has Unicode (idn.c) */
	char *cur;       /* after redirects: the URL to fetch next, else NULL */
	struct url_ref ref; /* the parts of job_url(j), once parsed */
	bool parsed;     /* ref is up to date */
	/* A re-fetch: the earlier response's validators (the request is
	 * conditional) and digest (what a 304 confirms). */
	struct fetch_cond cond;
	char *prev_sha256;
	int64_t prev_fetched_ms;
	char *prev_warc_file; /* the earlier response's record, if any */
	int64_t prev_warc_offset;
	struct host *host;
	struct fetch *fetch;
	struct capture *cap; /* archiving the fetch in flight */
	/* Where the final response was archived (NULL when it was not). */
	char *warc_file;
	int64_t warc_offset;
	struct event *retry_ev; /* while asleep before a retry */
	struct sched *s;
	int attempts;    /* requests made for this row so far */
	int loaded_attempts; /* of those, made before this run (stored) */
	int redirects;
	bool requeue;    /* with the batcher only to store `attempts` */
	bool handoff;    /* requeued for another shard's node (a redirect) */
	bool given_back; /* requeued for the node taking its host shard */
	/* The outcome of the last attempt, NULL before there is one: a job
	 * waiting in the window costs no result's worth of memory. */
	struct fetch_result *res;
};

TAILQ_HEAD(job_list, job);

/* Per-host state, keyed by "host:port".  A host is on the ready list
 * exactly when it has waiting jobs, is below max_per_host and is not
 * waiting out host_delay_ms (or its Crawl-delay).  It is freed when it
 * holds no job and that delay is over (sched_host_maybe_free). */
struct host {
	TAILQ_ENTRY(host) ready_link;
	bool ready;
	struct job_list waiting;
	int n_waiting;
	int in_flight;
	int64_t next_start_ms;
	struct event *delay_ev;
	bool resting;    /* holds no work, kept until its delay ends */
	struct sched *s;
	char key[];
};

TAILQ_HEAD(host_list, host);

struct sched {
	struct event_base *base;
	struct worker *worker;
	struct store *store;
	bool shared;            /* rows are claimed: never taken directly */
	const struct config *cfg;
	struct fetch_ctx fctx;
	struct captures *caps;  /* NULL: no archive */
	struct robots_cache *robots;
	struct map *parked;     /* origin -> struct sched_parked */
	size_t n_capturing;     /* jobs waiting for their record */
	struct map *hosts;
	struct host_list ready;
	struct job_list in_flight_jobs;
	struct job_list sleeping;
	struct batcher *batcher;
	size_t in_mem;
	size_t n_in_flight;
	size_t n_waiting;
	size_t n_resting;     /* hosts kept only for their delay */
	int64_t cursor;       /* highest row id loaded so far: no queued row
			       * at or below it is left in the database
			       * that is not in memory */
	bool loading;
	bool load_backoff;    /* a load failed: wait for ev_load_retry */
	bool exhausted;       /* the last load found every queued row */
	unsigned kick_gen;    /* bumped by sched_kick */
	struct event *ev_unpause;
	struct event *ev_load_retry;
	struct event *ev_poll; /* rows added by others (gatherd refetch) */
	bool paused;          /* out of file descriptors: wait a moment */
	int64_t fd_warned_ms;
	bool draining;
	bool input_ended;     /* sched_set_input_ended() */
	int64_t fence_ms;     /* sched_set_fence(); 0: none */
	int64_t lease_end_ms; /* sched_set_fence(): ev_lease_end's time */
	bool fenced;          /* dispatch stopped at fence_ms (said once) */
	struct event *ev_lease_end;
	struct event *ev_dispatch; /* the rest of a long dispatch */
	uint64_t n_done, n_failed, n_requeued;
	struct sched_stats counters; /* the since-start part of sched_stats */
	void (*idle_cb)(void *);
	void *idle_arg;
};

/* Jobs waiting for their origin's robots.txt, by origin. */
struct sched_parked {
	struct job_list jobs;
};

/* The URL a job fetches next: after a redirect its target, else the
 * row's URL (in its ASCII form when it has Unicode). */
static inline const char *job_url(const struct job *j)
{
	if (j->cur != NULL)
		return j->cur;
	return j->ascii != NULL ? j->ascii : j->url;
}

/* The scheduler may have become idle: tell its owner. */
static inline void sched_notify(struct sched *s)
{
	if (s->idle_cb != NULL)
		s->idle_cb(s->idle_arg);
}

/* scheduler.c */
/* Put a job (back) on the waiting list of its current URL's host (at the
 * `front`: ahead of rows loaded later); -1 when its URL does not parse. */
int sched_enqueue(struct sched *s, struct job *j, bool front);
/* Start fetches while the limits allow. */
void sched_dispatch(struct sched *s);
/* Take in-flight job j back from its fetch (and its record), which ends
 * without a result; j keeps its host. */
void sched_unstart(struct sched *s, struct job *j);
/* Free host h if it holds nothing any more (one whose delay still runs
 * rests until it ends); true if it did. */
bool sched_host_maybe_free(struct host *h);
void sched_job_free(struct job *j);
void sched_job_free_result(struct job *j);

/* sched_result.c */
/* Give j a result of the scheduler's own making: error `kind`, its
 * `detail` (taken), every measurement unknown. */
void sched_job_fail(struct job *j, enum errkind kind, char *detail);
/* j has its result (or, requeued, its attempts to store): to the batcher. */
void sched_add_result(struct sched *s, struct job *j);
/* j leaves without a result; its row stays queued with its attempts. */
void sched_requeue(struct sched *s, struct job *j);
/* Archive or drop the attempt's capture; for the `final` response the job
 * waits for its record and goes to the batcher after it (true then). */
bool sched_capture_end(struct sched *s, struct job *j, bool final);
/* The batcher's callback: a batch of results is written. */
void sched_written_cb(void *arg, void **owners, size_t n);

/* sched_load.c */
/* Load more queued rows when the window has room (or hosts starve). */
void sched_maybe_load(struct sched *s);
/* Create its events (the load's retry, the poll): from sched_new(). */
void sched_load_init(struct sched *s);

/* sched_shard.c */
/* Has the fence (sched_set_fence()) been reached?  Said once. */
bool sched_fence_reached(struct sched *s);
/* Create its event (the lease end): from sched_new(). */
void sched_shard_init(struct sched *s);

#endif

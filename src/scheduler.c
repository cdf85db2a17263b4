/* Scheduler: see scheduler.h (named so to not shadow <sched.h>), and
 * sched_state.h for the state its files share.  This file holds the jobs
 * on their hosts' waiting lists, the round-robin dispatch within the
 * global and per-host limits, what a finished attempt means for its row
 * (policy.c decides), robots.txt parking, and the scheduler's life
 * (start, drain, stats, free). */
#include "scheduler.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "batcher.h"
#include "capture.h"
#include "config.h"
#include "conn.h"
#include "fetch.h"
#include "idn.h"
#include "log.h"
#include "map.h"
#include "policy.h"
#include "robots_fetch.h"
#include "sched_state.h"
#include "shard.h"
#include "store.h"
#include "util.h"

#define SCHED_FD_PAUSE_MS 250  /* dispatch pause when out of descriptors */
/* Fetches started in one go before the loop looks at its sockets again
 * (sched_dispatch). */
#define SCHED_DISPATCH_SLICE 256
#define SCHED_HOST_LINGER_MS 2000 /* idle connections of a host without
				   * work */

static bool host_eligible(const struct host *h)
{
	return h->n_waiting > 0 &&
	       h->in_flight < h->s->cfg->max_per_host && h->delay_ev == NULL;
}

static void host_make_ready(struct host *h)
{
	if (!h->ready && host_eligible(h)) {
		TAILQ_INSERT_TAIL(&h->s->ready, h, ready_link);
		h->ready = true;
	}
}

static struct host *host_get(struct sched *s, const char *key)
{
	struct host *h = map_get(s->hosts, key);
	size_t klen;

	if (h != NULL) {
		if (h->resting) { /* work again; its delay_ev runs on */
			h->resting = false;
			s->n_resting--;
		}
		return h;
	}
	klen = strlen(key);
	h = xcalloc(1, sizeof *h + klen + 1);
	memcpy(h->key, key, klen + 1);
	h->s = s;
	TAILQ_INIT(&h->waiting);
	map_put(s->hosts, key, h);
	return h;
}

static void host_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host *h = arg;
	struct sched *s = h->s; /* h may be freed below */

	(void)fd;
	(void)what;
	event_free(h->delay_ev);
	h->delay_ev = NULL;
	if (h->resting) {
		h->resting = false;
		s->n_resting--;
	}
	host_make_ready(h);
	sched_host_maybe_free(h);
	sched_dispatch(s);
}

/* Host h starts nothing for `left` ms (then host_delay_cb). */
static void host_wait(struct host *h, int64_t left)
{
	struct timeval tv = {(time_t)(left / 1000),
			     (suseconds_t)(left % 1000) * 1000};

	h->delay_ev = event_new(h->s->base, -1, 0, host_delay_cb, h);
	if (h->delay_ev == NULL)
		util_oom();
	event_add(h->delay_ev, &tv);
}

/* Free a host that holds nothing any more; true if it did.  One whose
 * spacing (host_delay_ms, its Crawl-delay) still runs rests until that
 * ends instead, so that a row of it that comes meanwhile (appended, or
 * loaded from further down the queue) waits out the rest of it: forgetting
 * the host would start that row at once. */
bool sched_host_maybe_free(struct host *h)
{
	struct sched *s = h->s;

	if (h->n_waiting > 0 || h->in_flight > 0 || h->delay_ev != NULL)
		return false;
	if (h->ready) {
		TAILQ_REMOVE(&s->ready, h, ready_link);
		h->ready = false;
	}
	int64_t left = h->next_start_ms - util_mono_ms();
	if (left > 0) {
		host_wait(h, left);
		h->resting = true;
		s->n_resting++;
		return false;
	}
	map_del(s->hosts, h->key);
	free(h);
	return true;
}

void sched_job_free_result(struct job *j)
{
	if (j->res == NULL)
		return;
	fetch_result_free(j->res);
	free(j->res);
	j->res = NULL;
}

void sched_job_free(struct job *j)
{
	sched_job_free_result(j);
	free((char *)j->cond.etag);
	free((char *)j->cond.last_modified);
	free(j->prev_sha256);
	free(j->prev_warc_file);
	free(j->warc_file);
	if (j->retry_ev != NULL)
		event_free(j->retry_ev);
	free(j->cur);
	free(j->ascii);
	free(j->url);
	free(j);
}

/* Put a job (back) on the waiting list of the host of its current URL
 * ("host:port", so "h" and "h:80" are one host).  `front` keeps its place
 * ahead of rows loaded later.  The URL is parsed once, here, and the parts
 * kept with the job for the fetch. */
int sched_enqueue(struct sched *s, struct job *j, bool front)
{
	const char *url = job_url(j), *reason;
	char key[300];
	struct host *h;

	if (!j->parsed) {
		if (url_parse_ref(url, strlen(url), &j->ref, &reason) != 0) {
			/* International: fetch its ASCII form (the row
			 * keeps the URL as submitted). */
			size_t n;

			if (j->cur != NULL || j->ascii != NULL ||
			    idn_ascii_url(url, strlen(url), &j->ascii, &n,
					  &reason) != 0 ||
			    j->ascii == NULL)
				return -1;
			url = j->ascii;
			if (url_parse_ref(url, n, &j->ref, &reason) != 0)
				return -1;
		}
		j->parsed = true;
	}
	if (url_ref_host_port(&j->ref, url, key, sizeof key, true) < 0)
		return -1;
	h = host_get(s, key);
	j->host = h;
	if (front)
		TAILQ_INSERT_HEAD(&h->waiting, j, link);
	else
		TAILQ_INSERT_TAIL(&h->waiting, j, link);
	h->n_waiting++;
	s->n_waiting++;
	host_make_ready(h);
	return 0;
}

static void sched_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct sched *s = j->s;

	(void)fd;
	(void)what;
	event_free(j->retry_ev);
	j->retry_ev = NULL;
	TAILQ_REMOVE(&s->sleeping, j, link);
	if (sched_enqueue(s, j, true) != 0)
		abort(); /* its URL parsed before it slept */
	sched_dispatch(s);
}

static void sched_unpause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	(void)fd;
	(void)what;
	s->paused = false;
	sched_dispatch(s);
}

/* A paused fetch may read again: its capture caught up. */
static void sched_resume_cb(void *arg)
{
	struct job *j = arg;

	fetch_resume(j->fetch);
}

/* Decide what a finished attempt means for its row: a redirect to follow,
 * a retry after a delay, or the row's result. */
static void sched_after_attempt(struct sched *s, struct job *j)
{
	const struct config *cfg = s->cfg;
	struct fetch_result *r = j->res;

	if (r->fd_exhausted) {
		/* Not the URL's fault: put it back.  Idle pooled connections
		 * give their descriptors back first; only when there are none
		 * does dispatch pause briefly. */
		j->attempts--;
		sched_capture_end(s, j, false);
		sched_job_free_result(j);
		sched_enqueue(s, j, true);
		size_t closed = conn_pool_close_idle(s->fctx.pool);
		int64_t now = util_mono_ms();
		if (now - s->fd_warned_ms > 10000) {
			log_warn("out of file descriptors: %s (raise "
				 "LimitNOFILE or lower max_in_flight)",
				 closed > 0 ? "closed idle connections"
					    : "pausing new connections");
			s->fd_warned_ms = now;
		}
		if (closed == 0) {
			s->paused = true;
			struct timeval tv = {0, SCHED_FD_PAUSE_MS * 1000};
			event_add(s->ev_unpause, &tv);
		}
		return;
	}
	struct policy_outcome o = {
		.ok = r->ok,
		.status = r->status,
		.error = r->error,
		.retry_after_ms = r->retry_after_ms,
		.has_location = r->ok && r->location != NULL,
		.scheme = r->scheme,
		.location_scheme = r->location_scheme,
	};
	switch (policy_decide(cfg, &o, j->attempts, j->redirects,
			      s->draining)) {
	case POLICY_FOLLOW: {
		char *next = r->location;
		/* Many nodes: a host of another shard is fetched by the node
		 * that holds that shard, redirect targets too. */
		bool handoff = s->shared &&
			       shard_of_url(next, strlen(next)) !=
				   shard_of_url(job_url(j), strlen(job_url(j)));

		s->counters.redirects++;
		r->location = NULL;
		sched_capture_end(s, j, false);
		sched_job_free_result(j);
		free(j->cur);
		j->cur = next;
		j->parsed = false;
		j->redirects++;
		/* attempts (and the retry budget) are per URL: a redirect is
		 * not a failed attempt. */
		j->attempts = 0;
		if (handoff) {
			j->requeue = j->handoff = true;
			sched_add_result(s, j);
			return;
		}
		if (sched_enqueue(s, j, true) == 0)
			return;
		/* Resolved URLs always parse; be safe anyway. */
		sched_job_fail(j, ERR_INVALID_URL,
			 util_printf("bad redirect target"));
		break;
	}
	case POLICY_DOWNGRADE:
		free(r->error_detail);
		r->error_detail = util_printf(
			"redirect from https to %s not followed "
			"([fetch] allow_https_downgrade = false)",
			r->location);
		break;
	case POLICY_TOO_MANY: {
		char *last = r->location;

		r->location = NULL;
		sched_capture_end(s, j, false);
		sched_job_free_result(j);
		sched_job_fail(j, ERR_TOO_MANY_REDIRECTS,
			 util_printf("more than %d redirects; the last went "
				     "to %s",
				     cfg->max_redirects, last));
		j->res->final_url = xstrdup(job_url(j));
		free(last);
		break;
	}
	case POLICY_RETRY: {
		s->counters.retries++;
		int64_t delay = policy_retry_delay(cfg, j->attempts,
						   r->retry_after_ms,
						   util_random32());
		struct timeval tv = {(time_t)(delay / 1000),
				     (suseconds_t)(delay % 1000) * 1000};

		log_debug("retrying %s in %lld ms (attempt %d: %s %d)",
			  job_url(j), (long long)delay, j->attempts,
			  r->ok ? "status" : errkind_name(r->error),
			  r->status);
		sched_capture_end(s, j, false);
		sched_job_free_result(j);
		j->retry_ev = event_new(s->base, -1, 0, sched_retry_cb, j);
		if (j->retry_ev == NULL)
			util_oom();
		TAILQ_INSERT_TAIL(&s->sleeping, j, link);
		event_add(j->retry_ev, &tv);
		return;
	}
	case POLICY_REQUEUE:
		/* Shutting down: the retry belongs to the next start.  The
		 * row stays queued with its attempts so far, so the retry
		 * budget carries over. */
		log_debug("leaving %s queued for the next start (attempt %d: "
			  "%s %d)",
			  job_url(j), j->attempts,
			  r->ok ? "status" : errkind_name(r->error), r->status);
		sched_capture_end(s, j, false);
		sched_requeue(s, j);
		return;
	case POLICY_FINAL:
		break;
	}
	r = j->res; /* a new one when the job failed of itself above */
	r->attempts = j->attempts;
	r->redirects = j->redirects;
	if (!sched_capture_end(s, j, true))
		sched_add_result(s, j);
}

static void sched_fetch_done(void *arg, struct fetch_result *res)
{
	struct job *j = arg;
	struct host *h = j->host;
	struct sched *s = h->s;

	j->fetch = NULL;
	j->res = xmalloc(sizeof *j->res);
	*j->res = *res; /* takes the strings */
	TAILQ_REMOVE(&s->in_flight_jobs, j, link);
	s->n_in_flight--;
	h->in_flight--;
	j->host = NULL;
	j->attempts++;
	metrics_hist_observe(&s->counters.total, res->elapsed_ms);
	metrics_hist_observe(&s->counters.connect, res->connect_ms);
	metrics_hist_observe(&s->counters.tls, res->tls_ms);
	metrics_hist_observe(&s->counters.ttfb, res->ttfb_ms);
	/* The host's last job in memory: unless it comes back (a retry, a
	 * redirect, rows loaded next), its idle connections are of no use
	 * and hold a slot on its server; they linger only briefly.  With no
	 * more input and every queued row in memory (--once at its tail), a
	 * host with nothing waiting gets no more work at all, so its idle
	 * connections close now, spread over the run's tail rather than all
	 * at its end.  The origin is taken before a redirect changes the
	 * job's URL. */
	char origin[320];
	bool spent = s->input_ended && s->exhausted && !s->loading &&
		     !s->load_backoff;
	bool last = h->n_waiting == 0 && h->in_flight == 0;

	if ((last || spent) &&
	    url_ref_origin(&j->ref, job_url(j), origin, sizeof origin) <= 0)
		last = spent = false;
	sched_after_attempt(s, j);
	host_make_ready(h);
	spent = spent && h->n_waiting == 0;
	last = last && h->n_waiting == 0 && h->in_flight == 0;
	if (spent)
		conn_pool_close_key(s->fctx.pool, origin);
	else if (last)
		conn_pool_linger(s->fctx.pool, origin, SCHED_HOST_LINGER_MS);
	sched_host_maybe_free(h);
	sched_dispatch(s);
}

/* robots.txt allows job j (taken off host h) to be fetched now: true.
 * Else j waits for its origin's rules without a slot (parked), or ends
 * as refused (error robots).  *delay becomes the origin's Crawl-delay
 * when that is longer. */
static bool sched_robots_allow(struct sched *s, struct job *j, struct host *h,
			       int64_t *delay)
{
	char origin[320], *why;
	int64_t crawl_delay;
	struct sched_parked *p;

	(void)h;
	switch (robots_cache_ask(s->robots, job_url(j), &j->ref, &why,
				 &crawl_delay, origin, sizeof origin)) {
	case ROBOTS_ALLOW:
		if (crawl_delay > *delay)
			*delay = crawl_delay;
		return true;
	case ROBOTS_PENDING:
		p = map_get(s->parked, origin);
		if (p == NULL) {
			p = xcalloc(1, sizeof *p);
			TAILQ_INIT(&p->jobs);
			map_put(s->parked, origin, p);
		}
		j->host = NULL;
		TAILQ_INSERT_TAIL(&p->jobs, j, link);
		return false;
	case ROBOTS_DENY:
		break;
	}
	j->host = NULL;
	sched_job_fail(j, ERR_ROBOTS, why);
	j->res->attempts = j->attempts;
	j->res->redirects = j->redirects;
	if (j->cur != NULL)
		j->res->final_url = xstrdup(j->cur);
	sched_add_result(s, j);
	return false;
}

/* An origin's robots.txt is known: its parked jobs go back to their
 * hosts, at the front, and their host goes first among the ready ones:
 * those jobs waited already, and a crawl of many new hosts would
 * otherwise start the robots.txt fetches of every other host in the
 * window (one turn each) before their pages. */
static void sched_robots_ready(void *arg, const char *origin)
{
	struct sched *s = arg;
	struct sched_parked *p = map_get(s->parked, origin);
	struct host *h = NULL;
	struct job *j;

	if (p == NULL)
		return;
	map_del(s->parked, origin);
	while ((j = TAILQ_LAST(&p->jobs, job_list)) != NULL) {
		TAILQ_REMOVE(&p->jobs, j, link);
		if (sched_enqueue(s, j, true) != 0) {
			sched_job_fail(j, ERR_INVALID_URL,
				 xstrdup("not a valid http(s) URL"));
			sched_add_result(s, j);
		} else {
			h = j->host;
		}
	}
	free(p);
	if (h != NULL && h->ready) {
		TAILQ_REMOVE(&s->ready, h, ready_link);
		TAILQ_INSERT_HEAD(&s->ready, h, ready_link);
	}
	sched_dispatch(s);
}

static void sched_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sched_dispatch(arg);
}

/* Start fetches while the limits allow, taking hosts round-robin. */
void sched_dispatch(struct sched *s)
{
	const struct config *cfg = s->cfg;
	struct host *h;
	int started = 0;

	if (sched_fence_reached(s))
		return;
	while (!s->draining && !s->paused &&
	       s->n_in_flight + robots_cache_in_flight(s->robots) <
		       (size_t)cfg->max_in_flight &&
	       (h = TAILQ_FIRST(&s->ready)) != NULL &&
	       (s->caps == NULL || !capture_full(s->caps))) {
		TAILQ_REMOVE(&s->ready, h, ready_link);
		h->ready = false;
		if (!host_eligible(h))
			continue; /* limits may have changed on reload */

		int64_t now = util_mono_ms();
		if (now < h->next_start_ms) {
			host_wait(h, h->next_start_ms - now);
			continue;
		}

		/* Thousands of slots free at once (a start, a reload): start
		 * a slice, then let the loop send the requests of the
		 * connections made so far, and go on in its next turn.  Every
		 * server's think time starts with the request, not with the
		 * connect, so the slots fill sooner that way. */
		if (started == SCHED_DISPATCH_SLICE) {
			struct timeval now = {0, 0};

			TAILQ_INSERT_HEAD(&s->ready, h, ready_link);
			h->ready = true;
			event_add(s->ev_dispatch, &now);
			break;
		}
		started++;

		struct job *j = TAILQ_FIRST(&h->waiting);
		TAILQ_REMOVE(&h->waiting, j, link);
		h->n_waiting--;
		s->n_waiting--;
		int64_t delay = cfg->host_delay_ms;
		if (cfg->robots && !sched_robots_allow(s, j, h, &delay)) {
			host_make_ready(h);
			sched_host_maybe_free(h);
			continue;
		}
		/* The validators belong to the URL re-fetched, not to
		 * where it redirects. */
		bool cond = j->redirects == 0 && (j->cond.etag != NULL ||
					       j->cond.last_modified != NULL);
		if (s->caps != NULL)
			j->cap = capture_new(s->caps, job_url(j),
					     sched_resume_cb, j);
		j->fetch = fetch_start(&s->fctx, job_url(j), &j->ref,
				       cond ? &j->cond : NULL,
				       j->cap ? capture_tap(j->cap) : NULL,
				       sched_fetch_done, j);
		h->in_flight++;
		s->n_in_flight++;
		h->next_start_ms = now + delay;
		TAILQ_INSERT_TAIL(&s->in_flight_jobs, j, link);
		host_make_ready(h);
	}
	sched_maybe_load(s);
}

static void job_free_owner(void *j)
{
	sched_job_free(j);
}

struct sched *sched_new(struct event_base *base, struct worker *w,
			struct store *st, const struct config *cfg,
			const struct fetch_ctx *fctx, int64_t cursor,
			void (*idle_cb)(void *), void *arg)
{
	struct sched *s = xcalloc(1, sizeof *s);

	s->cursor = cursor;
	s->hosts = map_new();
	s->base = base;
	s->worker = w;
	s->store = st;
	s->shared = store_shared(st);
	s->cfg = cfg;
	s->fctx = *fctx;
	s->idle_cb = idle_cb;
	s->idle_arg = arg;
	TAILQ_INIT(&s->ready);
	TAILQ_INIT(&s->in_flight_jobs);
	TAILQ_INIT(&s->sleeping);
	s->batcher = batcher_new(base, w, st, sched_written_cb, s);
	s->robots = robots_cache_new(&s->fctx, sched_robots_ready, s);
	s->parked = map_new();
	s->ev_unpause = event_new(base, -1, 0, sched_unpause_cb, s);
	s->ev_dispatch = event_new(base, -1, 0, sched_dispatch_cb, s);
	if (s->ev_unpause == NULL || s->ev_dispatch == NULL)
		util_oom();
	sched_load_init(s);
	sched_shard_init(s);
	return s;
}

/* The archive caught up: fetches may start again. */
static void sched_capture_room_cb(void *arg)
{
	sched_dispatch(arg);
}

void sched_set_captures(struct sched *s, struct captures *cs)
{
	s->caps = cs;
	if (cs != NULL)
		capture_set_room_cb(cs, sched_capture_room_cb, s);
}

void sched_set_input_ended(struct sched *s, bool ended)
{
	s->input_ended = ended;
}

/* Take in-flight job j back from its fetch (and its record), which ends
 * without a result. */
void sched_unstart(struct sched *s, struct job *j)
{
	TAILQ_REMOVE(&s->in_flight_jobs, j, link);
	fetch_abort(j->fetch);
	j->fetch = NULL;
	capture_abort(j->cap);
	j->cap = NULL;
	j->host->in_flight--;
	s->n_in_flight--;
}

bool sched_idle(const struct sched *s)
{
	return s->in_mem == 0 && !s->loading && batcher_idle(s->batcher) &&
	       s->exhausted;
}

void sched_drain(struct sched *s)
{
	/* Waiting jobs simply stay in memory until sched_free(): their rows
	 * are still queued in the database for the next start.  Rows asleep
	 * before a retry stay queued too, with their attempts stored. */
	struct job *j;

	s->draining = true;
	while ((j = TAILQ_FIRST(&s->sleeping)) != NULL) {
		TAILQ_REMOVE(&s->sleeping, j, link);
		event_free(j->retry_ev);
		j->retry_ev = NULL;
		sched_requeue(s, j);
	}
	sched_notify(s);
}

void sched_abort_in_flight(struct sched *s)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&s->in_flight_jobs)) != NULL) {
		sched_unstart(s, j);
		sched_host_maybe_free(j->host);
		j->host = NULL;
		sched_requeue(s, j);
	}
}

bool sched_drained(const struct sched *s)
{
	return s->n_in_flight == 0 && s->n_capturing == 0 &&
	       batcher_idle(s->batcher) && !s->loading;
}

void sched_get_stats(const struct sched *s, struct sched_stats *st)
{
	*st = s->counters;
	st->requeued = s->n_requeued;
	st->hosts = map_count(s->hosts) - s->n_resting;
	st->done = s->n_done;
	st->failed = s->n_failed;
	st->in_flight = s->n_in_flight;
	st->in_memory = s->in_mem;
	struct robots_cache_stats rs;
	robots_cache_get_stats(s->robots, &rs);
	st->robots_fetches = rs.fetches;
	st->robots_origins = rs.origins;
}

struct sched_top {
	struct store_host_load *out;
	size_t n, max;
};

/* Keep the busiest hosts seen so far in out (insertion into a small sorted
 * array: max is about a hundred). */
static void sched_top_add(void *arg, const char *key, void *value)
{
	struct sched_top *t = arg;
	const struct host *h = value;
	size_t i;

	if (h->in_flight == 0)
		return;
	if (t->n == t->max && t->out[t->n - 1].in_flight >= h->in_flight)
		return;
	if (t->n < t->max)
		t->n++;
	for (i = t->n - 1; i > 0 && t->out[i - 1].in_flight < h->in_flight;
	     i--)
		t->out[i] = t->out[i - 1];
	t->out[i].key = key;
	t->out[i].in_flight = h->in_flight;
}

void sched_get_batch_stats(const struct sched *s, struct batcher_stats *st)
{
	batcher_get_stats(s->batcher, st);
}

size_t sched_busiest_hosts(const struct sched *s, struct store_host_load *out,
			   size_t max)
{
	struct sched_top t = {out, 0, max};

	if (max > 0)
		map_foreach(s->hosts, sched_top_add, &t);
	return t.n;
}

static void host_free_all(void *v)
{
	struct host *h = v;
	struct job *j;

	while ((j = TAILQ_FIRST(&h->waiting)) != NULL) {
		TAILQ_REMOVE(&h->waiting, j, link);
		sched_job_free(j);
	}
	if (h->delay_ev != NULL)
		event_free(h->delay_ev);
	free(h);
}

static void parked_free_all(void *v)
{
	struct sched_parked *p = v;
	struct job *j;

	while ((j = TAILQ_FIRST(&p->jobs)) != NULL) {
		TAILQ_REMOVE(&p->jobs, j, link);
		sched_job_free(j);
	}
	free(p);
}

void sched_free(struct sched *s)
{
	struct job *j;

	if (s == NULL)
		return;
	/* Nothing is written any more (the worker has finished what it was
	 * given): every job is simply freed, its row stays queued. */
	while ((j = TAILQ_FIRST(&s->in_flight_jobs)) != NULL) {
		TAILQ_REMOVE(&s->in_flight_jobs, j, link);
		fetch_abort(j->fetch);
		capture_abort(j->cap);
		sched_job_free(j);
	}
	batcher_free(s->batcher, job_free_owner);
	while ((j = TAILQ_FIRST(&s->sleeping)) != NULL) {
		TAILQ_REMOVE(&s->sleeping, j, link);
		sched_job_free(j);
	}
	map_free(s->hosts, host_free_all);
	robots_cache_free(s->robots);
	map_free(s->parked, parked_free_all);
	event_free(s->ev_unpause);
	event_free(s->ev_load_retry);
	event_free(s->ev_poll);
	event_free(s->ev_lease_end);
	event_free(s->ev_dispatch);
	free(s);
}

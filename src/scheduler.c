/* Scheduler: see scheduler.h (named so to not shadow <sched.h>).
 *
 * A job is one queued row in memory.  It is, in turn, on its host's waiting
 * list, in flight (on the in-flight list, with a fetch), possibly asleep
 * before a retry (on the sleeping list, holding no slot and no connection)
 * or back on a waiting list after a redirect, then with the batcher
 * (batcher.c) until its result is committed, when it is freed.  `in_mem` counts jobs in
 * all these places; the window bounds it, so memory does not grow with the
 * queue. */
#include "scheduler.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>

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
#include "shard.h"
#include "store.h"
#include "thread.h"
#include "util.h"

#define SCHED_FD_PAUSE_MS 250  /* dispatch pause when out of descriptors */
#define SCHED_POLL_MS 1000     /* look for rows added by others */
/* The same on a shared store, where most rows come from others: each
 * node's queue file holds lines of every node's host shards. */
#define SCHED_POLL_SHARED_MS 100
/* Fetches started in one go before the loop looks at its sockets again
 * (sched_dispatch). */
#define SCHED_DISPATCH_SLICE 256
#define SCHED_HOST_LINGER_MS 2000 /* idle connections of a host without
				   * work */

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
 * waiting out host_delay_ms. */
struct host {
	TAILQ_ENTRY(host) ready_link;
	bool ready;
	struct job_list waiting;
	int n_waiting;
	int in_flight;
	int64_t next_start_ms;
	struct event *delay_ev;
	struct sched *s;
	char key[];
};
TAILQ_HEAD(host_list, host);

struct sched_load {
	struct sched *s;
	int64_t after_id;
	int limit;
	unsigned gen;
	struct store_row *rows;
	size_t n;
	int rc;
	char *cause;
};

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

static void sched_dispatch(struct sched *s);
static void sched_maybe_load(struct sched *s);
static void sched_lease_end_cb(evutil_socket_t fd, short what, void *arg);

static size_t sched_window(const struct sched *s)
{
	/* Eight rows per fetch in flight keep enough hosts in view when
	 * they are many and each takes few at a time; past a few thousand
	 * rows more add no host to choose from, only memory (80,000 rows,
	 * ~10 MB, at 10,000 in flight): twice the fetches, plus 8,192. */
	size_t f = (size_t)s->cfg->max_in_flight;
	size_t w = f * 8 < f * 2 + 8192 ? f * 8 : f * 2 + 8192;

	/* A shared store's claim is a round trip and an UPDATE of each row
	 * (SQLite's load a read of its file): fewer, larger ones.  And rows
	 * that fit the window as they are ingested are claimed in the same
	 * INSERT, with no UPDATE at all: at least 8192 of them (1.5 MiB). */
	if (s->shared) {
		w *= 4;
		return w < 8192 ? 8192 : w;
	}
	return w < 1024 ? 1024 : w;
}

static void sched_notify(struct sched *s)
{
	if (s->idle_cb != NULL)
		s->idle_cb(s->idle_arg);
}

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

/* Free a host that holds nothing any more; true if it did. */
static bool host_maybe_free(struct host *h)
{
	if (h->n_waiting > 0 || h->in_flight > 0 || h->delay_ev != NULL)
		return false;
	if (h->ready) {
		TAILQ_REMOVE(&h->s->ready, h, ready_link);
		h->ready = false;
	}
	map_del(h->s->hosts, h->key);
	free(h);
	return true;
}

static struct host *host_get(struct sched *s, const char *key)
{
	struct host *h = map_get(s->hosts, key);
	size_t klen;

	if (h != NULL)
		return h;
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
	host_make_ready(h);
	host_maybe_free(h);
	sched_dispatch(s);
}

static void job_free_result(struct job *j)
{
	if (j->res == NULL)
		return;
	fetch_result_free(j->res);
	free(j->res);
	j->res = NULL;
}

static void job_free(struct job *j)
{
	job_free_result(j);
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

/* Give a job a result of the scheduler's own making (no attempt made or
 * none that counts): the error, its detail (taken), and every measurement
 * unknown. */
static void job_fail(struct job *j, enum errkind kind, char *detail)
{
	struct fetch_result *r;

	job_free_result(j);
	r = j->res = xcalloc(1, sizeof *j->res);
	r->ok = false;
	r->error = kind;
	r->error_detail = detail;
	r->length = r->elapsed_ms = r->connect_ms = r->tls_ms = -1;
	r->decoded_length = r->dns_ms = r->ttfb_ms = -1;
	r->tls_resumed = -1;
	r->fetched_at_ms = util_wall_ms();
}

static const char *job_url(const struct job *j)
{
	if (j->cur != NULL)
		return j->cur;
	return j->ascii != NULL ? j->ascii : j->url;
}

/* Put a job (back) on the waiting list of the host of its current URL
 * ("host:port", so "h" and "h:80" are one host).  `front` keeps its place
 * ahead of rows loaded later.  The URL is parsed once, here, and the parts
 * kept with the job for the fetch. */
static int sched_enqueue(struct sched *s, struct job *j, bool front)
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

/* A job has its result (or, requeued, its attempts to store): hand it to
 * the batcher; the job comes back in sched_written_cb once it is written. */
static void sched_add_result(struct sched *s, struct job *j)
{
	struct store_result r = {.id = j->id};

	if (j->requeue) {
		r.state = STORE_QUEUED;
		r.attempts = j->attempts;
		if (j->handoff) {
			r.final_url = j->cur;
			r.redirects = j->redirects;
		}
		batcher_add(s->batcher, &r, j);
		return;
	}
	r.state = j->res->ok ? STORE_DONE : STORE_FAILED;
	r.status = j->res->ok ? j->res->status : 0;
	r.length = j->res->ok ? j->res->length : -1;
	r.error = j->res->error;
	r.error_detail = j->res->error_detail;
	r.attempts = j->res->attempts;
	/* Stored only when it differs (the view fills it in).  A fetch
	 * gives NULL for a URL that was already in its normal form. */
	const char *final = j->res->final_url;
	if (final == NULL)
		final = j->cur != NULL ? j->cur : j->ascii;
	r.final_url = final != NULL && strcmp(final, j->url) == 0 ? NULL
								  : final;
	r.redirects = j->res->redirects;
	r.content_type = j->res->content_type;
	r.fetched_at_ms = j->res->fetched_at_ms;
	r.elapsed_ms = j->res->elapsed_ms;
	r.connect_ms = j->res->connect_ms;
	r.tls_ms = j->res->tls_ms;
	r.etag = j->res->etag;
	r.last_modified = j->res->last_modified;
	r.body_sha256 = j->res->ok && j->res->body_sha256[0] != '\0'
				? j->res->body_sha256
				: NULL;
	r.warc_file = j->warc_file;
	r.warc_offset = j->warc_file != NULL ? j->warc_offset : -1;
	r.not_modified = j->res->ok ? j->res->not_modified : -1;
	r.decoded_length = j->res->ok ? j->res->decoded_length : -1;
	r.dns_ms = j->res->dns_ms;
	r.ttfb_ms = j->res->ttfb_ms;
	r.remote_ip = j->res->remote_ip[0] != '\0' ? j->res->remote_ip : NULL;
	r.tls_version = j->res->tls_version;
	r.tls_resumed = j->res->tls_resumed;
	if (j->res->ok && j->res->not_modified) {
		/* A 304 confirms the earlier response: its digest, and its
		 * validators where the 304 repeats none. */
		r.body_sha256 = j->prev_sha256;
		if (r.etag == NULL)
			r.etag = j->cond.etag;
		if (r.last_modified == NULL)
			r.last_modified = j->cond.last_modified;
	}
	batcher_add(s->batcher, &r, j);
}

/* A job leaves without a result (shutdown): its row stays queued.  When
 * this run made attempts at its URL, they are stored with it, so that the
 * next start continues the retry budget instead of starting it afresh.
 * After a redirect the row starts again from its own URL: nothing to
 * store. */
static void sched_requeue(struct sched *s, struct job *j)
{
	job_free_result(j);
	if (j->redirects > 0 || j->attempts <= j->loaded_attempts) {
		s->in_mem--;
		job_free(j);
		return;
	}
	j->requeue = true;
	sched_add_result(s, j);
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

/* A uniform random number for the retry jitter. */
static uint32_t sched_random(void)
{
	uint32_t rnd = 0;

	if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
		rnd = (uint32_t)rand();
	return rnd;
}

static void sched_load_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	(void)fd;
	(void)what;
	s->load_backoff = false;
	sched_maybe_load(s);
}

/* Rows can come from outside the queue file too (gatherd refetch adds
 * them straight to the database; on a shared store, other nodes and
 * submit --direct): once a second (ten times on a shared store), when
 * everything queued is loaded, look past the cursor.  An empty look is
 * one short index probe on the worker. */
static void sched_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	(void)fd;
	(void)what;
	if (s->exhausted && !s->loading && !s->load_backoff && !s->draining)
		sched_kick(s);
}

static void sched_unpause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	(void)fd;
	(void)what;
	s->paused = false;
	sched_dispatch(s);
}

/* Decide what a finished attempt means for its row: a redirect to follow,
 * a retry after a delay, or the row's result. */
/* A paused fetch may read again: its capture caught up. */
static void sched_resume_cb(void *arg)
{
	struct job *j = arg;

	fetch_resume(j->fetch);
}

/* The row's record is in its file (or could not be written): the result
 * can be stored now, naming it. */
static void sched_captured_cb(void *arg, struct capture_written *w)
{
	struct job *j = arg;
	struct sched *s = j->s;
	static int64_t warned_ms;

	s->n_capturing--;
	if (w->file[0] != '\0') {
		free(j->warc_file);
		j->warc_file = xstrdup(w->file);
		j->warc_offset = w->offset;
	} else {
		int64_t now = util_mono_ms();

		if (now - warned_ms >= 10000) {
			log_warn("%s: not archived: %s (the row is stored "
				 "without a record)",
				 job_url(j), w->error ? w->error : "error");
			warned_ms = now;
		}
	}
	sched_add_result(s, j);
	sched_notify(s);
}

/* The attempt's response goes to the archive when it is one to keep;
 * else its capture is dropped.  For the `final` response the row waits
 * for its record (true then). */
static bool sched_capture_end(struct sched *s, struct job *j, bool final)
{
	struct capture *c = j->cap;
	const struct fetch_result *r = j->res;

	j->cap = NULL;
	if (c == NULL)
		return false;
	if (r->archive == FETCH_ARCHIVE_NONE) {
		capture_abort(c);
		return false;
	}
	struct capture_end e = {
		.truncated = r->archive == FETCH_ARCHIVE_CUT,
		.payload_sha256 = r->body_sha256[0] != '\0' ? r->body_sha256
							     : NULL,
		.dedup = s->cfg->dedup && r->ok && r->status / 100 == 2 &&
			 r->archive == FETCH_ARCHIVE_WHOLE && r->body_bytes > 0,
		.not_modified = r->ok && r->not_modified,
		.refers_to_date_ms = j->prev_fetched_ms,
		.refers_to_sha256 = j->prev_sha256,
		.refers_to_file = j->prev_warc_file,
		.refers_to_offset = j->prev_warc_offset,
	};
	if (!final) {
		capture_finish(c, &e, NULL, NULL);
		return false;
	}
	s->n_capturing++;
	capture_finish(c, &e, sched_captured_cb, j);
	return true;
}

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
		job_free_result(j);
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
		job_free_result(j);
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
		job_fail(j, ERR_INVALID_URL,
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
		job_free_result(j);
		job_fail(j, ERR_TOO_MANY_REDIRECTS,
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
						   sched_random());
		struct timeval tv = {(time_t)(delay / 1000),
				     (suseconds_t)(delay % 1000) * 1000};

		log_debug("retrying %s in %lld ms (attempt %d: %s %d)",
			  job_url(j), (long long)delay, j->attempts,
			  r->ok ? "status" : errkind_name(r->error),
			  r->status);
		sched_capture_end(s, j, false);
		job_free_result(j);
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
	if (spent)
		conn_pool_close_key(s->fctx.pool, origin);
	if (host_maybe_free(h) && last && !spent)
		conn_pool_linger(s->fctx.pool, origin, SCHED_HOST_LINGER_MS);
	sched_dispatch(s);
}

/* Jobs waiting for their origin's robots.txt, by origin. */
struct sched_parked {
	struct job_list jobs;
};

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
	job_fail(j, ERR_ROBOTS, why);
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
			job_fail(j, ERR_INVALID_URL,
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

/* Has the fence (sched_set_fence()) been reached?  Said once. */
static bool sched_fence_reached(struct sched *s)
{
	if (s->fence_ms != 0 && !s->fenced && util_mono_ms() >= s->fence_ms) {
		log_warn("this node's leases were not renewed in time: "
			 "starting no fetch until they are");
		s->fenced = true;
	}
	return s->fenced;
}

/* Start fetches while the limits allow, taking hosts round-robin. */
static void sched_dispatch(struct sched *s)
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
			int64_t left = h->next_start_ms - now;
			struct timeval tv = {(time_t)(left / 1000),
					     (suseconds_t)(left % 1000) * 1000};

			h->delay_ev = event_new(s->base, -1, 0, host_delay_cb,
						h);
			if (h->delay_ev != NULL)
				event_add(h->delay_ev, &tv);
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
			host_maybe_free(h);
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

static void sched_load_work(void *arg)
{
	struct sched_load *ld = arg;

	ld->rc = store_load_queued(ld->s->store, ld->after_id, ld->limit,
				   &ld->rows, &ld->n, &ld->cause);
}

/* Make a queued row a job on its host's waiting list, taking the row's
 * strings. */
static void sched_add_row(struct sched *s, struct store_row *r)
{
	struct job *j = xcalloc(1, sizeof *j);
	int64_t id = r->id;

	j->id = id;
	j->url = r->url;
	j->attempts = j->loaded_attempts = r->attempts;
	j->cond.etag = r->cond_etag;
	j->cond.last_modified = r->cond_last_modified;
	j->prev_sha256 = r->prev_sha256;
	j->prev_fetched_ms = r->prev_fetched_ms;
	j->prev_warc_file = r->prev_warc_file;
	j->prev_warc_offset = r->prev_warc_offset;
	j->cur = r->resume_url;
	j->redirects = r->resume_redirects;
	j->s = s;
	s->cursor = id;
	if (s->draining) {
		job_free(j);
		return;
	}
	s->in_mem++;
	if (sched_enqueue(s, j, false) != 0) {
		/* Validated at ingestion, so only an older gatherd with laxer
		 * rules could have queued this. */
		job_fail(j, ERR_INVALID_URL,
			 xstrdup("not a valid http(s) URL"));
		j->res->redirects = -1;
		sched_add_result(s, j);
	}
}

static void sched_load_done(void *arg)
{
	struct sched_load *ld = arg;
	struct sched *s = ld->s;

	s->loading = false;
	if (ld->rc != 0) {
		log_error("cannot load queued rows (will retry in 1 s): %s",
			  ld->cause);
		free(ld->cause);
		free(ld);
		s->load_backoff = true;
		struct timeval tv = {1, 0};
		event_add(s->ev_load_retry, &tv);
		return;
	}
	for (size_t i = 0; i < ld->n; i++)
		sched_add_row(s, &ld->rows[i]);
	if (ld->n < (size_t)ld->limit && ld->gen == s->kick_gen)
		s->exhausted = true;
	free(ld->rows);
	free(ld);
	sched_dispatch(s);
	sched_notify(s);
}

/* Load more queued rows when the window has room, or when every waiting
 * job is stuck behind busy hosts while global slots are free (then the
 * window may grow, up to a hard cap, so other hosts get work). */
static void sched_maybe_load(struct sched *s)
{
	size_t w = sched_window(s);
	size_t cap = w * 16;
	size_t limit = 0;

	if (s->loading || s->load_backoff || s->exhausted || s->draining)
		return;
	if (s->in_mem < w / 2)
		limit = w - s->in_mem;
	else if (TAILQ_EMPTY(&s->ready) &&
		 s->n_in_flight < (size_t)s->cfg->max_in_flight &&
		 s->in_mem < cap)
		limit = w < cap - s->in_mem ? w : cap - s->in_mem;
	if (limit == 0)
		return;

	struct sched_load *ld = xcalloc(1, sizeof *ld);
	ld->s = s;
	ld->after_id = s->cursor;
	ld->limit = (int)limit;
	ld->gen = s->kick_gen;
	s->loading = true;
	to_thread(s->worker, sched_load_work, ld, sched_load_done);
}

/* A batch of results is written: its jobs are done with. */
static void sched_written_cb(void *arg, void **owners, size_t n)
{
	struct sched *s = arg;
	bool handed = false;

	for (size_t i = 0; i < n; i++) {
		struct job *j = owners[i];

		if (j->handoff) {
			/* Counted as a redirect already; claimable again. */
			handed = true;
		} else if (j->requeue) {
			/* Left queued at shutdown: counted; handed back to
			 * the node taking its shard: not. */
			s->n_requeued += !j->given_back;
		} else if (j->res->ok) {
			int c = j->res->status / 100;

			s->n_done++;
			s->counters.by_error[ERR_NONE]++;
			s->counters.by_class[c >= 1 && c <= 5 ? c : 0]++;
			if (j->res->length > 0)
				s->counters.bytes += (uint64_t)j->res->length;
		} else {
			s->n_failed++;
			if ((int)j->res->error > ERR_NONE &&
			    j->res->error < ERR_KIND_COUNT)
				s->counters.by_error[j->res->error]++;
		}
		job_free(j);
	}
	free(owners);
	s->in_mem -= n;
	if (handed)
		sched_kick(s); /* this node may hold the shard they went to */
	else
		sched_maybe_load(s);
	sched_notify(s);
}

static void job_free_owner(void *j)
{
	job_free(j);
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
	s->ev_load_retry = event_new(base, -1, 0, sched_load_retry_cb, s);
	s->ev_poll = event_new(base, -1, EV_PERSIST, sched_poll_cb, s);
	s->ev_lease_end = event_new(base, -1, 0, sched_lease_end_cb, s);
	s->ev_dispatch = event_new(base, -1, 0, sched_dispatch_cb, s);
	if (s->ev_unpause == NULL || s->ev_load_retry == NULL ||
	    s->ev_poll == NULL || s->ev_lease_end == NULL ||
	    s->ev_dispatch == NULL)
		util_oom();
	int poll_ms = s->shared ? SCHED_POLL_SHARED_MS : SCHED_POLL_MS;
	struct timeval tv = {poll_ms / 1000, (poll_ms % 1000) * 1000};
	event_add(s->ev_poll, &tv);
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

void sched_kick(struct sched *s)
{
	s->kick_gen++;
	s->exhausted = false;
	sched_maybe_load(s);
}

size_t sched_room(const struct sched *s)
{
	size_t w = sched_window(s);

	if (!s->shared || s->draining || s->in_mem >= w)
		return 0;
	return w - s->in_mem;
}

/* The rows a shared store claimed for this node as it inserted them
 * (sched_room() gave the room): taken as they are, then more are looked
 * for (the other lines may be this node's to claim too). */
static void sched_offer_claimed(struct sched *s,
				const struct store_line *lines, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (lines[i].id > 0 && lines[i].invalid_detail == NULL) {
			struct store_row r = {
				.id = lines[i].id,
				.url = xstrndup(lines[i].url, lines[i].len),
			};

			sched_add_row(s, &r);
		}
	}
	sched_kick(s);
	sched_dispatch(s);
	sched_notify(s);
}

void sched_offer(struct sched *s, const struct store_line *lines, size_t n)
{
	size_t valid = 0;
	int64_t first = 0;

	if (s->shared) {
		sched_offer_claimed(s, lines, n);
		return;
	}

	for (size_t i = 0; i < n; i++) {
		if (lines[i].invalid_detail == NULL) {
			if (valid++ == 0)
				first = lines[i].id;
		}
	}
	/* Only when every queued row older than these is in memory (the
	 * last load found them all and none is under way), so that the
	 * cursor may jump past them, and when they fit the window. */
	if (valid == 0 || !s->exhausted || s->loading || s->load_backoff ||
	    s->draining || first <= s->cursor ||
	    s->in_mem + valid > sched_window(s)) {
		sched_kick(s);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (lines[i].invalid_detail == NULL) {
			struct store_row r = {
				.id = lines[i].id,
				.url = xstrndup(lines[i].url, lines[i].len),
			};

			sched_add_row(s, &r);
		}
	}
	sched_dispatch(s);
	sched_notify(s);
}

/* Take in-flight job j back from its fetch (and its record), which ends
 * without a result. */
static void sched_unstart(struct sched *s, struct job *j)
{
	TAILQ_REMOVE(&s->in_flight_jobs, j, link);
	fetch_abort(j->fetch);
	j->fetch = NULL;
	capture_abort(j->cap);
	j->cap = NULL;
	j->host->in_flight--;
	s->n_in_flight--;
}

/* The leases are about to run out with no renewal: another node may take
 * this node's host shards any moment now and fetch their hosts, so the
 * fetches still running here end first, and their jobs wait for a renewal (or for
 * sched_forget(), if their rows went elsewhere meanwhile). */
static void sched_lease_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct job *j;
	size_t n = 0;

	(void)fd;
	(void)what;
	if (s->lease_end_ms == 0 || !sched_fence_reached(s))
		return;
	while ((j = TAILQ_FIRST(&s->in_flight_jobs)) != NULL) {
		struct host *h = j->host;

		sched_unstart(s, j);
		j->host = NULL;
		if (sched_enqueue(s, j, true) != 0)
			sched_requeue(s, j); /* cannot be: it was parsed */
		host_maybe_free(h);
		n++;
	}
	if (n > 0)
		log_warn("this node's leases are running out: aborted %zu "
			 "fetch%s in flight, to start again once they are "
			 "renewed",
			 n, n == 1 ? "" : "es");
	sched_notify(s);
}

void sched_set_fence(struct sched *s, int64_t fence_ms, int64_t end_ms)
{
	s->fence_ms = fence_ms;
	s->lease_end_ms = end_ms;
	if (end_ms == 0) {
		event_del(s->ev_lease_end);
	} else {
		int64_t left = end_ms - util_mono_ms();
		struct timeval tv = {0, 0};

		if (left > 0) {
			tv.tv_sec = (time_t)(left / 1000);
			tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		}
		event_add(s->ev_lease_end, &tv);
	}
	if (s->fenced && (fence_ms == 0 || util_mono_ms() < fence_ms)) {
		log_info("leases renewed: starting fetches again");
		s->fenced = false;
		sched_dispatch(s);
	}
}

static int sched_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* For sched_forget(): the sorted ids, and the lists to look through. */
struct sched_forget {
	const int64_t *ids;
	size_t n;
	bool unbegun; /* only jobs not yet begun (no redirect followed) */
	struct host **hosts;
	size_t n_hosts;
	struct job_list dropped;
};

static bool sched_forget_has(const struct sched_forget *f, int64_t id)
{
	return bsearch(&id, f->ids, f->n, sizeof *f->ids, sched_cmp_id) !=
	       NULL;
}

static void sched_forget_host(void *arg, const char *key, void *value)
{
	struct sched_forget *f = arg;

	(void)key;
	f->hosts[f->n_hosts++] = value;
}

/* Move the jobs of `list` that f names to f->dropped; how many. */
static size_t sched_forget_list(struct sched_forget *f, struct job_list *list)
{
	struct job *j, *next;
	size_t n = 0;

	for (j = TAILQ_FIRST(list); j != NULL; j = next) {
		next = TAILQ_NEXT(j, link);
		if (!sched_forget_has(f, j->id) ||
		    (f->unbegun && j->redirects > 0))
			continue;
		TAILQ_REMOVE(list, j, link);
		TAILQ_INSERT_TAIL(&f->dropped, j, link);
		n++;
	}
	return n;
}

static void sched_forget_parked(void *arg, const char *key, void *value)
{
	struct sched_parked *p = value;

	(void)key;
	sched_forget_list(arg, &p->jobs);
}

/* Set f up for ids (sorted into a copy) and move the waiting jobs of
 * every host that it names to f->dropped. */
static void sched_forget_waiting(struct sched *s, struct sched_forget *f,
				 const int64_t *ids, size_t n)
{
	int64_t *sorted = xmalloc(n * sizeof *sorted);

	memcpy(sorted, ids, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, sched_cmp_id);
	f->ids = sorted;
	f->n = n;
	TAILQ_INIT(&f->dropped);
	f->hosts = xmalloc((map_count(s->hosts) + 1) * sizeof *f->hosts);
	map_foreach(s->hosts, sched_forget_host, f);
	for (size_t i = 0; i < f->n_hosts; i++) {
		struct host *h = f->hosts[i];
		size_t k = sched_forget_list(f, &h->waiting);

		h->n_waiting -= (int)k;
		s->n_waiting -= k;
		host_maybe_free(h);
	}
}

void sched_give_back(struct sched *s, const int64_t *ids, size_t n)
{
	struct sched_forget f = {.unbegun = true};
	struct job *j;
	size_t given = 0;

	if (n == 0 || s->draining)
		return;
	sched_forget_waiting(s, &f, ids, n);
	while ((j = TAILQ_FIRST(&f.dropped)) != NULL) {
		TAILQ_REMOVE(&f.dropped, j, link);
		j->requeue = j->given_back = true;
		sched_add_result(s, j);
		given++;
	}
	if (given > 0)
		log_debug("handing back %zu waiting row%s of host shards "
			  "going to other nodes",
			  given, given == 1 ? "" : "s");
	free(f.hosts);
	free((int64_t *)f.ids);
	sched_notify(s);
}

void sched_forget(struct sched *s, const int64_t *ids, size_t n)
{
	struct sched_forget f = {0};
	struct job *j;
	size_t dropped = 0, running = 0;

	if (n == 0)
		return;
	sched_forget_waiting(s, &f, ids, n);
	map_foreach(s->parked, sched_forget_parked, &f);
	sched_forget_list(&f, &s->sleeping); /* asleep before a retry */
	TAILQ_FOREACH(j, &s->in_flight_jobs, link)
		running += sched_forget_has(&f, j->id);
	while ((j = TAILQ_FIRST(&f.dropped)) != NULL) {
		TAILQ_REMOVE(&f.dropped, j, link);
		s->in_mem--;
		dropped++;
		job_free(j);
	}
	if (dropped > 0 || running > 0)
		log_warn("dropped %zu row%s of host shards this node lost "
			 "(%zu in flight, whose results will not be "
			 "recorded here)",
			 dropped, dropped == 1 ? "" : "s", running);
	free(f.hosts);
	free((int64_t *)f.ids);
	sched_dispatch(s);
	sched_notify(s);
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
		host_maybe_free(j->host);
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
	st->hosts = map_count(s->hosts);
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
		job_free(j);
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
		job_free(j);
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
		job_free(j);
	}
	batcher_free(s->batcher, job_free_owner);
	while ((j = TAILQ_FIRST(&s->sleeping)) != NULL) {
		TAILQ_REMOVE(&s->sleeping, j, link);
		job_free(j);
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

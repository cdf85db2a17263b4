/* robots.txt on the wire: see robots_fetch.h. */
#include "robots_fetch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "config.h"
#include "fetch.h"
#include "http.h"
#include "log.h"
#include "lru.h"
#include "policy.h"
#include "robots.h"
#include "util.h"

/* An origin's rules.  While its first robots.txt is on its way, rules is
 * NULL; a refresh keeps the old rules answering meanwhile. */
struct robots_entry {
	struct robots *rules;
	int64_t expires_ms; /* monotonic */
	int64_t delay_ms;   /* Crawl-delay, capped */
	bool fetching;
	int attempts;       /* failed requests of the fetch under way */
};

/* One origin's robots.txt being fetched, hop by hop. */
struct robots_job {
	LIST_ENTRY(robots_job) link;
	struct robots_cache *rc;
	char *origin;
	char *url; /* of this hop */
	struct url_ref ref;
	int hops;
	int attempts; /* failed requests so far (robots_entry's, carried) */
	struct fetch *fetch;
	struct event *retry_ev; /* waiting to try again (robots_retry_cb) */
	struct fetch_tap tap;
	char *body;
	size_t len, cap;
};
LIST_HEAD(robots_job_list, robots_job);

struct robots_cache {
	struct fetch_ctx fctx;
	void (*ready)(void *, const char *);
	void *arg;
	struct lru *cache; /* origin -> struct robots_entry */
	struct robots_job_list jobs;
	size_t in_flight;
	struct robots_cache_stats st;
};

static void robots_entry_free(void *v)
{
	struct robots_entry *e = v;

	robots_free(e->rules);
	free(e);
}

struct robots_cache *robots_cache_new(const struct fetch_ctx *fctx,
				      void (*ready)(void *, const char *),
				      void *arg)
{
	struct robots_cache *rc = xcalloc(1, sizeof *rc);

	rc->fctx = *fctx;
	rc->ready = ready;
	rc->arg = arg;
	rc->cache = lru_new(ROBOTS_CACHE_ORIGINS, robots_entry_free);
	LIST_INIT(&rc->jobs);
	return rc;
}

static void robots_job_free(struct robots_job *j)
{
	LIST_REMOVE(j, link);
	if (j->retry_ev != NULL)
		event_free(j->retry_ev);
	free(j->origin);
	free(j->url);
	free(j->body);
	free(j);
}

void robots_cache_free(struct robots_cache *rc)
{
	struct robots_job *j;

	if (rc == NULL)
		return;
	while ((j = LIST_FIRST(&rc->jobs)) != NULL) {
		fetch_abort(j->fetch);
		robots_job_free(j);
	}
	lru_free(rc->cache);
	free(rc);
}

/* The body, kept up to the parse limit (one byte more, so that the parser
 * knows a last line was cut). */
static void robots_body_cb(void *arg, const void *p, size_t n)
{
	struct robots_job *j = arg;
	size_t room = ROBOTS_PARSE_LIMIT + 1 - j->len;

	if (n > room)
		n = room;
	if (n == 0)
		return;
	if (j->len + n > j->cap) {
		/* Grown as bytes come: most robots.txt are a few KiB, and a
		 * crawl of many hosts fetches hundreds of them at once. */
		size_t cap = j->cap > 0 ? j->cap : 4096;

		while (cap < j->len + n)
			cap *= 2;
		if (cap > ROBOTS_PARSE_LIMIT + 1)
			cap = ROBOTS_PARSE_LIMIT + 1;
		j->body = xrealloc(j->body, cap);
		j->cap = cap;
	}
	memcpy(j->body + j->len, p, n);
	j->len += n;
}

static void robots_fetch_done(void *arg, struct fetch_result *res);

/* Fetch j->url (robots.txt, or where it redirected). */
static int robots_job_go(struct robots_job *j)
{
	const char *reason = NULL;

	if (url_parse_ref(j->url, strlen(j->url), &j->ref, &reason) != 0)
		return -1;
	j->len = 0;
	j->rc->in_flight++;
	j->rc->st.fetches++;
	j->fetch = fetch_start(&j->rc->fctx, j->url, &j->ref, NULL, &j->tap,
			       robots_fetch_done, j);
	return 0;
}

/* The rules an outcome gives, and for how long they hold. */
static struct robots *robots_outcome(struct robots_job *j,
				     const struct fetch_result *res,
				     int64_t *ttl_s)
{
	const struct config *cfg = j->rc->fctx.cfg;
	int status = res->status;

	*ttl_s = cfg->robots_ttl_s;
	if (res->ok && status >= 200 && status <= 299)
		return robots_parse(j->body ? j->body : "", j->len,
				    cfg->user_agent);
	if (!res->ok && res->error == ERR_TOO_LARGE && j->len > 0)
		return robots_parse(j->body, j->len, cfg->user_agent);
	if (res->ok && (status == 429 || status >= 500)) {
		/* RFC 9309 2.3.1.3 (and 429, as the big crawlers treat it):
		 * the server is in trouble; ask again later. */
		if (*ttl_s > ROBOTS_UNREACHABLE_TTL_S)
			*ttl_s = ROBOTS_UNREACHABLE_TTL_S;
		char *why = util_printf("%s/robots.txt answered %d: everything "
					"is disallowed until it can be read "
					"(RFC 9309 2.3.1.3)",
					j->origin, status);
		struct robots *r = robots_disallow_all(why);

		free(why);
		return r;
	}
	if (res->ok) /* 4xx, too many redirects, anything else: no rules */
		return robots_allow_all();
	if (*ttl_s > ROBOTS_UNREACHABLE_TTL_S)
		*ttl_s = ROBOTS_UNREACHABLE_TTL_S;
	char *why = util_printf("%s/robots.txt could not be fetched (%s: %s): "
				"everything is disallowed until it can be "
				"(RFC 9309 2.3.1.4)",
				j->origin, errkind_name(res->error),
				res->error_detail ? res->error_detail : "");
	struct robots *r = robots_disallow_all(why);

	free(why);
	return r;
}

/* A retry's time has come.  The job ends and the origin's URLs go back
 * to their hosts: the first of them that the scheduler dispatches asks
 * again, which starts the fetch anew (its attempts carried in the entry),
 * so that a retry starts only as any fetch does: within max_in_flight,
 * not while draining, not past a shared store's fence. */
static void robots_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct robots_job *j = arg;
	struct robots_cache *rc = j->rc;
	struct robots_entry *e = lru_get(rc->cache, j->origin);
	char *origin = j->origin;

	(void)fd;
	(void)what;
	if (e != NULL) {
		e->fetching = false;
		e->attempts = j->attempts;
	}
	j->origin = NULL;
	robots_job_free(j);
	rc->ready(rc->arg, origin);
	free(origin);
}

/* Fetch robots.txt again in `ms` ms; the URLs keep waiting. */
static void robots_job_later(struct robots_job *j, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
			     (suseconds_t)(ms % 1000) * 1000};

	if (j->retry_ev == NULL)
		j->retry_ev = event_new(j->rc->fctx.base, -1, 0,
					robots_retry_cb, j);
	if (j->retry_ev == NULL)
		util_oom();
	event_add(j->retry_ev, &tv);
}

static void robots_fetch_done(void *arg, struct fetch_result *res)
{
	struct robots_job *j = arg;
	struct robots_cache *rc = j->rc;
	const struct config *cfg = rc->fctx.cfg;

	j->fetch = NULL;
	rc->in_flight--;
	if (res->fd_exhausted) {
		/* Not the server's doing: soon again. */
		fetch_result_free(res);
		robots_job_later(j, 250);
		return;
	}
	/* A failure worth another attempt (the pages' rule: policy.c) is
	 * tried again, up to [fetch] retries for the whole fetch (redirect
	 * hops included; a retry starts again from /robots.txt), before the
	 * origin counts as unreachable: one reset connection or 503 must not
	 * refuse all of its URLs for ROBOTS_UNREACHABLE_TTL_S. */
	struct policy_outcome o = {
		.ok = res->ok,
		.status = res->status,
		.error = res->error,
		.retry_after_ms = res->retry_after_ms,
	};
	if (policy_decide(cfg, &o, ++j->attempts, 0, false) == POLICY_RETRY) {
		int64_t delay = policy_retry_delay(cfg, j->attempts,
						   res->retry_after_ms,
						   util_random32());

		log_debug("robots.txt of %s: retrying in %lld ms (attempt %d: "
			  "%s %d)",
			  j->origin, (long long)delay, j->attempts,
			  res->ok ? "status" : errkind_name(res->error),
			  res->status);
		fetch_result_free(res);
		robots_job_later(j, delay);
		return;
	}
	/* A redirect: follow it, within the hop budget (RFC 9309 2.3.1.2). */
	if (res->ok && http_is_redirect(res->status) && res->location != NULL &&
	    j->hops < ROBOTS_MAX_REDIRECTS) {
		free(j->url);
		j->url = res->location;
		res->location = NULL;
		j->hops++;
		fetch_result_free(res);
		if (robots_job_go(j) == 0)
			return;
		/* An unusable target: no robots.txt. */
		memset(res, 0, sizeof *res);
		res->ok = true;
		res->status = 404;
	}

	int64_t ttl_s;
	struct robots *rules = robots_outcome(j, res, &ttl_s);
	struct robots_entry *e = lru_get(rc->cache, j->origin);

	if (e == NULL) {
		e = xcalloc(1, sizeof *e);
		lru_put(rc->cache, j->origin, e);
	}
	robots_free(e->rules);
	e->rules = rules;
	e->fetching = false;
	e->attempts = 0;
	e->expires_ms = util_mono_ms() + ttl_s * 1000;
	double d = robots_crawl_delay(rules);
	if (d > cfg->robots_max_crawl_delay_s)
		d = cfg->robots_max_crawl_delay_s;
	e->delay_ms = d > 0 ? (int64_t)(d * 1000) : 0;
	log_debug("robots.txt of %s: %zu rules, Crawl-delay %lld ms, kept "
		  "%lld s",
		  j->origin, robots_rule_count(rules), (long long)e->delay_ms,
		  (long long)ttl_s);
	fetch_result_free(res);
	char *origin = j->origin;
	j->origin = NULL;
	robots_job_free(j);
	rc->ready(rc->arg, origin);
	free(origin);
}

/* Start fetching origin's robots.txt (its entry is there, fetching). */
static void robots_job_start(struct robots_cache *rc, const char *origin,
			     struct robots_entry *e)
{
	struct robots_job *j = xcalloc(1, sizeof *j);

	j->rc = rc;
	j->origin = xstrdup(origin);
	j->url = util_printf("%s/robots.txt", origin);
	j->attempts = e->attempts;
	j->tap.body = robots_body_cb;
	j->tap.body_limit = ROBOTS_PARSE_LIMIT + 1;
	j->tap.arg = j;
	LIST_INSERT_HEAD(&rc->jobs, j, link);
	if (robots_job_go(j) != 0) {
		/* Origins come from parsed URLs: cannot happen.  No rules,
		 * then, for a while. */
		log_error("robots.txt of %s: bad URL", origin);
		robots_job_free(j);
		if (e->rules == NULL)
			e->rules = robots_allow_all();
		e->fetching = false;
		e->expires_ms = util_mono_ms() + ROBOTS_UNREACHABLE_TTL_S * 1000;
	}
}

enum robots_answer robots_cache_ask(struct robots_cache *rc, const char *url,
				    const struct url_ref *ref, char **why,
				    int64_t *delay_ms, char *origin,
				    size_t size)
{
	struct robots_entry *e;

	*why = NULL;
	*delay_ms = 0;
	if (url_ref_origin(ref, url, origin, size) < 0)
		return ROBOTS_ALLOW; /* cannot happen: origins are short */
	e = lru_get(rc->cache, origin);
	if (e == NULL) {
		e = xcalloc(1, sizeof *e);
		e->fetching = true;
		lru_put(rc->cache, origin, e);
		robots_job_start(rc, origin, e);
	} else if (!e->fetching && util_mono_ms() >= e->expires_ms) {
		/* Stale: fetched again, the old rules answer meanwhile. */
		e->fetching = true;
		robots_job_start(rc, origin, e);
	}
	if (e->rules == NULL)
		return ROBOTS_PENDING;

	/* The request target, with the "/" of an empty path. */
	const char *t = url + ref->target_off;
	size_t tl = ref->target_len;
	char *buf = NULL;
	if (ref->flags & URL_REF_SLASH) {
		buf = xmalloc(tl + 2);
		buf[0] = '/';
		memcpy(buf + 1, t, tl);
		buf[tl + 1] = '\0';
		t = buf;
		tl++;
	}
	struct robots_verdict v = robots_check(e->rules, t, tl);
	free(buf);
	*delay_ms = e->delay_ms;
	if (v.allowed)
		return ROBOTS_ALLOW;
	rc->st.denied++;
	*why = util_printf("%s (%s/robots.txt)", v.rule ? v.rule : "disallowed",
			   origin);
	return ROBOTS_DENY;
}

size_t robots_cache_abort(struct robots_cache *rc)
{
	struct robots_job *j;
	char **wait = NULL;
	size_t n_wait = 0, aborted = 0;

	while ((j = LIST_FIRST(&rc->jobs)) != NULL) {
		struct robots_entry *e = lru_get(rc->cache, j->origin);

		if (j->fetch != NULL) {
			fetch_abort(j->fetch);
			j->fetch = NULL;
			rc->in_flight--;
			aborted++;
		}
		if (e != NULL && e->rules != NULL) {
			/* A refresh: the old rules go on answering, and the
			 * next question after this fetches it again. */
			e->fetching = false;
		} else {
			/* Asked again, and fetched anew, by its URLs. */
			lru_remove(rc->cache, j->origin);
			wait = xrealloc(wait, (n_wait + 1) * sizeof *wait);
			wait[n_wait++] = j->origin;
			j->origin = NULL;
		}
		robots_job_free(j);
	}
	for (size_t i = 0; i < n_wait; i++) {
		rc->ready(rc->arg, wait[i]);
		free(wait[i]);
	}
	free(wait);
	return aborted;
}

size_t robots_cache_in_flight(const struct robots_cache *rc)
{
	return rc->in_flight;
}

void robots_cache_get_stats(const struct robots_cache *rc,
			    struct robots_cache_stats *st)
{
	*st = rc->st;
	st->origins = lru_count(rc->cache);
}

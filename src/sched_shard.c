/* The scheduler on a shared store (sched_state.h): no fetch starts past
 * the fence when this node's leases were not renewed, the fetches still
 * running end just before the leases can run out, and rows of host shards
 * that go to other nodes are given back or dropped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "log.h"
#include "map.h"
#include "robots_fetch.h"
#include "sched_state.h"
#include "util.h"

/* Has the fence (sched_set_fence()) been reached?  Said once. */
bool sched_fence_reached(struct sched *s)
{
	if (s->fence_ms != 0 && !s->fenced && util_mono_ms() >= s->fence_ms) {
		log_warn("this node's leases were not renewed in time: "
			 "starting no fetch until they are");
		s->fenced = true;
	}
	return s->fenced;
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
		sched_host_maybe_free(h);
		n++;
	}
	/* robots.txt requests too: the node that takes a host's shard
	 * fetches its robots.txt itself.  Their URLs wait again. */
	n += robots_cache_abort(s->robots);
	if (n > 0)
		log_warn("this node's leases are running out: aborted %zu "
			 "fetch%s in flight, to start again once they are "
			 "renewed",
			 n, n == 1 ? "" : "es");
	sched_notify(s);
}

void sched_shard_init(struct sched *s)
{
	s->ev_lease_end = event_new(s->base, -1, 0, sched_lease_end_cb, s);
	if (s->ev_lease_end == NULL)
		util_oom();
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
		sched_host_maybe_free(h);
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
		sched_job_free(j);
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

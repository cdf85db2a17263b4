/* The shared store's upkeep: see upkeep.h. */
#include "upkeep.h"

#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "store.h"
#include "thread.h"
#include "util.h"

struct upkeep {
	struct store *store;
	struct worker *worker;
	struct event *ev;
	void (*news_cb)(void *, const struct upkeep_news *);
	void *arg;
	int lease_s;
	bool busy;    /* a tick is at the worker */
	bool failing; /* the last tick failed (said once) */
	bool freed;   /* upkeep_free() came while busy */
	int64_t sent_ms; /* when the worker began the tick: its statements
			  * were sent after this */
	struct store_tick_out out;
	int rc;
	char *cause;
};

int64_t upkeep_fence_ms(int lease_s, int64_t sent_ms)
{
	int64_t lease_ms = (int64_t)lease_s * 1000;

	return sent_ms + lease_ms - lease_ms / 6;
}

int64_t upkeep_end_ms(int lease_s, int64_t sent_ms)
{
	int64_t lease_ms = (int64_t)lease_s * 1000;

	return sent_ms + lease_ms - lease_ms / 12;
}

static void upkeep_work(void *arg)
{
	struct upkeep *u = arg;

	/* Here, not when the tick was queued: a tick that waited behind
	 * other work at the worker renewed the leases later than that. */
	u->sent_ms = util_mono_ms();
	u->rc = store_tick(u->store, &u->out, &u->cause);
}

static void upkeep_done(void *arg)
{
	struct upkeep *u = arg;

	u->busy = false;
	if (u->freed) {
		free(u->out.lost);
		free(u->out.release);
		free(u->cause);
		free(u);
		return;
	}
	if (u->rc != 0) {
		/* Leases run out if this goes on: say so, once per spell. */
		if (!u->failing)
			log_warn(
			    "cannot renew this node's leases (will retry): "
			    "%s",
			    u->cause);
		u->failing = true;
	} else {
		if (u->failing)
			log_info("leases renewed again");
		u->failing = false;
	}
	/* Rows found lost are news even when a later statement failed. */
	if (u->out.gained || u->out.renewed || u->out.n_lost > 0 ||
	    u->out.n_release > 0) {
		struct upkeep_news n = {
		    .gained = u->out.gained,
		    .fence_ms = u->out.renewed
				    ? upkeep_fence_ms(u->lease_s, u->sent_ms)
				    : 0,
		    .end_ms = u->out.renewed
				  ? upkeep_end_ms(u->lease_s, u->sent_ms)
				  : 0,
		    .lost = u->out.lost,
		    .n_lost = u->out.n_lost,
		    .release = u->out.release,
		    .n_release = u->out.n_release,
		};

		u->news_cb(u->arg, &n);
	}
	free(u->out.lost);
	free(u->out.release);
	u->out = (struct store_tick_out){0};
	free(u->cause);
	u->cause = NULL;
}

static void upkeep_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upkeep *u = arg;

	(void)fd;
	(void)what;
	if (u->busy)
		return; /* the last one is still at it */
	u->busy = true;
	to_thread(u->worker, upkeep_work, u, upkeep_done);
}

struct upkeep *upkeep_start(struct event_base *base, struct worker *w,
			    struct store *st, int lease_s,
			    void (*news_cb)(void *, const struct upkeep_news *),
			    void *arg)
{
	int ms = store_tick_ms(st);
	struct upkeep *u;

	if (ms <= 0)
		return NULL;
	u = xcalloc(1, sizeof *u);
	u->store = st;
	u->worker = w;
	u->news_cb = news_cb;
	u->lease_s = lease_s;
	u->arg = arg;
	u->ev = event_new(base, -1, EV_PERSIST, upkeep_timer_cb, u);
	if (u->ev == NULL)
		util_oom();
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(u->ev, &tv);
	return u;
}

void upkeep_free(struct upkeep *u)
{
	if (u == NULL)
		return;
	event_free(u->ev);
	if (u->busy) {
		u->freed = true; /* upkeep_done frees it */
		return;
	}
	free(u->cause);
	free(u);
}

/* The result batcher: see batcher.h. */
#include "batcher.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "store.h"
#include "thread.h"
#include "util.h"

#define BATCHER_MAX 4096    /* results per transaction at most */
#define BATCHER_FLUSH_MS 5  /* how long a result may wait for others */

/* One batch: its results, written in one transaction, and their owners. */
struct batch {
	struct batcher *b;
	struct store_result *res;
	void **owners;
	size_t n;
	int rc;
	int64_t took_ms; /* the write, on the worker */
	char *cause;
};

struct batcher {
	struct event_base *base;
	struct worker *worker;
	struct store *store;
	batcher_written_cb cb;
	void *cb_arg;
	struct batch pending;  /* gathering (res/owners grow as needed) */
	size_t cap;
	struct batch *writing; /* at the worker, or waiting to be retried */
	struct event *ev_flush;
	struct event *ev_retry;
	struct batcher_stats stats;
};

static void batcher_flush(struct batcher *b);

static void batcher_write_work(void *arg)
{
	struct batch *bt = arg;
	int64_t t0 = util_mono_ms();

	bt->rc = store_put_results(bt->b->store, bt->res, bt->n, &bt->cause);
	bt->took_ms = util_mono_ms() - t0;
}

static void batch_free(struct batch *bt)
{
	free(bt->res);
	free(bt->owners);
	free(bt->cause);
	free(bt);
}

static void batcher_write_done(void *arg)
{
	struct batch *bt = arg;
	struct batcher *b = bt->b;

	if (bt->rc != 0) {
		b->stats.failures++;
		b->stats.failing = true;
		log_error("cannot record %zu results (will retry in 1 s): %s",
			  bt->n, bt->cause);
		free(bt->cause);
		bt->cause = NULL;
		struct timeval tv = {1, 0};
		event_add(b->ev_retry, &tv);
		return;
	}
	b->writing = NULL;
	b->stats.batches++;
	b->stats.rows += bt->n;
	b->stats.failing = false;
	metrics_hist_observe(&b->stats.latency, bt->took_ms);
	/* What arrived meanwhile goes at once: group commit. */
	if (b->pending.n > 0)
		batcher_flush(b);
	b->cb(b->cb_arg, bt->owners, bt->n);
	bt->owners = NULL; /* the callee's now */
	batch_free(bt);
}

static void batcher_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct batcher *b = arg;

	(void)fd;
	(void)what;
	to_thread(b->worker, batcher_write_work, b->writing,
		  batcher_write_done);
}

/* Hand up to BATCHER_MAX pending results to the worker as one batch. */
static void batcher_flush(struct batcher *b)
{
	struct batch *bt;
	size_t n;

	event_del(b->ev_flush);
	if (b->writing != NULL || b->pending.n == 0)
		return;
	n = b->pending.n < BATCHER_MAX ? b->pending.n : BATCHER_MAX;
	bt = xcalloc(1, sizeof *bt);
	bt->b = b;
	bt->n = n;
	if (n == b->pending.n) {
		/* The common case: take the arrays as they are. */
		bt->res = b->pending.res;
		bt->owners = b->pending.owners;
		b->pending.res = NULL;
		b->pending.owners = NULL;
		b->pending.n = 0;
		b->cap = 0;
	} else {
		bt->res = xmalloc(n * sizeof *bt->res);
		bt->owners = xmalloc(n * sizeof *bt->owners);
		memcpy(bt->res, b->pending.res, n * sizeof *bt->res);
		memcpy(bt->owners, b->pending.owners, n * sizeof *bt->owners);
		b->pending.n -= n;
		memmove(b->pending.res, b->pending.res + n,
			b->pending.n * sizeof *bt->res);
		memmove(b->pending.owners, b->pending.owners + n,
			b->pending.n * sizeof *bt->owners);
	}
	b->writing = bt;
	to_thread(b->worker, batcher_write_work, bt, batcher_write_done);
}

static void batcher_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	batcher_flush(arg);
}

void batcher_add(struct batcher *b, const struct store_result *r,
		 void *owner)
{
	struct batch *p = &b->pending;

	if (p->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		p->res = xrealloc(p->res, b->cap * sizeof *p->res);
		p->owners = xrealloc(p->owners, b->cap * sizeof *p->owners);
	}
	p->res[p->n] = *r;
	p->owners[p->n] = owner;
	p->n++;
	if (b->writing != NULL)
		return; /* goes when the current write is done */
	if (p->n >= BATCHER_MAX) {
		batcher_flush(b);
	} else if (!event_pending(b->ev_flush, EV_TIMEOUT, NULL)) {
		struct timeval tv = {0, BATCHER_FLUSH_MS * 1000};

		event_add(b->ev_flush, &tv);
	}
}

void batcher_get_stats(const struct batcher *b, struct batcher_stats *st)
{
	*st = b->stats;
}

bool batcher_idle(const struct batcher *b)
{
	return b->writing == NULL && b->pending.n == 0;
}

size_t batcher_pending(const struct batcher *b)
{
	return b->pending.n + (b->writing != NULL ? b->writing->n : 0);
}

struct batcher *batcher_new(struct event_base *base, struct worker *w,
			    struct store *st, batcher_written_cb cb,
			    void *arg)
{
	struct batcher *b = xcalloc(1, sizeof *b);

	b->base = base;
	b->worker = w;
	b->store = st;
	b->cb = cb;
	b->cb_arg = arg;
	b->ev_flush = event_new(base, -1, 0, batcher_flush_cb, b);
	b->ev_retry = event_new(base, -1, 0, batcher_retry_cb, b);
	if (b->ev_flush == NULL || b->ev_retry == NULL)
		util_oom();
	return b;
}

void batcher_free(struct batcher *b, void (*free_owner)(void *))
{
	if (b == NULL)
		return;
	if (b->writing != NULL) {
		/* A batch whose write failed, waiting to be tried again. */
		for (size_t i = 0; i < b->writing->n; i++)
			free_owner(b->writing->owners[i]);
		batch_free(b->writing);
	}
	for (size_t i = 0; i < b->pending.n; i++)
		free_owner(b->pending.owners[i]);
	free(b->pending.res);
	free(b->pending.owners);
	event_free(b->ev_flush);
	event_free(b->ev_retry);
	free(b);
}

/* The scheduler's window of queued rows (sched_state.h): loads from the
 * store on the worker, rows offered as they are ingested, and the poll for
 * rows added by others. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "sched_state.h"
#include "store.h"
#include "thread.h"
#include "util.h"

#define SCHED_POLL_MS 1000     /* look for rows added by others */
/* The same on a shared store, where most rows come from others: each
 * node's queue file holds lines of every node's host shards. */
#define SCHED_POLL_SHARED_MS 100

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
		sched_job_free(j);
		return;
	}
	s->in_mem++;
	if (sched_enqueue(s, j, false) != 0) {
		/* Validated at ingestion, so only an older gatherd with laxer
		 * rules could have queued this. */
		sched_job_fail(j, ERR_INVALID_URL,
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
void sched_maybe_load(struct sched *s)
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

void sched_load_init(struct sched *s)
{
	int poll_ms = s->shared ? SCHED_POLL_SHARED_MS : SCHED_POLL_MS;
	struct timeval tv = {poll_ms / 1000, (poll_ms % 1000) * 1000};

	s->ev_load_retry = event_new(s->base, -1, 0, sched_load_retry_cb, s);
	s->ev_poll = event_new(s->base, -1, EV_PERSIST, sched_poll_cb, s);
	if (s->ev_load_retry == NULL || s->ev_poll == NULL)
		util_oom();
	event_add(s->ev_poll, &tv);
}

/* Keeping fetched responses in WARC files: see capture.h.
 *
 * Ownership: a struct capture is the loop's; only its `rec` belongs to the
 * worker, which alone calls warc.c.  Jobs for one capture run on the
 * worker in the order they were sent (to_thread keeps order), so the
 * record is begun, fed and finished in order without any lock.  The
 * capture is freed on the loop when it has ended (finished or aborted)
 * and its last job is back. */
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "config.h"
#include "fetch.h"
#include "log.h"
#include "lru.h"
#include "thread.h"
#include "util.h"

#define CAPTURE_CHUNK (64 * 1024) /* bytes per job while a body streams */
/* A capture with this much on its way to the disk (counted as memory
 * held) pauses its fetch, and resumes it below half of it; the same for
 * all captures together. */
#define CAPTURE_MAX_PENDING (256 * 1024)
#define CAPTURE_MAX_PENDING_ALL (2 * 1024 * 1024)

/* What a job does, in this order. */
enum {
	CJ_DROP = 1,   /* abort the record begun earlier (a new attempt) */
	CJ_BEGIN = 2,  /* begin a record */
	CJ_FINISH = 4, /* write it */
};

struct capture {
	struct captures *cs;
	struct fetch_tap tap;
	char *uri;
	/* Of the attempt being captured (set by the tap's start). */
	int64_t date_ms;
	char ip[46];
	char *request;
	size_t request_len;
	unsigned char *buf; /* the chunk being filled */
	size_t len, cap;
	bool started;   /* the tap's start ran */
	bool begun;     /* a job that begins the record was sent */
	bool restart;   /* the next job drops the record and begins anew */
	bool ended;     /* finished or aborted: free when jobs == 0 */
	bool paused;
	TAILQ_ENTRY(capture) pause_link;
	size_t pending; /* bytes in jobs not yet back */
	int jobs;       /* jobs not yet back */
	void (*resume)(void *);
	void *resume_arg;
	struct warc_record *rec; /* the worker's */
};
TAILQ_HEAD(capture_list, capture);

struct captures {
	struct worker *worker;
	const struct config *cfg;
	struct capture_list paused;
	size_t n_paused;
	size_t pending;
	bool held; /* capture_full() said so: call room() below half */
	void (*room)(void *);
	void *room_arg;
	struct capture_stats st;
	char *dir; /* [capture] warc_dir, the worker's copy */
	/* The worker's: */
	struct warc *warc;
	struct lru *seen; /* payload SHA-256 -> struct capture_seen */
};

/* An archived payload, for identical-payload revisits. */
struct capture_seen {
	int64_t date_ms;
	char id[WARC_ID_SIZE];
	char uri[];
};

struct capture_job {
	struct capture *c;
	unsigned op;
	unsigned char *data;
	size_t len, cap; /* bytes, and the size of their allocation */
	/* CJ_BEGIN: */
	int64_t date_ms;
	char ip[46];
	/* CJ_FINISH: */
	struct capture_end end; /* its strings are copies, freed with it */
	char *request;
	size_t request_len;
	capture_done_cb done;
	void *arg;
	struct capture_written out;
	int64_t bytes; /* compressed bytes this finish wrote */
};

struct capture_open_job {
	struct captures *cs;
	const char *dir;
	int64_t max_bytes;
	int rc;
	char *cause;
};

static void capture_open_work(void *arg)
{
	struct capture_open_job *o = arg;

	o->rc = warc_open(o->dir, o->max_bytes, "gatherd/" GATHERD_VERSION,
			  &o->cs->warc, &o->cause);
}

int capture_open(struct event_base *base, struct worker *w,
		 const struct config *cfg, struct captures **out, char **cause)
{
	(void)base;
	*out = NULL;
	if (cfg->warc_dir == NULL || cfg->warc_dir[0] == '\0')
		return 0;

	struct captures *cs = xcalloc(1, sizeof *cs);
	struct capture_open_job o = {cs, cfg->warc_dir, cfg->warc_max_bytes,
				     0, NULL};

	cs->worker = w;
	cs->cfg = cfg;
	cs->dir = xstrdup(cfg->warc_dir);
	TAILQ_INIT(&cs->paused);
	cs->seen = lru_new(CAPTURE_DEDUP_KEYS, free);
	thread_call(w, capture_open_work, &o);
	if (o.rc != 0) {
		*cause = util_printf("[capture] warc_dir %s: %s", cfg->warc_dir,
				     o.cause ? o.cause : "cannot open");
		free(o.cause);
		lru_free(cs->seen);
		free(cs->dir);
		free(cs);
		return -1;
	}
	*out = cs;
	return 0;
}

static void capture_close_work(void *arg)
{
	struct captures *cs = arg;
	char *cause = NULL;

	if (warc_close(cs->warc, &cause) != 0) {
		log_error("closing the WARC file: %s", cause ? cause : "error");
		free(cause);
	}
	cs->warc = NULL;
	lru_free(cs->seen);
	cs->seen = NULL;
}

void capture_close(struct captures *cs)
{
	if (cs != NULL && cs->warc != NULL)
		thread_call(cs->worker, capture_close_work, cs);
}

void capture_free(struct captures *cs)
{
	if (cs != NULL)
		free(cs->dir);
	free(cs);
}

/* The capture ends: no fetch to resume any more. */
static void capture_end_now(struct capture *c)
{
	c->ended = true;
	if (c->paused) {
		TAILQ_REMOVE(&c->cs->paused, c, pause_link);
		c->cs->n_paused--;
		c->paused = false;
	}
}

/* Free an ended capture once its last job is back. */
static void capture_maybe_free(struct capture *c)
{
	if (!c->ended || c->jobs > 0)
		return;
	free(c->request);
	free(c->buf);
	free(c->uri);
	free(c);
}

bool capture_full(struct captures *cs)
{
	if (cs->pending <= CAPTURE_MAX_PENDING_ALL)
		return false;
	if (!cs->held)
		cs->st.holds++;
	cs->held = true;
	return true;
}

void capture_set_room_cb(struct captures *cs, void (*room)(void *),
			 void *arg)
{
	cs->room = room;
	cs->room_arg = arg;
}

/* Let paused fetches read again once the disk caught up (and new ones
 * start). */
static void capture_resume_some(struct captures *cs)
{
	struct capture *c, *next;
	size_t n;

	if (cs->pending > CAPTURE_MAX_PENDING_ALL / 2)
		return;
	/* A resumed fetch may pause again at once (at the tail): each
	 * capture is looked at once. */
	for (c = TAILQ_FIRST(&cs->paused), n = cs->n_paused; c != NULL && n > 0;
	     c = next, n--) {
		next = TAILQ_NEXT(c, pause_link);
		if (c->pending > CAPTURE_MAX_PENDING / 2)
			continue;
		TAILQ_REMOVE(&cs->paused, c, pause_link);
		cs->n_paused--;
		c->paused = false;
		c->resume(c->resume_arg);
	}
	/* Then the fetches that waited to start (the fetches in flight
	 * first: they hold their slots). */
	if (cs->held) {
		cs->held = false;
		if (cs->room != NULL)
			cs->room(cs->room_arg);
	}
}

/* Worker: an identical-payload revisit of an earlier capture? */
static const struct capture_seen *capture_seen(struct captures *cs,
					       const struct capture_end *e)
{
	if (!e->dedup || e->payload_sha256 == NULL)
		return NULL;
	return lru_get(cs->seen, e->payload_sha256);
}

/* Worker: write the record. */
static void capture_finish_work(struct capture_job *j)
{
	struct capture *c = j->c;
	struct captures *cs = c->cs;
	struct warc_finish f = {
		.truncated = j->end.truncated,
		.request = j->request,
		.request_len = j->request_len,
		.payload_sha256 = j->end.payload_sha256,
	};
	struct warc_written w;
	struct warc_stats before, after;
	const struct capture_seen *seen = capture_seen(cs, &j->end);
	struct warc_info info;
	char *cause = NULL;

	if (c->rec == NULL) {
		j->out.error = util_printf("no response was received");
		return;
	}
	if (j->end.not_modified) {
		f.revisit = WARC_REVISIT_NOT_MODIFIED;
		f.refers_to_uri = j->end.refers_to_uri != NULL
					  ? j->end.refers_to_uri
					  : c->uri;
		f.refers_to_date_ms = j->end.refers_to_date_ms;
		f.refers_to_sha256 = j->end.refers_to_sha256;
		/* The earlier record itself says when it was captured. */
		if (j->end.refers_to_file != NULL &&
		    warc_read_info(cs->dir, j->end.refers_to_file,
				   j->end.refers_to_offset, &info,
				   &cause) == 0) {
			if (info.date_ms >= 0)
				f.refers_to_date_ms = info.date_ms;
			if (info.record_id[0] != '\0')
				f.refers_to_id = info.record_id;
		}
		free(cause);
		cause = NULL;
	} else if (seen != NULL) {
		f.revisit = WARC_REVISIT_IDENTICAL;
		f.refers_to_uri = seen->uri;
		f.refers_to_date_ms = seen->date_ms;
		f.refers_to_id = seen->id;
	}
	warc_stats(cs->warc, &before);
	int rc = warc_record_finish(c->rec, &f, &w, &cause);
	c->rec = NULL;
	warc_stats(cs->warc, &after);
	j->bytes = after.bytes_written - before.bytes_written;
	if (rc != 0) {
		j->out.error = cause;
		return;
	}
	snprintf(j->out.file, sizeof j->out.file, "%s", w.file);
	j->out.offset = w.offset;
	j->out.revisit = f.revisit != WARC_REVISIT_NONE;
	if (f.revisit == WARC_REVISIT_NONE && j->end.dedup &&
	    j->end.payload_sha256 != NULL) {
		size_t ul = strlen(c->uri);
		struct capture_seen *s = xmalloc(sizeof *s + ul + 1);

		s->date_ms = j->date_ms;
		snprintf(s->id, sizeof s->id, "%s", w.record_id);
		memcpy(s->uri, c->uri, ul + 1);
		lru_put(cs->seen, j->end.payload_sha256, s);
	}
}

/* Worker: one job's steps. */
static void capture_work(void *arg)
{
	struct capture_job *j = arg;
	struct capture *c = j->c;

	if ((j->op & CJ_DROP) && c->rec != NULL) {
		warc_record_abort(c->rec);
		c->rec = NULL;
	}
	if (j->op & CJ_BEGIN)
		c->rec = warc_record_begin(c->cs->warc, c->uri, j->date_ms,
					   j->ip[0] != '\0' ? j->ip : NULL);
	if (j->len > 0 && c->rec != NULL)
		warc_record_block(c->rec, j->data, j->len);
	if (j->op & CJ_FINISH)
		capture_finish_work(j);
}

static void capture_job_free(struct capture_job *j)
{
	free(j->data);
	free((char *)j->end.payload_sha256);
	free((char *)j->end.refers_to_uri);
	free((char *)j->end.refers_to_sha256);
	free((char *)j->end.refers_to_file);
	free(j->request);
	free(j->out.error);
	free(j);
}

/* Loop: a job is back. */
static void capture_job_done(void *arg)
{
	struct capture_job *j = arg;
	struct capture *c = j->c;
	struct captures *cs = c->cs;

	c->jobs--;
	c->pending -= j->cap;
	cs->pending -= j->cap;
	cs->st.pending_bytes = (int64_t)cs->pending;
	if (j->op & CJ_FINISH) {
		if (j->out.file[0] != '\0') {
			cs->st.records++;
			cs->st.revisits += j->out.revisit;
		} else {
			cs->st.failures++;
		}
		cs->st.bytes += (uint64_t)(j->bytes > 0 ? j->bytes : 0);
		if (j->done != NULL)
			j->done(j->arg, &j->out);
	}
	capture_job_free(j);
	capture_maybe_free(c);
	capture_resume_some(cs);
}

/* Send the bytes gathered so far, with what else the job does. */
static void capture_send(struct capture *c, struct capture_job *j)
{
	struct captures *cs = c->cs;

	j->c = c;
	if (c->restart) {
		j->op |= CJ_DROP;
		c->restart = false;
		c->begun = false;
	}
	if (!c->begun && c->started && !(j->op == CJ_DROP)) {
		j->op |= CJ_BEGIN;
		j->date_ms = c->date_ms;
		memcpy(j->ip, c->ip, sizeof j->ip);
		c->begun = true;
	}
	if (c->len > 0) {
		/* A small response's chunk gives back what it does not use:
		 * the cap on pending bytes is then a cap on memory. */
		j->data = c->buf;
		j->len = c->len;
		j->cap = c->cap;
		c->buf = NULL;
		c->len = c->cap = 0;
	}
	c->jobs++;
	c->pending += j->cap;
	cs->pending += j->cap;
	cs->st.pending_bytes = (int64_t)cs->pending;
	if (cs->st.pending_bytes > cs->st.pending_peak)
		cs->st.pending_peak = cs->st.pending_bytes;
	to_thread(cs->worker, capture_work, j, capture_job_done);
}

/* Tap: the request went out; a second time means a new attempt. */
static void capture_tap_start(void *arg, const char *request, size_t len,
			      const char *ip)
{
	struct capture *c = arg;

	if (c->begun)
		c->restart = true;
	c->len = 0; /* a new attempt: its bytes start afresh */
	c->started = true;
	c->date_ms = util_wall_ms();
	snprintf(c->ip, sizeof c->ip, "%s", ip != NULL ? ip : "");
	free(c->request);
	c->request = NULL;
	c->request_len = 0;
	if (c->cs->cfg->warc_requests && request != NULL) {
		c->request = xmalloc(len > 0 ? len : 1);
		memcpy(c->request, request, len);
		c->request_len = len;
	}
}

/* Tap: response bytes, gathered into chunks for the worker. */
static bool capture_tap_block(void *arg, const void *p, size_t n)
{
	struct capture *c = arg;
	struct captures *cs = c->cs;
	const unsigned char *b = p;

	while (n > 0) {
		size_t k;

		if (c->len == c->cap) {
			/* Grown as the bytes come (most pages fit in one
			 * read): memory follows what was received, with no
			 * fixed 64 KiB per fetch in flight. */
			size_t want = c->cap * 2;

			if (want < c->len + n)
				want = (c->len + n + 4095) & ~(size_t)4095;
			if (want > CAPTURE_CHUNK)
				want = CAPTURE_CHUNK;
			c->buf = xrealloc(c->buf, want);
			c->cap = want;
		}
		k = c->cap - c->len;
		if (k > n)
			k = n;
		memcpy(c->buf + c->len, b, k);
		c->len += k;
		b += k;
		n -= k;
		if (c->len == CAPTURE_CHUNK)
			capture_send(c, xcalloc(1, sizeof(struct capture_job)));
	}
	if (c->paused || (c->pending <= CAPTURE_MAX_PENDING &&
			  cs->pending <= CAPTURE_MAX_PENDING_ALL))
		return c->paused;
	c->paused = true;
	cs->st.pauses++;
	TAILQ_INSERT_TAIL(&cs->paused, c, pause_link);
	cs->n_paused++;
	return true;
}

struct capture *capture_new(struct captures *cs, const char *target_uri,
			    void (*resume)(void *), void *arg)
{
	struct capture *c = xcalloc(1, sizeof *c);

	c->cs = cs;
	c->uri = xstrdup(target_uri);
	c->resume = resume;
	c->resume_arg = arg;
	c->tap.start = capture_tap_start;
	c->tap.block = capture_tap_block;
	c->tap.arg = c;
	return c;
}

const struct fetch_tap *capture_tap(struct capture *c)
{
	return &c->tap;
}

static char *capture_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void capture_finish(struct capture *c, const struct capture_end *e,
		    capture_done_cb done, void *arg)
{
	struct capture_job *j = xcalloc(1, sizeof *j);

	j->op = CJ_FINISH;
	j->end = *e;
	j->end.payload_sha256 = capture_dup(e->payload_sha256);
	j->end.refers_to_uri = capture_dup(e->refers_to_uri);
	j->end.refers_to_sha256 = capture_dup(e->refers_to_sha256);
	j->end.refers_to_file = capture_dup(e->refers_to_file);
	j->request = c->request;
	j->request_len = c->request_len;
	c->request = NULL;
	j->done = done;
	j->arg = arg;
	j->date_ms = c->date_ms;
	capture_end_now(c);
	capture_send(c, j);
}

void capture_abort(struct capture *c)
{
	if (c == NULL)
		return;
	capture_end_now(c);
	c->len = 0;
	if (c->begun) {
		struct capture_job *j = xcalloc(1, sizeof *j);

		j->op = CJ_DROP;
		c->restart = false;
		capture_send(c, j);
		return;
	}
	capture_maybe_free(c);
}

void capture_get_stats(const struct captures *cs, struct capture_stats *st)
{
	if (cs == NULL) {
		memset(st, 0, sizeof *st);
		return;
	}
	*st = cs->st;
}

/* The scheduler's side of a job's result (sched_state.h): the row's
 * result or its requeue handed to the batcher, after the archive's record
 * when the response is archived, and the counters once the batch is
 * written, when the job is freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "batcher.h"
#include "capture.h"
#include "config.h"
#include "log.h"
#include "sched_state.h"
#include "store.h"
#include "util.h"

/* Give a job a result of the scheduler's own making (no attempt made or
 * none that counts): the error, its detail (taken), and every measurement
 * unknown. */
void sched_job_fail(struct job *j, enum errkind kind, char *detail)
{
	struct fetch_result *r;

	sched_job_free_result(j);
	r = j->res = xcalloc(1, sizeof *j->res);
	r->ok = false;
	r->error = kind;
	r->error_detail = detail;
	r->length = r->elapsed_ms = r->connect_ms = r->tls_ms = -1;
	r->decoded_length = r->dns_ms = r->ttfb_ms = -1;
	r->tls_resumed = -1;
	r->fetched_at_ms = util_wall_ms();
}

/* A job has its result (or, requeued, its attempts to store): hand it to
 * the batcher; the job comes back in sched_written_cb once it is written. */
void sched_add_result(struct sched *s, struct job *j)
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
void sched_requeue(struct sched *s, struct job *j)
{
	sched_job_free_result(j);
	if (j->redirects > 0 || j->attempts <= j->loaded_attempts) {
		s->in_mem--;
		sched_job_free(j);
		return;
	}
	j->requeue = true;
	sched_add_result(s, j);
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
bool sched_capture_end(struct sched *s, struct job *j, bool final)
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

/* A batch of results is written: its jobs are done with. */
void sched_written_cb(void *arg, void **owners, size_t n)
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
		sched_job_free(j);
	}
	free(owners);
	s->in_mem -= n;
	if (handed)
		sched_kick(s); /* this node may hold the shard they went to */
	else
		sched_maybe_load(s);
	sched_notify(s);
}

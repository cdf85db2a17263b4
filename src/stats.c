/* Stats line and systemd STATUS=: see stats.h. */
#include "stats.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "batcher.h"
#include "capture.h"
#include "config.h"
#include "conn.h"
#include "dns.h"
#include "errkind.h"
#include "metrics.h"
#include "queue.h"
#include "tls.h"
#include "log.h"
#include "notify.h"
#include "scheduler.h"
#include "store.h"
#include "thread.h"
#include "util.h"

#define STATS_HB_HOSTS 100 /* busiest hosts kept in the heartbeat */

/* One heartbeat on its way to the worker: it owns copies of the host
 * keys, since the scheduler may free those hosts meanwhile. */
struct stats_hb {
	struct stats *st;
	struct store_heartbeat hb;
	struct store_host_load hosts[STATS_HB_HOSTS];
	int rc;
	char *cause;
};

struct stats {
	const struct config *cfg;
	const struct sched *sched;
	struct stats_sources src;
	int64_t baseline[ERR_KIND_COUNT];
	struct worker *worker;
	struct store *store;
	struct event *ev;
	int64_t started_wall_ms;
	int64_t last_hb_ms;
	bool hb_in_flight;
	bool hb_warned;
	char hostname[256];
	int64_t queued_at_start;
	uint64_t ingested, invalid;
	uint64_t last_total;
	int64_t last_ms;
	int64_t start_ms;
};

static void stats_arm(struct stats *st)
{
	int s = st->cfg->stats_interval_s > 0 ? st->cfg->stats_interval_s : 1;
	struct timeval tv = {s, 0};

	event_add(st->ev, &tv);
}

static int stats_hb_interval(const struct stats *st)
{
	return st->cfg->stats_interval_s > 0 ? st->cfg->stats_interval_s : 10;
}

/* Fill a heartbeat with what the daemon knows now. */
static struct stats_hb *stats_hb_make(struct stats *st, bool stopped)
{
	struct stats_hb *j = xcalloc(1, sizeof *j);
	struct sched_stats ss;

	sched_get_stats(st->sched, &ss);
	j->st = st;
	j->hb.pid = getpid();
	j->hb.host = st->hostname;
	j->hb.version = GATHERD_VERSION;
	j->hb.started_ms = st->started_wall_ms;
	j->hb.now_ms = util_wall_ms();
	j->hb.interval_s = stats_hb_interval(st);
	j->hb.in_flight = (int64_t)ss.in_flight;
	j->hb.robots_fetches = (int64_t)ss.robots_fetches;
	j->hb.robots_origins = (int64_t)ss.robots_origins;
	j->hb.stopped = stopped;
	j->hb.n_hosts = stopped ? 0
				: sched_busiest_hosts(st->sched, j->hosts,
						      STATS_HB_HOSTS);
	for (size_t i = 0; i < j->hb.n_hosts; i++)
		j->hosts[i].key = xstrdup(j->hosts[i].key);
	j->hb.hosts = j->hosts;
	return j;
}

static void stats_hb_free(struct stats_hb *j)
{
	for (size_t i = 0; i < j->hb.n_hosts; i++)
		free((char *)j->hosts[i].key);
	free(j->cause);
	free(j);
}

static void stats_hb_work(void *arg)
{
	struct stats_hb *j = arg;

	j->rc = store_heartbeat(j->st->store, &j->hb, &j->cause);
}

static void stats_hb_done(void *arg)
{
	struct stats_hb *j = arg;
	struct stats *st = j->st;

	st->hb_in_flight = false;
	if (j->rc != 0 && !st->hb_warned) {
		log_warn("cannot write the heartbeat (status will not see "
			 "this daemon as healthy): %s",
			 j->cause);
		st->hb_warned = true;
	} else if (j->rc == 0) {
		st->hb_warned = false;
	}
	stats_hb_free(j);
}

/* Send a heartbeat unless one is still on its way. */
static void stats_heartbeat(struct stats *st)
{
	if (st->hb_in_flight || st->store == NULL)
		return;
	st->hb_in_flight = true;
	st->last_hb_ms = util_mono_ms();
	to_thread(st->worker, stats_hb_work, stats_hb_make(st, false),
		  stats_hb_done);
}

static void stats_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stats *st = arg;
	struct sched_stats ss;
	int64_t now = util_mono_ms();
	char line[256];

	(void)fd;
	(void)what;
	sched_get_stats(st->sched, &ss);
	uint64_t total = ss.done + ss.failed;
	/* Rows in flight are not waiting any more. */
	int64_t queued = st->queued_at_start + (int64_t)st->ingested -
			 (int64_t)total - (int64_t)ss.in_flight;
	double secs = (double)(now - st->last_ms) / 1000.0;
	double rate = secs > 0 ? (double)(total - st->last_total) / secs : 0;

	snprintf(line, sizeof line,
		 "fetched %" PRIu64 " (done %" PRIu64 ", failed %" PRIu64
		 "), %.1f/s, in flight %" PRIu64 ", queued %" PRId64
		 ", invalid %" PRIu64,
		 total, ss.done, ss.failed, rate, ss.in_flight,
		 queued < 0 ? 0 : queued, st->invalid);
	/* Only while there is work, so an idle daemon stays quiet. */
	if (st->cfg->stats_interval_s > 0 &&
	    (total != st->last_total || ss.in_flight > 0 || ss.in_memory > 0))
		log_info("stats: %s", line);
	notify_send("STATUS=%s", line);
	st->last_total = total;
	st->last_ms = now;
	if (now - st->last_hb_ms >= stats_hb_interval(st) * 1000 - 500)
		stats_heartbeat(st);
	stats_arm(st);
}

struct stats *stats_new(struct event_base *base, const struct config *cfg,
			const struct sched *sched, struct worker *w,
			struct store *store, int64_t queued)
{
	struct stats *st = xcalloc(1, sizeof *st);

	st->worker = w;
	st->store = store;
	st->started_wall_ms = util_wall_ms();
	if (gethostname(st->hostname, sizeof st->hostname - 1) != 0)
		st->hostname[0] = '\0';
	st->cfg = cfg;
	st->sched = sched;
	st->queued_at_start = queued;
	st->last_ms = st->start_ms = util_mono_ms();
	st->ev = event_new(base, -1, 0, stats_tick_cb, st);
	if (st->ev == NULL)
		util_oom();
	stats_arm(st);
	stats_heartbeat(st);
	return st;
}

void stats_ingested(struct stats *st, uint64_t n_queued, uint64_t n_failed)
{
	st->ingested += n_queued;
	st->invalid += n_failed;
}

/* The process's peak resident set in kB (VmHWM: getrusage's ru_maxrss
 * would include the parent's before exec), or -1. */
static long stats_peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

void stats_final(struct stats *st)
{
	struct sched_stats ss;
	double secs = (double)(util_mono_ms() - st->start_ms) / 1000.0;

	char archive[320] = "";
	long peak = stats_peak_rss_kb();

	sched_get_stats(st->sched, &ss);
	if (st->src.captures != NULL) {
		struct capture_stats cs;

		capture_get_stats(st->src.captures, &cs);
		snprintf(archive, sizeof archive,
			 "; archived %" PRIu64 " records (%" PRIu64
			 " revisits, %" PRIu64 " failed), %.1f MB, paused %" PRIu64
			 " fetches for the disk, held new ones back %" PRIu64
			 " times, at most %.1f MB waiting for it",
			 cs.records, cs.revisits, cs.failures,
			 (double)cs.bytes / 1e6, cs.pauses, cs.holds,
			 (double)cs.pending_peak / 1e6);
	}
	log_info("finished: %" PRIu64 " fetched (done %" PRIu64
		 ", failed %" PRIu64 "), %" PRIu64 " lines ingested (%" PRIu64
		 " invalid) in %.1f s, peak RSS %ld MB%s",
		 ss.done + ss.failed, ss.done, ss.failed,
		 st->ingested + st->invalid, st->invalid, secs,
		 peak < 0 ? 0 : (peak + 1023) / 1024, archive);
	/* The last heartbeat says the daemon stopped.  Synchronously: the
	 * loop is over, and the store is closed right after. */
	if (st->store != NULL) {
		struct stats_hb *j = stats_hb_make(st, true);

		thread_call(st->worker, stats_hb_work, j);
		stats_hb_free(j);
	}
}

void stats_free(struct stats *st)
{
	if (st == NULL)
		return;
	event_free(st->ev);
	free(st);
}

void stats_set_sources(struct stats *st, const struct stats_sources *src)
{
	st->src = *src;
}

void stats_set_baseline(struct stats *st, const int64_t *by_error)
{
	memcpy(st->baseline, by_error, sizeof st->baseline);
}

/* One counter or gauge family with a single sample. */
static void stats_one(struct evbuffer *b, const char *name, const char *type,
		      const char *help, double v)
{
	metrics_family(b, name, type, help);
	metrics_sample(b, name, NULL, v);
}

void stats_write_metrics(void *arg, struct evbuffer *b)
{
	struct stats *st = arg;
	struct sched_stats ss;
	struct batcher_stats bs;
	char labels[96];

	sched_get_stats(st->sched, &ss);
	sched_get_batch_stats(st->sched, &bs);
	metrics_family(b, "gatherd_build_info", "gauge",
		       "The running gatherd's version (always 1).");
	metrics_sample(b, "gatherd_build_info",
		       "version=\"" GATHERD_VERSION "\"", 1);
	stats_one(b, "gatherd_start_time_seconds", "gauge",
		  "When the daemon started, in Unix seconds.",
		  (double)st->started_wall_ms / 1000.0);

	metrics_family(b, "gatherd_results_total", "counter",
		       "Results recorded, by state and error kind (the rows "
		       "in the database at start included, as in the results "
		       "view).");
	for (int k = 0; k < ERR_KIND_COUNT; k++) {
		uint64_t n = ss.by_error[k] + (uint64_t)st->baseline[k];

		if (k != ERR_NONE && n == 0)
			continue; /* kinds that never happened */
		snprintf(labels, sizeof labels, "state=\"%s\",error=\"%s\"",
			 k == ERR_NONE ? "done" : "failed",
			 k == ERR_NONE ? "" : errkind_name((enum errkind)k));
		metrics_sample(b, "gatherd_results_total", labels, (double)n);
	}
	metrics_family(b, "gatherd_responses_total", "counter",
		       "Final responses recorded since start, by status "
		       "class.");
	for (int c = 1; c <= 5; c++) {
		snprintf(labels, sizeof labels, "class=\"%dxx\"", c);
		metrics_sample(b, "gatherd_responses_total", labels,
			       (double)ss.by_class[c]);
	}
	stats_one(b, "gatherd_response_bytes_total", "counter",
		  "Body bytes of the responses recorded since start.",
		  (double)ss.bytes);
	metrics_family(b, "gatherd_lines_ingested_total", "counter",
		       "Queue-file lines made rows since start.");
	metrics_sample(b, "gatherd_lines_ingested_total", "kind=\"url\"",
		       (double)st->ingested);
	metrics_sample(b, "gatherd_lines_ingested_total",
		       "kind=\"invalid\"", (double)st->invalid);
	int64_t queued = st->queued_at_start + (int64_t)st->ingested -
			 (int64_t)(ss.done + ss.failed) - (int64_t)ss.in_flight;
	stats_one(b, "gatherd_urls_queued", "gauge",
		  "Rows waiting to be fetched (the scheduler's count).",
		  (double)(queued < 0 ? 0 : queued));
	stats_one(b, "gatherd_fetches_in_flight", "gauge",
		  "Requests in flight.", (double)ss.in_flight);
	stats_one(b, "gatherd_hosts_active", "gauge",
		  "Hosts with rows in memory (waiting or in flight).",
		  (double)ss.hosts);
	stats_one(b, "gatherd_retries_total", "counter",
		  "Attempts retried since start.", (double)ss.retries);
	stats_one(b, "gatherd_redirects_total", "counter",
		  "Redirects followed since start.", (double)ss.redirects);
	stats_one(b, "gatherd_robots_blocked_total", "counter",
		  "URLs refused by robots.txt since start.",
		  (double)ss.by_error[ERR_ROBOTS]);
	stats_one(b, "gatherd_robots_fetches_total", "counter",
		  "robots.txt requests since start (redirect hops included).",
		  (double)ss.robots_fetches);
	stats_one(b, "gatherd_robots_origins", "gauge",
		  "Origins whose robots.txt rules are cached.",
		  (double)ss.robots_origins);
	if (st->src.pool != NULL) {
		stats_one(b, "gatherd_connections_opened_total", "counter",
			  "TCP connections opened (Happy Eyeballs attempts "
			  "included).",
			  (double)conn_pool_opened(st->src.pool));
		stats_one(b, "gatherd_connections_reused_total", "counter",
			  "Requests sent on a pooled keep-alive connection.",
			  (double)conn_pool_reused(st->src.pool));
		stats_one(b, "gatherd_connections_idle", "gauge",
			  "Idle keep-alive connections in the pool.",
			  (double)conn_pool_idle_count(st->src.pool));
	}
	if (st->src.tls != NULL) {
		stats_one(b, "gatherd_tls_handshakes_total", "counter",
			  "TLS handshakes completed.",
			  (double)tls_handshakes(st->src.tls));
		stats_one(b, "gatherd_tls_resumed_total", "counter",
			  "TLS handshakes that resumed a session.",
			  (double)tls_resumed(st->src.tls));
	}
	if (st->src.dns != NULL) {
		stats_one(b, "gatherd_dns_queries_total", "counter",
			  "DNS lookups sent.", (double)dns_queries(st->src.dns));
		stats_one(b, "gatherd_dns_cache_hits_total", "counter",
			  "DNS lookups answered from the cache.",
			  (double)dns_cache_hits(st->src.dns));
	}
	if (st->src.captures != NULL) {
		struct capture_stats cs;

		capture_get_stats(st->src.captures, &cs);
		stats_one(b, "gatherd_warc_records_total", "counter",
			  "Responses archived in WARC files (revisits "
			  "included).",
			  (double)cs.records);
		stats_one(b, "gatherd_warc_revisits_total", "counter",
			  "Responses archived as revisit records.",
			  (double)cs.revisits);
		stats_one(b, "gatherd_warc_failures_total", "counter",
			  "Responses that could not be archived.",
			  (double)cs.failures);
		stats_one(b, "gatherd_warc_bytes_total", "counter",
			  "Compressed bytes of the records written.",
			  (double)cs.bytes);
		stats_one(b, "gatherd_warc_pauses_total", "counter",
			  "Fetches paused until the archive caught up.",
			  (double)cs.pauses);
		stats_one(b, "gatherd_warc_holds_total", "counter",
			  "Times new fetches waited for the archive to catch "
			  "up.",
			  (double)cs.holds);
		stats_one(b, "gatherd_warc_pending_bytes", "gauge",
			  "Response bytes on their way to the WARC writer.",
			  (double)cs.pending_bytes);
	}
	if (st->src.queue != NULL) {
		int64_t partial = queue_partial_bytes(st->src.queue);

		stats_one(b, "gatherd_queue_partial_bytes", "gauge",
			  "Bytes at the end of the queue file waiting for a "
			  "newline.",
			  (double)(partial < 0 ? 0 : partial));
	}
	stats_one(b, "gatherd_db_write_batches_total", "counter",
		  "Result batches written (one transaction each).",
		  (double)bs.batches);
	stats_one(b, "gatherd_db_write_failures_total", "counter",
		  "Result batch writes that failed (retried).",
		  (double)bs.failures);
	metrics_write_hist(b, "gatherd_db_write_seconds",
			   "Time to write one result batch.", &bs.latency);
	metrics_write_hist(b, "gatherd_fetch_duration_seconds",
			   "Time of each attempt, start to result.", &ss.total);
	metrics_write_hist(b, "gatherd_connect_duration_seconds",
			   "TCP connect time of new connections.", &ss.connect);
	metrics_write_hist(b, "gatherd_tls_handshake_duration_seconds",
			   "TLS handshake time of new connections.", &ss.tls);
	metrics_write_hist(b, "gatherd_ttfb_seconds",
			   "Request sent to the first response byte.",
			   &ss.ttfb);
}

bool stats_healthy(void *arg, const char **why)
{
	struct stats *st = arg;
	struct batcher_stats bs;

	sched_get_batch_stats(st->sched, &bs);
	if (bs.failing) {
		*why = "the database does not take writes (see the log)";
		return false;
	}
	if (st->hb_warned) {
		*why = "the database does not take writes: the heartbeat "
		       "cannot be written (see the log)";
		return false;
	}
	return true;
}

/* gatherd: command line, start-up order, signals, sd_notify, shutdown. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "capture.h"
#include "cat.h"
#include "cli.h"
#include "config.h"
#include "conn.h"
#include "dns.h"
#include "fetch.h"
#include "lock.h"
#include "maint.h"
#include "metrics.h"
#include "notify.h"
#include "status.h"
#include "proxy.h"
#include "log.h"
#include "queue.h"
#include "scheduler.h"
#include "stats.h"
#include "store.h"
#include "thread.h"
#include "tls.h"
#include "upkeep.h"
#include "util.h"

#ifndef GATHERD_VERSION
#define GATHERD_VERSION "0.0.0"
#endif

/* How long the last writes may take, after the in-flight fetches were
 * given [gatherd] shutdown_timeout_ms, before gatherd gives up on them
 * (their rows stay queued and are fetched again on the next start).  The
 * unit's TimeoutStopSec must exceed the two together. */
#define APP_FLUSH_MS 10000

struct app {
	struct event_base *base;
	struct config cfg;
	const char *cfg_path;
	struct config_override *ov;
	int n_ov;
	bool once;
	bool running;  /* the loop was started: there is a run to report */
	bool stopping;
	bool aborted;
	struct lock *lock;
	struct worker *worker;
	struct store *store;
	struct queue *queue;
	struct sched *sched;
	struct captures *captures; /* NULL: no WARC archive */
	struct dns *dns;
	struct tls *tls;
	struct proxies *proxies;
	struct conn_pool *pool;
	struct stats *stats;
	struct metrics *metrics;
	struct upkeep *upkeep; /* NULL: the store needs none */
	struct event *ev_term, *ev_int, *ev_hup, *ev_deadline;
	struct event *ev_watchdog;
};

/* The running daemon, for a debugger attached to it (gdb -p PID -ex
 * 'print *app_for_debugger->queue'): app_run() is inlined into main(),
 * where its `a` is "optimized out". */
static struct app *volatile app_for_debugger;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gatherd [-c FILE] [--set section.key=value]... "
		"[--once]\n"
		"       gatherd submit [-c FILE] [--direct] URL... | -\n"
		"       gatherd status [-c FILE] [--json] [--hosts [N]] "
		"[--check]\n"
		"       gatherd refetch [-c FILE] [--older-than DURATION] "
		"[--url-like PATTERN]\n"
		"               [--error KIND | --state failed] [--dry-run]\n"
		"       gatherd prune [-c FILE] --older-than DURATION "
		"[--keep-latest] [--dry-run]\n"
		"       gatherd cat [-c FILE] ID | URL\n"
		"       gatherd check-config [-c FILE] [--set "
		"section.key=value]...\n"
		"       gatherd --version | --help\n"
		"\n"
		"Fetch the URLs appended to the queue file, concurrently, and "
		"record\n"
		"each page's length or error in SQLite (view `results`).\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"  --set S.K=V         override a configuration key\n"
		"  --once              ingest the queue file, fetch everything "
		"queued,\n"
		"                      then exit\n"
		"  --direct            (submit) insert into the database, not "
		"the queue\n"
		"                      file (with [store] backend = "
		"postgresql: from any\n"
		"                      machine that can reach it)\n"
		"  --json              (status) print JSON\n"
		"  --hosts [N]         (status) the N hosts with the most "
		"queued rows\n"
		"  --check             (status) exit 0 only when a daemon runs "
		"and is\n"
		"                      healthy (its heartbeat is fresh)\n"
		"  --older-than D      (refetch, prune) rows fetched longer ago "
		"than D:\n"
		"                      30d, 12h, 90m, 45s, 2w\n"
		"  --url-like P        (refetch) URLs matching the SQL LIKE "
		"pattern P\n"
		"  --error KIND        (refetch) URLs whose last result has "
		"that error\n"
		"  --state failed      (refetch) URLs whose last result "
		"failed\n"
		"  --keep-latest       (prune) keep each URL's latest result\n"
		"  --dry-run           (refetch, prune) say what would be done\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n"
		"\n"
		"submit validates the URLs (or the lines of standard input for "
		"-)\n"
		"and appends the valid ones to the queue file; status reads the\n"
		"database without disturbing a running daemon; refetch queues "
		"new\n"
		"fetches of URLs already fetched (conditional when their last\n"
		"response had an ETag or Last-Modified); prune deletes old "
		"result\n"
		"rows (never WARC files); cat writes a row's archived body "
		"(from\n"
		"[capture] warc_dir) to standard output.\n"
		"\n"
		"Exit status: 0 ok, 1 runtime failure, 2 usage or "
		"configuration error.\n",
		CONFIG_DEFAULT_PATH);
}

/* A usage error: one line, and where to read more. */
static int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gatherd%s%s: ", cmd[0] ? " " : "", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'gatherd --help'.\n");
	return 2;
}

/* Raise the soft descriptor limit to the hard one: each connection is a
 * descriptor, and the hard limit is what the administrator allows. */
static void app_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_debug("cannot raise RLIMIT_NOFILE: %s",
				  strerror(errno));
	}
}

/* How many idle keep-alive connections to keep.  4 x max_in_flight (at
 * least 256) covers the hosts that have work in the scheduler's window
 * (a host without work lets its connections go soon: sched_fetch_done);
 * more would only hold slots on other people's servers and slow the
 * kernel's port search for new connections.  And never more than the
 * descriptor limit leaves after the in-flight connections and a margin for
 * the database, the queue and DNS. */
static size_t app_idle_cap(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t in_flight = (rlim_t)cfg->max_in_flight, margin = 64;
	/* 4 per slot: a broad crawl over 5,000 HTTPS hosts at 1,000 in
	 * flight made 8 times as many TLS handshakes (and used 3 times the
	 * CPU) with 2 per slot, and no fewer with 8.  Hosts with no work
	 * left let theirs go after SCHED_HOST_LINGER_MS anyway. */
	rlim_t want = in_flight * 4 > 256 ? in_flight * 4 : 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return (size_t)want;
	if (rl.rlim_cur <= in_flight + margin)
		return 0;
	rlim_t cap = rl.rlim_cur - in_flight - margin;
	return (size_t)(cap < want ? cap : want);
}

/* Stop the loop once there is nothing left to do. */
static void app_check_finish(struct app *a)
{
	if (!a->running)
		return; /* start-up, or after the loop ended */
	if (a->stopping) {
		if (sched_drained(a->sched) && !queue_busy(a->queue))
			event_base_loopbreak(a->base);
		return;
	}
	if (!a->once)
		return;
	bool caught_up = queue_caught_up(a->queue);

	sched_set_input_ended(a->sched, caught_up);
	if (caught_up && sched_idle(a->sched))
		event_base_loopbreak(a->base);
}

static void app_idle_cb(void *arg)
{
	app_check_finish(arg);
}

/* News from a shared store's tick: rows lost or given back, leases
 * renewed (fetches may start until the new fence), more host shards (there
 * may be rows). */
static void app_upkeep_cb(void *arg, const struct upkeep_news *n)
{
	struct app *a = arg;

	if (a->sched == NULL)
		return;
	/* The rows lost and given back go before a renewal may start
	 * fetches again: the first tick after a partition both renews and
	 * finds rows that are other nodes' now. */
	if (n->n_lost > 0)
		sched_forget(a->sched, n->lost, n->n_lost);
	if (n->n_release > 0 && !a->stopping)
		sched_give_back(a->sched, n->release, n->n_release);
	if (n->fence_ms != 0)
		sched_set_fence(a->sched, n->fence_ms, n->end_ms);
	if (n->gained && !a->stopping)
		sched_kick(a->sched);
}

/* Room in the scheduler for rows a shared store may claim at ingestion. */
static size_t app_room_cb(void *arg)
{
	struct app *a = arg;

	return a->sched != NULL && !a->stopping ? sched_room(a->sched) : 0;
}

static void app_ingested_cb(void *arg, const struct store_line *lines,
			    size_t n, size_t n_queued, size_t n_failed)
{
	struct app *a = arg;

	if (a->stats != NULL)
		stats_ingested(a->stats, n_queued, n_failed);
	if (n_queued > 0 && a->sched != NULL)
		sched_offer(a->sched, lines, n);
	if (a->sched != NULL)
		app_check_finish(a);
}

/* Abort the fetches still in flight (their rows stay queued), then give
 * the last writes APP_FLUSH_MS.  `why` says what led here, for the log. */
static void app_abort(struct app *a, const char *why)
{
	struct sched_stats ss;

	sched_get_stats(a->sched, &ss);
	log_warn("%s: aborting %llu in-flight fetches (their rows stay "
		 "queued)",
		 why, (unsigned long long)ss.in_flight);
	a->aborted = true;
	sched_abort_in_flight(a->sched);
	struct timeval tv = {APP_FLUSH_MS / 1000, 0};
	event_add(a->ev_deadline, &tv);
	app_check_finish(a);
}

static void app_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	char why[80];

	(void)fd;
	(void)what;
	if (!a->aborted) {
		snprintf(why, sizeof why, "fetches still running after %d ms "
			 "([gatherd] shutdown_timeout_ms)",
			 a->cfg.shutdown_timeout_ms);
		app_abort(a, why);
		return;
	}
	log_error("results could not be written within %d ms: exiting; "
		  "their rows stay queued",
		  APP_FLUSH_MS);
	event_base_loopbreak(a->base);
}

/* WATCHDOG=1 from the loop itself: if the loop stalls, systemd notices. */
static void app_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_send("WATCHDOG=1");
}

static void app_watchdog_start(struct app *a)
{
	uint64_t usec = notify_watchdog_usec();

	if (usec == 0)
		return;
	a->ev_watchdog = event_new(a->base, -1, EV_PERSIST, app_watchdog_cb, a);
	if (a->ev_watchdog == NULL)
		return;
	usec /= 2;
	struct timeval tv = {(time_t)(usec / 1000000),
			     (suseconds_t)(usec % 1000000)};
	event_add(a->ev_watchdog, &tv);
}

static void app_stop(struct app *a, const char *why)
{
	if (a->stopping) {
		if (!a->aborted) {
			char again[32];

			snprintf(again, sizeof again, "%s again", why);
			event_del(a->ev_deadline);
			app_abort(a, again);
		}
		return;
	}
	log_info("%s: stopping; waiting up to %d ms for in-flight fetches",
		 why, a->cfg.shutdown_timeout_ms);
	notify_send("STOPPING=1");
	a->stopping = true;
	queue_stop(a->queue);
	sched_drain(a->sched);
	int ms = a->cfg.shutdown_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(a->ev_deadline, &tv);
	app_check_finish(a);
}

static void app_reload(struct app *a)
{
	struct config next;
	char *cause = NULL;
	bool fixed = false;

	notify_send("RELOADING=1");
	if (config_load(&next, a->cfg_path, a->ov, a->n_ov, &cause) != 0) {
		log_error("reload refused, keeping the current configuration: "
			  "%s",
			  cause);
		free(cause);
		notify_send("READY=1");
		return;
	}
	config_apply_reload(&a->cfg, &next, &fixed);
	config_free(&next);
	log_set_level(a->cfg.log_level);
	conn_pool_set_idle_ms(a->pool, a->cfg.idle_timeout_ms);
	conn_pool_set_max_idle(a->pool, app_idle_cap(&a->cfg));
	tls_set_sessions_per_key(a->tls, a->cfg.max_per_host);
	log_info("configuration reloaded%s",
		 fixed ? " (some changes need a restart: see above)" : "");
	sched_kick(a->sched);
	notify_send("READY=1");
}

static void app_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct app *a = arg;

	(void)what;
	if (sig == SIGHUP)
		app_reload(a);
	else
		app_stop(a, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

struct app_open_job {
	struct store_conf sc;
	struct store *store;
	struct store_queue_state qs;
	int64_t queued;
	int64_t first_queued;
	bool want_counts; /* [metrics]: the results so far, per kind */
	int64_t by_error[ERR_KIND_COUNT];
	int rc;
	char *cause;
};

static void app_open_store_work(void *arg)
{
	struct app_open_job *j = arg;

	j->rc = store_open(&j->sc, &j->store, &j->cause);
	if (j->rc == 0)
		j->rc = store_get_queue_state(j->store, &j->qs, &j->cause);
	if (j->rc == 0)
		j->rc = store_count_queued(j->store, &j->queued,
					   &j->first_queued, &j->cause);
	if (j->rc == 0 && j->want_counts)
		j->rc = store_count_results(j->store, j->by_error, &j->cause);
}

static void app_close_store_work(void *arg)
{
	store_close(arg);
}

static int app_run(struct app *a)
{
	struct app_open_job oj = {0};
	char *cause = NULL;
	bool ran = false;
	int rc = 1;

	app_for_debugger = a;

	/* Before anything touches the database or the queue file: a second
	 * daemon must not ingest or fetch a single line.  (A node of a
	 * shared PostgreSQL database takes a lock there instead, keyed by
	 * its name and queue file: store_pg.c.) */
	if (a->cfg.store_backend == CONFIG_STORE_SQLITE &&
	    lock_acquire(a->cfg.database, &a->lock, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	app_raise_nofile();
	a->base = event_base_new();
	if (a->base == NULL) {
		log_error("cannot create the event loop");
		lock_release(a->lock);
		return 1;
	}
	a->worker = thread_start(a->base);
	if (a->worker == NULL) {
		log_error("cannot start the worker thread: %s",
			  strerror(errno));
		goto out;
	}

	store_conf_init(&oj.sc, &a->cfg);
	oj.want_counts = a->cfg.metrics_listen[0] != '\0';
	/* The shards and rows a shared store holds at its start were leased
	 * after this moment (see upkeep_fence_ms). */
	int64_t opened_ms = util_mono_ms();
	thread_call(a->worker, app_open_store_work, &oj);
	if (oj.rc != 0) {
		log_error("%s", oj.cause);
		free(oj.cause);
		if (oj.store != NULL)
			thread_call(a->worker, app_close_store_work, oj.store);
		goto out;
	}
	a->store = oj.store;

	a->dns = dns_new(a->base, a->cfg.dns_nameserver, a->cfg.dns_timeout_ms,
			 a->cfg.dns_cache_ttl_s, &cause);
	if (a->dns == NULL) {
		log_error("%s", cause);
		free(cause);
		goto out;
	}
	a->tls = tls_new(a->cfg.tls_verify, a->cfg.tls_ca_file, &cause);
	if (a->tls == NULL) {
		/* In practice a [tls] ca_file that holds no certificate: a
		 * configuration error. */
		log_error("%s", cause);
		free(cause);
		rc = 2;
		goto out;
	}
	tls_set_sessions_per_key(a->tls, a->cfg.max_per_host);
	a->pool = conn_pool_new(a->base);
	conn_pool_set_idle_ms(a->pool, a->cfg.idle_timeout_ms);
	conn_pool_set_max_idle(a->pool, app_idle_cap(&a->cfg));

	a->proxies = proxies_new(a->cfg.proxy, a->cfg.https_proxy,
				 a->cfg.no_proxy, true, &cause);
	if (a->proxies == NULL) {
		/* The configured values were checked at load: this is an
		 * environment variable. */
		log_error("%s (from the environment)", cause);
		free(cause);
		rc = 2;
		goto out;
	}
	struct fetch_ctx fctx = {a->base, &a->cfg, a->pool, a->dns, a->tls,
				 a->proxies};
	a->sched = sched_new(a->base, a->worker, a->store, &a->cfg, &fctx,
			     oj.first_queued - 1, app_idle_cb, a);
	if (store_shared(a->store))
		sched_set_fence(a->sched,
				upkeep_fence_ms(a->cfg.lease_s, opened_ms),
				upkeep_end_ms(a->cfg.lease_s, opened_ms));
	if (capture_open(a->base, a->worker, &a->cfg, &a->captures, &cause) !=
	    0) {
		log_error("%s", cause);
		free(cause);
		goto out;
	}
	sched_set_captures(a->sched, a->captures);
	a->stats = stats_new(a->base, &a->cfg, a->sched, a->worker, a->store,
			     oj.queued);
	if (queue_open(a->base, a->worker, a->store, a->cfg.queue_file,
		       &oj.qs, app_ingested_cb, app_room_cb, a,
		       &a->queue, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		goto out;
	}

	struct stats_sources src = {a->pool, a->tls, a->dns, a->queue,
				    a->captures};
	stats_set_sources(a->stats, &src);
	stats_set_baseline(a->stats, oj.by_error);
	if (a->cfg.metrics_listen[0] != '\0') {
		a->metrics = metrics_new(a->base, a->cfg.metrics_listen,
					 stats_write_metrics, stats_healthy,
					 a->stats, &cause);
		if (a->metrics == NULL) {
			log_error("%s", cause);
			free(cause);
			goto out;
		}
		log_info("metrics on http://%s/metrics", a->cfg.metrics_listen);
	}

	a->ev_term = evsignal_new(a->base, SIGTERM, app_signal_cb, a);
	a->ev_int = evsignal_new(a->base, SIGINT, app_signal_cb, a);
	a->ev_hup = evsignal_new(a->base, SIGHUP, app_signal_cb, a);
	a->ev_deadline = event_new(a->base, -1, 0, app_deadline_cb, a);
	if (a->ev_term == NULL || a->ev_int == NULL || a->ev_hup == NULL ||
	    a->ev_deadline == NULL || event_add(a->ev_term, NULL) != 0 ||
	    event_add(a->ev_int, NULL) != 0 || event_add(a->ev_hup, NULL) != 0) {
		log_error("cannot install signal handlers");
		goto out;
	}

	a->upkeep = upkeep_start(a->base, a->worker, a->store,
				 a->cfg.lease_s, app_upkeep_cb, a);
	log_info("gatherd %s ready: queue %s, %s, %lld queued, "
		 "max_in_flight %d, max_per_host %d%s",
		 GATHERD_VERSION, a->cfg.queue_file,
		 store_describe(a->store),
		 (long long)oj.queued, a->cfg.max_in_flight,
		 a->cfg.max_per_host, a->once ? ", --once" : "");
	notify_send("READY=1\nSTATUS=ready");
	app_watchdog_start(a);
	a->running = ran = true;
	sched_kick(a->sched);

	if (event_base_dispatch(a->base) < 0) {
		log_error("event loop failed");
		rc = 1;
	} else {
		rc = 0;
	}
	a->running = false;
out:
	/* No more scrapes: the objects they read are freed below. */
	metrics_free(a->metrics);
	a->metrics = NULL;
	if (a->queue != NULL)
		queue_stop(a->queue);
	if (a->sched != NULL)
		sched_drain(a->sched);
	upkeep_free(a->upkeep);
	a->upkeep = NULL;
	/* Let the worker finish what it was given, and run the completions,
	 * before the objects they refer to are freed. */
	while (a->worker != NULL && thread_pending(a->worker) > 0)
		event_base_loop(a->base, EVLOOP_ONCE);
	if (a->stats != NULL) {
		if (ran)
			stats_final(a->stats);
		stats_free(a->stats);
	}
	if (ran)
		log_info("connections opened %lu, TLS handshakes %lu (%lu "
			 "resumed), DNS queries %lu (%lu answered from cache)",
			 conn_pool_opened(a->pool), tls_handshakes(a->tls),
			 tls_resumed(a->tls), dns_queries(a->dns),
			 dns_cache_hits(a->dns));
	queue_free(a->queue);
	sched_free(a->sched);
	/* Every capture has sent its last job: the archive can close. */
	capture_close(a->captures);
	conn_pool_free(a->pool);
	dns_free(a->dns);
	tls_free(a->tls);
	proxies_free(a->proxies);
	if (a->store != NULL)
		thread_call(a->worker, app_close_store_work, a->store);
	thread_stop(a->worker);
	capture_free(a->captures);
	if (a->ev_term != NULL)
		event_free(a->ev_term);
	if (a->ev_int != NULL)
		event_free(a->ev_int);
	if (a->ev_hup != NULL)
		event_free(a->ev_hup);
	if (a->ev_deadline != NULL)
		event_free(a->ev_deadline);
	if (a->ev_watchdog != NULL)
		event_free(a->ev_watchdog);
	event_base_free(a->base);
	lock_release(a->lock);
	app_for_debugger = NULL;
	return rc;
}

enum app_cmd {
	CMD_RUN,
	CMD_CHECK,
	CMD_SUBMIT,
	CMD_STATUS,
	CMD_REFETCH,
	CMD_PRUNE,
	CMD_CAT,
	CMD_COUNT
};

#define ONLY(c) (1u << (c))
#define ALL_CMDS (ONLY(CMD_COUNT) - 1)

/* Each long option and the commands that take it. */
static const struct {
	struct option opt;
	unsigned cmds;
} app_options[] = {
	{{"config", required_argument, NULL, 'c'}, ALL_CMDS},
	{{"set", required_argument, NULL, 's'},
	 ONLY(CMD_RUN) | ONLY(CMD_CHECK)},
	{{"once", no_argument, NULL, 'o'}, ONLY(CMD_RUN)},
	{{"json", no_argument, NULL, 'j'}, ONLY(CMD_STATUS)},
	{{"direct", no_argument, NULL, 'd'}, ONLY(CMD_SUBMIT)},
	{{"check", no_argument, NULL, 'k'}, ONLY(CMD_STATUS)},
	{{"hosts", optional_argument, NULL, 'H'}, ONLY(CMD_STATUS)},
	{{"older-than", required_argument, NULL, 'O'},
	 ONLY(CMD_REFETCH) | ONLY(CMD_PRUNE)},
	{{"url-like", required_argument, NULL, 'L'}, ONLY(CMD_REFETCH)},
	{{"error", required_argument, NULL, 'E'}, ONLY(CMD_REFETCH)},
	{{"state", required_argument, NULL, 'S'}, ONLY(CMD_REFETCH)},
	{{"dry-run", no_argument, NULL, 'D'},
	 ONLY(CMD_REFETCH) | ONLY(CMD_PRUNE)},
	{{"keep-latest", no_argument, NULL, 'K'}, ONLY(CMD_PRUNE)},
	{{"help", no_argument, NULL, 'h'}, ALL_CMDS},
	{{"version", no_argument, NULL, 'V'}, ALL_CMDS},
};
#define N_APP_OPTIONS ((int)(sizeof app_options / sizeof app_options[0]))

int main(int argc, char **argv)
{
	static const char *const cmd_names[CMD_COUNT] = {
		"", "check-config", "submit", "status", "refetch", "prune",
		"cat"};
	struct option opts[N_APP_OPTIONS + 1];
	struct maint_args ma = {0};
	struct status_opts so = {0};
	struct app a;
	enum app_cmd cmd = CMD_RUN;
	bool json = false, direct = false;
	char *cause = NULL;
	int c, rc;

	memset(&a, 0, sizeof a);
	memset(opts, 0, sizeof opts);
	for (int i = 0; i < N_APP_OPTIONS; i++)
		opts[i] = app_options[i].opt;
	log_init();
	if (argc > 1 && argv[1][0] != '-') {
		for (int i = 1; i < CMD_COUNT; i++)
			if (strcmp(argv[1], cmd_names[i]) == 0)
				cmd = (enum app_cmd)i;
		if (cmd == CMD_RUN)
			return usage_error("", "unknown command \"%s\"",
					   argv[1]);
		argv++;
		argc--;
	}
	a.ov = xcalloc((size_t)argc, sizeof *a.ov);
	/* "+": stop at the first non-option, so URLs like "-" stay
	 * positional for submit. */
	int idx = -1;
	while ((c = getopt_long(argc, argv, "+c:hV", opts, &idx)) != -1) {
		const char *name = NULL;

		for (int i = 0; i < N_APP_OPTIONS; i++)
			if (app_options[i].opt.val == c)
				name = app_options[i].opt.name, idx = i;
		if (c != '?' && name != NULL &&
		    !(app_options[idx].cmds & ONLY(cmd))) {
			free(a.ov);
			return usage_error(cmd_names[cmd],
					   "--%s is not an option of %s", name,
					   cmd == CMD_RUN ? "the daemon"
							  : cmd_names[cmd]);
		}
		switch (c) {
		case 'c':
			a.cfg_path = optarg;
			break;
		case 's':
			a.ov[a.n_ov++].text = optarg;
			break;
		case 'o':
			a.once = true;
			break;
		case 'j':
			json = true;
			break;
		case 'd':
			direct = true;
			break;
		case 'k':
			so.check = true;
			break;
		case 'H': {
			/* --hosts, --hosts=N or --hosts N */
			const char *v = optarg;
			char *end;

			if (v == NULL && optind < argc &&
			    argv[optind][0] >= '0' && argv[optind][0] <= '9')
				v = argv[optind++];
			so.hosts = 10;
			if (v != NULL) {
				long n = strtol(v, &end, 10);

				if (*end != '\0' || n < 1 || n > 100000) {
					free(a.ov);
					return usage_error(
						"status",
						"--hosts \"%s\" is not a "
						"number of hosts",
						v);
				}
				so.hosts = (size_t)n;
			}
			break;
		}
		case 'O':
			ma.older_than = optarg;
			break;
		case 'L':
			ma.url_like = optarg;
			break;
		case 'E':
			ma.error = optarg;
			break;
		case 'S':
			ma.state = optarg;
			break;
		case 'D':
			ma.dry_run = true;
			break;
		case 'K':
			ma.keep_latest = true;
			break;
		case 'h':
			usage(stdout);
			free(a.ov);
			return 0;
		case 'V':
			printf("gatherd %s\n", GATHERD_VERSION);
			free(a.ov);
			return 0;
		default:
			free(a.ov);
			fprintf(stderr, "Try 'gatherd --help'.\n");
			return 2;
		}
	}
	if (cmd == CMD_CAT && optind + 1 < argc) {
		rc = usage_error("cat", "one row at a time (\"%s\" too)",
				 argv[optind + 1]);
		free(a.ov);
		return rc;
	}
	if (optind < argc && cmd != CMD_SUBMIT && cmd != CMD_CAT) {
		rc = usage_error(cmd_names[cmd], "unexpected argument \"%s\"",
				 argv[optind]);
		free(a.ov);
		return rc;
	}
	if (config_load_ex(&a.cfg, a.cfg_path, a.ov, a.n_ov,
			   cmd == CMD_STATUS || (cmd == CMD_SUBMIT && direct)
				   ? CONFIG_LOAD_DB_ONLY
				   : 0,
			   &cause) != 0) {
		if (cmd == CMD_STATUS && json) {
			/* Scripts read status --json: JSON even for this. */
			printf("{\"error\": \"");
			for (const char *p = cause; *p; p++)
				printf(*p == '"' || *p == '\\' ? "\\%c" : "%c",
				       *p);
			printf("\"}\n");
		} else {
			fprintf(stderr, "gatherd: %s\n", cause);
		}
		free(cause);
		free(a.ov);
		return 2;
	}
	switch (cmd) {
	case CMD_CHECK:
		config_dump(&a.cfg);
		fprintf(stderr, "gatherd: configuration OK\n");
		rc = 0;
		break;
	case CMD_SUBMIT:
		rc = cli_submit(&a.cfg, argc - optind, argv + optind, direct);
		break;
	case CMD_STATUS:
		so.json = json;
		rc = status_main(&a.cfg, &so);
		break;
	case CMD_REFETCH:
		rc = maint_refetch(&a.cfg, &ma);
		break;
	case CMD_PRUNE:
		rc = maint_prune(&a.cfg, &ma);
		break;
	case CMD_CAT:
		rc = cat_main(&a.cfg, optind < argc ? argv[optind] : NULL);
		break;
	default:
		log_set_level(a.cfg.log_level);
		rc = app_run(&a);
		break;
	}
	config_free(&a.cfg);
	free(a.ov);
	return rc;
}

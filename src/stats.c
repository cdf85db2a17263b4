/* Stats line and systemd STATUS=: see stats.h. */
#include "stats.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "build-config.h"
#include "config.h"
#include "log.h"
#include "scheduler.h"
#include "util.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

struct stats {
	const struct config *cfg;
	const struct sched *sched;
	struct event *ev;
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
#if HAVE_LIBSYSTEMD
	sd_notifyf(0, "STATUS=%s", line);
#endif
	st->last_total = total;
	st->last_ms = now;
	stats_arm(st);
}

struct stats *stats_new(struct event_base *base, const struct config *cfg,
			const struct sched *sched, int64_t queued)
{
	struct stats *st = xcalloc(1, sizeof *st);

	st->cfg = cfg;
	st->sched = sched;
	st->queued_at_start = queued;
	st->last_ms = st->start_ms = util_mono_ms();
	st->ev = event_new(base, -1, 0, stats_tick_cb, st);
	if (st->ev == NULL)
		util_oom();
	stats_arm(st);
	return st;
}

void stats_ingested(struct stats *st, uint64_t n_queued, uint64_t n_failed)
{
	st->ingested += n_queued;
	st->invalid += n_failed;
}

void stats_final(struct stats *st)
{
	struct sched_stats ss;
	double secs = (double)(util_mono_ms() - st->start_ms) / 1000.0;

	sched_get_stats(st->sched, &ss);
	log_info("finished: %" PRIu64 " fetched (done %" PRIu64
		 ", failed %" PRIu64 "), %" PRIu64 " lines ingested (%" PRIu64
		 " invalid) in %.1f s",
		 ss.done + ss.failed, ss.done, ss.failed,
		 st->ingested + st->invalid, st->invalid, secs);
}

void stats_free(struct stats *st)
{
	if (st == NULL)
		return;
	event_free(st->ev);
	free(st);
}

/* gatherd status: see status.h. */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"
#include "config.h"
#include "lock.h"
#include "store.h"
#include "util.h"

/* Write s as a JSON string. */
static void status_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* A failure: one line on stderr, or {"error": ...} with --json. */
static int status_fail(const struct status_opts *o, const char *why)
{
	if (o->json) {
		printf("{\"error\": ");
		status_json_str(why);
		printf("}\n");
	} else {
		fprintf(stderr, "gatherd status: %s\n", why);
	}
	return 1;
}

/* Whether a daemon runs, and if not healthy why (a static string or into
 * buf). */
struct status_daemon {
	int running;      /* 1 yes (lock held), 0 no, -1 cannot tell */
	pid_t pid;        /* from the lock */
	int64_t since_ms; /* from the lock */
	bool healthy;     /* running, and its heartbeat is fresh */
	char why[512];
};

/* A node of a shared database: its latest run, judged by its own row
 * (there is no lock file to look at on another machine). */
static void status_node(const struct config *cfg,
			const struct store_status *st, struct status_daemon *d)
{
	const struct store_node_status *n = st->self;
	const char *name = cfg->node_name[0] ? cfg->node_name : "this host";

	if (n == NULL || n->stopped_ms != 0) {
		d->running = 0;
		snprintf(d->why, sizeof d->why,
			 "no gatherd runs as node %.63s on %.300s",
			 n != NULL ? n->name : name, st->where);
		return;
	}
	if (!n->live) {
		/* Killed, or cut off from the database: either way its
		 * leases are gone. */
		d->running = 0;
		snprintf(d->why, sizeof d->why,
			 "node %s (pid %ld) last renewed its leases %lld s ago",
			 n->name, (long)n->pid, (long long)n->seen_age_s);
		return;
	}
	d->running = 1;
	d->pid = (pid_t)n->pid;
	d->since_ms = n->started_ms;
}

static void status_daemon(const struct config *cfg,
			  const struct store_status *st, int64_t now,
			  struct status_daemon *d)
{
	memset(d, 0, sizeof *d);
	if (st->shared)
		status_node(cfg, st, d);
	else
		d->running = lock_probe(cfg->database, &d->pid, &d->since_ms);
	if (d->running < 0) {
		snprintf(d->why, sizeof d->why,
			 "cannot tell whether a daemon runs (no access to "
			 "%s.lock)",
			 cfg->database);
		return;
	}
	if (d->running == 0) {
		if (!st->shared)
			snprintf(d->why, sizeof d->why,
				 "no gatherd runs on %s", cfg->database);
		return;
	}
	if (!st->has_daemon || st->daemon_pid != d->pid) {
		snprintf(d->why, sizeof d->why,
			 "gatherd (pid %ld) has not written a heartbeat yet",
			 (long)d->pid);
		return;
	}
	/* Three intervals and a margin: a slow commit is not a dead daemon,
	 * a loop stuck for that long is. */
	int64_t age = now - st->daemon_heartbeat_ms;
	int64_t limit = (int64_t)st->daemon_interval_s * 3000 + 5000;
	if (age > limit) {
		snprintf(d->why, sizeof d->why,
			 "gatherd (pid %ld) last wrote a heartbeat %lld s ago "
			 "(every %d s expected)",
			 (long)d->pid, (long long)(age / 1000),
			 st->daemon_interval_s);
		return;
	}
	d->healthy = true;
}

/* "3d 4h", "5h 12m", "42s": a duration for people. */
static void status_duration(int64_t ms, char *buf, size_t size)
{
	int64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(buf, size, "%lldd %lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, size, "%lldh %lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, size, "%lldm %llds", (long long)(s / 60),
			 (long long)(s % 60));
	else
		snprintf(buf, size, "%llds", (long long)s);
}

static void status_print_json(const struct config *cfg,
			      const struct store_status *st,
			      const struct status_daemon *d, double rate,
			      int64_t partial, int64_t now)
{
	printf("{\"database\": ");
	status_json_str(st->shared ? st->where : cfg->database);
	printf(", \"schema_version\": %d, \"daemon\": ", st->schema_version);
	if (d->running == 1) {
		printf("{\"running\": true, \"pid\": %ld, \"uptime_s\": %lld, "
		       "\"healthy\": %s",
		       (long)d->pid,
		       (long long)(d->since_ms > 0 ? (now - d->since_ms) / 1000
						   : 0),
		       d->healthy ? "true" : "false");
		if (st->has_daemon && st->daemon_pid == d->pid)
			printf(", \"heartbeat_age_s\": %lld, \"in_flight\": "
			       "%lld",
			       (long long)((now - st->daemon_heartbeat_ms) /
					   1000),
			       (long long)st->daemon_in_flight);
		printf("}");
	} else {
		printf("{\"running\": %s}", d->running == 0 ? "false" : "null");
	}
	printf(", \"queued\": %lld, \"done\": %lld, \"failed\": %lld, "
	       "\"errors\": {",
	       (long long)st->queued, (long long)st->done,
	       (long long)st->failed);
	for (int i = 0; i < st->n_errors; i++) {
		printf(i ? ", " : "");
		status_json_str(st->errors[i].kind);
		printf(": %lld", (long long)st->errors[i].count);
	}
	printf("}, \"fetched_last_60s\": %lld, \"rate_per_s\": %.2f, "
	       "\"oldest_queued\": ",
	       (long long)st->fetched_last_60s, rate);
	if (st->oldest_queued_id > 0) {
		printf("{\"id\": %lld, \"url\": ",
		       (long long)st->oldest_queued_id);
		status_json_str(st->oldest_queued_url);
		printf(", \"queued_at\": ");
		status_json_str(st->oldest_queued_at);
		printf(", \"age_s\": %lld}",
		       (long long)st->oldest_queued_age_s);
	} else {
		printf("null");
	}
	/* Of the daemon's last heartbeat, running or not. */
	printf(", \"robots\": {\"fetches\": %lld, \"origins\": %lld}",
	       (long long)st->daemon_robots_fetches,
	       (long long)st->daemon_robots_origins);
	if (partial >= 0)
		printf(", \"queue_partial_bytes\": %lld", (long long)partial);
	else
		printf(", \"queue_partial_bytes\": null");
	if (st->shared) {
		printf(", \"nodes\": [");
		for (size_t i = 0; i < st->n_nodes; i++) {
			const struct store_node_status *n = &st->nodes[i];

			printf("%s{\"id\": %lld, \"name\": ", i ? ", " : "",
			       (long long)n->id);
			status_json_str(n->name);
			printf(", \"host\": ");
			status_json_str(n->host);
			printf(", \"pid\": %lld, \"version\": ",
			       (long long)n->pid);
			status_json_str(n->version);
			printf(", \"running\": %s, \"live\": %s, "
			       "\"started_ms\": %lld, \"heartbeat_ms\": %lld, "
			       "\"seen_age_s\": %lld, \"in_flight\": %lld, "
			       "\"claimed\": %lld, \"shards\": %lld}",
			       n->stopped_ms == 0 ? "true" : "false",
			       n->live ? "true" : "false",
			       (long long)n->started_ms,
			       (long long)n->heartbeat_ms,
			       (long long)n->seen_age_s,
			       (long long)n->in_flight, (long long)n->claimed,
			       (long long)n->shards);
		}
		printf("]");
	}
	if (st->hosts != NULL) {
		printf(", \"hosts\": [");
		for (size_t i = 0; i < st->n_hosts; i++) {
			const struct store_host_status *h = &st->hosts[i];

			printf("%s{\"host\": ", i ? ", " : "");
			status_json_str(h->host);
			printf(", \"queued\": %lld, \"in_flight\": %lld, "
			       "\"done\": %lld, \"failed\": %lld, "
			       "\"median_ms\": ",
			       (long long)h->queued, (long long)h->in_flight,
			       (long long)h->done, (long long)h->failed);
			if (h->median_ms >= 0)
				printf("%lld}", (long long)h->median_ms);
			else
				printf("null}");
		}
		printf("]");
	}
	printf("}\n");
}

/* Every node of a shared database, one line each. */
static void status_print_nodes(const struct store_status *st, int64_t now)
{
	size_t live = 0;

	for (size_t i = 0; i < st->n_nodes; i++)
		live += st->nodes[i].live;
	printf("nodes     %zu live\n", live);
	if (st->n_nodes == 0)
		return;
	printf("  %-20s %-20s %8s %-8s %9s %9s %8s %6s\n", "name", "host",
	       "pid", "state", "heartbeat", "in_flight", "claimed", "shards");
	for (size_t i = 0; i < st->n_nodes; i++) {
		const struct store_node_status *n = &st->nodes[i];
		char hb[32];

		status_duration(now - n->heartbeat_ms, hb, sizeof hb);
		printf("  %-20s %-20s %8lld %-8s %9s %9lld %8lld %6lld\n",
		       n->name, n->host, (long long)n->pid,
		       n->stopped_ms != 0 ? "stopped"
		       : n->live	  ? "running"
					  : "lost",
		       hb, (long long)n->in_flight, (long long)n->claimed,
		       (long long)n->shards);
	}
}

static void status_print_text(const struct config *cfg,
			      const struct store_status *st,
			      const struct status_daemon *d, double rate,
			      int64_t partial, int64_t now)
{
	char up[32], hb[32];

	if (st->shared)
		printf("database  PostgreSQL %s (schema %d)\n", st->where,
		       st->schema_version);
	else
		printf("database  %s (schema %d)\n", cfg->database,
		       st->schema_version);
	if (d->running == 1) {
		status_duration(d->since_ms > 0 ? now - d->since_ms : 0, up,
				sizeof up);
		printf("daemon    running, pid %ld, up %s", (long)d->pid, up);
		if (st->has_daemon && st->daemon_pid == d->pid) {
			status_duration(now - st->daemon_heartbeat_ms, hb,
					sizeof hb);
			printf(", heartbeat %s ago, %lld in flight", hb,
			       (long long)st->daemon_in_flight);
		}
		printf("%s%s\n", d->healthy ? "" : "; NOT HEALTHY: ",
		       d->healthy ? "" : d->why);
	} else if (d->running == 0) {
		printf("daemon    not running\n");
	} else {
		printf("daemon    unknown (%s)\n", d->why);
	}
	if (st->shared)
		status_print_nodes(st, now);
	printf("queued    %lld\n", (long long)st->queued);
	printf("done      %lld\n", (long long)st->done);
	printf("failed    %lld\n", (long long)st->failed);
	for (int i = 0; i < st->n_errors; i++)
		printf("  %-20s %lld\n", st->errors[i].kind,
		       (long long)st->errors[i].count);
	printf("rate      %.1f/s over the last minute (%lld results)\n", rate,
	       (long long)st->fetched_last_60s);
	if (st->oldest_queued_id > 0)
		printf("oldest    #%lld queued %s (%lld s ago): %s\n",
		       (long long)st->oldest_queued_id, st->oldest_queued_at,
		       (long long)st->oldest_queued_age_s,
		       st->oldest_queued_url);
	else
		printf("oldest    nothing queued\n");
	if (st->daemon_robots_fetches > 0)
		printf("robots    %lld robots.txt requests (%lld origins) by "
		       "the daemon's %s run\n",
		       (long long)st->daemon_robots_fetches,
		       (long long)st->daemon_robots_origins,
		       d->running == 1 ? "current" : "last");
	if (partial > 0)
		printf("unfinished %lld bytes at the end of %s wait for a "
		       "newline\n",
		       (long long)partial, cfg->queue_file);
	if (st->hosts != NULL) {
		printf("\n%-40s %8s %9s %9s %8s %10s\n", "host", "queued",
		       "in_flight", "done", "failed", "median_ms");
		for (size_t i = 0; i < st->n_hosts; i++) {
			const struct store_host_status *h = &st->hosts[i];
			char med[24];

			if (h->median_ms >= 0)
				snprintf(med, sizeof med, "%lld",
					 (long long)h->median_ms);
			else
				snprintf(med, sizeof med, "-");
			printf("%-40s %8lld %9lld %9lld %8lld %10s\n", h->host,
			       (long long)h->queued, (long long)h->in_flight,
			       (long long)h->done, (long long)h->failed, med);
		}
	}
}

int status_main(const struct config *cfg, const struct status_opts *o)
{
	struct store_status st;
	struct status_daemon d;
	char *cause = NULL;
	struct store_conf sc;
	int64_t now = util_wall_ms();
	int rc;

	store_conf_init(&sc, cfg);
	if (store_read_status(&sc, now, o->hosts, &st, &cause) != 0) {
		if (o->check && o->json) {
			printf("{\"healthy\": false, \"reason\": ");
			status_json_str(cause);
			printf("}\n");
			rc = 1;
		} else {
			rc = status_fail(o, cause);
		}
		free(cause);
		free(st.hosts);
		free(st.nodes);
		return rc;
	}
	status_daemon(cfg, &st, now, &d);
	if (o->check) {
		rc = d.healthy ? 0 : 1;
		if (o->json)
			printf("{\"healthy\": %s%s", d.healthy ? "true" : "false",
			       d.healthy ? "}\n" : ", \"reason\": ");
		if (!d.healthy) {
			if (o->json) {
				status_json_str(d.why);
				printf("}\n");
			} else {
				fprintf(stderr, "gatherd status: %s\n", d.why);
			}
		} else if (!o->json) {
			printf("healthy: gatherd pid %ld\n", (long)d.pid);
		}
		free(st.hosts);
		free(st.nodes);
		return rc;
	}
	double rate = (double)st.fetched_last_60s / 60.0;
	/* Bytes at the end of the queue file that wait for a newline (-1:
	 * this user cannot read it). */
	int64_t partial = -1;
	int qfd = open(cfg->queue_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat qst;
	if (qfd >= 0) {
		if (fstat(qfd, &qst) == 0 && S_ISREG(qst.st_mode))
			partial = queue_partial_tail(qfd, qst.st_size, 64 * 1024);
		close(qfd);
	} else if (errno == ENOENT) {
		partial = 0;
	}
	if (o->json)
		status_print_json(cfg, &st, &d, rate, partial, now);
	else
		status_print_text(cfg, &st, &d, rate, partial, now);
	free(st.hosts);
	free(st.nodes);
	return 0;
}

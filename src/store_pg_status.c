/* The PostgreSQL backend: what `gatherd status` reads (store.h,
 * store_read_status): the counts, and every node sharing the database,
 * from one snapshot, in a read-only transaction of its own. */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Run a query with up to two parameters; NULL with *cause on failure. */
static PGresult *pg_query(PGconn *c, const char *sql, int n, const char *p0,
			  const char *p1, char **cause)
{
	const char *p[2] = {p0, p1};

	return store_pg_exec(c, NULL, sql, n, p, PGRES_TUPLES_OK, "status",
			     cause);
}

static int64_t pg_int(PGresult *r, int j, int i)
{
	return PQgetisnull(r, j, i) ? 0 : atoll(PQgetvalue(r, j, i));
}

/* Copy column i of row j into a fixed buffer (truncating). */
#define PG_COPY(buf, r, j, i)                                                  \
	snprintf((buf), sizeof(buf), "%s",                                     \
		 PQgetisnull((r), (j), (i)) ? "" : PQgetvalue((r), (j), (i)))

/* The nodes, and this configuration's own latest run as the daemon. */
static int pg_read_nodes(PGconn *c, const struct store_conf *sc,
			 struct store_status *out, char **cause)
{
	char lease[16], me[256] = "";
	PGresult *r;

	snprintf(lease, sizeof lease, "%d", sc->lease_s > 0 ? sc->lease_s : 30);
	if (sc->node_name != NULL && sc->node_name[0] != '\0')
		snprintf(me, sizeof me, "%s", sc->node_name);
	else if (gethostname(me, sizeof me - 1) != 0)
		me[0] = '\0';
	r = pg_query(c,
		     "SELECT n.id, n.name, n.host, n.pid, n.version,"
		     " n.started_at, n.heartbeat_at, n.stopped_at,"
		     " floor(extract(epoch FROM now() - n.seen_at)),"
		     " n.stopped_at IS NULL AND"
		     "  n.seen_at > now() - $1::float8 * interval '1 second',"
		     " n.in_flight, n.claimed,"
		     " (SELECT count(*) FROM shards s WHERE s.node_id = n.id"
		     "   AND s.lease_until > now()),"
		     " n.interval_s, n.robots_fetches, n.robots_origins"
		     " FROM nodes n"
		     " WHERE n.stopped_at IS NULL"
		     "    OR n.seen_at > now() - interval '1 hour'"
		     " ORDER BY n.name, n.id DESC LIMIT 1000",
		     1, lease, NULL, cause);
	if (r == NULL)
		return -1;
	out->nodes = xcalloc((size_t)PQntuples(r) + 1, sizeof *out->nodes);
	for (int j = 0; j < PQntuples(r); j++) {
		struct store_node_status *n = &out->nodes[out->n_nodes++];

		n->id = pg_int(r, j, 0);
		PG_COPY(n->name, r, j, 1);
		PG_COPY(n->host, r, j, 2);
		n->pid = pg_int(r, j, 3);
		PG_COPY(n->version, r, j, 4);
		n->started_ms = pg_int(r, j, 5);
		n->heartbeat_ms = pg_int(r, j, 6);
		n->stopped_ms = pg_int(r, j, 7);
		n->seen_age_s = pg_int(r, j, 8);
		n->live = strcmp(PQgetvalue(r, j, 9), "t") == 0;
		n->in_flight = pg_int(r, j, 10);
		n->claimed = pg_int(r, j, 11);
		n->shards = pg_int(r, j, 12);
		if (!out->has_daemon && strcmp(n->name, me) == 0) {
			out->self = n;
			out->has_daemon = true;
			out->daemon_pid = n->pid;
			snprintf(out->daemon_host, sizeof out->daemon_host,
				 "%s", n->host);
			snprintf(out->daemon_version,
				 sizeof out->daemon_version, "%s", n->version);
			out->daemon_started_ms = n->started_ms;
			out->daemon_heartbeat_ms = n->heartbeat_ms;
			out->daemon_stopped_ms = n->stopped_ms;
			out->daemon_interval_s = (int)pg_int(r, j, 13);
			out->daemon_in_flight = n->in_flight;
			out->daemon_robots_fetches = pg_int(r, j, 14);
			out->daemon_robots_origins = pg_int(r, j, 15);
		}
	}
	PQclear(r);
	return 0;
}

/* status --hosts: the busiest hosts by queued rows, then failures. */
static int pg_read_hosts(PGconn *c, size_t max, struct store_status *out,
			 char **cause)
{
	char lim[24];
	PGresult *r;

	snprintf(lim, sizeof lim, "%zu", max);
	r = pg_query(c,
		     "SELECT h, sum((state = 0)::int), sum((state = 1)::int),"
		     " sum((state = 2)::int),"
		     " percentile_disc(0.5) WITHIN GROUP (ORDER BY elapsed_ms)"
		     "  FILTER (WHERE state = 1),"
		     " (SELECT sum(nh.in_flight) FROM node_hosts nh"
		     "   JOIN nodes n ON n.id = nh.node_id"
		     "   WHERE nh.host = h AND n.stopped_at IS NULL)"
		     " FROM (SELECT gatherd_host(url) AS h, state, elapsed_ms"
		     "       FROM urls) AS x WHERE h IS NOT NULL"
		     " GROUP BY h ORDER BY 2 DESC, 4 DESC, 1 LIMIT $1",
		     1, lim, NULL, cause);
	if (r == NULL)
		return -1;
	out->hosts = xcalloc(max, sizeof *out->hosts);
	for (int j = 0; j < PQntuples(r) && out->n_hosts < max; j++) {
		struct store_host_status *h = &out->hosts[out->n_hosts++];

		PG_COPY(h->host, r, j, 0);
		h->queued = pg_int(r, j, 1);
		h->done = pg_int(r, j, 2);
		h->failed = pg_int(r, j, 3);
		h->median_ms = PQgetisnull(r, j, 4) ? -1 : pg_int(r, j, 4);
		h->in_flight = pg_int(r, j, 5);
	}
	PQclear(r);
	return 0;
}

int store_pg_read_status(const struct store_conf *sc, int64_t now_ms,
			 size_t hosts_max, struct store_status *out,
			 char **cause)
{
	char since[24];
	PGconn *c;
	PGresult *r;
	int v = 0;

	memset(out, 0, sizeof *out);
	out->shared = true;
	c = store_pg_connect(sc->conninfo, cause);
	if (c == NULL)
		return -1;
	/* One snapshot for every number, and nothing written. */
	r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*cause = store_pg_err(c, "begin");
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	if (store_pg_schema_version(c, &v, cause) != 0)
		goto fail;
	out->schema_version = v;
	snprintf(out->where, sizeof out->where, "%s", store_pg_where(c));
	if (v < 1) {
		*cause = util_printf("%s is not a gatherd database (yet)",
				     store_pg_where(c));
		goto fail;
	}
	r = pg_query(c, "SELECT state, count(*) FROM urls GROUP BY state", 0,
		     NULL, NULL, cause);
	if (r == NULL)
		goto fail;
	for (int j = 0; j < PQntuples(r); j++) {
		int64_t n = pg_int(r, j, 1);

		switch (pg_int(r, j, 0)) {
		case STORE_QUEUED:
			out->queued = n;
			break;
		case STORE_DONE:
			out->done = n;
			break;
		default:
			out->failed = n;
		}
	}
	PQclear(r);
	r = pg_query(c,
		     "SELECT error, count(*) FROM urls WHERE state = 2 "
		     "GROUP BY error ORDER BY 2 DESC, 1 LIMIT 16",
		     0, NULL, NULL, cause);
	if (r == NULL)
		goto fail;
	for (int j = 0; j < PQntuples(r) && out->n_errors < 16; j++) {
		snprintf(out->errors[out->n_errors].kind,
			 sizeof out->errors[0].kind, "%s",
			 PQgetisnull(r, j, 0) ? "?" : PQgetvalue(r, j, 0));
		out->errors[out->n_errors].count = pg_int(r, j, 1);
		out->n_errors++;
	}
	PQclear(r);
	snprintf(since, sizeof since, "%lld", (long long)(now_ms - 60000));
	r = pg_query(c, "SELECT count(*) FROM urls WHERE fetched_at >= $1", 1,
		     since, NULL, cause);
	if (r == NULL)
		goto fail;
	out->fetched_last_60s = pg_int(r, 0, 0);
	PQclear(r);
	r = pg_query(c,
		     "SELECT id, url, queued_at, gatherd_iso(queued_at) FROM "
		     "urls WHERE state = 0 ORDER BY id LIMIT 1",
		     0, NULL, NULL, cause);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 1) {
		out->oldest_queued_id = pg_int(r, 0, 0);
		PG_COPY(out->oldest_queued_url, r, 0, 1);
		PG_COPY(out->oldest_queued_at, r, 0, 3);
		out->oldest_queued_age_s = (now_ms - pg_int(r, 0, 2)) / 1000;
	}
	PQclear(r);
	if (pg_read_nodes(c, sc, out, cause) != 0)
		goto fail;
	if (hosts_max > 0 && pg_read_hosts(c, hosts_max, out, cause) != 0)
		goto fail;
	PQfinish(c);
	return 0;
fail:
	PQfinish(c);
	return -1;
}

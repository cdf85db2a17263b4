/* The PostgreSQL backend, the daemon's side: many nodes share one
 * database.  See store.h, store_backend.h and store_pg.h; the tools' side
 * is in store_pg_status.c and store_pg_tools.c.  Runs on the worker thread
 * only.
 *
 * Each daemon run is a node (a row of `nodes`, a new id per start).  It
 *   - holds host shards (table `shards`) under a lease, and takes or gives
 *     back shards in store_tick() so that each live node holds about 1024
 *     / (live nodes): every host is fetched by one node at a time, and the
 *     per-host limits hold across the cluster;
 *   - claims queued rows of its shards with FOR UPDATE SKIP LOCKED,
 *     setting claimed_by and lease_until (store_load_queued), and renews
 *     the leases of the rows it holds in store_tick();
 *   - records a batch of results in one statement that only touches rows
 *     it still holds (claimed_by is this node and the lease has not run
 *     out): a node that lost a lease records nothing for that row;
 *   - ingests its own queue file with the position keyed by node name and
 *     queue path, advanced in the statement that inserts the lines.
 * A shard is given back only once this node holds no row of it, so two
 * nodes never fetch from one host at once; a node that dies loses its
 * shards and rows lease_s after its last renewal, and the others take them.
 *
 * When the connection breaks, every call first tries to connect again,
 * at most once per backoff (0.5 s doubling to 30 s); the callers
 * (batcher, queue, scheduler) retry what failed, so nothing is lost. */
#include "store_pg_node.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define PG_BACKOFF_MIN_MS 500
#define PG_BACKOFF_MAX_MS 30000
#define STORE_PG_NODE_LOCK_WAIT "5s"

struct store_pg *store_pg_of(struct store *base)
{
	return (struct store_pg *)base;
}

/* A call failed: when the connection is what broke, say so once, drop
 * it, and start reconnecting.  True when it was the connection. */
bool store_pg_broken(struct store_pg *s)
{
	if (s->conn == NULL || PQstatus(s->conn) == CONNECTION_OK)
		return false;
	store_pg_drop(s);
	return true;
}

void store_pg_drop(struct store_pg *s)
{
	PQfinish(s->conn);
	s->conn = NULL;
	if (s->down_since_ms == 0) {
		s->down_since_ms = util_mono_ms();
		log_warn("lost the connection to PostgreSQL %s: reconnecting "
			 "(after %d ms, backing off to %d s); nothing is lost "
			 "meanwhile",
			 s->where, PG_BACKOFF_MIN_MS, PG_BACKOFF_MAX_MS / 1000);
		s->next_try_ms = s->down_since_ms + PG_BACKOFF_MIN_MS;
		s->backoff_ms = PG_BACKOFF_MIN_MS;
	}
}

/* Run a prepared statement; NULL with *cause (and the connection
 * dropped when it broke) on failure. */
PGresult *store_pg_run(struct store_pg *s, const char *name, int n,
		       const char *const *params, ExecStatusType want,
		       const char *what, char **cause)
{
	PGresult *r =
	    store_pg_exec(s->conn, name, NULL, n, params, want, what, cause);

	if (r == NULL)
		store_pg_broken(s);
	return r;
}

/* Prepare the statements on a new connection (of a migrated database). */
static int pg_prepare(struct store_pg *s, char **cause)
{
	const struct pg_statement *const tables[] = {store_pg_rows_sql,
						     store_pg_shards_sql};

	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
		for (const struct pg_statement *st = tables[t];
		     st->name != NULL; st++) {
			PGresult *r =
			    PQprepare(s->conn, st->name, st->sql, 0, NULL);

			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				char *what =
				    util_printf("prepare %s", st->name);

				*cause = store_pg_err(s->conn, what);
				free(what);
				PQclear(r);
				return -1;
			}
			PQclear(r);
		}
	}
	return 0;
}

/* The session of this node's earlier run may hold the node lock after
 * its process is gone: killed in the middle of a long statement, it is
 * noticed by the server only when that statement ends.  When that run was
 * on this machine (nodes.host) and its process no longer exists, its
 * session is ended here, so that a restart does not wait for it (the
 * statement rolls back; its rows stay queued).  On another machine, or
 * with its pid alive, nothing is done: the lock is then really held. */
static void pg_end_stale_holder(struct store_pg *s, const char *key)
{
	char host[256] = "", backend[24];
	const char *p[4] = {key, s->node_name, s->queue, host};
	PGresult *r;
	long holder;
	pid_t pid;

	if (gethostname(host, sizeof host - 1) != 0)
		return;
	r = PQexecParams(
	    s->conn,
	    "SELECT l.pid, n.pid FROM pg_locks l, nodes n"
	    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
	    "   AND l.database = (SELECT oid FROM pg_database"
	    "     WHERE datname = current_database())"
	    "   AND ((l.classid::int8 << 32) | l.objid::int8)"
	    "     = hashtextextended($1, 0)"
	    "   AND n.id = (SELECT max(id) FROM nodes"
	    "     WHERE name = $2 AND queue = $3)"
	    "   AND n.stopped_at IS NULL AND n.host = $4",
	    4, NULL, p, NULL, NULL, 0);
	/* (Before the first migration there is no `nodes`: nothing to do.) */
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		PQclear(r);
		return;
	}
	holder = atol(PQgetvalue(r, 0, 0));
	pid = (pid_t)atol(PQgetvalue(r, 0, 1));
	PQclear(r);
	if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
		return;
	snprintf(backend, sizeof backend, "%ld", holder);
	p[0] = backend;
	r = PQexecParams(s->conn, "SELECT pg_terminate_backend($1::int, 10000)",
			 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK &&
	    strcmp(PQgetvalue(r, 0, 0), "t") == 0)
		log_warn("node %s: the session of its earlier run (pid %ld, "
			 "gone) still held the node lock: ended it",
			 s->node_name, (long)pid);
	PQclear(r);
}

/* The connection of this node: connect, make sure no other process is
 * this node on this queue file (a session lock, which goes with the
 * connection), and, with `prepare`, prepare the statements. */
static int pg_connect(struct store_pg *s, bool prepare, char **cause)
{
	const char *key[1];
	char *k;
	PGresult *r;

	s->conn = store_pg_connect(s->conninfo, cause);
	if (s->conn == NULL)
		return -1;
	snprintf(s->where, sizeof s->where, "%s", store_pg_where(s->conn));
	k = util_printf("gatherd node %s queue %s", s->node_name, s->queue);
	key[0] = k;
	r = PQexecParams(s->conn,
			 "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
			 1, NULL, key, NULL, NULL, 0);
	bool locked = PQresultStatus(r) == PGRES_TUPLES_OK &&
		      strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!locked) {
		pg_end_stale_holder(s, k);
		/* Waiting a little: the session of a node killed a moment
		 * ago may not have ended yet (the server notices the closed
		 * socket soon). */
		r = PQexecParams(s->conn,
				 "SELECT set_config('lock_timeout', '"
				 STORE_PG_NODE_LOCK_WAIT "', false), "
				 "pg_advisory_lock(hashtextextended($1, 0)), "
				 "set_config('lock_timeout', '0', false)",
				 1, NULL, key, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			const char *state =
			    PQresultErrorField(r, PG_DIAG_SQLSTATE);

			if (state != NULL && strcmp(state, "55P03") == 0)
				*cause = util_printf(
				    "another gatherd runs as node %s with "
				    "queue file %s on %s",
				    s->node_name, s->queue, s->where);
			else
				*cause = store_pg_err(s->conn,
						      "take the node lock");
			PQclear(r);
			free(k);
			goto fail;
		}
		PQclear(r);
	}
	free(k);
	if (prepare && pg_prepare(s, cause) != 0)
		goto fail;
	return 0;
fail:
	PQfinish(s->conn);
	s->conn = NULL;
	return -1;
}

/* A working connection, reconnecting (once per backoff) when the last
 * one broke; -1 with *cause while there is none. */
int store_pg_ready(struct store_pg *s, char **cause)
{
	int64_t now;
	char *err = NULL;

	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	store_pg_broken(s);
	now = util_mono_ms();
	if (now < s->next_try_ms) {
		*cause =
		    util_printf("no connection to PostgreSQL %s (next "
				"attempt in %lld ms)",
				s->where, (long long)(s->next_try_ms - now));
		return -1;
	}
	if (pg_connect(s, true, &err) != 0) {
		s->backoff_ms = s->backoff_ms * 2 > PG_BACKOFF_MAX_MS
				    ? PG_BACKOFF_MAX_MS
				    : s->backoff_ms * 2;
		s->next_try_ms = now + s->backoff_ms;
		*cause = util_printf("%s (next attempt in %d ms)", err,
				     s->backoff_ms);
		free(err);
		return -1;
	}
	log_info("reconnected to PostgreSQL %s after %.1f s", s->where,
		 (double)(now - s->down_since_ms) / 1000.0);
	s->down_since_ms = s->next_try_ms = 0;
	s->backoff_ms = 0;
	return 0;
}

void store_pg_hold(struct store_pg *s, int64_t id, int shard)
{
	if (shard < 0 || shard >= SHARD_COUNT)
		shard = 0;
	idset_add(s->held, id, shard);
	s->held_in[shard]++;
}

void store_pg_unhold(struct store_pg *s, int64_t id)
{
	int shard;

	if (idset_remove(s->held, id, &shard))
		s->held_in[shard]--;
}

static void pg_collect_id(void *arg, int64_t id, int tag)
{
	(void)tag;
	pg_array_int(arg, id);
}

void store_pg_held_array(struct store_pg *s, struct pg_buf *b)
{
	pg_array_open(b);
	idset_foreach(s->held, pg_collect_id, b);
	pg_array_close(b);
}

static void store_pg_close(struct store *base);

/* Earlier runs of this node (its name and queue file) that did not stop
 * cleanly: holding the node lock proves that their sessions are gone, so
 * their shards and rows are given back now, not when their leases run
 * out, and they no longer count as live. */
static int pg_take_over(struct store_pg *s, const char *now_ms, char **cause)
{
	const char *p[4] = {s->node_name, s->queue, now_ms, s->gap_txt};
	PGresult *r;

	/* The shards are free after host_delay_ms ($4): the earlier run may
	 * have sent its last requests just now. */
	r = store_pg_exec(
	    s->conn, NULL,
	    "WITH old AS (UPDATE nodes SET stopped_at = $3::bigint"
	    "  WHERE name = $1 AND queue = $2 AND stopped_at IS NULL"
	    "  RETURNING id, pid),"
	    " s AS (UPDATE shards SET node_id = NULL,"
	    "  lease_until = now() + $4::float8 * interval '1 millisecond',"
	    "  releasing = false WHERE node_id IN (SELECT id FROM old)),"
	    " u AS (UPDATE urls SET claimed_by = NULL, lease_until = NULL"
	    "  WHERE state = 0 AND claimed_by IN (SELECT id FROM old))"
	    "SELECT id, pid FROM old",
	    4, p, PGRES_TUPLES_OK, "take over from earlier runs", cause);
	if (r == NULL)
		return -1;
	for (int j = 0; j < PQntuples(r); j++)
		log_info("node %s: the earlier run (id %s, pid %s) ended "
			 "without giving back its rows and shards: taken back "
			 "now",
			 s->node_name, PQgetvalue(r, j, 0),
			 PQgetvalue(r, j, 1));
	PQclear(r);
	return 0;
}

static int store_pg_open(const struct store_conf *sc, struct store **out,
			 char **cause)
{
	struct store_pg *s = xcalloc(1, sizeof *s);
	char host[256] = "", *err = NULL;
	const char *p[8];
	char pid[24], started[24];
	PGresult *r;
	struct store_tick_out tick = {0};

	s->base.be = &store_pg_backend;
	s->conninfo = xstrdup(sc->conninfo != NULL ? sc->conninfo : "");
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	s->node_name = xstrdup(
	    sc->node_name != NULL && sc->node_name[0] ? sc->node_name : host);
	/* A parameter of text type: a path that is not UTF-8 (a Latin-1
	 * name) would fail every statement that names it. */
	{
		const char *q = sc->queue_file != NULL ? sc->queue_file : "";
		struct pg_buf b = {0};

		pg_buf_utf8(&b, q, strlen(q));
		s->queue = xstrdup(pg_buf_str(&b));
		pg_buf_free(&b);
	}
	s->lease_s = sc->lease_s > 0 ? sc->lease_s : 30;
	snprintf(s->lease_txt, sizeof s->lease_txt, "%d", s->lease_s);
	snprintf(s->gap_txt, sizeof s->gap_txt, "%d",
		 sc->hand_over_gap_ms > 0 ? sc->hand_over_gap_ms : 0);
	s->held = idset_new();
	s->analyze_at = PG_ANALYZE_FIRST;
	s->rnd = (uint64_t)util_wall_ms() ^ ((uint64_t)getpid() << 32) ^
		 0x9e3779b97f4a7c15ULL;

	if (pg_connect(s, false, cause) != 0)
		goto fail;
	if (store_pg_migrate(s->conn, &err) != 0) {
		*cause = util_printf("%s: %s", s->where, err);
		free(err);
		goto fail;
	}
	if (pg_prepare(s, cause) != 0)
		goto fail;
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	snprintf(started, sizeof started, "%lld", (long long)util_wall_ms());
	p[0] = s->node_name;
	p[1] = s->queue;
	p[2] = pid;
	p[3] = host;
	p[4] = GATHERD_VERSION;
	p[5] = started;
	if (pg_take_over(s, started, cause) != 0)
		goto fail;
	r = store_pg_exec(s->conn, NULL,
			  "INSERT INTO nodes (name, queue, pid, host, version, "
			  "started_at, heartbeat_at) VALUES ($1, $2, $3, $4, "
			  "$5, $6, $6) RETURNING id",
			  6, p, PGRES_TUPLES_OK, "register the node", cause);
	if (r == NULL)
		goto fail;
	s->node_id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	snprintf(s->node_txt, sizeof s->node_txt, "%lld",
		 (long long)s->node_id);
	/* The queue position row, and old runs' rows (a week after they
	 * were last seen: status shows recent ones). */
	r = store_pg_exec(s->conn, NULL,
			  "INSERT INTO queue_position (node, queue) VALUES "
			  "($1, $2) ON CONFLICT DO NOTHING",
			  2, p, PGRES_COMMAND_OK, "queue position", cause);
	if (r == NULL)
		goto fail;
	PQclear(r);
	r = store_pg_exec(s->conn, NULL,
			  "DELETE FROM nodes WHERE seen_at < now() - interval "
			  "'7 days'",
			  0, NULL, PGRES_COMMAND_OK, "forget old nodes", cause);
	if (r == NULL)
		goto fail;
	PQclear(r);
	/* Hold shards before the first claim (--once would otherwise find
	 * nothing to claim and stop). */
	if (store_pg_tick(&s->base, &tick, cause) != 0)
		goto fail;
	free(tick.lost); /* none: nothing is held yet */
	log_info("PostgreSQL %s: node %s (id %lld), holding %d of %d host "
		 "shards, %d node%s live",
		 s->where, s->node_name, (long long)s->node_id, s->n_active,
		 SHARD_COUNT, s->live, s->live == 1 ? "" : "s");
	*out = &s->base;
	return 0;
fail:
	store_pg_close(&s->base);
	return -1;
}

/* At exit: give back what this node holds, so that others need not wait
 * for the leases to run out, and say it stopped. */
static void store_pg_close(struct store *base)
{
	struct store_pg *s = store_pg_of(base);

	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK &&
	    s->node_id > 0) {
		struct pg_buf b = {0};
		char now[24];
		const char *p[4] = {s->node_txt, NULL, NULL, s->gap_txt};
		PGresult *r;

		store_pg_held_array(s, &b);
		p[1] = pg_buf_str(&b);
		snprintf(now, sizeof now, "%lld", (long long)util_wall_ms());
		p[2] = now;
		r = PQexecParams(
		    s->conn,
		    "WITH r AS (UPDATE urls SET claimed_by = NULL, "
		    "lease_until = NULL WHERE id = ANY($2::bigint[]) "
		    "AND claimed_by = $1 AND state = 0), "
		    "f AS (UPDATE shards SET node_id = NULL, "
		    "lease_until = now() + $4::float8 * "
		    "interval '1 millisecond', releasing = false WHERE "
		    "node_id = $1) "
		    "UPDATE nodes SET stopped_at = coalesce("
		    "stopped_at, $3), claimed = 0 WHERE id = $1",
		    4, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char *why = store_pg_err(s->conn, "give back");

			log_warn("%s (the others take over when the leases "
				 "run out)",
				 why);
			free(why);
		}
		PQclear(r);
		pg_buf_free(&b);
	}
	PQfinish(s->conn);
	pg_buf_free(&s->active);
	for (int i = 0; i < PG_SCRATCH; i++)
		pg_buf_free(&s->col[i]);
	idset_free(s->held);
	free(s->conninfo);
	free(s->node_name);
	free(s->queue);
	free(s);
}

/* Every second (store_pg_tick() renews the leases three times per
 * lease_s, so that one late or failed tick loses nothing). */
static int store_pg_tick_ms(struct store *base)
{
	(void)base;
	return 1000;
}

static const char *store_pg_describe(struct store *base)
{
	struct store_pg *s = store_pg_of(base);
	static char buf[400];

	snprintf(buf, sizeof buf, "PostgreSQL %s as node %s (id %lld)",
		 s->where, s->node_name, (long long)s->node_id);
	return buf;
}

const struct store_backend store_pg_backend = {
    .name = "postgresql",
    .shared = true,
    .open = store_pg_open,
    .close = store_pg_close,
    .describe = store_pg_describe,
    .tick_ms = store_pg_tick_ms,
    .tick = store_pg_tick,
    .get_queue_state = store_pg_get_queue_state,
    .ingest = store_pg_ingest,
    .load_queued = store_pg_load_queued,
    .put_results = store_pg_put_results,
    .heartbeat = store_pg_heartbeat,
    .count_results = store_pg_count_results,
    .count_queued = store_pg_count_queued,
    .read_status = store_pg_read_status,
    .refetch = store_pg_refetch,
    .prune = store_pg_prune,
    .find_records = store_pg_find_records,
    .submit = store_pg_submit,
};

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
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errkind.h"
#include "idset.h"
#include "log.h"
#include "shard.h"
#include "util.h"

#define PG_BACKOFF_MIN_MS 500
#define PG_BACKOFF_MAX_MS 30000
#define PG_RESULT_COLS 26 /* arrays of the results statement */

enum { SHARD_NOT_MINE = 0, SHARD_ACTIVE = 1, SHARD_RELEASING = 2 };

/* One node's connection and what it holds.  `held` and `held_in` count
 * the rows claimed and not yet recorded (the scheduler has them);
 * `shard` is what the last tick learnt of this node's shards. */
struct store_pg {
	struct store base; /* first: store.c dispatches through base.be */
	PGconn *conn;      /* NULL while disconnected */
	char *conninfo, *node_name, *queue;
	int lease_s;
	int64_t node_id;
	char node_txt[24], lease_txt[16]; /* as parameters */
	char where[300];                  /* for the log */
	/* Reconnecting: since when (monotonic ms; 0 while connected), and
	 * the next attempt. */
	int64_t down_since_ms, next_try_ms;
	int backoff_ms;
	/* queue_position.seq as this node last stored it, and whether the
	 * last ingest broke off with its outcome unknown. */
	int64_t qseq;
	bool qseq_unsure;
	struct idset *held;
	int held_in[SHARD_COUNT];
	unsigned char shard[SHARD_COUNT];
	int n_active, n_releasing, live;
	uint64_t rnd;
	struct pg_buf col[PG_RESULT_COLS];
};

/* Every statement the daemon runs more than once, prepared on each
 * connection.  Parameters are cast where their type is not plain. */
static const struct {
	const char *name, *sql;
} pg_statements[] = {
	/* The next rows of this node's active shards, in id order, that
	 * nobody holds: claimed under a lease, with the validators of the
	 * row a re-fetch names. */
	{"claim",
	 "WITH c AS ("
	 "  SELECT id FROM urls"
	 "  WHERE state = 0"
	 "    AND shard IN (SELECT shard FROM shards WHERE node_id = $1"
	 "                  AND NOT releasing AND lease_until > now())"
	 "    AND (claimed_by IS NULL OR lease_until < now())"
	 "  ORDER BY id LIMIT $2"
	 "  FOR UPDATE OF urls SKIP LOCKED),"
	 " u AS ("
	 "  UPDATE urls SET claimed_by = $1,"
	 "         lease_until = now() + $3::float8 * interval '1 second'"
	 "  FROM c WHERE urls.id = c.id"
	 "  RETURNING urls.id, urls.url, urls.attempts, urls.shard,"
	 "            urls.refetch_of)"
	 "SELECT u.id, u.url, u.attempts, u.shard, p.etag, p.last_modified,"
	 "       p.body_sha256, p.fetched_at, p.warc_file, p.warc_offset"
	 " FROM u LEFT JOIN urls p ON p.id = u.refetch_of ORDER BY u.id"},
	/* A batch of results, only for rows this node still holds. */
	{"results",
	 "UPDATE urls AS u SET state = r.state, status = r.status,"
	 " length = r.length, error = r.error, error_detail = r.error_detail,"
	 " attempts = r.attempts, final_url = r.final_url,"
	 " redirects = r.redirects, content_type = r.content_type,"
	 " fetched_at = r.fetched_at, elapsed_ms = r.elapsed_ms,"
	 " connect_ms = r.connect_ms, tls_ms = r.tls_ms,"
	 " body_sha256 = r.body_sha256, etag = r.etag,"
	 " last_modified = r.last_modified, warc_file = r.warc_file,"
	 " warc_offset = r.warc_offset, not_modified = r.not_modified,"
	 " decoded_length = r.decoded_length, dns_ms = r.dns_ms,"
	 " ttfb_ms = r.ttfb_ms, remote_ip = r.remote_ip,"
	 " tls_version = r.tls_version, tls_resumed = r.tls_resumed,"
	 " lease_until = NULL"
	 " FROM unnest($2::bigint[], $3::smallint[], $4::int[], $5::bigint[],"
	 "  $6::text[], $7::text[], $8::int[], $9::text[], $10::int[],"
	 "  $11::text[], $12::bigint[], $13::bigint[], $14::bigint[],"
	 "  $15::bigint[], $16::text[], $17::text[], $18::text[], $19::text[],"
	 "  $20::bigint[], $21::smallint[], $22::bigint[], $23::bigint[],"
	 "  $24::bigint[], $25::text[], $26::text[], $27::smallint[])"
	 " AS r(id, state, status, length, error, error_detail, attempts,"
	 "  final_url, redirects, content_type, fetched_at, elapsed_ms,"
	 "  connect_ms, tls_ms, body_sha256, etag, last_modified, warc_file,"
	 "  warc_offset, not_modified, decoded_length, dns_ms, ttfb_ms,"
	 "  remote_ip, tls_version, tls_resumed)"
	 " WHERE u.id = r.id AND u.state = 0 AND u.claimed_by = $1"
	 "   AND u.lease_until > now()"
	 " RETURNING u.id"},
	/* Rows left queued at shutdown: their attempts so far, and the
	 * claim given back so that another node takes them at once. */
	{"requeue",
	 "UPDATE urls AS u SET attempts = r.attempts, claimed_by = NULL,"
	 " lease_until = NULL"
	 " FROM unnest($2::bigint[], $3::int[]) AS r(id, attempts)"
	 " WHERE u.id = r.id AND u.state = 0 AND u.claimed_by = $1"},
	/* Lines of the queue file and its new position, in one statement:
	 * nothing is inserted unless the position was still the one this
	 * node stored last (seq). */
	{"ingest",
	 "WITH pos AS ("
	 "  UPDATE queue_position SET seq = seq + 1, has_cur = true,"
	 "   cur_dev = $4, cur_ino = $5, cur_offset = $6, cur_head_len = $7,"
	 "   cur_head_hash = $8, has_old = $9, old_dev = $10, old_ino = $11,"
	 "   old_offset = $12, old_head_len = $13, old_head_hash = $14,"
	 "   updated_at = $15"
	 "  WHERE node = $1 AND queue = $2 AND seq = $3"
	 "  RETURNING seq),"
	 " ins AS ("
	 "  INSERT INTO urls (url, shard, state, error, error_detail,"
	 "                    queued_at)"
	 "  SELECT l.url, l.shard, l.state, l.error, l.detail, $15"
	 "  FROM unnest($16::text[], $17::int[], $18::smallint[],"
	 "              $19::text[], $20::text[]) WITH ORDINALITY"
	 "       AS l(url, shard, state, error, detail, n)"
	 "  WHERE EXISTS (SELECT 1 FROM pos)"
	 "  ORDER BY l.n"
	 "  RETURNING 1)"
	 "SELECT (SELECT seq FROM pos), (SELECT count(*) FROM ins)"},
	{"qpos",
	 "SELECT seq, has_cur, cur_dev, cur_ino, cur_offset, cur_head_len,"
	 " cur_head_hash, has_old, old_dev, old_ino, old_offset,"
	 " old_head_len, old_head_hash"
	 " FROM queue_position WHERE node = $1 AND queue = $2"},
	{"renew_rows",
	 "UPDATE urls SET lease_until = now() + $3::float8 * interval '1 second'"
	 " WHERE id = ANY($2::bigint[]) AND claimed_by = $1 AND state = 0"},
	{"seen",
	 "UPDATE nodes SET seen_at = now(), claimed = $2 WHERE id = $1"},
	{"live",
	 "SELECT count(*) FROM nodes WHERE stopped_at IS NULL"
	 " AND seen_at > now() - $1::float8 * interval '1 second'"},
	{"shards_renew",
	 "UPDATE shards SET lease_until = now() + $2::float8 * interval '1 second'"
	 " WHERE node_id = $1 RETURNING shard, releasing"},
	/* Free shards (never held, given back, or of a node that stopped
	 * renewing them). */
	{"shards_take",
	 "UPDATE shards SET node_id = $1, releasing = false,"
	 " lease_until = now() + $2::float8 * interval '1 second'"
	 " WHERE shard IN (SELECT shard FROM shards"
	 "  WHERE node_id IS NULL OR lease_until < now()"
	 "  ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED)"
	 " RETURNING shard"},
	{"shards_mark",
	 "UPDATE shards SET releasing = $3 WHERE node_id = $1"
	 " AND shard = ANY($2::int[])"},
	{"shards_free",
	 "UPDATE shards SET node_id = NULL, lease_until = NULL,"
	 " releasing = false WHERE node_id = $1 AND shard = ANY($2::int[])"},
	{"heartbeat",
	 "WITH n AS ("
	 "  UPDATE nodes SET pid = $2, host = $3, version = $4,"
	 "   started_at = $5, heartbeat_at = $6, interval_s = $7,"
	 "   in_flight = $8, stopped_at = $9, robots_fetches = $10,"
	 "   robots_origins = $11, seen_at = now() WHERE id = $1),"
	 " d AS (DELETE FROM node_hosts WHERE node_id = $1"
	 "   AND NOT (host = ANY($12::text[])))"
	 "INSERT INTO node_hosts (node_id, host, in_flight)"
	 " SELECT $1, h, f FROM unnest($12::text[], $13::int[]) AS x(h, f)"
	 " ON CONFLICT (node_id, host) DO UPDATE"
	 " SET in_flight = excluded.in_flight"},
};

static struct store_pg *store_pg_of(struct store *base)
{
	return (struct store_pg *)base;
}

/* A call failed: when the connection is what broke, say so once, drop
 * it, and start reconnecting.  True when it was the connection. */
static bool pg_broken(struct store_pg *s)
{
	if (s->conn == NULL || PQstatus(s->conn) == CONNECTION_OK)
		return false;
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
	return true;
}

/* Run a prepared statement; NULL with *cause (and the connection
 * dropped when it broke) on failure. */
static PGresult *pg_run(struct store_pg *s, const char *name, int n,
			const char *const *params, ExecStatusType want,
			const char *what, char **cause)
{
	PGresult *r = store_pg_exec(s->conn, name, NULL, n, params, want,
				    what, cause);

	if (r == NULL)
		pg_broken(s);
	return r;
}

/* Prepare the statements on a new connection (of a migrated database). */
static int pg_prepare(struct store_pg *s, char **cause)
{
	for (size_t i = 0; i < sizeof pg_statements / sizeof pg_statements[0];
	     i++) {
		PGresult *r = PQprepare(s->conn, pg_statements[i].name,
					pg_statements[i].sql, 0, NULL);

		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char *what = util_printf("prepare %s",
						 pg_statements[i].name);

			*cause = store_pg_err(s->conn, what);
			free(what);
			PQclear(r);
			return -1;
		}
		PQclear(r);
	}
	return 0;
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
	r = store_pg_exec(s->conn, NULL,
			  "SELECT pg_try_advisory_lock("
			  "hashtextextended($1, 0))",
			  1, key, PGRES_TUPLES_OK, "take the node lock", cause);
	free(k);
	if (r == NULL)
		goto fail;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		*cause = util_printf("another gatherd runs as node %s with "
				     "queue file %s on %s",
				     s->node_name, s->queue, s->where);
		PQclear(r);
		goto fail;
	}
	PQclear(r);
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
static int pg_ready(struct store_pg *s, char **cause)
{
	int64_t now;
	char *err = NULL;

	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	pg_broken(s);
	now = util_mono_ms();
	if (now < s->next_try_ms) {
		*cause = util_printf("no connection to PostgreSQL %s (next "
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

/* A small random number (which shards to give back). */
static uint64_t pg_random(struct store_pg *s)
{
	s->rnd ^= s->rnd << 13;
	s->rnd ^= s->rnd >> 7;
	s->rnd ^= s->rnd << 17;
	return s->rnd;
}

/* ---- rows held ---- */

static void pg_hold(struct store_pg *s, int64_t id, int shard)
{
	if (shard < 0 || shard >= SHARD_COUNT)
		shard = 0;
	idset_add(s->held, id, shard);
	s->held_in[shard]++;
}

static void pg_unhold(struct store_pg *s, int64_t id)
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

/* ---- shards ---- */

/* Mark the shards in `list` (n of them) releasing or active again. */
static int pg_shards_mark(struct store_pg *s, const int *list, int n,
			  bool releasing, char **cause)
{
	struct pg_buf b = {0};
	const char *p[3];
	PGresult *r;

	pg_array_open(&b);
	for (int i = 0; i < n; i++)
		pg_array_int(&b, list[i]);
	pg_array_close(&b);
	p[0] = s->node_txt;
	p[1] = pg_buf_str(&b);
	p[2] = releasing ? "true" : "false";
	r = pg_run(s, "shards_mark", 3, p, PGRES_COMMAND_OK, "mark shards",
		   cause);
	pg_buf_free(&b);
	if (r == NULL)
		return -1;
	PQclear(r);
	for (int i = 0; i < n; i++)
		s->shard[list[i]] = releasing ? SHARD_RELEASING : SHARD_ACTIVE;
	return 0;
}

/* Give back the releasing shards this node holds no row of any more. */
static int pg_shards_free(struct store_pg *s, char **cause)
{
	struct pg_buf b = {0};
	const char *p[2];
	int n = 0;
	PGresult *r;

	pg_array_open(&b);
	for (int i = 0; i < SHARD_COUNT; i++) {
		if (s->shard[i] == SHARD_RELEASING && s->held_in[i] == 0) {
			pg_array_int(&b, i);
			n++;
		}
	}
	pg_array_close(&b);
	if (n == 0) {
		pg_buf_free(&b);
		return 0;
	}
	p[0] = s->node_txt;
	p[1] = pg_buf_str(&b);
	r = pg_run(s, "shards_free", 2, p, PGRES_COMMAND_OK,
		   "give back shards", cause);
	pg_buf_free(&b);
	if (r == NULL)
		return -1;
	PQclear(r);
	for (int i = 0; i < SHARD_COUNT; i++) {
		if (s->shard[i] == SHARD_RELEASING && s->held_in[i] == 0) {
			s->shard[i] = SHARD_NOT_MINE;
			s->n_releasing--;
		}
	}
	log_debug("gave back %d host shards", n);
	return 0;
}

/* Renew this node's shards (and learn which they are), then move towards
 * its share: 1024 / live nodes, rounded up. */
static int pg_shards_balance(struct store_pg *s, bool *gained, char **cause)
{
	const char *p[3];
	char need_txt[16];
	PGresult *r;
	int target, list[SHARD_COUNT], n = 0;

	p[0] = s->lease_txt;
	r = pg_run(s, "live", 1, p, PGRES_TUPLES_OK, "count live nodes",
		   cause);
	if (r == NULL)
		return -1;
	s->live = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (s->live < 1)
		s->live = 1;
	p[0] = s->node_txt;
	p[1] = s->lease_txt;
	r = pg_run(s, "shards_renew", 2, p, PGRES_TUPLES_OK, "renew shards",
		   cause);
	if (r == NULL)
		return -1;
	memset(s->shard, SHARD_NOT_MINE, sizeof s->shard);
	s->n_active = s->n_releasing = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		int sh = atoi(PQgetvalue(r, i, 0));
		bool rel = strcmp(PQgetvalue(r, i, 1), "t") == 0;

		if (sh < 0 || sh >= SHARD_COUNT)
			continue;
		s->shard[sh] = rel ? SHARD_RELEASING : SHARD_ACTIVE;
		if (rel)
			s->n_releasing++;
		else
			s->n_active++;
	}
	PQclear(r);

	target = (SHARD_COUNT + s->live - 1) / s->live;
	if (s->n_active < target) {
		/* Keep what was being given back first, then take free ones. */
		for (int i = 0; i < SHARD_COUNT && s->n_active + n < target;
		     i++)
			if (s->shard[i] == SHARD_RELEASING)
				list[n++] = i;
		if (n > 0) {
			if (pg_shards_mark(s, list, n, false, cause) != 0)
				return -1;
			s->n_active += n;
			s->n_releasing -= n;
			*gained = true;
		}
		if (s->n_active < target) {
			snprintf(need_txt, sizeof need_txt, "%d",
				 target - s->n_active);
			p[2] = need_txt;
			r = pg_run(s, "shards_take", 3, p, PGRES_TUPLES_OK,
				   "take shards", cause);
			if (r == NULL)
				return -1;
			for (int i = 0; i < PQntuples(r); i++) {
				int sh = atoi(PQgetvalue(r, i, 0));

				if (sh >= 0 && sh < SHARD_COUNT &&
				    s->shard[sh] == SHARD_NOT_MINE) {
					s->shard[sh] = SHARD_ACTIVE;
					s->n_active++;
					*gained = true;
				}
			}
			PQclear(r);
		}
	} else if (s->n_active > target) {
		/* Give back shards picked at random (not the idle ones
		 * first: work follows hosts, and hosts are spread over the
		 * shards at random).  They claim nothing more and go once
		 * their rows are done. */
		int excess = s->n_active - target;

		for (int i = 0; i < SHARD_COUNT; i++)
			if (s->shard[i] == SHARD_ACTIVE)
				list[n++] = i;
		for (int i = 0; i < excess; i++) {
			int j = i + (int)(pg_random(s) % (uint64_t)(n - i));
			int t = list[i];

			list[i] = list[j];
			list[j] = t;
		}
		if (pg_shards_mark(s, list, excess, true, cause) != 0)
			return -1;
		s->n_active -= excess;
		s->n_releasing += excess;
	}
	return pg_shards_free(s, cause);
}

/* ---- the backend's functions ---- */

static void store_pg_close(struct store *base);

static int store_pg_tick(struct store *base, bool *gained, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	struct pg_buf b = {0};
	char count[24];
	const char *p[3];
	PGresult *r;
	int before = s->n_active;

	*gained = false;
	if (pg_ready(s, cause) != 0)
		return -1;
	snprintf(count, sizeof count, "%zu", idset_count(s->held));
	p[0] = s->node_txt;
	p[1] = count;
	r = pg_run(s, "seen", 2, p, PGRES_COMMAND_OK, "node heartbeat", cause);
	if (r == NULL)
		return -1;
	PQclear(r);
	if (idset_count(s->held) > 0) {
		pg_array_open(&b);
		idset_foreach(s->held, pg_collect_id, &b);
		pg_array_close(&b);
		p[1] = pg_buf_str(&b);
		p[2] = s->lease_txt;
		r = pg_run(s, "renew_rows", 3, p, PGRES_COMMAND_OK,
			   "renew leases", cause);
		pg_buf_free(&b);
		if (r == NULL)
			return -1;
		PQclear(r);
	}
	if (pg_shards_balance(s, gained, cause) != 0)
		return -1;
	if (s->n_active != before)
		log_info("holding %d of %d host shards (%d giving back), %d "
			 "node%s live",
			 s->n_active, SHARD_COUNT, s->n_releasing, s->live,
			 s->live == 1 ? "" : "s");
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
	bool gained;

	s->base.be = &store_pg_backend;
	s->conninfo = xstrdup(sc->conninfo != NULL ? sc->conninfo : "");
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	s->node_name = xstrdup(sc->node_name != NULL && sc->node_name[0]
				       ? sc->node_name
				       : host);
	s->queue = xstrdup(sc->queue_file != NULL ? sc->queue_file : "");
	s->lease_s = sc->lease_s > 0 ? sc->lease_s : 30;
	snprintf(s->lease_txt, sizeof s->lease_txt, "%d", s->lease_s);
	s->held = idset_new();
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
	if (store_pg_tick(&s->base, &gained, cause) != 0)
		goto fail;
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
		const char *p[3] = {s->node_txt, NULL, NULL};
		PGresult *r;

		pg_array_open(&b);
		idset_foreach(s->held, pg_collect_id, &b);
		pg_array_close(&b);
		p[1] = pg_buf_str(&b);
		snprintf(now, sizeof now, "%lld", (long long)util_wall_ms());
		p[2] = now;
		r = PQexecParams(s->conn,
				 "WITH r AS (UPDATE urls SET claimed_by = NULL, "
				 "lease_until = NULL WHERE id = ANY($2::bigint[]) "
				 "AND claimed_by = $1 AND state = 0), "
				 "f AS (UPDATE shards SET node_id = NULL, "
				 "lease_until = NULL, releasing = false WHERE "
				 "node_id = $1) "
				 "UPDATE nodes SET stopped_at = coalesce("
				 "stopped_at, $3), claimed = 0 WHERE id = $1",
				 3, NULL, p, NULL, NULL, 0);
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
	for (int i = 0; i < PG_RESULT_COLS; i++)
		pg_buf_free(&s->col[i]);
	idset_free(s->held);
	free(s->conninfo);
	free(s->node_name);
	free(s->queue);
	free(s);
}

static int store_pg_get_queue_state(struct store *base,
				    struct store_queue_state *qs, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	const char *p[2] = {s->node_name, s->queue};
	PGresult *r;

	memset(qs, 0, sizeof *qs);
	if (pg_ready(s, cause) != 0)
		return -1;
	r = pg_run(s, "qpos", 2, p, PGRES_TUPLES_OK, "read queue position",
		   cause);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		s->qseq = atoll(PQgetvalue(r, 0, 0));
		qs->has_cur = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
		qs->cur.dev = atoll(PQgetvalue(r, 0, 2));
		qs->cur.ino = atoll(PQgetvalue(r, 0, 3));
		qs->cur.offset = atoll(PQgetvalue(r, 0, 4));
		qs->cur.head_len = atoll(PQgetvalue(r, 0, 5));
		qs->cur.head_hash = atoll(PQgetvalue(r, 0, 6));
		qs->has_old = strcmp(PQgetvalue(r, 0, 7), "t") == 0;
		qs->old.dev = atoll(PQgetvalue(r, 0, 8));
		qs->old.ino = atoll(PQgetvalue(r, 0, 9));
		qs->old.offset = atoll(PQgetvalue(r, 0, 10));
		qs->old.head_len = atoll(PQgetvalue(r, 0, 11));
		qs->old.head_hash = atoll(PQgetvalue(r, 0, 12));
	}
	PQclear(r);
	return 0;
}

/* The stored seq now: after a failed ingest whose outcome is unknown. */
static int pg_stored_seq(struct store_pg *s, int64_t *seq, char **cause)
{
	const char *p[2] = {s->node_name, s->queue};
	PGresult *r = pg_run(s, "qpos", 2, p, PGRES_TUPLES_OK,
			     "read queue position", cause);

	if (r == NULL)
		return -1;
	*seq = PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	return 0;
}

static int store_pg_ingest(struct store *base, struct store_line *lines,
			   size_t n, const struct store_queue_state *qs,
			   int64_t now_ms, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	struct pg_buf *url = &s->col[0], *shard = &s->col[1],
		      *state = &s->col[2], *err = &s->col[3], *det = &s->col[4];
	char num[15][24];
	const char *p[20];
	PGresult *r;
	int64_t seq;

	if (pg_ready(s, cause) != 0)
		return -1;
	if (s->qseq_unsure) {
		/* The last ingest broke off: if it was committed, this one
		 * (the same lines, retried) is done already. */
		if (pg_stored_seq(s, &seq, cause) != 0)
			return -1;
		s->qseq_unsure = false;
		if (seq == s->qseq + 1) {
			log_info("the queue lines stored when the connection "
				 "broke were committed: not storing them "
				 "twice");
			s->qseq = seq;
			for (size_t i = 0; i < n; i++)
				lines[i].id = 0;
			return 0;
		}
	}
	pg_array_open(url);
	pg_array_open(shard);
	pg_array_open(state);
	pg_array_open(err);
	pg_array_open(det);
	for (size_t i = 0; i < n; i++) {
		const struct store_line *l = &lines[i];

		pg_array_text(url, l->url, l->len);
		pg_array_int(shard, l->invalid_detail == NULL
					    ? shard_of_url(l->url, l->len)
					    : 0);
		pg_array_int(state, l->invalid_detail == NULL ? STORE_QUEUED
							      : STORE_FAILED);
		pg_array_str(err, l->invalid_detail == NULL
					  ? NULL
					  : errkind_name(ERR_INVALID_URL));
		pg_array_str(det, l->invalid_detail);
	}
	pg_array_close(url);
	pg_array_close(shard);
	pg_array_close(state);
	pg_array_close(err);
	pg_array_close(det);
	int64_t v[15] = {s->qseq,
			 qs->cur.dev,
			 qs->cur.ino,
			 qs->cur.offset,
			 qs->cur.head_len,
			 qs->cur.head_hash,
			 0,
			 qs->has_old ? qs->old.dev : 0,
			 qs->has_old ? qs->old.ino : 0,
			 qs->has_old ? qs->old.offset : 0,
			 qs->has_old ? qs->old.head_len : 0,
			 qs->has_old ? qs->old.head_hash : 0,
			 now_ms,
			 0,
			 0};
	p[0] = s->node_name;
	p[1] = s->queue;
	for (int i = 0; i < 13; i++) {
		snprintf(num[i], sizeof num[i], "%lld", (long long)v[i]);
		p[2 + i] = num[i];
	}
	p[8] = qs->has_old ? "true" : "false";
	p[15] = pg_buf_str(url);
	p[16] = pg_buf_str(shard);
	p[17] = pg_buf_str(state);
	p[18] = pg_buf_str(err);
	p[19] = pg_buf_str(det);
	r = pg_run(s, "ingest", 20, p, PGRES_TUPLES_OK, "store queue lines",
		   cause);
	if (r == NULL) {
		/* Broken off: committed or not, the next try tells. */
		if (s->conn == NULL)
			s->qseq_unsure = true;
		return -1;
	}
	if (PQgetisnull(r, 0, 0)) {
		PQclear(r);
		if (pg_stored_seq(s, &seq, cause) != 0)
			return -1;
		*cause = util_printf("the queue position of node %s for %s "
				     "moved (%lld stored, %lld expected): "
				     "another gatherd with the same node "
				     "name and queue file?",
				     s->node_name, s->queue, (long long)seq,
				     (long long)s->qseq);
		return -1;
	}
	s->qseq = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	/* Rows of a shared database are claimed, never handed over
	 * directly (store_shared()): their ids are not needed. */
	for (size_t i = 0; i < n; i++)
		lines[i].id = 0;
	return 0;
}

/* Column i of row j as a new string, or NULL when it is NULL. */
static char *pg_dup(PGresult *r, int j, int i)
{
	return PQgetisnull(r, j, i) ? NULL : xstrdup(PQgetvalue(r, j, i));
}

static int store_pg_load_queued(struct store *base, int64_t after_id,
				int limit, struct store_row **rows, size_t *n,
				char **cause)
{
	struct store_pg *s = store_pg_of(base);
	char lim[16];
	const char *p[3] = {s->node_txt, lim, s->lease_txt};
	struct store_row *out;
	size_t count = 0;
	PGresult *r;

	(void)after_id; /* claims need no cursor: claimed rows are taken */
	*rows = NULL;
	*n = 0;
	if (pg_ready(s, cause) != 0)
		return -1;
	snprintf(lim, sizeof lim, "%d", limit > 0 ? limit : 1);
	r = pg_run(s, "claim", 3, p, PGRES_TUPLES_OK, "claim queued rows",
		   cause);
	if (r == NULL)
		return -1;
	out = xcalloc((size_t)PQntuples(r) + 1, sizeof *out);
	for (int j = 0; j < PQntuples(r); j++) {
		int64_t id = atoll(PQgetvalue(r, j, 0));
		struct store_row *row = &out[count];

		/* This node's own row whose lease had run out, still in
		 * its memory: claimed again, but not handed over twice. */
		if (idset_has(s->held, id))
			continue;
		pg_hold(s, id, atoi(PQgetvalue(r, j, 3)));
		row->id = id;
		row->url = xstrdup(PQgetvalue(r, j, 1));
		row->attempts = atoi(PQgetvalue(r, j, 2));
		row->cond_etag = pg_dup(r, j, 4);
		row->cond_last_modified = pg_dup(r, j, 5);
		row->prev_sha256 = pg_dup(r, j, 6);
		row->prev_fetched_ms =
			PQgetisnull(r, j, 7) ? 0 : atoll(PQgetvalue(r, j, 7));
		row->prev_warc_file = pg_dup(r, j, 8);
		row->prev_warc_offset =
			PQgetisnull(r, j, 9) ? 0 : atoll(PQgetvalue(r, j, 9));
		count++;
	}
	PQclear(r);
	*rows = out;
	*n = count;
	return 0;
}

/* Record the results (not the requeued rows) of res[0..n). */
static int pg_put_final(struct store_pg *s, const struct store_result *res,
			size_t n, size_t n_final, char **cause)
{
	struct pg_buf *c = s->col;
	const char *p[PG_RESULT_COLS + 1];
	PGresult *r;
	int recorded;

	for (int i = 0; i < PG_RESULT_COLS; i++)
		pg_array_open(&c[i]);
	for (size_t i = 0; i < n; i++) {
		const struct store_result *x = &res[i];

		if (x->state == STORE_QUEUED)
			continue;
		pg_array_int(&c[0], x->id);
		pg_array_int(&c[1], x->state);
		pg_array_opt(&c[2], x->status > 0 ? x->status : -1);
		pg_array_opt(&c[3], x->length);
		pg_array_str(&c[4], errkind_name(x->error));
		pg_array_str(&c[5], x->error_detail);
		pg_array_int(&c[6], x->attempts);
		pg_array_str(&c[7], x->final_url);
		pg_array_opt(&c[8], x->redirects);
		pg_array_str(&c[9], x->content_type);
		pg_array_int(&c[10], x->fetched_at_ms);
		pg_array_opt(&c[11], x->elapsed_ms);
		pg_array_opt(&c[12], x->connect_ms);
		pg_array_opt(&c[13], x->tls_ms);
		pg_array_str(&c[14], x->body_sha256);
		pg_array_str(&c[15], x->etag);
		pg_array_str(&c[16], x->last_modified);
		pg_array_str(&c[17], x->warc_file);
		pg_array_opt(&c[18], x->warc_offset);
		pg_array_opt(&c[19], x->not_modified);
		pg_array_opt(&c[20], x->decoded_length);
		pg_array_opt(&c[21], x->dns_ms);
		pg_array_opt(&c[22], x->ttfb_ms);
		pg_array_str(&c[23], x->remote_ip);
		pg_array_str(&c[24], x->tls_version);
		pg_array_opt(&c[25], x->tls_resumed);
	}
	p[0] = s->node_txt;
	for (int i = 0; i < PG_RESULT_COLS; i++) {
		pg_array_close(&c[i]);
		p[1 + i] = pg_buf_str(&c[i]);
	}
	r = pg_run(s, "results", PG_RESULT_COLS + 1, p, PGRES_TUPLES_OK,
		   "record results", cause);
	if (r == NULL)
		return -1;
	recorded = PQntuples(r);
	PQclear(r);
	if ((size_t)recorded < n_final)
		log_warn("%zu results not recorded: their rows are no longer "
			 "this node's (the lease ran out and another node "
			 "took them, or they were recorded before)",
			 n_final - (size_t)recorded);
	return 0;
}

/* Store the attempts of rows left queued, and give back their claims. */
static int pg_put_requeued(struct store_pg *s, const struct store_result *res,
			   size_t n, char **cause)
{
	struct pg_buf *ids = &s->col[0], *att = &s->col[1];
	const char *p[3];
	PGresult *r;

	pg_array_open(ids);
	pg_array_open(att);
	for (size_t i = 0; i < n; i++) {
		if (res[i].state != STORE_QUEUED)
			continue;
		pg_array_int(ids, res[i].id);
		pg_array_int(att, res[i].attempts);
	}
	pg_array_close(ids);
	pg_array_close(att);
	p[0] = s->node_txt;
	p[1] = pg_buf_str(ids);
	p[2] = pg_buf_str(att);
	r = pg_run(s, "requeue", 3, p, PGRES_COMMAND_OK, "record attempts",
		   cause);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

static int pg_command(struct store_pg *s, const char *sql, char **cause)
{
	PGresult *r = PQexec(s->conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*cause = store_pg_err(s->conn, sql);
		PQclear(r);
		pg_broken(s);
		return -1;
	}
	PQclear(r);
	return 0;
}

static int store_pg_put_results(struct store *base,
				const struct store_result *res, size_t n,
				char **cause)
{
	struct store_pg *s = store_pg_of(base);
	size_t n_final = 0;

	if (pg_ready(s, cause) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (res[i].state != STORE_QUEUED)
			n_final++;
	if (n_final == n) {
		/* The usual batch: one statement, one round trip. */
		if (pg_put_final(s, res, n, n_final, cause) != 0)
			return -1;
	} else {
		/* Rows left queued come only at shutdown: both kinds in
		 * one transaction, so a retry repeats neither half. */
		if (pg_command(s, "BEGIN", cause) != 0)
			return -1;
		if ((n_final > 0 &&
		     pg_put_final(s, res, n, n_final, cause) != 0) ||
		    pg_put_requeued(s, res, n, cause) != 0 ||
		    pg_command(s, "COMMIT", cause) != 0) {
			if (s->conn != NULL) {
				char *e = NULL;

				if (pg_command(s, "ROLLBACK", &e) != 0)
					free(e);
			}
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++)
		pg_unhold(s, res[i].id);
	return 0;
}

static int store_pg_heartbeat(struct store *base,
			      const struct store_heartbeat *hb, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	struct pg_buf *hosts = &s->col[0], *load = &s->col[1];
	char num[8][24];
	const char *p[13];
	PGresult *r;

	if (pg_ready(s, cause) != 0)
		return -1;
	pg_array_open(hosts);
	pg_array_open(load);
	for (size_t i = 0; i < hb->n_hosts; i++) {
		pg_array_str(hosts, hb->hosts[i].key);
		pg_array_int(load, hb->hosts[i].in_flight);
	}
	pg_array_close(hosts);
	pg_array_close(load);
	int64_t v[8] = {hb->pid,	hb->started_ms,	    hb->now_ms,
			hb->interval_s, hb->in_flight,	    0,
			hb->robots_fetches, hb->robots_origins};
	for (int i = 0; i < 8; i++)
		snprintf(num[i], sizeof num[i], "%lld", (long long)v[i]);
	p[0] = s->node_txt;
	p[1] = num[0];
	p[2] = hb->host;
	p[3] = hb->version;
	p[4] = num[1];
	p[5] = num[2];
	p[6] = num[3];
	p[7] = num[4];
	p[8] = hb->stopped ? num[2] : NULL;
	p[9] = num[6];
	p[10] = num[7];
	p[11] = pg_buf_str(hosts);
	p[12] = pg_buf_str(load);
	r = pg_run(s, "heartbeat", 13, p, PGRES_COMMAND_OK, "heartbeat",
		   cause);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

static int store_pg_count_results(struct store *base, int64_t *by_error,
				  char **cause)
{
	struct store_pg *s = store_pg_of(base);
	PGresult *r;

	memset(by_error, 0, sizeof(int64_t) * ERR_KIND_COUNT);
	if (pg_ready(s, cause) != 0)
		return -1;
	r = store_pg_exec(s->conn, NULL,
			  "SELECT state, error, count(*) FROM urls WHERE "
			  "state != 0 GROUP BY 1, 2",
			  0, NULL, PGRES_TUPLES_OK, "count results", cause);
	if (r == NULL) {
		pg_broken(s);
		return -1;
	}
	for (int j = 0; j < PQntuples(r); j++) {
		enum errkind k = ERR_NONE;
		int64_t c = atoll(PQgetvalue(r, j, 2));

		if (atoi(PQgetvalue(r, j, 0)) == STORE_DONE)
			by_error[ERR_NONE] += c;
		else if (!PQgetisnull(r, j, 1) &&
			 errkind_parse(PQgetvalue(r, j, 1), &k))
			by_error[k] += c;
	}
	PQclear(r);
	return 0;
}

static int store_pg_count_queued(struct store *base, int64_t *count,
				 int64_t *first_id, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	PGresult *r;

	if (pg_ready(s, cause) != 0)
		return -1;
	r = store_pg_exec(s->conn, NULL,
			  "SELECT count(*) FROM urls WHERE state = 0", 0, NULL,
			  PGRES_TUPLES_OK, "count queued rows", cause);
	if (r == NULL) {
		pg_broken(s);
		return -1;
	}
	*count = atoll(PQgetvalue(r, 0, 0));
	*first_id = 0; /* no cursor: rows are claimed */
	PQclear(r);
	return 0;
}

/* Leases are renewed three times per lease_s: one late or failed tick
 * loses nothing. */
static int store_pg_tick_ms(struct store *base)
{
	int ms = store_pg_of(base)->lease_s * 1000 / 3;

	return ms < 1000 ? 1000 : ms;
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

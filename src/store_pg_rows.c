/* The PostgreSQL backend: the node's rows.  Its queue file's lines go in
 * with the file's position (keyed by node name and queue path) in one
 * statement; rows are claimed in id order from the shards it holds, with
 * FOR UPDATE SKIP LOCKED and a lease; a batch of results is one statement
 * that records only rows this node still holds; and the node's own row in
 * `nodes` takes the heartbeat `gatherd status` shows. */
#include "store_pg_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errkind.h"
#include "log.h"
#include "shard.h"
#include "util.h"

/* Its statements, prepared on each connection (store_pg.c).  Parameters
 * are cast where their type is not plain. */
const struct pg_statement store_pg_rows_sql[] = {
    /* The next rows of this node's active shards, in id order, that
     * nobody holds: claimed under a lease, with the validators of the
     * row a re-fetch names.  The shards come as a bit string of 1024
     * ($4, what the last tick found; a row's bit is one look-up, where
     * `= ANY` of a list of up to 1024 compared each row with each
     * shard): the scan then stays the partial index's, in id order, up
     * to the limit, whatever the statistics say (a join with `shards`
     * made the planner sort every queued row while a fast-growing table
     * had none); the database's word on them is checked on the rows
     * claimed, by their shard's row.  $5 is where the last claim ended:
     * the rows before it are done, held, or another node's, and the scan
     * need not step over them again (store_pg_tick() starts it over, for
     * rows given back or whose lease ran out). */
    {"claim",
     "WITH c AS ("
     "  SELECT id FROM urls"
     "  WHERE state = 0"
     "    AND get_bit($4::bit(1024), shard) = 1 AND id > $5"
     "    AND (claimed_by IS NULL OR lease_until < now())"
     "  ORDER BY id LIMIT $2"
     "  FOR UPDATE OF urls SKIP LOCKED),"
     " u AS ("
     "  UPDATE urls SET claimed_by = $1,"
     "         lease_until = now() + $3::float8 * interval '1 second'"
     "  WHERE urls.id = ANY(ARRAY(SELECT id FROM c))"
     "    AND EXISTS (SELECT 1 FROM shards h WHERE h.shard = urls.shard"
     "      AND h.node_id = $1 AND NOT h.releasing"
     "      AND h.lease_until > now())"
     "  RETURNING urls.id, urls.url, urls.attempts, urls.shard,"
     "            urls.refetch_of, urls.final_url, urls.redirects)"
     "SELECT u.id, u.url, u.attempts, u.shard, p.etag, p.last_modified,"
     "       p.body_sha256, p.fetched_at, p.warc_file, p.warc_offset,"
     "       u.final_url, u.redirects"
     " FROM u LEFT JOIN LATERAL (SELECT * FROM urls WHERE id ="
     "  u.refetch_of) AS p ON true ORDER BY u.id"},
    /* A batch of results, in one statement, only for rows this node
     * still holds.  "state NOT IN (1, 2)" says "queued" (see the CHECK
     * constraint) in words that keep the planner off urls_queued here:
     * while a fast-growing table has no statistics yet, it takes that
     * index for nearly empty and would scan it for every row of the
     * batch; by the primary key, each row is found by its id. */
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
     " WHERE u.id = r.id AND u.state NOT IN (1, 2) AND u.claimed_by = $1"
     "   AND u.lease_until > now()"},
    /* Rows left queued at shutdown: their attempts so far, and the claim
     * given back so that another node takes them at once. */
    /* Rows given back with their attempts; a row handed over at a
     * redirect (final_url set) also moves to the shard of its next
     * host, where that shard's node claims it and resumes. */
    {"requeue",
     "UPDATE urls AS u SET attempts = r.attempts, claimed_by = NULL,"
     " lease_until = NULL,"
     " final_url = COALESCE(r.final_url, u.final_url),"
     " redirects = COALESCE(r.redirects, u.redirects),"
     " shard = COALESCE(r.shard, u.shard)"
     " FROM unnest($2::bigint[], $3::int[], $4::text[], $5::int[],"
     "  $6::int[]) AS r(id, attempts, final_url, redirects, shard)"
     " WHERE u.id = r.id AND u.state NOT IN (1, 2) AND u.claimed_by = $1"},
    /* Lines of the queue file and its new position, in one statement:
     * nothing is inserted unless the position was still the one this
     * node stored last (seq).  Lines of this node's active shards that
     * its scheduler has room for ($21) are claimed as they are inserted
     * (the database's word on the shards decides), which spares claiming
     * them again: each line's id comes back, 0 for those not claimed, in
     * the order of the lines (one statement takes its ids in the order
     * it inserts). */
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
     "                    queued_at, claimed_by, lease_until)"
     "  SELECT l.url, l.shard, l.state, l.error, l.detail, $15,"
     "         CASE WHEN l.take AND get_bit(mine.s, l.shard) = 1"
     "              THEN $22::bigint END,"
     "         CASE WHEN l.take AND get_bit(mine.s, l.shard) = 1 THEN"
     "              now() + $23::float8 * interval '1 second' END"
     "  FROM unnest($16::text[], $17::int[], $18::smallint[],"
     "              $19::text[], $20::text[], $21::boolean[])"
     "       WITH ORDINALITY"
     "       AS l(url, shard, state, error, detail, take, n),"
     "       (SELECT string_agg(CASE WHEN node_id = $22 AND NOT releasing"
     "         AND lease_until > now() THEN '1' ELSE '0' END, ''"
     "         ORDER BY shard)::bit(1024) FROM shards) AS mine(s)"
     "  WHERE EXISTS (SELECT 1 FROM pos)"
     "  ORDER BY l.n"
     "  RETURNING id, claimed_by)"
     "SELECT (SELECT seq FROM pos),"
     " (SELECT array_agg(CASE WHEN claimed_by IS NULL THEN 0 ELSE id END"
     "                   ORDER BY id) FROM ins)"},
    {"qpos", "SELECT seq, has_cur, cur_dev, cur_ino, cur_offset, cur_head_len,"
	     " cur_head_hash, has_old, old_dev, old_ino, old_offset,"
	     " old_head_len, old_head_hash"
	     " FROM queue_position WHERE node = $1 AND queue = $2"},
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
    {NULL, NULL},
};

int store_pg_get_queue_state(struct store *base, struct store_queue_state *qs,
			     char **cause)
{
	struct store_pg *s = store_pg_of(base);
	const char *p[2] = {s->node_name, s->queue};
	PGresult *r;

	memset(qs, 0, sizeof *qs);
	if (store_pg_ready(s, cause) != 0)
		return -1;
	r = store_pg_run(s, "qpos", 2, p, PGRES_TUPLES_OK,
			 "read queue position", cause);
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

/* After many new rows, statistics, at once: autovacuum's analyze comes a
 * minute later at best, and until then the planner takes a table just
 * filled with 100,000 lines for an empty one (claims then sort every
 * queued row).  At 10,000 rows this node ingested, then at twice as many
 * each time, up to every 1,000,000.  Best effort. */
static void pg_maybe_analyze(struct store_pg *s, size_t n)
{
	PGresult *r;

	s->ingested += (int64_t)n;
	if (s->ingested < s->analyze_at)
		return;
	s->ingested = 0;
	if (s->analyze_at < PG_ANALYZE_MAX)
		s->analyze_at *= 2;
	r = PQexec(s->conn, "ANALYZE urls");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		char *why = store_pg_err(s->conn, "ANALYZE urls");

		log_debug("%s", why);
		free(why);
		store_pg_broken(s);
	}
	PQclear(r);
}

/* The stored seq now: after a failed ingest whose outcome is unknown. */
static int pg_stored_seq(struct store_pg *s, int64_t *seq, char **cause)
{
	const char *p[2] = {s->node_name, s->queue};
	PGresult *r = store_pg_run(s, "qpos", 2, p, PGRES_TUPLES_OK,
				   "read queue position", cause);

	if (r == NULL)
		return -1;
	*seq = PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	return 0;
}

int store_pg_ingest(struct store *base, struct store_line *lines, size_t n,
		    const struct store_queue_state *qs, int64_t now_ms,
		    char **cause)
{
	struct store_pg *s = store_pg_of(base);
	struct pg_buf *url = &s->col[0], *shard = &s->col[1],
		      *state = &s->col[2], *err = &s->col[3], *det = &s->col[4],
		      *take = &s->col[5];
	char num[15][24];
	const char *p[23];
	PGresult *r;
	int64_t seq;
	int *shard_of;
	int rc = -1;

	if (store_pg_ready(s, cause) != 0)
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
			/* Rows it claimed (if any) were not handed over: their
			 * leases run out, and they are claimed again. */
			for (size_t i = 0; i < n; i++)
				lines[i].id = 0;
			return 0;
		}
	}
	shard_of = xcalloc(n + 1, sizeof *shard_of);
	pg_array_open(url);
	pg_array_open(shard);
	pg_array_open(state);
	pg_array_open(err);
	pg_array_open(det);
	pg_array_open(take);
	for (size_t i = 0; i < n; i++) {
		const struct store_line *l = &lines[i];

		shard_of[i] = l->invalid_detail == NULL
				      ? shard_of_url(l->url, l->len)
				      : 0;
		pg_array_text(url, l->url, l->len);
		pg_array_int(shard, shard_of[i]);
		pg_array_str(take, l->take && l->invalid_detail == NULL &&
					   s->shard[shard_of[i]] ==
						   SHARD_ACTIVE
				       ? "t"
				       : "f");
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
	pg_array_close(take);
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
	p[20] = pg_buf_str(take);
	p[21] = s->node_txt;
	p[22] = s->lease_txt;
	r = store_pg_run(s, "ingest", 23, p, PGRES_TUPLES_OK,
			 "store queue lines", cause);
	if (r == NULL) {
		/* Broken off: committed or not, the next try tells. */
		if (s->conn == NULL)
			s->qseq_unsure = true;
		goto out;
	}
	if (PQgetisnull(r, 0, 0)) {
		PQclear(r);
		if (pg_stored_seq(s, &seq, cause) != 0)
			goto out;
		*cause = util_printf("the queue position of node %s for %s "
				     "moved (%lld stored, %lld expected): "
				     "another gatherd with the same node "
				     "name and queue file?",
				     s->node_name, s->queue, (long long)seq,
				     (long long)s->qseq);
		goto out;
	}
	s->qseq = atoll(PQgetvalue(r, 0, 0));
	/* Each line's id if it was claimed for this node, else 0 (not this
	 * node's, yet). */
	const char *ids = PQgetisnull(r, 0, 1) ? "{}" : PQgetvalue(r, 0, 1);
	for (size_t i = 0; i < n; i++) {
		struct store_line *l = &lines[i];
		char *end;

		while (*ids == '{' || *ids == ',')
			ids++;
		l->id = strtoll(ids, &end, 10);
		ids = end;
		if (l->id > 0)
			store_pg_hold(s, l->id, shard_of[i]);
	}
	PQclear(r);
	pg_maybe_analyze(s, n);
	rc = 0;
out:
	free(shard_of);
	return rc;
}

/* Column i of row j as a new string, or NULL when it is NULL. */
static char *pg_dup(PGresult *r, int j, int i)
{
	return PQgetisnull(r, j, i) ? NULL : xstrdup(PQgetvalue(r, j, i));
}

int store_pg_load_queued(struct store *base, int64_t after_id, int limit,
			 struct store_row **rows, size_t *n, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	char lim[16];
	char from[24];
	const char *p[5] = {s->node_txt, lim, s->lease_txt, NULL, from};
	struct store_row *out;
	size_t count = 0;
	PGresult *r;

	(void)after_id; /* claims need no cursor: claimed rows are taken */
	*rows = NULL;
	*n = 0;
	if (store_pg_ready(s, cause) != 0)
		return -1;
	if (s->n_active == 0)
		return 0; /* no shard, nothing to claim (until the next tick) */
	snprintf(lim, sizeof lim, "%d", limit > 0 ? limit : 1);
	p[3] = pg_buf_str(&s->active);
	snprintf(from, sizeof from, "%lld", (long long)s->claim_from);
	r = store_pg_run(s, "claim", 5, p, PGRES_TUPLES_OK, "claim queued rows",
			 cause);
	if (r != NULL && PQntuples(r) == 0 && s->claim_from > 0) {
		/* Nothing after it: from the start, once. */
		PQclear(r);
		s->claim_from = 0;
		snprintf(from, sizeof from, "0");
		r = store_pg_run(s, "claim", 5, p, PGRES_TUPLES_OK,
				 "claim queued rows", cause);
	}
	if (r == NULL)
		return -1;
	out = xcalloc((size_t)PQntuples(r) + 1, sizeof *out);
	for (int j = 0; j < PQntuples(r); j++) {
		int64_t id = atoll(PQgetvalue(r, j, 0));
		struct store_row *row = &out[count];

		if (id > s->claim_from)
			s->claim_from = id;
		/* This node's own row whose lease had run out, still in
		 * its memory: claimed again, but not handed over twice. */
		if (idset_has(s->held, id))
			continue;
		store_pg_hold(s, id, atoi(PQgetvalue(r, j, 3)));
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
		row->resume_url = pg_dup(r, j, 10);
		row->resume_redirects =
		    PQgetisnull(r, j, 11) ? 0 : atoi(PQgetvalue(r, j, 11));
		count++;
	}
	PQclear(r);
	*rows = out;
	*n = count;
	return 0;
}

/* The columns of a batch of results, each an array literal; a column
 * with no value in the whole batch goes as NULL (an absent array, which
 * unnest() pads with NULLs), sparing the server the parsing of a list of
 * NULLs: most columns of most batches (error, redirects, TLS, WARC). */
struct pg_cols {
	struct pg_buf c[26];
	bool set[26];
};

static void col_int(struct pg_cols *t, int k, int64_t v)
{
	t->set[k] = true;
	pg_array_int(&t->c[k], v);
}

static void col_opt(struct pg_cols *t, int k, int64_t v)
{
	if (v >= 0)
		t->set[k] = true;
	pg_array_opt(&t->c[k], v);
}

static void col_str(struct pg_cols *t, int k, const char *v)
{
	if (v != NULL)
		t->set[k] = true;
	pg_array_str(&t->c[k], v);
}

/* Record the results (not the requeued rows) of res[0..n); *recorded
 * is how many rows took them. */
static int pg_put_final(struct store_pg *s, const struct store_result *res,
			size_t n, int *recorded, char **cause)
{
	struct pg_cols t;
	const char *p[27];
	PGresult *r;

	memset(&t, 0, sizeof t);
	for (int i = 0; i < 26; i++)
		pg_array_open(&t.c[i]);
	for (size_t i = 0; i < n; i++) {
		const struct store_result *x = &res[i];

		if (x->state == STORE_QUEUED)
			continue;
		col_int(&t, 0, x->id);
		col_int(&t, 1, x->state);
		col_opt(&t, 2, x->status > 0 ? x->status : -1);
		col_opt(&t, 3, x->length);
		col_str(&t, 4, errkind_name(x->error));
		col_str(&t, 5, x->error_detail);
		col_int(&t, 6, x->attempts);
		col_str(&t, 7, x->final_url);
		col_opt(&t, 8, x->redirects);
		col_str(&t, 9, x->content_type);
		col_int(&t, 10, x->fetched_at_ms);
		col_opt(&t, 11, x->elapsed_ms);
		col_opt(&t, 12, x->connect_ms);
		col_opt(&t, 13, x->tls_ms);
		col_str(&t, 14, x->body_sha256);
		col_str(&t, 15, x->etag);
		col_str(&t, 16, x->last_modified);
		col_str(&t, 17, x->warc_file);
		col_opt(&t, 18, x->warc_offset);
		col_opt(&t, 19, x->not_modified);
		col_opt(&t, 20, x->decoded_length);
		col_opt(&t, 21, x->dns_ms);
		col_opt(&t, 22, x->ttfb_ms);
		col_str(&t, 23, x->remote_ip);
		col_str(&t, 24, x->tls_version);
		col_opt(&t, 25, x->tls_resumed);
	}
	p[0] = s->node_txt;
	for (int i = 0; i < 26; i++) {
		pg_array_close(&t.c[i]);
		p[1 + i] = t.set[i] ? pg_buf_str(&t.c[i]) : NULL;
	}
	r = store_pg_run(s, "results", 27, p, PGRES_COMMAND_OK,
			 "record results", cause);
	for (int i = 0; i < 26; i++)
		pg_buf_free(&t.c[i]);
	if (r == NULL)
		return -1;
	*recorded = atoi(PQcmdTuples(r));
	PQclear(r);
	return 0;
}

/* Store the attempts of the rows of res[0..n) left queued, and give back
 * their claims. */
static int pg_put_requeued(struct store_pg *s, const struct store_result *res,
			   size_t n, char **cause)
{
	struct pg_buf *ids = &s->col[0], *att = &s->col[1], *next = &s->col[2],
		      *redir = &s->col[3], *shard = &s->col[4];
	const char *p[6];
	PGresult *r;
	bool handoff = false;

	pg_array_open(ids);
	pg_array_open(att);
	pg_array_open(next);
	pg_array_open(redir);
	pg_array_open(shard);
	for (size_t i = 0; i < n; i++) {
		const struct store_result *x = &res[i];

		if (x->state != STORE_QUEUED)
			continue;
		pg_array_int(ids, x->id);
		pg_array_int(att, x->attempts);
		pg_array_str(next, x->final_url);
		if (x->final_url != NULL) {
			pg_array_int(redir, x->redirects);
			pg_array_int(shard, shard_of_url(x->final_url,
							 strlen(x->final_url)));
			handoff = true;
		} else {
			pg_array_null(redir);
			pg_array_null(shard);
		}
	}
	pg_array_close(ids);
	pg_array_close(att);
	pg_array_close(next);
	pg_array_close(redir);
	pg_array_close(shard);
	p[0] = s->node_txt;
	p[1] = pg_buf_str(ids);
	p[2] = pg_buf_str(att);
	p[3] = pg_buf_str(next);
	p[4] = pg_buf_str(redir);
	p[5] = pg_buf_str(shard);
	r = store_pg_run(s, "requeue", 6, p, PGRES_COMMAND_OK,
			 "record attempts", cause);
	if (r == NULL)
		return -1;
	PQclear(r);
	if (handoff)
		s->claim_from = 0; /* rows behind the claims' cursor to take */
	return 0;
}

/* A command on the node's connection (BEGIN, COMMIT, ROLLBACK). */
static int pg_command(struct store_pg *s, const char *sql, char **cause)
{
	PGresult *r = PQexec(s->conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*cause = store_pg_err(s->conn, sql);
		PQclear(r);
		store_pg_broken(s);
		return -1;
	}
	PQclear(r);
	return 0;
}

int store_pg_put_results(struct store *base, const struct store_result *res,
			 size_t n, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	size_t n_final = 0;
	int recorded = 0;

	if (store_pg_ready(s, cause) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (res[i].state != STORE_QUEUED)
			n_final++;
	if (n_final == n) {
		/* The usual batch: one statement, one round trip. */
		if (pg_put_final(s, res, n, &recorded, cause) != 0)
			return -1;
	} else {
		/* Rows left queued come only at shutdown: both kinds in
		 * one transaction, so a retry repeats neither half. */
		if (pg_command(s, "BEGIN", cause) != 0)
			return -1;
		if ((n_final > 0 &&
		     pg_put_final(s, res, n, &recorded, cause) != 0) ||
		    pg_put_requeued(s, res, n, cause) != 0 ||
		    pg_command(s, "COMMIT", cause) != 0) {
			if (s->conn != NULL) {
				PGresult *r = PQexec(s->conn, "ROLLBACK");

				PQclear(r);
			}
			return -1;
		}
	}
	if ((size_t)recorded < n_final)
		log_warn("%zu results not recorded: their rows are no longer "
			 "this node's (the lease ran out and another node "
			 "took them, or they were recorded before)",
			 n_final - (size_t)recorded);
	for (size_t i = 0; i < n; i++)
		store_pg_unhold(s, res[i].id);
	return 0;
}

int store_pg_heartbeat(struct store *base, const struct store_heartbeat *hb,
		       char **cause)
{
	struct store_pg *s = store_pg_of(base);
	struct pg_buf *hosts = &s->col[0], *load = &s->col[1];
	char num[8][24];
	const char *p[13];
	PGresult *r;

	if (store_pg_ready(s, cause) != 0)
		return -1;
	pg_array_open(hosts);
	pg_array_open(load);
	for (size_t i = 0; i < hb->n_hosts; i++) {
		pg_array_str(hosts, hb->hosts[i].key);
		pg_array_int(load, hb->hosts[i].in_flight);
	}
	pg_array_close(hosts);
	pg_array_close(load);
	int64_t v[8] = {hb->pid,
			hb->started_ms,
			hb->now_ms,
			hb->interval_s,
			hb->in_flight,
			0,
			hb->robots_fetches,
			hb->robots_origins};
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
	r = store_pg_run(s, "heartbeat", 13, p, PGRES_COMMAND_OK, "heartbeat",
			 cause);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

int store_pg_count_results(struct store *base, int64_t *by_error, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	PGresult *r;

	memset(by_error, 0, sizeof(int64_t) * ERR_KIND_COUNT);
	if (store_pg_ready(s, cause) != 0)
		return -1;
	r = store_pg_exec(s->conn, NULL,
			  "SELECT state, error, count(*) FROM urls WHERE "
			  "state != 0 GROUP BY 1, 2",
			  0, NULL, PGRES_TUPLES_OK, "count results", cause);
	if (r == NULL) {
		store_pg_broken(s);
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

int store_pg_count_queued(struct store *base, int64_t *count, int64_t *first_id,
			  char **cause)
{
	struct store_pg *s = store_pg_of(base);
	PGresult *r;

	if (store_pg_ready(s, cause) != 0)
		return -1;
	r = store_pg_exec(s->conn, NULL,
			  "SELECT count(*) FROM urls WHERE state = 0", 0, NULL,
			  PGRES_TUPLES_OK, "count queued rows", cause);
	if (r == NULL) {
		store_pg_broken(s);
		return -1;
	}
	*count = atoll(PQgetvalue(r, 0, 0));
	*first_id = 0; /* no cursor: rows are claimed */
	PQclear(r);
	return 0;
}

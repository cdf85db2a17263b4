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
#include "util.h"

/* Its statements, prepared on each connection (store_pg.c).  Parameters
 * are cast where their type is not plain. */
const struct pg_statement store_pg_rows_sql[] = {
    /* The next rows of this node's active shards, in id order, that
     * nobody holds: claimed under a lease, with the validators of the
     * row a re-fetch names.  The shards come as a list ($4, what the
     * last tick found): the scan then stays the partial index's, in id
     * order, up to the limit, whatever the statistics say (a join with
     * `shards` made the planner sort every queued row while a fast-
     * growing table had none); the database's word on them is checked
     * on the rows claimed.  $5 is where the last claim ended: the rows
     * before it are done, held, or another node's, and the scan need not
     * step over them again (store_pg_tick() starts it over, for rows
     * given back or whose lease ran out). */
    {"claim",
     "WITH c AS ("
     "  SELECT id FROM urls"
     "  WHERE state = 0"
     "    AND shard = ANY($4::int[]) AND id > $5"
     "    AND (claimed_by IS NULL OR lease_until < now())"
     "  ORDER BY id LIMIT $2"
     "  FOR UPDATE OF urls SKIP LOCKED),"
     " u AS ("
     "  UPDATE urls SET claimed_by = $1,"
     "         lease_until = now() + $3::float8 * interval '1 second'"
     "  WHERE urls.id = ANY(ARRAY(SELECT id FROM c))"
     "    AND urls.shard = ANY(ARRAY(SELECT shard FROM shards"
     "      WHERE node_id = $1 AND NOT releasing"
     "      AND lease_until > now()))"
     "  RETURNING urls.id, urls.url, urls.attempts, urls.shard,"
     "            urls.refetch_of)"
     "SELECT u.id, u.url, u.attempts, u.shard, p.etag, p.last_modified,"
     "       p.body_sha256, p.fetched_at, p.warc_file, p.warc_offset"
     " FROM u LEFT JOIN LATERAL (SELECT * FROM urls WHERE id ="
     "  u.refetch_of) AS p ON true ORDER BY u.id"},
    /* One result, only for a row this node still holds.  A batch is
     * many of these in one pipeline (one round trip per 512 rows, one
     * transaction): a statement per row always finds it by its key,
     * where a join of the batch with the table depends on statistics a
     * fast-growing table does not have yet. */
    {"result",
     "UPDATE urls SET state = $2, status = $3, length = $4, error = $5,"
     " error_detail = $6, attempts = $7, final_url = $8, redirects = $9,"
     " content_type = $10, fetched_at = $11, elapsed_ms = $12,"
     " connect_ms = $13, tls_ms = $14, body_sha256 = $15, etag = $16,"
     " last_modified = $17, warc_file = $18, warc_offset = $19,"
     " not_modified = $20, decoded_length = $21, dns_ms = $22,"
     " ttfb_ms = $23, remote_ip = $24, tls_version = $25,"
     " tls_resumed = $26, lease_until = NULL"
     " WHERE id = $1 AND state = 0 AND claimed_by = $27"
     "   AND lease_until > now()"},
    /* A row left queued at shutdown: its attempts so far, and the claim
     * given back so that another node takes it at once. */
    {"requeue",
     "UPDATE urls SET attempts = $2, claimed_by = NULL, lease_until = NULL"
     " WHERE id = $1 AND state = 0 AND claimed_by = $3"},
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
		      *state = &s->col[2], *err = &s->col[3], *det = &s->col[4];
	char num[15][24];
	const char *p[20];
	PGresult *r;
	int64_t seq;

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
	r = store_pg_run(s, "ingest", 20, p, PGRES_TUPLES_OK,
			 "store queue lines", cause);
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
	pg_maybe_analyze(s, n);
	return 0;
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
		count++;
	}
	PQclear(r);
	*rows = out;
	*n = count;
	return 0;
}

#define PG_PIPE_CHUNK 512 /* statements per round trip */

/* A batch in pipeline mode: statements sent, results still to read. */
struct pg_pipe {
	struct store_pg *s;
	int pending;    /* statements sent since the last sync */
	int64_t counted; /* rows updated by the statements that count */
	bool count_next[PG_PIPE_CHUNK + 2]; /* per pending statement */
	char *error;    /* the first error */
};

/* Read the results of everything sent, up to the sync. */
static int pg_pipe_sync(struct pg_pipe *pp)
{
	PGconn *c = pp->s->conn;
	PGresult *r;

	if (PQpipelineSync(c) != 1)
		goto broken;
	for (int k = 0; k < pp->pending; k++) {
		r = PQgetResult(c);
		if (r == NULL)
			goto broken;
		switch (PQresultStatus(r)) {
		case PGRES_COMMAND_OK:
			if (pp->count_next[k])
				pp->counted += atoll(PQcmdTuples(r));
			break;
		case PGRES_PIPELINE_ABORTED:
			break; /* after the error, which is recorded */
		default:
			if (pp->error == NULL)
				pp->error = store_pg_err(c, "record results");
		}
		PQclear(r);
		r = PQgetResult(c); /* the end of this statement's results */
		PQclear(r);
	}
	pp->pending = 0;
	r = PQgetResult(c);
	if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
		PQclear(r);
		goto broken;
	}
	PQclear(r);
	return 0;
broken:
	if (pp->error == NULL)
		pp->error = store_pg_err(c, "record results");
	return -1;
}

/* Send one statement (prepared `name`, or the SQL of a command); reads
 * the results every PG_PIPE_CHUNK statements, so that neither side's
 * buffers fill up. */
static int pg_pipe_send(struct pg_pipe *pp, const char *name,
			const char *sql, int n, const char *const *params,
			bool count)
{
	PGconn *c = pp->s->conn;
	int ok = name != NULL ? PQsendQueryPrepared(c, name, n, params, NULL,
						    NULL, 0)
			      : PQsendQueryParams(c, sql, 0, NULL, NULL, NULL,
						  NULL, 0);

	if (ok != 1) {
		if (pp->error == NULL)
			pp->error = store_pg_err(c, "record results");
		return -1;
	}
	pp->count_next[pp->pending++] = count;
	if (pp->pending >= PG_PIPE_CHUNK)
		return pg_pipe_sync(pp);
	return 0;
}

/* Text t as a parameter: itself when it is valid UTF-8, else a copy with
 * U+FFFD for the bad bytes (in b). */
static const char *pg_text_param(struct pg_buf *b, const char *t)
{
	if (t == NULL)
		return NULL;
	pg_buf_reset(b);
	pg_buf_utf8(b, t, strlen(t));
	return strcmp(b->p, t) == 0 ? t : b->p;
}

/* A number as a parameter, or NULL when v < 0 (unknown). */
static const char *pg_num_param(char *buf, size_t size, int64_t v)
{
	if (v < 0)
		return NULL;
	snprintf(buf, size, "%lld", (long long)v);
	return buf;
}

/* Send the statement recording result x. */
static int pg_send_result(struct pg_pipe *pp, const struct store_result *x)
{
	struct store_pg *s = pp->s;
	struct pg_buf *t = s->col;
	char num[14][24];
	const char *p[27];

	p[0] = pg_num_param(num[0], sizeof num[0], x->id);
	p[1] = pg_num_param(num[1], sizeof num[1], x->state);
	p[2] = pg_num_param(num[2], sizeof num[2], x->status > 0 ? x->status
								 : -1);
	p[3] = pg_num_param(num[3], sizeof num[3], x->length);
	p[4] = errkind_name(x->error);
	p[5] = pg_text_param(&t[0], x->error_detail);
	p[6] = pg_num_param(num[4], sizeof num[4], x->attempts);
	p[7] = pg_text_param(&t[1], x->final_url);
	p[8] = pg_num_param(num[5], sizeof num[5], x->redirects);
	p[9] = pg_text_param(&t[2], x->content_type);
	p[10] = pg_num_param(num[6], sizeof num[6], x->fetched_at_ms);
	p[11] = pg_num_param(num[7], sizeof num[7], x->elapsed_ms);
	p[12] = pg_num_param(num[8], sizeof num[8], x->connect_ms);
	p[13] = pg_num_param(num[9], sizeof num[9], x->tls_ms);
	p[14] = pg_text_param(&t[3], x->body_sha256);
	p[15] = pg_text_param(&t[4], x->etag);
	p[16] = pg_text_param(&t[5], x->last_modified);
	p[17] = pg_text_param(&t[6], x->warc_file);
	p[18] = pg_num_param(num[10], sizeof num[10], x->warc_offset);
	p[19] = x->not_modified < 0 ? NULL : x->not_modified ? "1" : "0";
	p[20] = pg_num_param(num[11], sizeof num[11], x->decoded_length);
	p[21] = pg_num_param(num[12], sizeof num[12], x->dns_ms);
	p[22] = pg_num_param(num[13], sizeof num[13], x->ttfb_ms);
	p[23] = pg_text_param(&t[7], x->remote_ip);
	p[24] = pg_text_param(&t[8], x->tls_version);
	p[25] = x->tls_resumed < 0 ? NULL : x->tls_resumed ? "1" : "0";
	p[26] = s->node_txt;
	return pg_pipe_send(pp, "result", NULL, 27, p, true);
}

/* Send the statement storing requeued row x's attempts. */
static int pg_send_requeue(struct pg_pipe *pp, const struct store_result *x)
{
	char id[24], att[24];
	const char *p[3] = {id, att, pp->s->node_txt};

	snprintf(id, sizeof id, "%lld", (long long)x->id);
	snprintf(att, sizeof att, "%d", x->attempts);
	return pg_pipe_send(pp, "requeue", NULL, 3, p, false);
}

int store_pg_put_results(struct store *base, const struct store_result *res,
			 size_t n, char **cause)
{
	struct store_pg *s = store_pg_of(base);
	struct pg_pipe *pp;
	size_t n_final = 0;
	int rc = -1;

	if (store_pg_ready(s, cause) != 0)
		return -1;
	pp = xcalloc(1, sizeof *pp);
	pp->s = s;
	if (PQenterPipelineMode(s->conn) != 1) {
		*cause = store_pg_err(s->conn, "pipeline mode");
		free(pp);
		store_pg_broken(s);
		return -1;
	}
	/* One transaction: a retry after a failure repeats nothing that
	 * was recorded. */
	if (pg_pipe_send(pp, NULL, "BEGIN", 0, NULL, false) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int r;

		if (res[i].state == STORE_QUEUED) {
			r = pg_send_requeue(pp, &res[i]);
		} else {
			r = pg_send_result(pp, &res[i]);
			n_final++;
		}
		if (r != 0)
			goto out;
	}
	if (pg_pipe_send(pp, NULL, "COMMIT", 0, NULL, false) != 0 ||
	    pg_pipe_sync(pp) != 0 || pp->error != NULL)
		goto out;
	rc = 0;
out:
	if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF &&
	    PQexitPipelineMode(s->conn) != 1)
		store_pg_drop(s); /* results left unread: of no more use */
	if (rc != 0) {
		*cause = pp->error != NULL ? pp->error
					   : store_pg_err(s->conn,
							  "record results");
		pp->error = NULL;
		if (s->conn != NULL && !store_pg_broken(s)) {
			PGresult *r = PQexec(s->conn, "ROLLBACK");

			PQclear(r);
		}
		free(pp);
		return -1;
	}
	if ((size_t)pp->counted < n_final)
		log_warn("%zu results not recorded: their rows are no longer "
			 "this node's (the lease ran out and another node "
			 "took them, or they were recorded before)",
			 n_final - (size_t)pp->counted);
	free(pp);
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

/* The PostgreSQL backend: the command-line tools that add, change or look
 * up rows beside running nodes (store.h): submit --direct, refetch, prune
 * and cat's lookup of WARC records.  Each opens a connection of its own.
 * The SQL says what the SQLite tools' says (store_sqlite_tools.c), in
 * PostgreSQL's words; LIKE is ILIKE here, since SQLite's LIKE ignores the
 * case of ASCII letters. */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errkind.h"
#include "shard.h"
#include "util.h"

/* The advisory lock refetch runs under, so that two at once do not both
 * queue a URL. */
#define STORE_PG_REFETCH_LOCK "29113321216517221"

static int pg_tool_command(PGconn *c, const char *sql, char **cause)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
		 PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		*cause = store_pg_err(c, sql);
	PQclear(r);
	return ok ? 0 : -1;
}

int store_pg_submit(const struct store_conf *sc, const struct store_line *lines,
		    size_t n, int64_t now_ms, char **cause)
{
	struct pg_buf col[5] = {{0}};
	char now[24];
	const char *p[6];
	PGconn *c;
	PGresult *r;

	c = store_pg_connect_tool(sc, cause);
	if (c == NULL)
		return -1;
	for (int i = 0; i < 5; i++)
		pg_array_open(&col[i]);
	for (size_t i = 0; i < n; i++) {
		const struct store_line *l = &lines[i];
		bool ok = l->invalid_detail == NULL;

		pg_array_text(&col[0], l->url, l->len);
		pg_array_int(&col[1], ok ? shard_of_url(l->url, l->len) : 0);
		pg_array_int(&col[2], ok ? STORE_QUEUED : STORE_FAILED);
		pg_array_str(&col[3],
			     ok ? NULL : errkind_name(ERR_INVALID_URL));
		pg_array_str(&col[4], l->invalid_detail);
	}
	for (int i = 0; i < 5; i++) {
		pg_array_close(&col[i]);
		p[i] = pg_buf_str(&col[i]);
	}
	snprintf(now, sizeof now, "%lld", (long long)now_ms);
	p[5] = now;
	r = store_pg_exec(
	    c, NULL,
	    "INSERT INTO urls (url, shard, state, error, "
	    "error_detail, queued_at)"
	    " SELECT l.url, l.shard, l.state, l.error, l.detail, $6"
	    " FROM unnest($1::text[], $2::int[], $3::smallint[],"
	    "  $4::text[], $5::text[]) WITH ORDINALITY"
	    "  AS l(url, shard, state, error, detail, n)"
	    " ORDER BY l.n",
	    6, p, PGRES_COMMAND_OK, "insert rows", cause);
	int rc = r != NULL ? 0 : -1;

	for (int i = 0; i < 5; i++)
		pg_buf_free(&col[i]);
	PQclear(r);
	PQfinish(c);
	return rc;
}

int store_pg_refetch(const struct store_conf *sc,
		     const struct store_select *sel, int64_t now_ms,
		     bool dry_run, void (*each)(void *arg, const char *url),
		     void *arg, int64_t *n, char **cause)
{
	/* Each URL's latest row decides; a URL with a queued row, and lines
	 * that were never URLs, are left alone; refetch_of names the URL's
	 * latest done row.  The new row takes the old one's shard (same URL,
	 * same host). */
	static const char sql[] =
	    "WITH sel AS ("
	    " SELECT id, url, shard, last_done FROM ("
	    "  SELECT id, url, shard, state, error, fetched_at,"
	    "         row_number() OVER w AS rn,"
	    "         sum((state = 0)::int) OVER u AS n_queued,"
	    "         max(CASE WHEN state = 1 THEN id END) OVER u"
	    "             AS last_done"
	    "  FROM urls"
	    "  WINDOW w AS (PARTITION BY url ORDER BY id DESC),"
	    "         u AS (PARTITION BY url)) AS x"
	    " WHERE rn = 1 AND n_queued = 0"
	    "   AND coalesce(error, '') != 'invalid_url'"
	    "   AND ($1::bigint IS NULL OR fetched_at < $1::bigint)"
	    "   AND ($2::text IS NULL OR url ILIKE $2::text)"
	    "   AND ($3::text IS NULL OR error = $3::text)"
	    "   AND (NOT $4::boolean OR state = 2)),"
	    " ins AS ("
	    "  INSERT INTO urls (url, shard, state, queued_at, refetch_of)"
	    "  SELECT url, shard, 0, $5, last_done FROM sel"
	    "  WHERE NOT $6::boolean ORDER BY id)"
	    "SELECT url FROM sel ORDER BY id";
	char older[24], now[24];
	const char *p[6];
	PGconn *c;
	PGresult *r;

	*n = 0;
	c = store_pg_connect_tool(sc, cause);
	if (c == NULL)
		return -1;
	snprintf(older, sizeof older, "%lld",
		 (long long)(now_ms - sel->older_than_ms));
	snprintf(now, sizeof now, "%lld", (long long)now_ms);
	p[0] = sel->older_than_ms >= 0 ? older : NULL;
	p[1] = sel->url_like;
	p[2] = sel->error;
	p[3] = sel->failed_only ? "true" : "false";
	p[4] = now;
	p[5] = dry_run ? "true" : "false";
	if (pg_tool_command(c, "BEGIN", cause) != 0 ||
	    pg_tool_command(
		c, "SELECT pg_advisory_xact_lock(" STORE_PG_REFETCH_LOCK ")",
		cause) != 0)
		goto fail;
	r = store_pg_exec(c, NULL, sql, 6, p, PGRES_TUPLES_OK, "refetch",
			  cause);
	if (r == NULL)
		goto fail;
	for (int j = 0; j < PQntuples(r); j++) {
		if (each != NULL)
			each(arg, PQgetvalue(r, j, 0));
		(*n)++;
	}
	PQclear(r);
	if (pg_tool_command(c, "COMMIT", cause) != 0)
		goto fail;
	PQfinish(c);
	return 0;
fail:
	*n = 0;
	PQfinish(c); /* rolls back */
	return -1;
}

int store_pg_prune(const struct store_conf *sc, int64_t before_ms,
		   bool keep_latest, bool dry_run, int64_t *n, char **cause)
{
	/* As with SQLite: chosen once, deleted a thousand at a time in
	 * short transactions.  Never removed: queued rows, and rows a queued
	 * re-fetch takes its validators from.  (Identity columns never hand
	 * an id out twice, so the newest row needs no protection here.) */
	PGconn *c;
	PGresult *r;
	char *pick;
	int64_t total;

	*n = 0;
	c = store_pg_connect_tool(sc, cause);
	if (c == NULL)
		return -1;
	pick = util_printf(
	    "CREATE TEMP TABLE doomed AS"
	    " SELECT id FROM ("
	    "  SELECT id, state, coalesce(fetched_at, queued_at) AS at,"
	    "         row_number() OVER (PARTITION BY url ORDER BY"
	    "                            state = 0, id DESC) AS rn"
	    "  FROM urls) AS x"
	    " WHERE state != 0 AND at < %lld AND (%s OR rn > 1)"
	    "   AND id NOT IN (SELECT refetch_of FROM urls WHERE state = 0"
	    "                  AND refetch_of IS NOT NULL)",
	    (long long)before_ms, keep_latest ? "false" : "true");
	if (pg_tool_command(c, pick, cause) != 0) {
		free(pick);
		goto fail;
	}
	free(pick);
	r = store_pg_exec(c, NULL, "SELECT count(*) FROM doomed", 0, NULL,
			  PGRES_TUPLES_OK, "count", cause);
	if (r == NULL)
		goto fail;
	total = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (dry_run) {
		*n = total;
		PQfinish(c);
		return 0;
	}
	for (int64_t left = total; left > 0; left -= 1000) {
		r = store_pg_exec(
		    c, NULL,
		    "WITH b AS (DELETE FROM doomed WHERE id IN "
		    "(SELECT id FROM doomed ORDER BY id LIMIT "
		    "1000) RETURNING id) "
		    "DELETE FROM urls WHERE id IN (SELECT id FROM "
		    "b) AND state != 0",
		    0, NULL, PGRES_COMMAND_OK, "delete", cause);
		if (r == NULL)
			goto fail;
		*n += atoll(PQcmdTuples(r));
		PQclear(r);
	}
	PQfinish(c);
	return 0;
fail:
	PQfinish(c);
	return -1;
}

int store_pg_find_records(const struct store_conf *sc, int64_t id,
			  const char *url, struct store_record *out, size_t max,
			  size_t *n, char **cause)
{
	char id_txt[24], lim[24];
	const char *p[3];
	PGconn *c;
	PGresult *r;
	char *sha = NULL;

	*n = 0;
	c = store_pg_connect_tool(sc, cause);
	if (c == NULL)
		return -1;
	snprintf(id_txt, sizeof id_txt, "%lld", (long long)id);
	p[0] = url != NULL ? url : id_txt;
	r = store_pg_exec(c, NULL,
			  url != NULL
			      ? "SELECT id, warc_file, warc_offset, "
				"body_sha256, state FROM urls WHERE url = $1 "
				"AND warc_file IS NOT NULL ORDER BY id DESC "
				"LIMIT 1"
			      : "SELECT id, warc_file, warc_offset, "
				"body_sha256, state FROM urls WHERE id = $1",
			  1, p, PGRES_TUPLES_OK, "find the row", cause);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 0) {
		*cause = url != NULL
			     ? util_printf("no archived response for %s", url)
			     : util_printf("no row %lld", (long long)id);
		PQclear(r);
		goto fail;
	}
	id = atoll(PQgetvalue(r, 0, 0));
	if (PQgetisnull(r, 0, 1)) {
		*cause = util_printf(
		    "row %lld has no archived response (%s)", (long long)id,
		    atoi(PQgetvalue(r, 0, 4)) == 0
			? "it is still queued"
			: "[capture] warc_dir was not set when it was "
			  "fetched, or it failed before a response");
		PQclear(r);
		goto fail;
	}
	out[0].id = id;
	out[0].file = xstrdup(PQgetvalue(r, 0, 1));
	out[0].offset = atoll(PQgetvalue(r, 0, 2));
	*n = 1;
	if (!PQgetisnull(r, 0, 3))
		sha = xstrdup(PQgetvalue(r, 0, 3));
	PQclear(r);
	if (sha != NULL && max > 1) {
		snprintf(id_txt, sizeof id_txt, "%lld", (long long)id);
		snprintf(lim, sizeof lim, "%zu", max - 1);
		p[0] = sha;
		p[1] = id_txt;
		p[2] = lim;
		r = store_pg_exec(c, NULL,
				  "SELECT id, warc_file, warc_offset FROM urls "
				  "WHERE body_sha256 = $1 AND warc_file IS NOT "
				  "NULL AND id != $2 ORDER BY id DESC LIMIT $3",
				  3, p, PGRES_TUPLES_OK, "find the payload",
				  cause);
		if (r == NULL)
			goto fail;
		for (int j = 0; j < PQntuples(r) && *n < max; j++) {
			out[*n].id = atoll(PQgetvalue(r, j, 0));
			out[*n].file = xstrdup(PQgetvalue(r, j, 1));
			out[*n].offset = atoll(PQgetvalue(r, j, 2));
			(*n)++;
		}
		PQclear(r);
	}
	free(sha);
	PQfinish(c);
	return 0;
fail:
	for (size_t i = 0; i < *n; i++)
		free(out[i].file);
	*n = 0;
	free(sha);
	PQfinish(c);
	return -1;
}

/* The SQLite backend: the command-line tools that add, change or look up
 * rows beside a running daemon (store.h): submit --direct, refetch, prune
 * and cat's lookup of WARC records.  Each opens a connection of its
 * own. */
#include "store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errkind.h"
#include "util.h"

/* Open the database for a command-line tool (refetch, prune): read-write,
 * not created, waiting for the daemon's write transactions rather than
 * failing on them. */
static int store_open_tool(const char *path, sqlite3 **db, char **cause)
{
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		*cause = util_printf("cannot open database %s: %s", path,
				     *db ? sqlite3_errmsg(*db)
					 : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return -1;
	}
	sqlite3_busy_timeout(*db, 30000);
	int64_t v = 0;
	if (store_sqlite_query_int(*db, "PRAGMA user_version", 0, &v, cause) !=
		0 ||
	    v < store_migrations_count) {
		if (*cause == NULL)
			*cause = util_printf("%s is not a gatherd database of "
					     "this version (schema %lld); "
					     "start the daemon once to migrate",
					     path, (long long)v);
		sqlite3_close(*db);
		*db = NULL;
		return -1;
	}
	return 0;
}

/* Bind an optional text (NULL binds SQL NULL). */
static void store_bind_maybe(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int store_sqlite_refetch(const struct store_conf *sc,
			 const struct store_select *sel, int64_t now_ms,
			 bool dry_run, void (*each)(void *arg, const char *url),
			 void *arg, int64_t *n, char **cause)
{
	const char *path = sc->database;
	/* Each URL's latest row decides whether it is selected; a URL that
	 * already has a queued row is left alone (it is about to be fetched
	 * anyway), and so are lines that were never URLs.  refetch_of names
	 * the URL's latest done row, whose validators make the new request
	 * conditional. */
	static const char sql[] =
		"SELECT url, last_done FROM ("
		"  SELECT id, url, state, error, fetched_at,"
		"         row_number() OVER w AS rn,"
		"         sum(state = 0) OVER u AS n_queued,"
		"         max(CASE WHEN state = 1 THEN id END) OVER u"
		"             AS last_done"
		"  FROM urls"
		"  WINDOW w AS (PARTITION BY url ORDER BY id DESC),"
		"         u AS (PARTITION BY url))"
		" WHERE rn = 1 AND n_queued = 0"
		"   AND coalesce(error, '') != 'invalid_url'"
		"   AND (?1 IS NULL OR fetched_at < ?1)"
		"   AND (?2 IS NULL OR url LIKE ?2)"
		"   AND (?3 IS NULL OR error = ?3)"
		"   AND (?4 = 0 OR state = 2)"
		" ORDER BY id";
	sqlite3 *db = NULL;
	sqlite3_stmt *sel_st = NULL, *ins = NULL;
	int rc;

	*n = 0;
	if (store_open_tool(path, &db, cause) != 0)
		return -1;
	/* One write transaction: the selection and the new rows agree, and
	 * a running daemon sees all of them or none. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &sel_st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO urls (url, state, queued_at, "
			       "refetch_of) VALUES (?1, 0, ?2, ?3)",
			       -1, &ins, NULL) != SQLITE_OK)
		goto fail_db;
	if (sel->older_than_ms >= 0)
		sqlite3_bind_int64(sel_st, 1, now_ms - sel->older_than_ms);
	else
		sqlite3_bind_null(sel_st, 1);
	store_bind_maybe(sel_st, 2, sel->url_like);
	store_bind_maybe(sel_st, 3, sel->error);
	sqlite3_bind_int(sel_st, 4, sel->failed_only);
	while ((rc = sqlite3_step(sel_st)) == SQLITE_ROW) {
		const char *url = (const char *)sqlite3_column_text(sel_st, 0);

		if (url == NULL)
			continue;
		if (each != NULL)
			each(arg, url);
		(*n)++;
		if (dry_run)
			continue;
		sqlite3_bind_text(ins, 1, url, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins, 2, now_ms);
		if (sqlite3_column_type(sel_st, 1) == SQLITE_NULL)
			sqlite3_bind_null(ins, 3);
		else
			sqlite3_bind_int64(ins, 3,
					   sqlite3_column_int64(sel_st, 1));
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto fail_db;
		sqlite3_reset(ins);
	}
	if (rc != SQLITE_DONE)
		goto fail_db;
	sqlite3_finalize(sel_st);
	sqlite3_finalize(ins);
	sel_st = ins = NULL;
	if (sqlite3_exec(db, dry_run ? "ROLLBACK" : "COMMIT", NULL, NULL,
			 NULL) != SQLITE_OK)
		goto fail_db;
	sqlite3_close(db);
	return 0;
fail_db:
	*cause = util_printf("%s: %s", path, sqlite3_errmsg(db));
	sqlite3_finalize(sel_st);
	sqlite3_finalize(ins);
	sqlite3_close(db); /* rolls back */
	*n = 0;
	return -1;
}

int store_sqlite_prune(const struct store_conf *sc, int64_t before_ms,
		       bool keep_latest, bool dry_run, int64_t *n,
		       char **cause)
{
	const char *path = sc->database;
	/* The rows to remove are chosen once, into a temporary table (one
	 * window over the table for --keep-latest), then deleted a thousand
	 * at a time, each batch its own short transaction, so the daemon's
	 * writes go on in between.  Never removed: queued rows, the row
	 * with the highest id (SQLite would hand its id out again, below
	 * the daemon's read cursor, and the daemon would not see that row),
	 * and rows a queued re-fetch takes its validators from. */
	static const char pick[] =
		"CREATE TEMP TABLE doomed AS"
		" SELECT id FROM ("
		"  SELECT id, state, coalesce(fetched_at, queued_at) AS at,"
		"         row_number() OVER (PARTITION BY url ORDER BY"
		"                            state = 0, id DESC) AS rn"
		"  FROM urls)"
		" WHERE state != 0 AND at < ?1 AND (?2 = 0 OR rn > 1)"
		"   AND id < (SELECT max(id) FROM urls)"
		"   AND id NOT IN (SELECT refetch_of FROM urls WHERE state = 0"
		"                  AND refetch_of IS NOT NULL)";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *del = NULL;
	int64_t total = 0;

	*n = 0;
	if (store_open_tool(path, &db, cause) != 0)
		return -1;
	if (sqlite3_prepare_v2(db, pick, -1, &st, NULL) != SQLITE_OK)
		goto fail_db;
	sqlite3_bind_int64(st, 1, before_ms);
	sqlite3_bind_int(st, 2, keep_latest);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail_db;
	sqlite3_finalize(st);
	st = NULL;
	if (store_sqlite_query_int(db, "SELECT count(*) FROM temp.doomed", 0,
				   &total, cause) != 0)
		goto fail;
	if (dry_run) {
		*n = total;
		sqlite3_close(db);
		return 0;
	}
	if (sqlite3_prepare_v2(db,
			       "DELETE FROM main.urls WHERE id IN (SELECT id "
			       "FROM temp.doomed ORDER BY id LIMIT 1000) AND "
			       "state != 0",
			       -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "DELETE FROM temp.doomed WHERE id IN (SELECT id "
			       "FROM temp.doomed ORDER BY id LIMIT 1000)",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail_db;
	for (int64_t left = total; left > 0; left -= 1000) {
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
			    SQLITE_OK ||
		    sqlite3_step(del) != SQLITE_DONE)
			goto fail_db;
		*n += sqlite3_changes(db);
		if (sqlite3_step(st) != SQLITE_DONE ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto fail_db;
		sqlite3_reset(del);
		sqlite3_reset(st);
	}
	sqlite3_finalize(del);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
fail_db:
	*cause = util_printf("%s: %s", path, sqlite3_errmsg(db));
fail:
	sqlite3_finalize(st);
	sqlite3_finalize(del);
	sqlite3_close(db);
	return -1;
}
int store_sqlite_find_records(const struct store_conf *sc, int64_t id,
			      const char *url, struct store_record *out,
			      size_t max, size_t *n, char **cause)
{
	const char *path = sc->database;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *sha = NULL;
	int rc;

	*n = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		*cause = util_printf("cannot open database %s: %s", path,
				     db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	if (url != NULL)
		rc = sqlite3_prepare_v2(db,
					"SELECT id, warc_file, warc_offset, "
					"body_sha256, state FROM urls WHERE "
					"url = ?2 AND warc_file IS NOT NULL "
					"ORDER BY id DESC LIMIT 1",
					-1, &st, NULL);
	else
		rc = sqlite3_prepare_v2(db,
					"SELECT id, warc_file, warc_offset, "
					"body_sha256, state FROM urls WHERE "
					"id = ?1",
					-1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail_db;
	sqlite3_bind_int64(st, 1, id);
	if (url != NULL)
		sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		*cause = url != NULL
			     ? util_printf("no archived response for %s", url)
			     : util_printf("no row %lld", (long long)id);
		goto fail;
	}
	if (rc != SQLITE_ROW)
		goto fail_db;
	id = sqlite3_column_int64(st, 0);
	if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
		*cause = util_printf(
		    "row %lld has no archived response (%s)", (long long)id,
		    sqlite3_column_int(st, 4) == 0
			? "it is still queued"
			: "[capture] warc_dir was not set when it was "
			  "fetched, or it failed before a response");
		goto fail;
	}
	out[0].id = id;
	out[0].file = xstrdup((const char *)sqlite3_column_text(st, 1));
	out[0].offset = sqlite3_column_int64(st, 2);
	*n = 1;
	if (sqlite3_column_type(st, 3) != SQLITE_NULL)
		sha = xstrdup((const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	st = NULL;
	if (sha != NULL && max > 1) {
		if (sqlite3_prepare_v2(db,
				       "SELECT id, warc_file, warc_offset FROM "
				       "urls WHERE body_sha256 = ?1 AND "
				       "warc_file IS NOT NULL AND id != ?2 "
				       "ORDER BY id DESC LIMIT ?3",
				       -1, &st, NULL) != SQLITE_OK)
			goto fail_db;
		sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)(max - 1));
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			out[*n].id = sqlite3_column_int64(st, 0);
			out[*n].file = xstrdup(
			    (const char *)sqlite3_column_text(st, 1));
			out[*n].offset = sqlite3_column_int64(st, 2);
			(*n)++;
		}
		if (rc != SQLITE_DONE)
			goto fail_db;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sha);
	return 0;
fail_db:
	*cause = util_printf("%s: %s", path, sqlite3_errmsg(db));
fail:
	for (size_t i = 0; i < *n; i++)
		free(out[i].file);
	*n = 0;
	free(sha);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return -1;
}

int store_sqlite_submit(const struct store_conf *sc,
			const struct store_line *lines, size_t n,
			int64_t now_ms, char **cause)
{
	const char *path = sc->database;
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;

	if (store_open_tool(path, &db, cause) != 0)
		return -1;
	/* One transaction: a running daemon sees all the rows or none (it
	 * looks past its cursor every second). */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO urls (url, state, error, "
			       "error_detail, queued_at) VALUES (?1, ?2, ?3, "
			       "?4, ?5)",
			       -1, &ins, NULL) != SQLITE_OK)
		goto fail_db;
	for (size_t i = 0; i < n; i++) {
		const struct store_line *l = &lines[i];
		bool ok = l->invalid_detail == NULL;

		sqlite3_bind_text(ins, 1, l->url, (int)l->len, SQLITE_STATIC);
		sqlite3_bind_int(ins, 2, ok ? STORE_QUEUED : STORE_FAILED);
		store_bind_maybe(ins, 3,
				 ok ? NULL : errkind_name(ERR_INVALID_URL));
		store_bind_maybe(ins, 4, l->invalid_detail);
		sqlite3_bind_int64(ins, 5, now_ms);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto fail_db;
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	ins = NULL;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail_db;
	sqlite3_close(db);
	return 0;
fail_db:
	*cause = util_printf("%s: %s", path, sqlite3_errmsg(db));
	sqlite3_finalize(ins);
	sqlite3_close(db); /* rolls back */
	return -1;
}

/* The SQLite backend: what `gatherd status` reads (store.h,
 * store_read_status), in a read-only connection of its own beside a
 * running daemon. */
#include "store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "util.h"

/* SQL function gatherd_host(url): the URL's "host:port" (NULL when it
 * does not parse), so that status can group rows by host. */
static void store_fn_host(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	const char *url = (const char *)sqlite3_value_text(v[0]);
	const char *reason;
	struct url_ref r;
	char key[300];

	(void)argc;
	if (url == NULL ||
	    url_parse_ref(url, (size_t)sqlite3_value_bytes(v[0]), &r,
			  &reason) != 0 ||
	    url_ref_host_port(&r, url, key, sizeof key, true) < 0) {
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_text(ctx, key, -1, SQLITE_TRANSIENT);
}

/* Aggregate median(x): the middle value (the lower of the two middle ones
 * for an even count), NULL without values. */
struct store_median {
	int64_t *v;
	size_t n, cap;
};

static void store_median_step(sqlite3_context *ctx, int argc,
			      sqlite3_value **v)
{
	struct store_median *m = sqlite3_aggregate_context(ctx, sizeof *m);

	(void)argc;
	if (m == NULL || sqlite3_value_type(v[0]) == SQLITE_NULL)
		return;
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->v = xrealloc(m->v, m->cap * sizeof *m->v);
	}
	m->v[m->n++] = sqlite3_value_int64(v[0]);
}

static int store_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void store_median_final(sqlite3_context *ctx)
{
	struct store_median *m = sqlite3_aggregate_context(ctx, 0);

	if (m == NULL || m->n == 0) {
		sqlite3_result_null(ctx);
		return;
	}
	qsort(m->v, m->n, sizeof *m->v, store_cmp_i64);
	sqlite3_result_int64(ctx, m->v[(m->n - 1) / 2]);
	free(m->v);
}

/* status --hosts: the busiest hosts by queued rows, then failures. */
static int store_read_hosts(sqlite3 *db, size_t max, struct store_status *out)
{
	static const char sql[] =
		"SELECT h, sum(state = 0), sum(state = 1), sum(state = 2),"
		" median(CASE WHEN state = 1 THEN elapsed_ms END),"
		" (SELECT in_flight FROM daemon_hosts d WHERE d.host = h)"
		" FROM (SELECT gatherd_host(url) AS h, state, elapsed_ms"
		"       FROM urls) WHERE h IS NOT NULL"
		" GROUP BY h ORDER BY 2 DESC, 4 DESC, 1 LIMIT ?1";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_create_function(db, "gatherd_host", 1,
				    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				    store_fn_host, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(db, "median", 1, SQLITE_UTF8, NULL, NULL,
				    store_median_step,
				    store_median_final) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)max);
	out->hosts = xcalloc(max, sizeof *out->hosts);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n_hosts < max) {
		struct store_host_status *h = &out->hosts[out->n_hosts++];
		const char *name = (const char *)sqlite3_column_text(st, 0);

		snprintf(h->host, sizeof h->host, "%s", name ? name : "?");
		h->queued = sqlite3_column_int64(st, 1);
		h->done = sqlite3_column_int64(st, 2);
		h->failed = sqlite3_column_int64(st, 3);
		h->median_ms = sqlite3_column_type(st, 4) == SQLITE_NULL
				       ? -1
				       : sqlite3_column_int64(st, 4);
		h->in_flight = sqlite3_column_type(st, 5) == SQLITE_NULL
				       ? 0
				       : sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* The daemon's heartbeat row, when there is one. */
static int store_read_daemon(sqlite3 *db, struct store_status *out)
{
	sqlite3_stmt *st;
	int rc;

	/* The robots counts came with schema 10. */
	if (sqlite3_prepare_v2(db,
			       out->schema_version >= 10
				       ? "SELECT pid, host, version, started_at, "
					 "heartbeat_at, interval_s, in_flight, "
					 "stopped_at, robots_fetches, "
					 "robots_origins FROM daemon WHERE "
					 "slot = 1"
				       : "SELECT pid, host, version, started_at, "
					 "heartbeat_at, interval_s, in_flight, "
					 "stopped_at, 0, 0 FROM daemon WHERE "
					 "slot = 1",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 1);
		const char *v = (const char *)sqlite3_column_text(st, 2);

		out->has_daemon = true;
		out->daemon_pid = sqlite3_column_int64(st, 0);
		snprintf(out->daemon_host, sizeof out->daemon_host, "%s",
			 h ? h : "");
		snprintf(out->daemon_version, sizeof out->daemon_version, "%s",
			 v ? v : "");
		out->daemon_started_ms = sqlite3_column_int64(st, 3);
		out->daemon_heartbeat_ms = sqlite3_column_int64(st, 4);
		out->daemon_interval_s = sqlite3_column_int(st, 5);
		out->daemon_in_flight = sqlite3_column_int64(st, 6);
		out->daemon_stopped_ms =
			sqlite3_column_type(st, 7) == SQLITE_NULL
				? 0
				: sqlite3_column_int64(st, 7);
		out->daemon_robots_fetches = sqlite3_column_int64(st, 8);
		out->daemon_robots_origins = sqlite3_column_int64(st, 9);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_sqlite_read_status(const struct store_conf *sc, int64_t now_ms,
			     size_t hosts_max, struct store_status *out,
			     char **cause)
{
	const char *path = sc->database;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;
	int rc;

	memset(out, 0, sizeof *out);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		*cause = util_printf("cannot open database %s: %s", path,
				     db ? sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db, 5000);
	/* One read transaction: every number comes from the same snapshot. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto fail_db;
	if (store_sqlite_query_int(db, "PRAGMA user_version", 0, &v, cause) !=
	    0)
		goto fail_msg;
	out->schema_version = (int)v;
	if (v < 1) {
		*cause =
		    util_printf("%s is not a gatherd database (yet)", path);
		goto fail;
	}
	if (sqlite3_prepare_v2(
		db, "SELECT state, count(*) FROM urls GROUP BY state", -1, &st,
		NULL) != SQLITE_OK)
		goto fail_db;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int state = sqlite3_column_int(st, 0);
		int64_t n = sqlite3_column_int64(st, 1);

		if (state == STORE_QUEUED)
			out->queued = n;
		else if (state == STORE_DONE)
			out->done = n;
		else
			out->failed = n;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail_db;
	if (sqlite3_prepare_v2(
		db,
		"SELECT error, count(*) FROM urls WHERE state = 2 "
		"GROUP BY error ORDER BY 2 DESC, 1",
		-1, &st, NULL) != SQLITE_OK)
		goto fail_db;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->n_errors < 16) {
		const char *k = (const char *)sqlite3_column_text(st, 0);

		snprintf(out->errors[out->n_errors].kind,
			 sizeof out->errors[0].kind, "%s", k ? k : "?");
		out->errors[out->n_errors].count = sqlite3_column_int64(st, 1);
		out->n_errors++;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto fail_db;
	if (store_sqlite_query_int(db,
			    "SELECT count(*) FROM urls WHERE fetched_at >= ?1",
			    now_ms - 60000, &out->fetched_last_60s, cause) != 0)
		goto fail_msg;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, url, queued_at, strftime('%Y-%m-%dT"
			       "%H:%M:%fZ', queued_at / 1000.0, 'unixepoch') "
			       "FROM urls WHERE state = 0 ORDER BY id LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail_db;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(st, 1);
		const char *at = (const char *)sqlite3_column_text(st, 3);

		out->oldest_queued_id = sqlite3_column_int64(st, 0);
		snprintf(out->oldest_queued_url, sizeof out->oldest_queued_url,
			 "%s", u ? u : "");
		snprintf(out->oldest_queued_at, sizeof out->oldest_queued_at,
			 "%s", at ? at : "");
		out->oldest_queued_age_s =
			(now_ms - sqlite3_column_int64(st, 2)) / 1000;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail_db;
	/* Tables of later versions: a database not migrated yet has none. */
	if (out->schema_version >= 9 && store_read_daemon(db, out) != 0)
		goto fail_db;
	if (out->schema_version >= 9 && hosts_max > 0 &&
	    store_read_hosts(db, hosts_max, out) != 0)
		goto fail_db;
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return 0;
fail_db:
	*cause = util_printf("%s: %s", path, sqlite3_errmsg(db));
	goto fail;
fail_msg:
	{
		char *c = *cause;

		*cause = util_printf("%s: %s", path, c);
		free(c);
	}
fail:
	if (st != NULL)
		sqlite3_finalize(st);
	if (db != NULL)
		sqlite3_close(db);
	return -1;
}

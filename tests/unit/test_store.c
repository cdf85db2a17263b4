/* Unit tests for the SQLite store, on a temporary database file. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_sqlite.h"
#include "tap.h"

static char dir[64];
static char path[128];

static void fresh_db(void)
{
	char cmd[256];

	if (dir[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("# cleanup failed\n");
	}
	strcpy(dir, "/tmp/gatherd-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof path, "%s/test.db", dir);
}

static struct store *open_ok(void)
{
	struct store_conf sc = {.kind = STORE_SQLITE, .database = path};
	struct store *s = NULL;
	char *cause = NULL;

	if (store_open(&sc, &s, &cause) != 0) {
		printf("# store_open: %s\n", cause);
		free(cause);
		return NULL;
	}
	return s;
}

/* Run a query on a separate connection (as a sqlite3 CLI user would) and
 * return the first column of the first row as text. */
static char *query1(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *out = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_text(st, 0) != NULL)
			out = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	} else {
		printf("# %s: %s\n", sql, sqlite3_errmsg(db));
	}
	sqlite3_close(db);
	return out;
}

static void check_query(const char *sql, const char *want)
{
	char *got = query1(sql);

	TAP_CHECK_STR(got, want);
	if (got == NULL || strcmp(got, want) != 0)
		printf("# query: %s\n", sql);
	free(got);
}

static void test_open_migrates_wal(void)
{
	struct store *s;
	char buf[32];

	fresh_db();
	s = open_ok();
	TAP_CHECK(s != NULL);
	snprintf(buf, sizeof buf, "%d", store_migrations_count);
	check_query("PRAGMA user_version", buf);
	check_query("PRAGMA journal_mode", "wal");
	store_close(s);
	/* Opening again applies nothing and keeps the version. */
	s = open_ok();
	TAP_CHECK(s != NULL);
	check_query("PRAGMA user_version", buf);
	store_close(s);
}

static void test_results_view_columns(void)
{
	struct store *s;

	fresh_db();
	s = open_ok();
	check_query("SELECT group_concat(name, ',') FROM "
		    "pragma_table_info('results')",
		    "id,url,state,status,length,error,error_detail,attempts,"
		    "final_url,redirects,content_type,queued_at,fetched_at,"
		    "elapsed_ms,connect_ms,tls_ms,body_sha256,etag,"
		    "last_modified,warc_file,warc_offset,not_modified,"
		    "decoded_length,dns_ms,ttfb_ms,remote_ip,tls_version,"
		    "tls_resumed");
	/* latest: the same columns. */
	check_query("SELECT group_concat(name, ',') FROM "
		    "pragma_table_info('latest')",
		    "id,url,state,status,length,error,error_detail,attempts,"
		    "final_url,redirects,content_type,queued_at,fetched_at,"
		    "elapsed_ms,connect_ms,tls_ms,body_sha256,etag,"
		    "last_modified,warc_file,warc_offset,not_modified,"
		    "decoded_length,dns_ms,ttfb_ms,remote_ip,tls_version,"
		    "tls_resumed");
	store_close(s);
}

static void test_ingest_and_position(void)
{
	struct store *s;
	struct store_line lines[3] = {
		{"http://a/1", 10, NULL, 0, false},
		{"ftp://bad", 9, "unsupported scheme", 0, false},
		{"http://a/2", 10, NULL, 0, false},
	};
	struct store_queue_state qs = {.has_cur = true,
				       .cur = {7, 42, 123, 100, -5}},
				 got;
	char *cause = NULL;

	fresh_db();
	s = open_ok();
	TAP_CHECK(store_get_queue_state(s, &got, &cause) == 0);
	TAP_CHECK(!got.has_cur && !got.has_old);
	TAP_CHECK(store_ingest(s, lines, 3, &qs, 1700000000123LL, &cause) ==
		  0);
	TAP_CHECK(store_get_queue_state(s, &got, &cause) == 0);
	TAP_CHECK(got.has_cur && !got.has_old && got.cur.dev == 7 &&
		  got.cur.ino == 42 && got.cur.offset == 123 &&
		  got.cur.head_len == 100 && got.cur.head_hash == -5);
	/* A rotated file being followed has a slot of its own, cleared by
	 * the first ingest without it. */
	qs.has_old = true;
	qs.old = (struct store_queue_pos){7, 41, 5000, 1024, 99};
	TAP_CHECK(store_ingest(s, NULL, 0, &qs, 1700000000123LL, &cause) == 0);
	TAP_CHECK(store_get_queue_state(s, &got, &cause) == 0);
	TAP_CHECK(got.has_cur && got.has_old && got.cur.ino == 42 &&
		  got.old.ino == 41 && got.old.offset == 5000 &&
		  got.old.head_len == 1024 && got.old.head_hash == 99);
	qs.has_old = false;
	TAP_CHECK(store_ingest(s, NULL, 0, &qs, 1700000000123LL, &cause) == 0);
	TAP_CHECK(store_get_queue_state(s, &got, &cause) == 0);
	TAP_CHECK(got.has_cur && !got.has_old);
	check_query("SELECT group_concat(id || ':' || url || ':' || state, ' ')"
		    " FROM results",
		    "1:http://a/1:queued 2:ftp://bad:failed 3:http://a/2:queued");
	check_query("SELECT error || '/' || error_detail FROM results "
		    "WHERE id = 2",
		    "invalid_url/unsupported scheme");
	check_query("SELECT queued_at FROM results WHERE id = 1",
		    "2023-11-14T22:13:20.123Z");
	int64_t q = 0, first = 0;
	TAP_CHECK(store_count_queued(s, &q, &first, &cause) == 0 && q == 2 &&
		  first == 1);
	store_close(s);
}

static void test_load_window(void)
{
	struct store *s;
	struct store_line l = {"http://h/x", 10, NULL, 0, false};
	struct store_queue_state pos = {.has_cur = true, .cur = {1, 1, 1, 0, 0}};
	struct store_row *rows = NULL;
	size_t n = 0;
	char *cause = NULL;

	fresh_db();
	s = open_ok();
	for (int i = 0; i < 10; i++)
		TAP_CHECK(store_ingest(s, &l, 1, &pos, 0, &cause) == 0);
	TAP_CHECK(store_load_queued(s, 0, 4, &rows, &n, &cause) == 0);
	TAP_CHECK(n == 4 && rows[0].id == 1 && rows[3].id == 4);
	TAP_CHECK_STR(rows[0].url, "http://h/x");
	for (size_t i = 0; i < n; i++)
		free(rows[i].url);
	free(rows);
	TAP_CHECK(store_load_queued(s, 8, 4, &rows, &n, &cause) == 0);
	TAP_CHECK(n == 2 && rows[0].id == 9 && rows[1].id == 10);
	for (size_t i = 0; i < n; i++)
		free(rows[i].url);
	free(rows);
	store_close(s);
}

static void test_results_exactly_once(void)
{
	struct store *s;
	struct store_line l[2] = {{"http://h/a", 10, NULL, 0, false},
				  {"http://h/b", 10, NULL, 0, false}};
	struct store_queue_state pos = {.has_cur = true, .cur = {1, 1, 1, 0, 0}};
	struct store_result r[2] = {
		{1, STORE_DONE, 200, 13793, ERR_NONE, NULL, 1, "http://h/a", 0,
		 "text/html", 1700000000000LL, 12, 3, 7,
		 "0123abcd", "\"v1\"", "Tue, 14 Nov 2023 22:13:20 GMT",
		 "gatherd-x.warc.gz", 1234, 0, 40000, 2, 5, "127.0.0.1",
		 "TLSv1.3", 1},
		{2, STORE_FAILED, 0, -1, ERR_TIMEOUT, "request took too long", 1,
		 NULL, -1, NULL, 1700000000000LL, 5000, -1, -1,
		 NULL, NULL, NULL, NULL, -1, -1, -1, -1, -1, NULL, NULL, -1},
	};
	struct store_result again = {1,    STORE_FAILED, 0,  -1, ERR_DNS, "x", 2,
				     NULL, -1,           NULL, 0, 1,     -1, -1,
				     NULL, NULL, NULL, NULL, -1, -1, -1, -1,
				     -1, NULL, NULL, -1};
	struct store_row *rows = NULL;
	size_t n = 5;
	char *cause = NULL;
	int64_t q = -1;

	fresh_db();
	s = open_ok();
	TAP_CHECK(store_ingest(s, l, 2, &pos, 0, &cause) == 0);
	TAP_CHECK(store_put_results(s, r, 2, &cause) == 0);
	check_query("SELECT state || ',' || status || ',' || length || ',' || "
		    "content_type || ',' || attempts || ',' || redirects || "
		    "',' || elapsed_ms || ',' || fetched_at || ',' || "
		    "connect_ms || ',' || tls_ms FROM results WHERE id = 1",
		    "done,200,13793,text/html,1,0,12,2023-11-14T22:13:20.000Z,"
		    "3,7");
	check_query("SELECT body_sha256 || ',' || etag || ',' || "
		    "last_modified || ',' || warc_file || ',' || warc_offset "
		    "|| ',' || not_modified FROM results WHERE id = 1",
		    "0123abcd,\"v1\",Tue, 14 Nov 2023 22:13:20 GMT,"
		    "gatherd-x.warc.gz,1234,0");
	check_query("SELECT decoded_length || ',' || dns_ms || ',' || ttfb_ms "
		    "|| ',' || remote_ip || ',' || tls_version || ',' || "
		    "tls_resumed FROM results WHERE id = 1",
		    "40000,2,5,127.0.0.1,TLSv1.3,1");
	check_query("SELECT ifnull(body_sha256, 'NULL') || ',' || "
		    "ifnull(not_modified, 'NULL') FROM results WHERE id = 2",
		    "NULL,NULL");
	check_query("SELECT state || ',' || error || ',' || "
		    "ifnull(status, 'NULL') || ',' || ifnull(length, 'NULL') "
		    "|| ',' || ifnull(tls_ms, 'NULL') FROM results WHERE id = 2",
		    "failed,timeout,NULL,NULL,NULL");
	/* A second result for a row that already has one is ignored. */
	TAP_CHECK(store_put_results(s, &again, 1, &cause) == 0);
	check_query("SELECT state || ',' || attempts FROM results WHERE id = 1",
		    "done,1");
	TAP_CHECK(store_load_queued(s, 0, 10, &rows, &n, &cause) == 0);
	TAP_CHECK(n == 0);
	free(rows);
	/* Nothing queued: the first queued row will be the next one. */
	int64_t first = 0;
	TAP_CHECK(store_count_queued(s, &q, &first, &cause) == 0 && q == 0 &&
		  first == 3);
	store_close(s);
}

static void test_newer_schema_refused(void)
{
	struct store_conf sc = {.kind = STORE_SQLITE, .database = path};
	struct store *s = NULL;
	char *cause = NULL;
	sqlite3 *db;
	char sql[64];

	fresh_db();
	TAP_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
		 store_migrations_count + 1);
	TAP_CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	TAP_CHECK(store_open(&sc, &s, &cause) != 0);
	TAP_CHECK(cause != NULL && strstr(cause, "newer") != NULL);
	free(cause);
}

static void test_unwritable_path(void)
{
	struct store_conf sc = {.kind = STORE_SQLITE,
				.database = "/nonexistent-dir/x.db"};
	struct store *s = NULL;
	char *cause = NULL;

	TAP_CHECK(store_open(&sc, &s, &cause) != 0);
	TAP_CHECK(cause != NULL && strstr(cause, "/nonexistent-dir/x.db"));
	free(cause);
}

static const struct tap_test tests[] = {
	{"open creates, migrates, uses WAL", test_open_migrates_wal},
	{"results view has the documented columns", test_results_view_columns},
	{"ingest stores rows and position in one go", test_ingest_and_position},
	{"load_queued returns the next window", test_load_window},
	{"each row gets exactly one result", test_results_exactly_once},
	{"a newer schema is refused", test_newer_schema_refused},
	{"an unopenable path is an error", test_unwritable_path},
	{NULL, NULL},
};

int main(void)
{
	int rc = tap_main(tests);
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return rc;
}

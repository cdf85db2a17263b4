/* SQLite store: see store.h.  Runs on the worker thread only. */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "url.h"
#include "util.h"

/* Prepared statements live as long as the connection: the hot paths
 * (ingest, load window, put results) bind and step, nothing else. */
struct store {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *insert_url, *put_pos, *get_pos, *del_pos;
	sqlite3_stmt *load_queued, *put_result, *put_attempts, *count_queued;
};

static char *store_err(struct store *s, const char *what)
{
	return util_printf("%s: %s", what, sqlite3_errmsg(s->db));
}

static int store_exec(struct store *s, const char *sql, char **cause)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*cause = util_printf("%s", msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Step a statement that returns no rows, then reset it. */
static int store_step_done(struct store *s, sqlite3_stmt *st,
			   const char *what, char **cause)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*cause = store_err(s, what);
		return -1;
	}
	return 0;
}

static int store_begin(struct store *s, char **cause)
{
	return store_step_done(s, s->begin, "begin transaction", cause);
}

static int store_commit(struct store *s, char **cause)
{
	return store_step_done(s, s->commit, "commit", cause);
}

static void store_rollback(struct store *s)
{
	bool full = (sqlite3_errcode(s->db) & 0xff) == SQLITE_FULL;

	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->rollback);
		sqlite3_reset(s->rollback);
	}
	/* On a small file system the WAL itself may be what fills it: copy it
	 * into the database and truncate it, so the retry has room.  Best
	 * effort: it fails harmlessly when there is no room for that either. */
	if (full)
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
					  NULL, NULL);
}

static int store_migrate(struct store *s, char **cause)
{
	sqlite3_stmt *st;
	int version;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK) {
		*cause = store_err(s, "read schema version");
		return -1;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		*cause = store_err(s, "read schema version");
		return -1;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);

	if (version > store_migrations_count) {
		*cause = util_printf("database schema version %d is newer than "
				     "this gatherd knows (%d)",
				     version, store_migrations_count);
		return -1;
	}
	for (int i = version; i < store_migrations_count; i++) {
		const struct store_migration *m = &store_migrations[i];
		char *err = NULL;
		char pragma[64];

		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d",
			 m->version);
		if (store_exec(s, "BEGIN IMMEDIATE", &err) != 0 ||
		    store_exec(s, m->sql, &err) != 0 ||
		    store_exec(s, pragma, &err) != 0 ||
		    store_exec(s, "COMMIT", &err) != 0) {
			*cause = util_printf("migration %04d_%s failed: %s",
					     m->version, m->name, err);
			free(err);
			err = NULL;
			/* A failed statement may have ended the transaction
			 * already; a failing ROLLBACK then says nothing new. */
			if (!sqlite3_get_autocommit(s->db) &&
			    store_exec(s, "ROLLBACK", &err) != 0)
				free(err);
			return -1;
		}
		log_info("database migrated to schema version %d (%s)",
			 m->version, m->name);
	}
	return 0;
}

static int store_prepare(struct store *s, sqlite3_stmt **st, const char *sql,
			 char **cause)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
			       NULL) != SQLITE_OK) {
		*cause = util_printf("prepare \"%s\": %s", sql,
				     sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

int store_open(const char *path, struct store **out, char **cause)
{
	struct store *s = xcalloc(1, sizeof *s);
	char *err = NULL;

	/* Memory statistics take a global mutex on every SQLite allocation,
	 * which showed in the profile; gatherd does not use them.  Only
	 * possible before SQLite initialises (else SQLITE_MISUSE: ignored). */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		*cause = util_printf("cannot open database %s: %s", path,
				     s->db ? sqlite3_errmsg(s->db)
					   : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 10000);
	sqlite3_extended_result_codes(s->db, 1);

	/* WAL lets sqlite3 readers run while the daemon writes.  With WAL,
	 * synchronous=NORMAL survives a crash of the process; after a power
	 * loss the last transactions may be gone, but since the queue offset
	 * moves in the same transaction as the rows, the lines are simply
	 * read again and lost results fetched again. */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		*cause = util_printf("%s: cannot enable WAL: %s", path,
				     sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		goto fail;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		*cause = util_printf("%s: cannot enable WAL (journal mode "
				     "stays %s)",
				     path, sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	/* Keep the -wal and -shm files when the daemon closes the database:
	 * other users (the service's group) may read it but not create those
	 * files in the state directory, so without them they could not read
	 * while the service is stopped. */
	int persist = 1;
	sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	if (store_exec(s, "PRAGMA synchronous = NORMAL", &err) != 0 ||
	    store_exec(s, "PRAGMA foreign_keys = ON", &err) != 0) {
		*cause = util_printf("%s: %s", path, err);
		free(err);
		goto fail;
	}
	if (store_migrate(s, &err) != 0) {
		*cause = util_printf("%s: %s", path, err);
		free(err);
		goto fail;
	}

	if (store_prepare(s, &s->begin, "BEGIN IMMEDIATE", cause) != 0 ||
	    store_prepare(s, &s->commit, "COMMIT", cause) != 0 ||
	    store_prepare(s, &s->rollback, "ROLLBACK", cause) != 0 ||
	    store_prepare(s, &s->insert_url,
			  "INSERT INTO urls (url, state, error, error_detail, "
			  "queued_at) VALUES (?1, ?2, ?3, ?4, ?5)",
			  cause) != 0 ||
	    store_prepare(s, &s->put_pos,
			  "INSERT INTO queue_position (slot, dev, ino, "
			  "offset, updated_at, head_len, head_hash) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
			  "ON CONFLICT (slot) DO UPDATE SET "
			  "dev = excluded.dev, ino = excluded.ino, "
			  "offset = excluded.offset, "
			  "updated_at = excluded.updated_at, "
			  "head_len = excluded.head_len, "
			  "head_hash = excluded.head_hash",
			  cause) != 0 ||
	    store_prepare(s, &s->get_pos,
			  "SELECT slot, dev, ino, offset, head_len, head_hash "
			  "FROM queue_position ORDER BY slot",
			  cause) != 0 ||
	    store_prepare(s, &s->del_pos,
			  "DELETE FROM queue_position WHERE slot = 2",
			  cause) != 0 ||
	    store_prepare(s, &s->load_queued,
			  "SELECT u.id, u.url, u.attempts, p.etag, "
			  "p.last_modified, p.body_sha256, p.fetched_at, "
			  "p.warc_file, p.warc_offset FROM urls u "
			  "LEFT JOIN urls p ON p.id = u.refetch_of "
			  "WHERE u.state = 0 AND u.id > ?1 ORDER BY u.id "
			  "LIMIT ?2",
			  cause) != 0 ||
	    store_prepare(s, &s->put_result,
			  "UPDATE urls SET state = ?2, status = ?3, "
			  "length = ?4, error = ?5, error_detail = ?6, "
			  "attempts = ?7, final_url = ?8, redirects = ?9, "
			  "content_type = ?10, fetched_at = ?11, "
			  "elapsed_ms = ?12, connect_ms = ?13, tls_ms = ?14, "
			  "body_sha256 = ?15, etag = ?16, last_modified = ?17, "
			  "warc_file = ?18, warc_offset = ?19, "
			  "not_modified = ?20, decoded_length = ?21, "
			  "dns_ms = ?22, ttfb_ms = ?23, remote_ip = ?24, "
			  "tls_version = ?25, tls_resumed = ?26 "
			  "WHERE id = ?1 AND state = 0",
			  cause) != 0 ||
	    store_prepare(s, &s->put_attempts,
			  "UPDATE urls SET attempts = ?2 "
			  "WHERE id = ?1 AND state = 0",
			  cause) != 0 ||
	    store_prepare(s, &s->count_queued,
			  "SELECT count(*), coalesce(min(id), (SELECT "
			  "coalesce(max(id), 0) + 1 FROM urls)) FROM urls "
			  "WHERE state = 0",
			  cause) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return -1;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	sqlite3_stmt *all[] = {s->begin,       s->commit,     s->rollback,
			       s->insert_url,  s->put_pos,    s->get_pos,
			       s->del_pos,
			       s->load_queued, s->put_result, s->put_attempts,
			       s->count_queued};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	if (s->db != NULL)
		sqlite3_close(s->db);
	free(s);
}

int store_get_queue_state(struct store *s, struct store_queue_state *qs,
			  char **cause)
{
	sqlite3_stmt *st = s->get_pos;
	int rc;

	memset(qs, 0, sizeof *qs);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int slot = sqlite3_column_int(st, 0);
		struct store_queue_pos *pos = slot == 1 ? &qs->cur : &qs->old;

		pos->dev = sqlite3_column_int64(st, 1);
		pos->ino = sqlite3_column_int64(st, 2);
		pos->offset = sqlite3_column_int64(st, 3);
		pos->head_len = sqlite3_column_int64(st, 4);
		pos->head_hash = sqlite3_column_int64(st, 5);
		if (slot == 1)
			qs->has_cur = true;
		else
			qs->has_old = true;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*cause = store_err(s, "read queue position");
		return -1;
	}
	return 0;
}

/* Store one slot of the queue position. */
static int store_put_pos(struct store *s, int slot,
			 const struct store_queue_pos *pos, int64_t now_ms,
			 char **cause)
{
	sqlite3_bind_int(s->put_pos, 1, slot);
	sqlite3_bind_int64(s->put_pos, 2, pos->dev);
	sqlite3_bind_int64(s->put_pos, 3, pos->ino);
	sqlite3_bind_int64(s->put_pos, 4, pos->offset);
	sqlite3_bind_int64(s->put_pos, 5, now_ms);
	sqlite3_bind_int64(s->put_pos, 6, pos->head_len);
	sqlite3_bind_int64(s->put_pos, 7, pos->head_hash);
	return store_step_done(s, s->put_pos, "store queue position", cause);
}

int store_ingest(struct store *s, struct store_line *lines, size_t n,
		 const struct store_queue_state *qs, int64_t now_ms,
		 char **cause)
{
	sqlite3_stmt *st = s->insert_url;

	if (store_begin(s, cause) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct store_line *l = &lines[i];

		sqlite3_bind_text(st, 1, l->url, (int)l->len, SQLITE_STATIC);
		if (l->invalid_detail == NULL) {
			sqlite3_bind_int(st, 2, STORE_QUEUED);
			sqlite3_bind_null(st, 3);
			sqlite3_bind_null(st, 4);
		} else {
			sqlite3_bind_int(st, 2, STORE_FAILED);
			sqlite3_bind_text(st, 3, errkind_name(ERR_INVALID_URL),
					  -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, l->invalid_detail, -1,
					  SQLITE_STATIC);
		}
		sqlite3_bind_int64(st, 5, now_ms);
		if (store_step_done(s, st, "insert url", cause) != 0)
			goto fail;
		l->id = sqlite3_last_insert_rowid(s->db);
	}
	if (store_put_pos(s, 1, &qs->cur, now_ms, cause) != 0)
		goto fail;
	if (qs->has_old) {
		if (store_put_pos(s, 2, &qs->old, now_ms, cause) != 0)
			goto fail;
	} else if (store_step_done(s, s->del_pos, "clear queue position",
				   cause) != 0) {
		goto fail;
	}
	if (store_commit(s, cause) != 0)
		goto fail;
	return 0;
fail:
	store_rollback(s);
	return -1;
}

/* Column i of the current row as a new string, or NULL when it is. */
static char *store_column_dup(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	return v != NULL ? xstrdup(v) : NULL;
}

int store_load_queued(struct store *s, int64_t after_id, int limit,
		      struct store_row **rows, size_t *n, char **cause)
{
	sqlite3_stmt *st = s->load_queued;
	struct store_row *r = NULL;
	size_t count = 0;
	int rc;

	r = xcalloc((size_t)limit > 0 ? (size_t)limit : 1, sizeof *r);
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *url = (const char *)sqlite3_column_text(st, 1);

		r[count].id = sqlite3_column_int64(st, 0);
		r[count].attempts = sqlite3_column_int(st, 2);
		r[count].cond_etag = store_column_dup(st, 3);
		r[count].cond_last_modified = store_column_dup(st, 4);
		r[count].prev_sha256 = store_column_dup(st, 5);
		r[count].prev_fetched_ms = sqlite3_column_int64(st, 6);
		r[count].prev_warc_file = store_column_dup(st, 7);
		r[count].prev_warc_offset = sqlite3_column_int64(st, 8);
		r[count].url = xstrdup(url ? url : "");
		count++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*cause = store_err(s, "load queued rows");
		for (size_t i = 0; i < count; i++) {
			free(r[i].url);
			free(r[i].cond_etag);
			free(r[i].cond_last_modified);
			free(r[i].prev_sha256);
			free(r[i].prev_warc_file);
		}
		free(r);
		return -1;
	}
	*rows = r;
	*n = count;
	return 0;
}

static void store_bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Bind v, or NULL when it is negative (not known). */
static void store_bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
	if (v >= 0)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

int store_put_results(struct store *s, const struct store_result *res,
		      size_t n, char **cause)
{
	sqlite3_stmt *st = s->put_result;

	if (store_begin(s, cause) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct store_result *r = &res[i];

		if (r->state == STORE_QUEUED) {
			sqlite3_bind_int64(s->put_attempts, 1, r->id);
			sqlite3_bind_int(s->put_attempts, 2, r->attempts);
			if (store_step_done(s, s->put_attempts,
					    "record attempts", cause) != 0)
				goto fail;
			continue;
		}
		sqlite3_bind_int64(st, 1, r->id);
		sqlite3_bind_int(st, 2, r->state);
		store_bind_opt(st, 3, r->status > 0 ? r->status : -1);
		store_bind_opt(st, 4, r->length);
		store_bind_text_or_null(st, 5, errkind_name(r->error));
		store_bind_text_or_null(st, 6, r->error_detail);
		sqlite3_bind_int(st, 7, r->attempts);
		store_bind_text_or_null(st, 8, r->final_url);
		store_bind_opt(st, 9, r->redirects);
		store_bind_text_or_null(st, 10, r->content_type);
		sqlite3_bind_int64(st, 11, r->fetched_at_ms);
		store_bind_opt(st, 12, r->elapsed_ms);
		store_bind_opt(st, 13, r->connect_ms);
		store_bind_opt(st, 14, r->tls_ms);
		store_bind_text_or_null(st, 15, r->body_sha256);
		store_bind_text_or_null(st, 16, r->etag);
		store_bind_text_or_null(st, 17, r->last_modified);
		store_bind_text_or_null(st, 18, r->warc_file);
		store_bind_opt(st, 19, r->warc_offset);
		store_bind_opt(st, 20, r->not_modified);
		store_bind_opt(st, 21, r->decoded_length);
		store_bind_opt(st, 22, r->dns_ms);
		store_bind_opt(st, 23, r->ttfb_ms);
		store_bind_text_or_null(st, 24, r->remote_ip);
		store_bind_text_or_null(st, 25, r->tls_version);
		store_bind_opt(st, 26, r->tls_resumed);
		if (store_step_done(s, st, "record result", cause) != 0)
			goto fail;
	}
	if (store_commit(s, cause) != 0)
		goto fail;
	return 0;
fail:
	store_rollback(s);
	return -1;
}

int store_count_queued(struct store *s, int64_t *count, int64_t *first_id,
		       char **cause)
{
	int rc = sqlite3_step(s->count_queued);

	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(s->count_queued, 0);
		*first_id = sqlite3_column_int64(s->count_queued, 1);
	}
	sqlite3_reset(s->count_queued);
	if (rc != SQLITE_ROW) {
		*cause = store_err(s, "count queued rows");
		return -1;
	}
	return 0;
}

/* Run `sql` and return the first column of the first row as an integer
 * (0 when there is no row). */
static int store_query_int(sqlite3 *db, const char *sql, int64_t bind,
			   int64_t *out, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		*cause = util_printf("%s", sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, bind);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*cause = util_printf("%s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

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

int store_read_status(const char *path, int64_t now_ms, size_t hosts_max,
		      struct store_status *out, char **cause)
{
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
	if (store_query_int(db, "PRAGMA user_version", 0, &v, cause) != 0)
		goto fail_msg;
	out->schema_version = (int)v;
	if (v < 1) {
		*cause = util_printf("%s is not a gatherd database (yet)", path);
		goto fail;
	}
	if (sqlite3_prepare_v2(db,
			       "SELECT state, count(*) FROM urls GROUP BY state",
			       -1, &st, NULL) != SQLITE_OK)
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
	if (sqlite3_prepare_v2(db,
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
	if (store_query_int(db,
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
	if (store_query_int(*db, "PRAGMA user_version", 0, &v, cause) != 0 ||
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

int store_refetch(const char *path, const struct store_select *sel,
		  int64_t now_ms, bool dry_run,
		  void (*each)(void *arg, const char *url), void *arg,
		  int64_t *n, char **cause)
{
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
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
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

int store_prune(const char *path, int64_t before_ms, bool keep_latest,
		bool dry_run, int64_t *n, char **cause)
{
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
	if (store_query_int(db, "SELECT count(*) FROM temp.doomed", 0, &total,
			    cause) != 0)
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

int store_heartbeat(struct store *s, const struct store_heartbeat *hb,
		    char **cause)
{
	sqlite3_stmt *st = NULL;
	char *err = NULL;

	if (store_begin(s, cause) != 0)
		return -1;
	if (sqlite3_prepare_v2(
		    s->db,
		    "INSERT INTO daemon (slot, pid, host, version, started_at, "
		    "heartbeat_at, interval_s, in_flight, stopped_at, "
		    "robots_fetches, robots_origins) VALUES "
		    "(1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
		    "ON CONFLICT (slot) DO "
		    "UPDATE SET pid = excluded.pid, host = excluded.host, "
		    "version = excluded.version, "
		    "started_at = excluded.started_at, "
		    "heartbeat_at = excluded.heartbeat_at, "
		    "interval_s = excluded.interval_s, "
		    "in_flight = excluded.in_flight, "
		    "stopped_at = excluded.stopped_at, "
		    "robots_fetches = excluded.robots_fetches, "
		    "robots_origins = excluded.robots_origins",
		    -1, &st, NULL) != SQLITE_OK)
		goto fail_db;
	sqlite3_bind_int64(st, 1, hb->pid);
	store_bind_text_or_null(st, 2, hb->host);
	store_bind_text_or_null(st, 3, hb->version);
	sqlite3_bind_int64(st, 4, hb->started_ms);
	sqlite3_bind_int64(st, 5, hb->now_ms);
	sqlite3_bind_int(st, 6, hb->interval_s);
	sqlite3_bind_int64(st, 7, hb->in_flight);
	store_bind_opt(st, 8, hb->stopped ? hb->now_ms : -1);
	sqlite3_bind_int64(st, 9, hb->robots_fetches);
	sqlite3_bind_int64(st, 10, hb->robots_origins);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail_db;
	sqlite3_finalize(st);
	st = NULL;
	if (store_exec(s, "DELETE FROM daemon_hosts", &err) != 0)
		goto fail_err;
	if (hb->n_hosts > 0) {
		if (sqlite3_prepare_v2(s->db,
				       "INSERT OR REPLACE INTO daemon_hosts "
				       "(host, in_flight) VALUES (?1, ?2)",
				       -1, &st, NULL) != SQLITE_OK)
			goto fail_db;
		for (size_t i = 0; i < hb->n_hosts; i++) {
			sqlite3_bind_text(st, 1, hb->hosts[i].key, -1,
					  SQLITE_STATIC);
			sqlite3_bind_int(st, 2, hb->hosts[i].in_flight);
			if (sqlite3_step(st) != SQLITE_DONE)
				goto fail_db;
			sqlite3_reset(st);
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	return store_commit(s, cause) == 0 ? 0 : (store_rollback(s), -1);
fail_err:
	*cause = util_printf("heartbeat: %s", err);
	free(err);
	store_rollback(s);
	return -1;
fail_db:
	*cause = store_err(s, "heartbeat");
	sqlite3_finalize(st);
	store_rollback(s);
	return -1;
}

int store_count_results(struct store *s, int64_t *by_error, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	memset(by_error, 0, sizeof(int64_t) * ERR_KIND_COUNT);
	if (sqlite3_prepare_v2(s->db,
			       "SELECT state, error, count(*) FROM urls WHERE "
			       "state != 0 GROUP BY 1, 2",
			       -1, &st, NULL) != SQLITE_OK) {
		*cause = store_err(s, "count results");
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *e = (const char *)sqlite3_column_text(st, 1);
		enum errkind k = ERR_NONE;

		if (sqlite3_column_int(st, 0) == STORE_DONE)
			by_error[ERR_NONE] += sqlite3_column_int64(st, 2);
		else if (e != NULL && errkind_parse(e, &k))
			by_error[k] += sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*cause = store_err(s, "count results");
		return -1;
	}
	return 0;
}

int store_find_records(const char *path, int64_t id, const char *url,
		       struct store_record *out, size_t max, size_t *n,
		       char **cause)
{
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

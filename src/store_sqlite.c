/* The SQLite backend, the daemon's side: migrations, prepared statements,
 * one transaction per batch.  See store.h and store_backend.h; the tools'
 * side is in store_sqlite_status.c and store_sqlite_tools.c.  Runs on the
 * worker thread only. */
#include "store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "url.h"
#include "util.h"

/* Prepared statements live as long as the connection: the hot paths
 * (ingest, load window, put results) bind and step, nothing else. */
struct store_sqlite {
	struct store base; /* first: store.c dispatches through base.be */
	sqlite3 *db;
	char *describe; /* "database PATH" */
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *insert_url, *put_pos, *get_pos, *del_pos;
	sqlite3_stmt *load_queued, *put_result, *put_attempts, *count_queued;
};

static struct store_sqlite *store_sqlite_of(struct store *base)
{
	return (struct store_sqlite *)base;
}

static char *store_err(struct store_sqlite *s, const char *what)
{
	return util_printf("%s: %s", what, sqlite3_errmsg(s->db));
}

static int store_exec(struct store_sqlite *s, const char *sql, char **cause)
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
static int store_step_done(struct store_sqlite *s, sqlite3_stmt *st,
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

static int store_begin(struct store_sqlite *s, char **cause)
{
	return store_step_done(s, s->begin, "begin transaction", cause);
}

static int store_commit(struct store_sqlite *s, char **cause)
{
	return store_step_done(s, s->commit, "commit", cause);
}

static void store_rollback(struct store_sqlite *s)
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

static int store_migrate(struct store_sqlite *s, char **cause)
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

static int store_prepare(struct store_sqlite *s, sqlite3_stmt **st,
			 const char *sql, char **cause)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
			       NULL) != SQLITE_OK) {
		*cause = util_printf("prepare \"%s\": %s", sql,
				     sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

static void store_sqlite_close(struct store *base);

static int store_sqlite_open(const struct store_conf *sc, struct store **out,
			     char **cause)
{
	struct store_sqlite *s = xcalloc(1, sizeof *s);
	const char *path = sc->database;
	char *err = NULL;

	s->base.be = &store_sqlite_backend;
	s->describe = util_printf("database %s", path);

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
	*out = &s->base;
	return 0;
fail:
	store_sqlite_close(&s->base);
	return -1;
}

static void store_sqlite_close(struct store *base)
{
	struct store_sqlite *s = store_sqlite_of(base);

	sqlite3_stmt *all[] = {s->begin,       s->commit,     s->rollback,
			       s->insert_url,  s->put_pos,    s->get_pos,
			       s->del_pos,
			       s->load_queued, s->put_result, s->put_attempts,
			       s->count_queued};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	if (s->db != NULL)
		sqlite3_close(s->db);
	free(s->describe);
	free(s);
}

static int store_sqlite_get_queue_state(struct store *base,
					struct store_queue_state *qs,
					char **cause)
{
	struct store_sqlite *s = store_sqlite_of(base);
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
static int store_put_pos(struct store_sqlite *s, int slot,
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

static int store_sqlite_ingest(struct store *base, struct store_line *lines,
			       size_t n, const struct store_queue_state *qs,
			       int64_t now_ms, char **cause)
{
	struct store_sqlite *s = store_sqlite_of(base);
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

static int store_sqlite_load_queued(struct store *base, int64_t after_id,
				    int limit, struct store_row **rows,
				    size_t *n, char **cause)
{
	struct store_sqlite *s = store_sqlite_of(base);
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

static int store_sqlite_put_results(struct store *base,
				    const struct store_result *res, size_t n,
				    char **cause)
{
	struct store_sqlite *s = store_sqlite_of(base);
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

static int store_sqlite_count_queued(struct store *base, int64_t *count,
				     int64_t *first_id, char **cause)
{
	struct store_sqlite *s = store_sqlite_of(base);
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
int store_sqlite_query_int(sqlite3 *db, const char *sql, int64_t bind,
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

static int store_sqlite_heartbeat(struct store *base,
				  const struct store_heartbeat *hb,
				  char **cause)
{
	struct store_sqlite *s = store_sqlite_of(base);
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

static int store_sqlite_count_results(struct store *base, int64_t *by_error,
				      char **cause)
{
	struct store_sqlite *s = store_sqlite_of(base);
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

static const char *store_sqlite_describe(struct store *base)
{
	return store_sqlite_of(base)->describe;
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.open = store_sqlite_open,
	.close = store_sqlite_close,
	.describe = store_sqlite_describe,
	.get_queue_state = store_sqlite_get_queue_state,
	.ingest = store_sqlite_ingest,
	.load_queued = store_sqlite_load_queued,
	.put_results = store_sqlite_put_results,
	.heartbeat = store_sqlite_heartbeat,
	.count_results = store_sqlite_count_results,
	.count_queued = store_sqlite_count_queued,
	.read_status = store_sqlite_read_status,
	.refetch = store_sqlite_refetch,
	.prune = store_sqlite_prune,
	.find_records = store_sqlite_find_records,
	.submit = store_sqlite_submit,
};

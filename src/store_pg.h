/* Shared by the PostgreSQL backend's files only: store_pg_conn.c
 * (connecting, migrating, statements, array parameters), store_pg.c (the
 * daemon's side: claims, leases, shards), store_pg_status.c and
 * store_pg_tools.c (the tools').
 *
 * libpq's blocking calls run on the worker thread (the daemon) or in the
 * command-line tools, never on the event loop: the hand-off stays the one
 * SQLite has, and one round trip per batch keeps it fast.  Parameters go
 * as text; a batch of rows goes as one array per column (unnest() on the
 * server), so a batch is one statement. */
#ifndef GATHERD_STORE_PG_H
#define GATHERD_STORE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_backend.h"

/* migrations/postgresql/NNNN_name.sql, embedded (pg_migrations.c). */
extern const struct store_migration store_pg_migrations[];
extern const int store_pg_migrations_count;

/* Connect with `conninfo` (libpq's defaults fill what it leaves out),
 * UTF-8, with keepalives and a statement timeout so that a dead server or
 * network is noticed.  NULL with *cause on failure (libpq's words: never
 * the password). */
PGconn *store_pg_connect(const char *conninfo, char **cause);

/* "host:port/dbname" of a connection, for the log (static buffer). */
const char *store_pg_where(PGconn *c);

/* Apply the pending migrations, each in its own transaction, under an
 * advisory lock, so that nodes starting together migrate once. */
int store_pg_migrate(PGconn *c, char **cause)
    __attribute__((warn_unused_result));

/* The schema version (0: not a gatherd database); -1 on error. */
int store_pg_schema_version(PGconn *c, int *version, char **cause)
    __attribute__((warn_unused_result));

/* For the tools: connect and check that the schema is this gatherd's (a
 * daemon migrates it, a tool never does). */
PGconn *store_pg_connect_tool(const struct store_conf *sc, char **cause);

/* "what: libpq's message" (its trailing newline removed), malloc'd. */
char *store_pg_err(PGconn *c, const char *what);

/* Run sql (prepared statement `name` when sql is NULL) with n text
 * parameters (NULL = SQL NULL) and check the result status: the result,
 * or NULL with *cause. */
PGresult *store_pg_exec(PGconn *c, const char *name, const char *sql, int n,
			const char *const *params, ExecStatusType want,
			const char *what, char **cause);

/* A growing text buffer: one parameter, such as an array literal. */
struct pg_buf {
	char *p;
	size_t len, cap;
};

void pg_buf_reset(struct pg_buf *b); /* empty it, keeping the memory */
void pg_buf_free(struct pg_buf *b);
void pg_buf_printf(struct pg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *pg_buf_str(struct pg_buf *b); /* NUL-terminated */

/* An array literal: pg_array_open(), the elements, pg_array_close(). */
void pg_array_open(struct pg_buf *b);
void pg_array_close(struct pg_buf *b);
void pg_array_int(struct pg_buf *b, int64_t v);
void pg_array_opt(struct pg_buf *b, int64_t v); /* < 0: NULL */
void pg_array_null(struct pg_buf *b);
/* Text s[0..n): quoted, with any byte that is not valid UTF-8 (and NUL)
 * written as U+FFFD, since PostgreSQL refuses them in text. */
void pg_array_text(struct pg_buf *b, const char *s, size_t n);
void pg_array_str(struct pg_buf *b, const char *s); /* NULL: NULL */

/* s[0..n) as valid UTF-8 (see pg_array_text), appended to b. */
void pg_buf_utf8(struct pg_buf *b, const char *s, size_t n);

/* The tools' side of store_pg_backend (see store.h for each). */
int store_pg_read_status(const struct store_conf *sc, int64_t now_ms,
			 size_t hosts_max, struct store_status *st,
			 char **cause);
int store_pg_refetch(const struct store_conf *sc,
		     const struct store_select *sel, int64_t now_ms,
		     bool dry_run, void (*each)(void *arg, const char *url),
		     void *arg, int64_t *n, char **cause);
int store_pg_prune(const struct store_conf *sc, int64_t before_ms,
		   bool keep_latest, bool dry_run, int64_t *n, char **cause);
int store_pg_find_records(const struct store_conf *sc, int64_t id,
			  const char *url, struct store_record *out, size_t max,
			  size_t *n, char **cause);
int store_pg_submit(const struct store_conf *sc, const struct store_line *lines,
		    size_t n, int64_t now_ms, char **cause);

#endif

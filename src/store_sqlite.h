/* Shared by the SQLite backend's files only: store_sqlite.c (the daemon's
 * side), store_sqlite_status.c and store_sqlite_tools.c (the tools'). */
#ifndef GATHERD_STORE_SQLITE_H
#define GATHERD_STORE_SQLITE_H

#include <sqlite3.h>

#include "store_backend.h"

/* migrations/NNNN_name.sql, embedded (migrations.c, generated). */
extern const struct store_migration store_migrations[];
extern const int store_migrations_count;

/* Run `sql` (binding `bind` to its parameter, when it has one) and return
 * the first column of the first row as an integer (0 when there is no
 * row). */
int store_sqlite_query_int(sqlite3 *db, const char *sql, int64_t bind,
			   int64_t *out, char **cause)
	__attribute__((warn_unused_result));

/* The tools' side of store_sqlite_backend (see store.h for each). */
int store_sqlite_read_status(const struct store_conf *sc, int64_t now_ms,
			     size_t hosts_max, struct store_status *st,
			     char **cause);
int store_sqlite_refetch(const struct store_conf *sc,
			 const struct store_select *sel, int64_t now_ms,
			 bool dry_run, void (*each)(void *arg, const char *url),
			 void *arg, int64_t *n, char **cause);
int store_sqlite_prune(const struct store_conf *sc, int64_t before_ms,
		       bool keep_latest, bool dry_run, int64_t *n,
		       char **cause);
int store_sqlite_find_records(const struct store_conf *sc, int64_t id,
			      const char *url, struct store_record *out,
			      size_t max, size_t *n, char **cause);
int store_sqlite_submit(const struct store_conf *sc,
			const struct store_line *lines, size_t n,
			int64_t now_ms, char **cause);

#endif

/* What a store backend provides: for the backends' files and store.c only
 * (the rest of gatherd uses store.h).
 *
 * A backend is one constant table of functions.  Its own connection type
 * starts with a `struct store` whose `be` points at that table, so store.c
 * can dispatch on it and the backend can get its own type back with one
 * cast (store_sqlite.c: `struct store_sqlite`).  The daemon's functions
 * take that connection and run on the worker thread only; the tools'
 * functions open a connection of their own from the configuration, use it
 * and close it (any thread, any process, beside a running daemon). */
#ifndef GATHERD_STORE_BACKEND_H
#define GATHERD_STORE_BACKEND_H

#include "store.h"

/* The part every backend's connection starts with. */
struct store {
	const struct store_backend *be;
};

/* One embedded migration (generated from a backend's migrations
 * directory by scripts/embed-migrations.py). */
struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

struct store_backend {
	const char *name; /* as [store] backend names it */
	bool shared;      /* many nodes share it: see store_shared() */

	/* The daemon's connection (worker thread). */
	int (*open)(const struct store_conf *sc, struct store **out,
		    char **cause);
	void (*close)(struct store *s);
	const char *(*describe)(struct store *s);
	int (*tick_ms)(struct store *s); /* NULL: no upkeep needed */
	int (*tick)(struct store *s, struct store_tick_out *out, char **cause);
	int (*get_queue_state)(struct store *s, struct store_queue_state *qs,
			       char **cause);
	int (*ingest)(struct store *s, struct store_line *lines, size_t n,
		      const struct store_queue_state *qs, int64_t now_ms,
		      char **cause);
	int (*load_queued)(struct store *s, int64_t after_id, int limit,
			   struct store_row **rows, size_t *n, char **cause);
	int (*put_results)(struct store *s, const struct store_result *res,
			   size_t n, char **cause);
	int (*heartbeat)(struct store *s, const struct store_heartbeat *hb,
			 char **cause);
	int (*count_results)(struct store *s, int64_t *by_error,
			     char **cause);
	int (*count_queued)(struct store *s, int64_t *count,
			    int64_t *first_id, char **cause);

	/* The command-line tools (their own connection each). */
	int (*read_status)(const struct store_conf *sc, int64_t now_ms,
			   size_t hosts_max, struct store_status *st,
			   char **cause);
	int (*refetch)(const struct store_conf *sc,
		       const struct store_select *sel, int64_t now_ms,
		       bool dry_run, void (*each)(void *arg, const char *url),
		       void *arg, int64_t *n, char **cause);
	int (*prune)(const struct store_conf *sc, int64_t before_ms,
		     bool keep_latest, bool dry_run, int64_t *n, char **cause);
	int (*find_records)(const struct store_conf *sc, int64_t id,
			    const char *url, struct store_record *out,
			    size_t max, size_t *n, char **cause);
	int (*submit)(const struct store_conf *sc,
		      const struct store_line *lines, size_t n, int64_t now_ms,
		      char **cause);
};

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend; /* with libpq only */

#endif

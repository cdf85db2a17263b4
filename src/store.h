/* The store: where queued rows and results live.  gatherd talks to it
 * only through this interface; the engine behind it is a backend
 * (store_backend.h), chosen when a connection is opened:
 *   store_sqlite.c         SQLite, the embedded default: the daemon's side
 *   store_sqlite_status.c  SQLite: what `gatherd status` reads
 *   store_sqlite_tools.c   SQLite: refetch, prune and cat's lookup
 *
 * Dispatch is a table of function pointers per backend (struct
 * store_backend), reached from the connection itself: the functions below
 * are one-line forwarders in store.c, so callers never name a backend, a
 * backend is one self-contained set of files, and the cost is one indirect
 * call per batch, not per row.
 *
 * The daemon's functions (store_open() to store_count_queued()) run on
 * the worker thread only (see thread.h): the event loop never makes a
 * blocking database call.  The tools' functions (store_read_status() and
 * after) open a connection of their own, from any thread or process,
 * beside a running daemon. */
#ifndef GATHERD_STORE_H
#define GATHERD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errkind.h"

struct config;
struct store;

/* Row states as stored (the view renders them as text). */
enum store_state {
	STORE_QUEUED = 0,
	STORE_DONE = 1,
	STORE_FAILED = 2,
};

/* Which database, and how to reach it. */
enum store_kind {
	STORE_SQLITE = 0,
	STORE_POSTGRESQL = 1,
};

struct store_conf {
	enum store_kind kind;
	const char *database; /* SQLite: the database file */
	const char *conninfo; /* PostgreSQL: the libpq connection string */
	const char *node_name; /* PostgreSQL: this node ("" = host name) */
	const char *queue_file; /* PostgreSQL: keys the queue position */
	int lease_s;          /* PostgreSQL: how long claims hold */
	/* PostgreSQL: a host shard given back is free for another node only
	 * this long after (host_delay_ms at the start), so that the other
	 * node's first request to a host keeps the spacing from this node's
	 * last one. */
	int hand_over_gap_ms;
};

/* The store settings of a loaded configuration (the strings stay
 * cfg's). */
void store_conf_init(struct store_conf *sc, const struct config *cfg);

/* Identity of a queue file and how far it has been ingested. */
struct store_queue_pos {
	int64_t dev;
	int64_t ino;
	int64_t offset;
	int64_t head_len;  /* bytes of the file's start hashed (0: unknown) */
	int64_t head_hash; /* FNV-1a of those bytes */
};

/* Where ingestion stands: the queue file, and after a rotation the rotated
 * file still being followed for a grace period (`has_old`). */
struct store_queue_state {
	bool has_cur; /* false on a fresh database */
	struct store_queue_pos cur;
	bool has_old;
	struct store_queue_pos old;
};

/* A line to ingest: `url` (len bytes, not NUL-terminated), and either no
 * error (a queued row) or the invalid_url detail (a failed row). */
struct store_line {
	const char *url;
	size_t len;
	const char *invalid_detail; /* NULL when valid */
	int64_t id; /* set by store_ingest(): the row made of it (shared
		     * store: 0 unless it was claimed for this node) */
	/* In, for a shared store: the scheduler has room for this row, so
	 * it may be claimed for this node as it is inserted (when its host
	 * shard is this node's); ignored by SQLite. */
	bool take;
};

/* A queued row handed to the scheduler. */
struct store_row {
	int64_t id;
	char *url; /* malloc'd, NUL-terminated */
	int attempts; /* made in earlier runs (left queued at shutdown) */
	/* A re-fetch (gatherd refetch): the earlier row's validators and
	 * digest, malloc'd, NULL when none. */
	char *cond_etag;
	char *cond_last_modified;
	char *prev_sha256;
	int64_t prev_fetched_ms; /* when the earlier row was fetched, or 0 */
	char *prev_warc_file;    /* where it was archived, or NULL */
	int64_t prev_warc_offset;
	/* A shared store: a row handed over at a redirect to a host of
	 * another shard (see store_result) resumes there.  The URL to fetch
	 * next (malloc'd; NULL: its own) and the redirects so far. */
	char *resume_url;
	int resume_redirects;
};

/* The recorded outcome of one row (strings may be NULL).  STORE_QUEUED
 * records no outcome: the row stays queued and only `attempts` is stored
 * (a retry left for the next start).  In a shared store, STORE_QUEUED with
 * `final_url` hands the row over at a redirect: it goes to the shard of
 * final_url's host, for whichever node holds that shard to resume from
 * final_url with `redirects` made (so that each host is fetched by one
 * node, redirect targets too). */
struct store_result {
	int64_t id;
	enum store_state state; /* STORE_DONE, STORE_FAILED or STORE_QUEUED */
	int status;             /* 0 = NULL */
	int64_t length;         /* < 0 = NULL */
	enum errkind error;
	const char *error_detail;
	int attempts;
	const char *final_url;
	int redirects;          /* < 0 = NULL */
	const char *content_type;
	int64_t fetched_at_ms;
	int64_t elapsed_ms;     /* < 0 = NULL */
	int64_t connect_ms;     /* < 0 = NULL */
	int64_t tls_ms;         /* < 0 = NULL */
	const char *body_sha256; /* hex */
	const char *etag;
	const char *last_modified;
	const char *warc_file;
	int64_t warc_offset;    /* < 0 = NULL */
	int not_modified;       /* < 0 = NULL */
	int64_t decoded_length; /* < 0 = NULL */
	int64_t dns_ms;         /* < 0 = NULL */
	int64_t ttfb_ms;        /* < 0 = NULL */
	const char *remote_ip;
	const char *tls_version;
	int tls_resumed;        /* < 0 = NULL */
};

/* Open (creating if needed) the database and apply the pending
 * migrations, each in its own transaction (SQLite: in WAL mode). */
int store_open(const struct store_conf *sc, struct store **out, char **cause)
	__attribute__((warn_unused_result));
void store_close(struct store *s);

/* What the connection is, for the log: "database PATH" or "PostgreSQL
 * host:port/db as node NAME (id N)". */
const char *store_describe(struct store *s);

/* Whether many nodes share the database (PostgreSQL).  Then a row
 * belongs to this node only once store_load_queued() claimed it: rows
 * just ingested are not handed to the scheduler directly, and
 * store_tick() must run every store_tick_ms(). */
bool store_shared(const struct store *s);

/* How often store_tick() must run, in ms (0: never, SQLite). */
int store_tick_ms(struct store *s);

/* What a store_tick() found. */
struct store_tick_out {
	bool gained;   /* holds host shards it did not: rows to claim */
	bool renewed;  /* the leases of its rows and shards were renewed */
	/* Rows the scheduler has that are no longer this node's (their
	 * shard went to another node while the leases could not be renewed):
	 * malloc'd, for the caller to free. */
	int64_t *lost;
	size_t n_lost;
	/* Rows it holds of the host shards it is giving back (to balance the
	 * cluster): a shard goes once no row of it is held, so those not yet
	 * begun are to be handed back unclaimed (store_put_results with
	 * STORE_QUEUED) rather than fetched here first.  malloc'd, for the
	 * caller to free. */
	int64_t *release;
	size_t n_release;
};

/* Periodic upkeep of a shared database: this node's heartbeat, the
 * renewal of its leases, taking and giving back host shards. */
int store_tick(struct store *s, struct store_tick_out *out, char **cause)
	__attribute__((warn_unused_result));

/* Read where ingestion stands. */
int store_get_queue_state(struct store *s, struct store_queue_state *qs,
			  char **cause) __attribute__((warn_unused_result));

/* Insert `n` lines and store `qs` (qs->has_cur must be true; without
 * has_old the rotated file's slot is cleared), in one transaction.  Each
 * line's `id` is set to its row's. */
int store_ingest(struct store *s, struct store_line *lines, size_t n,
		 const struct store_queue_state *qs, int64_t now_ms,
		 char **cause) __attribute__((warn_unused_result));

/* Up to `limit` queued rows with id > after_id, in id order.  *rows is
 * malloc'd (free each url, then the array).  A shared database claims
 * them for this node instead (after_id does not matter there: rows
 * already claimed are not claimed again). */
int store_load_queued(struct store *s, int64_t after_id, int limit,
		      struct store_row **rows, size_t *n, char **cause)
	__attribute__((warn_unused_result));

/* Record results in one transaction.  A row that is no longer queued is
 * left alone, so each row gets exactly one recorded result; so is, in a
 * shared database, a row whose lease this node lost. */
int store_put_results(struct store *s, const struct store_result *res,
		      size_t n, char **cause)
	__attribute__((warn_unused_result));

/* A host with fetches in flight. */
struct store_host_load {
	const char *key; /* "host:port" */
	int in_flight;
};

/* The daemon's heartbeat (its table row, and the hosts with the most
 * fetches in flight), for `gatherd status`. */
struct store_heartbeat {
	int64_t pid;
	const char *host;    /* the machine's name */
	const char *version;
	int64_t started_ms;  /* Unix ms */
	int64_t now_ms;
	int interval_s;
	int64_t in_flight;
	int64_t robots_fetches; /* robots.txt requests this run */
	int64_t robots_origins; /* origins whose rules are cached */
	bool stopped;        /* the daemon is exiting cleanly */
	const struct store_host_load *hosts;
	size_t n_hosts;
};

/* Write the heartbeat, in one transaction. */
int store_heartbeat(struct store *s, const struct store_heartbeat *hb,
		    char **cause) __attribute__((warn_unused_result));

/* Finished rows per error kind ([ERR_NONE]: done), for the metrics: a
 * scan of the table, at start-up only. */
int store_count_results(struct store *s, int64_t *by_error, char **cause)
	__attribute__((warn_unused_result));

/* Number of rows in state queued, and the id of the first (when none is
 * queued, the id the next row will get).  A scan of the table: for
 * start-up only. */
int store_count_queued(struct store *s, int64_t *count, int64_t *first_id,
		       char **cause) __attribute__((warn_unused_result));

/* The command-line tools' side: each call opens a connection of its own
 * and closes it before it returns. */

/* What `gatherd status` shows.  Filled by store_read_status(), which opens
 * the database read-only in its own connection (any thread, any process):
 * it never blocks the daemon, which keeps writing through WAL. */
struct store_status {
	int64_t queued, done, failed;
	struct {
		char kind[32];
		int64_t count;
	} errors[16];
	int n_errors;
	int64_t fetched_last_60s;   /* rows with a result in the last minute */
	int64_t oldest_queued_id;   /* 0 when nothing is queued */
	char oldest_queued_at[32];  /* ISO-8601 UTC */
	int64_t oldest_queued_age_s;
	char oldest_queued_url[256];/* truncated */
	int schema_version;
	/* The daemon's last heartbeat (has_daemon false: none written). */
	bool has_daemon;
	int64_t daemon_pid;
	char daemon_host[256];
	char daemon_version[32];
	int64_t daemon_started_ms, daemon_heartbeat_ms, daemon_stopped_ms;
	int daemon_interval_s;
	int64_t daemon_in_flight;
	/* robots.txt requests of its run, and origins whose rules it has */
	int64_t daemon_robots_fetches, daemon_robots_origins;
	/* A shared database: its nodes (live ones, and those seen in the
	 * last hour), by name, the latest run of each first.  The daemon
	 * above is then the latest run of this configuration's node. */
	bool shared;
	char where[300]; /* "host:port/dbname" */
	struct store_node_status {
		int64_t id;
		char name[64];
		char host[256]; /* the machine's name */
		int64_t pid;
		char version[32];
		int64_t started_ms, heartbeat_ms, stopped_ms; /* stopped 0 */
		int64_t seen_age_s; /* since it last renewed its leases */
		bool live;          /* it did so within lease_s */
		int64_t in_flight, claimed, shards;
	} *nodes;
	size_t n_nodes;
	const struct store_node_status *self; /* this node's latest run */
	/* With hosts_max > 0 (status --hosts): the hosts with the most queued
	 * rows (then errors), with their counts and median time. */
	struct store_host_status {
		char host[270];
		int64_t queued, done, failed;
		int64_t in_flight;  /* from the heartbeat, -1 when unknown */
		int64_t median_ms;  /* of done rows' elapsed_ms, -1 if none */
	} *hosts;
	size_t n_hosts;
};

/* hosts_max: how many hosts to report (0: none); the caller frees
 * st->hosts and st->nodes. */
int store_read_status(const struct store_conf *sc, int64_t now_ms,
		      size_t hosts_max, struct store_status *st, char **cause)
	__attribute__((warn_unused_result));

/* What `gatherd refetch` selects, by each URL's latest row. */
struct store_select {
	int64_t older_than_ms; /* fetched longer ago than this; -1: any */
	const char *url_like;  /* SQL LIKE pattern on the URL, or NULL */
	const char *error;     /* that error kind, or NULL */
	bool failed_only;      /* state failed */
};

/* For each selected URL that has no queued row, add a queued row (a new
 * fetch; the old rows stay as history), in one transaction, calling
 * `each` with the URL.  The new row names the URL's latest done row, whose
 * validators make the request conditional.  With dry_run nothing changes.
 * *n is how many. */
int store_refetch(const struct store_conf *sc,
		  const struct store_select *sel, int64_t now_ms, bool dry_run,
		  void (*each)(void *arg, const char *url), void *arg,
		  int64_t *n, char **cause) __attribute__((warn_unused_result));

/* Delete finished rows fetched (or, never fetched, submitted) before
 * before_ms, with keep_latest each URL's latest one excepted, a thousand
 * per transaction.  *n is how many (with dry_run: would be). */
int store_prune(const struct store_conf *sc, int64_t before_ms,
		bool keep_latest, bool dry_run, int64_t *n, char **cause)
	__attribute__((warn_unused_result));

/* gatherd submit --direct: insert the lines as rows (queued, or failed
 * invalid_url) at once, without the queue file, in one transaction. */
int store_submit(const struct store_conf *sc, const struct store_line *lines,
		 size_t n, int64_t now_ms, char **cause)
	__attribute__((warn_unused_result));

/* A WARC record that holds a row's payload (gatherd cat). */
struct store_record {
	int64_t id;   /* of the row that names it */
	char *file;   /* malloc'd basename in [capture] warc_dir */
	int64_t offset;
};

/* The records for row `id` (or, when url is not NULL, for the newest row
 * of that URL that has one): the row's own first, then up to max - 1 of
 * other rows with the same payload digest, newest first (a revisit
 * record's payload is in one of them).  *n is 0, with *cause saying why,
 * when the row does not exist or has no record.  Read-only, beside a
 * running daemon. */
int store_find_records(const struct store_conf *sc, int64_t id, const char *url,
		       struct store_record *out, size_t max, size_t *n,
		       char **cause) __attribute__((warn_unused_result));

#endif

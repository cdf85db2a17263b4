/* Shared by the files of the PostgreSQL backend's daemon side only:
 * store_pg.c (the node's connection, its start and end), store_pg_shards.c
 * (the tick: leases and host shards) and store_pg_rows.c (queue lines,
 * claims, results).  See store_pg.c for how the nodes share the work. */
#ifndef GATHERD_STORE_PG_NODE_H
#define GATHERD_STORE_PG_NODE_H

#include "idset.h"
#include "shard.h"
#include "store_pg.h"

#define PG_SCRATCH 10 /* parameter buffers of the node */
#define PG_ANALYZE_FIRST 10000
#define PG_ANALYZE_MAX 1000000

enum { SHARD_NOT_MINE = 0, SHARD_ACTIVE = 1, SHARD_RELEASING = 2 };

/* One node's connection and what it holds.  `held` and `held_in` count
 * the rows claimed and not yet recorded (the scheduler has them);
 * `shard` is what the last tick learnt of this node's shards. */
struct store_pg {
	struct store base; /* first: store.c dispatches through base.be */
	PGconn *conn;	   /* NULL while disconnected */
	char *conninfo, *node_name, *queue;
	int lease_s;
	int64_t node_id;
	char node_txt[24], lease_txt[16]; /* as parameters */
	char gap_txt[16]; /* store_conf's hand_over_gap_ms, a parameter */
	char where[300];		  /* for the log */
	/* Reconnecting: since when (monotonic ms; 0 while connected), and
	 * the next attempt. */
	int64_t down_since_ms, next_try_ms;
	int backoff_ms;
	/* queue_position.seq as this node last stored it, and whether the
	 * last ingest broke off with its outcome unknown. */
	int64_t qseq;
	bool qseq_unsure;
	struct idset *held;
	int held_in[SHARD_COUNT];
	unsigned char shard[SHARD_COUNT];
	int n_active, n_releasing, live;
	int64_t renewed_ms; /* the last renewal (monotonic) */
	struct pg_buf active; /* the active shards, a bit string */
	int64_t claim_from;   /* where the next claim's scan starts */
	int64_t ingested, analyze_at; /* rows since the last ANALYZE, and
				       * when the next one is due */
	uint64_t rnd;
	struct pg_buf col[PG_SCRATCH];
};

/* A statement prepared on every connection of the node. */
struct pg_statement {
	const char *name, *sql;
};

/* The statements of store_pg_rows.c and store_pg_shards.c, ending with
 * {NULL, NULL}. */
extern const struct pg_statement store_pg_rows_sql[];
extern const struct pg_statement store_pg_shards_sql[];

struct store_pg *store_pg_of(struct store *base);

/* A working connection, reconnecting (once per backoff) when the last
 * one broke; -1 with *cause while there is none. */
int store_pg_ready(struct store_pg *s, char **cause)
    __attribute__((warn_unused_result));

/* A call failed: when the connection is what broke, say so once, drop
 * it, and start reconnecting.  True when it was the connection. */
bool store_pg_broken(struct store_pg *s);

/* Drop the connection whatever its state (one left unusable), and start
 * reconnecting as store_pg_broken() does. */
void store_pg_drop(struct store_pg *s);

/* Run a prepared statement; NULL with *cause (and the connection
 * dropped when it broke) on failure. */
PGresult *store_pg_run(struct store_pg *s, const char *name, int n,
		       const char *const *params, ExecStatusType want,
		       const char *what, char **cause);

/* The rows this node holds under lease: claimed, not yet recorded. */
void store_pg_hold(struct store_pg *s, int64_t id, int shard);
void store_pg_unhold(struct store_pg *s, int64_t id);
/* Their ids as an array literal in b. */
void store_pg_held_array(struct store_pg *s, struct pg_buf *b);

/* The backend's functions of the other two files. */
int store_pg_tick(struct store *base, struct store_tick_out *out,
		  char **cause);
int store_pg_get_queue_state(struct store *base, struct store_queue_state *qs,
			     char **cause);
int store_pg_ingest(struct store *base, struct store_line *lines, size_t n,
		    const struct store_queue_state *qs, int64_t now_ms,
		    char **cause);
int store_pg_load_queued(struct store *base, int64_t after_id, int limit,
			 struct store_row **rows, size_t *n, char **cause);
int store_pg_put_results(struct store *base, const struct store_result *res,
			 size_t n, char **cause);
int store_pg_heartbeat(struct store *base, const struct store_heartbeat *hb,
		       char **cause);
int store_pg_count_results(struct store *base, int64_t *by_error, char **cause);
int store_pg_count_queued(struct store *base, int64_t *count, int64_t *first_id,
			  char **cause);

#endif

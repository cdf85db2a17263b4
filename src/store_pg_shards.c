/* The PostgreSQL backend: the node's tick (store_tick(), every lease_s /
 * 3): its heartbeat in `nodes`, the renewal of the leases of the rows it
 * holds, and its host shards: renewed, taken while it holds fewer than
 * 1024 / (live nodes), rounded up, given back while it holds more.  A
 * shard given back first stops being claimed from ("releasing"), its
 * held rows not yet begun are handed back (store_tick_out.release: the
 * scheduler requeues them), and it goes once this node holds no row of
 * it, so that no host is ever fetched by two nodes at once. */
#include "store_pg_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Its statements, prepared on each connection (store_pg.c). */
const struct pg_statement store_pg_shards_sql[] = {
    /* Only rows of shards this node still holds: a shard that went to
     * another node while the leases could not be renewed may have its
     * hosts fetched there, and its rows here are dropped. */
    {"renew_rows",
     "UPDATE urls SET lease_until = now() + $3::float8 * interval '1 second'"
     " WHERE id = ANY($2::bigint[]) AND claimed_by = $1 AND state = 0"
     "  AND shard IN (SELECT shard FROM shards WHERE node_id = $1)"
     " RETURNING id"},
    {"seen", "UPDATE nodes SET seen_at = now(), claimed = $2 WHERE id = $1"},
    {"live", "SELECT count(*) FROM nodes WHERE stopped_at IS NULL"
	     " AND seen_at > now() - $1::float8 * interval '1 second'"},
    {"shards_renew",
     "UPDATE shards SET lease_until = now() + $2::float8 * interval '1 second'"
     " WHERE node_id = $1 RETURNING shard, releasing"},
    /* Free shards: never held (no lease), or whose lease ran out (a node
     * that stopped renewing them), or given back host_delay_ms ago (the
     * lease a give-back leaves, see shards_free). */
    {"shards_take", "UPDATE shards SET node_id = $1, releasing = false,"
		    " lease_until = now() + $2::float8 * interval '1 second'"
		    " WHERE shard IN (SELECT shard FROM shards"
		    "  WHERE lease_until IS NULL OR lease_until < now()"
		    "  ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED)"
		    " RETURNING shard"},
    {"shards_mark", "UPDATE shards SET releasing = $3 WHERE node_id = $1"
		    " AND shard = ANY($2::int[])"},
    {"shards_free",
     "UPDATE shards SET node_id = NULL,"
     " lease_until = now() + $3::float8 * interval '1 millisecond',"
     " releasing = false WHERE node_id = $1 AND shard = ANY($2::int[])"},
    {NULL, NULL},
};

/* A small random number (which shards to give back). */
static uint64_t pg_random(struct store_pg *s)
{
	s->rnd ^= s->rnd << 13;
	s->rnd ^= s->rnd >> 7;
	s->rnd ^= s->rnd << 17;
	return s->rnd;
}

/* Mark the shards in `list` (n of them) releasing or active again. */
static int pg_shards_mark(struct store_pg *s, const int *list, int n,
			  bool releasing, char **cause)
{
	struct pg_buf b = {0};
	const char *p[3];
	PGresult *r;

	pg_array_open(&b);
	for (int i = 0; i < n; i++)
		pg_array_int(&b, list[i]);
	pg_array_close(&b);
	p[0] = s->node_txt;
	p[1] = pg_buf_str(&b);
	p[2] = releasing ? "true" : "false";
	r = store_pg_run(s, "shards_mark", 3, p, PGRES_COMMAND_OK,
			 "mark shards", cause);
	pg_buf_free(&b);
	if (r == NULL)
		return -1;
	PQclear(r);
	for (int i = 0; i < n; i++)
		s->shard[list[i]] = releasing ? SHARD_RELEASING : SHARD_ACTIVE;
	return 0;
}

/* Give back the releasing shards this node holds no row of any more. */
static int pg_shards_free(struct store_pg *s, char **cause)
{
	struct pg_buf b = {0};
	const char *p[3];
	int n = 0;
	PGresult *r;

	pg_array_open(&b);
	for (int i = 0; i < SHARD_COUNT; i++) {
		if (s->shard[i] == SHARD_RELEASING && s->held_in[i] == 0) {
			pg_array_int(&b, i);
			n++;
		}
	}
	pg_array_close(&b);
	if (n == 0) {
		pg_buf_free(&b);
		return 0;
	}
	p[0] = s->node_txt;
	p[1] = pg_buf_str(&b);
	p[2] = s->gap_txt;
	r = store_pg_run(s, "shards_free", 3, p, PGRES_COMMAND_OK,
			 "give back shards", cause);
	pg_buf_free(&b);
	if (r == NULL)
		return -1;
	PQclear(r);
	for (int i = 0; i < SHARD_COUNT; i++) {
		if (s->shard[i] == SHARD_RELEASING && s->held_in[i] == 0) {
			s->shard[i] = SHARD_NOT_MINE;
			s->n_releasing--;
		}
	}
	log_debug("gave back %d host shards", n);
	return 0;
}

/* The active shards as claims take them (store_pg_rows.c): a bit string,
 * shard 0 first. */
static void pg_active_list(struct store_pg *s)
{
	pg_buf_reset(&s->active);
	for (int i = 0; i < SHARD_COUNT; i++)
		pg_buf_printf(&s->active, "%c",
			      s->shard[i] == SHARD_ACTIVE ? '1' : '0');
}

/* This node's share of the shards. */
static int pg_target(const struct store_pg *s)
{
	int live = s->live > 0 ? s->live : 1;

	return (SHARD_COUNT + live - 1) / live;
}

/* Renew this node's shards (and learn which they are), then move towards
 * its share: 1024 / live nodes, rounded up. */
static int pg_shards_balance(struct store_pg *s, bool *gained, char **cause)
{
	const char *p[3];
	char need_txt[16];
	PGresult *r;
	int target, list[SHARD_COUNT], n = 0;

	p[0] = s->node_txt;
	p[1] = s->lease_txt;
	r = store_pg_run(s, "shards_renew", 2, p, PGRES_TUPLES_OK,
			 "renew shards", cause);
	if (r == NULL)
		return -1;
	memset(s->shard, SHARD_NOT_MINE, sizeof s->shard);
	s->n_active = s->n_releasing = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		int sh = atoi(PQgetvalue(r, i, 0));
		bool rel = strcmp(PQgetvalue(r, i, 1), "t") == 0;

		if (sh < 0 || sh >= SHARD_COUNT)
			continue;
		s->shard[sh] = rel ? SHARD_RELEASING : SHARD_ACTIVE;
		if (rel)
			s->n_releasing++;
		else
			s->n_active++;
	}
	PQclear(r);

	target = pg_target(s);
	if (s->n_active < target) {
		/* Keep what was being given back first, then take free ones. */
		for (int i = 0; i < SHARD_COUNT && s->n_active + n < target;
		     i++)
			if (s->shard[i] == SHARD_RELEASING)
				list[n++] = i;
		if (n > 0) {
			if (pg_shards_mark(s, list, n, false, cause) != 0)
				return -1;
			s->n_active += n;
			s->n_releasing -= n;
			*gained = true;
		}
		if (s->n_active < target) {
			snprintf(need_txt, sizeof need_txt, "%d",
				 target - s->n_active);
			p[2] = need_txt;
			r = store_pg_run(s, "shards_take", 3, p,
					 PGRES_TUPLES_OK, "take shards", cause);
			if (r == NULL)
				return -1;
			for (int i = 0; i < PQntuples(r); i++) {
				int sh = atoi(PQgetvalue(r, i, 0));

				if (sh >= 0 && sh < SHARD_COUNT &&
				    s->shard[sh] == SHARD_NOT_MINE) {
					s->shard[sh] = SHARD_ACTIVE;
					s->n_active++;
					*gained = true;
				}
			}
			PQclear(r);
		}
	} else if (s->n_active > target) {
		/* Give back shards picked at random (not the idle ones
		 * first: work follows hosts, and hosts are spread over the
		 * shards at random).  They claim nothing more and go once
		 * their rows are done. */
		int excess = s->n_active - target;

		for (int i = 0; i < SHARD_COUNT; i++)
			if (s->shard[i] == SHARD_ACTIVE)
				list[n++] = i;
		for (int i = 0; i < excess; i++) {
			int j = i + (int)(pg_random(s) % (uint64_t)(n - i));
			int t = list[i];

			list[i] = list[j];
			list[j] = t;
		}
		if (pg_shards_mark(s, list, excess, true, cause) != 0)
			return -1;
		s->n_active -= excess;
		s->n_releasing += excess;
	}
	return pg_shards_free(s, cause);
}

/* A growing list of row ids (out->lost, out->release). */
struct pg_ids {
	int64_t *ids;
	size_t n, cap;
};

static void pg_ids_add(struct pg_ids *l, int64_t id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->ids = xrealloc(l->ids, l->cap * sizeof *l->ids);
	}
	l->ids[l->n++] = id;
}

/* The held rows renew_rows did not return. */
struct pg_lost {
	const struct idset *kept;
	struct pg_ids out;
};

static void pg_collect_lost(void *arg, int64_t id, int tag)
{
	struct pg_lost *l = arg;

	(void)tag;
	if (!idset_has(l->kept, id))
		pg_ids_add(&l->out, id);
}

/* Renew the leases of the rows this node holds, after its shards: the
 * rows of a shard it lost are no longer its own, and go to out->lost. */
static int pg_renew_rows(struct store_pg *s, struct store_tick_out *out,
			 char **cause)
{
	struct pg_buf b = {0};
	struct pg_lost lost = {0};
	const char *p[3];
	PGresult *r;

	if (idset_count(s->held) == 0)
		return 0;
	store_pg_held_array(s, &b);
	p[0] = s->node_txt;
	p[1] = pg_buf_str(&b);
	p[2] = s->lease_txt;
	r = store_pg_run(s, "renew_rows", 3, p, PGRES_TUPLES_OK,
			 "renew leases", cause);
	pg_buf_free(&b);
	if (r == NULL)
		return -1;
	if ((size_t)PQntuples(r) < idset_count(s->held)) {
		struct idset *kept = idset_new();

		for (int i = 0; i < PQntuples(r); i++)
			idset_add(kept, atoll(PQgetvalue(r, i, 0)), 0);
		lost.kept = kept;
		idset_foreach(s->held, pg_collect_lost, &lost);
		idset_free(kept);
		for (size_t i = 0; i < lost.out.n; i++)
			store_pg_unhold(s, lost.out.ids[i]);
		log_warn("%zu held row%s now belong to another node (this "
			 "node's leases ran out): not fetching them",
			 lost.out.n, lost.out.n == 1 ? "" : "s");
	}
	PQclear(r);
	out->lost = lost.out.ids;
	out->n_lost = lost.out.n;
	return 0;
}

/* The held rows of the shards this node is giving back. */
struct pg_release {
	const struct store_pg *s;
	struct pg_ids out;
};

static void pg_collect_release(void *arg, int64_t id, int shard)
{
	struct pg_release *l = arg;

	if (shard >= 0 && shard < SHARD_COUNT &&
	    l->s->shard[shard] == SHARD_RELEASING)
		pg_ids_add(&l->out, id);
}

/* Every second: say this node lives, and count the live ones.  While
 * the count changed or this node is not at its share: renew its shards
 * and take or give back some, so that nodes that join or leave are
 * balanced within a second or two.  Every lease_s / 3, or when the count
 * changed: renew its shards and then the leases of its rows (an UPDATE
 * of every row held, so not every second), which says up to when it may
 * start fetches (out->renewed: see upkeep.c). */
int store_pg_tick(struct store *base, struct store_tick_out *out,
		  char **cause)
{
	struct store_pg *s = store_pg_of(base);
	char count[24];
	const char *p[2];
	PGresult *r;
	int before = s->n_active, live, rc;
	int64_t now = util_mono_ms();
	bool due;

	if (store_pg_ready(s, cause) != 0)
		return -1;
	snprintf(count, sizeof count, "%zu", idset_count(s->held));
	p[0] = s->node_txt;
	p[1] = count;
	r = store_pg_run(s, "seen", 2, p, PGRES_COMMAND_OK, "node heartbeat",
			 cause);
	if (r == NULL)
		return -1;
	PQclear(r);
	p[0] = s->lease_txt;
	r = store_pg_run(s, "live", 1, p, PGRES_TUPLES_OK, "count live nodes",
			 cause);
	if (r == NULL)
		return -1;
	live = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (live < 1)
		live = 1;
	due = live != s->live ||
	      now - s->renewed_ms >= (int64_t)s->lease_s * 1000 / 3;
	s->live = live;
	if (!due && s->n_releasing == 0 && s->n_active == pg_target(s))
		return 0;
	rc = pg_shards_balance(s, &out->gained, cause);
	pg_active_list(s); /* whatever it changed before any failure */
	if (rc == 0 && due) {
		rc = pg_renew_rows(s, out, cause);
		if (rc == 0) {
			s->renewed_ms = now;
			out->renewed = true;
		}
	}
	if (due || out->gained)
		s->claim_from = 0; /* rows given back or expired: look again */
	if (rc != 0)
		return -1;
	if (s->n_releasing > 0) {
		struct pg_release rel = {.s = s};

		idset_foreach(s->held, pg_collect_release, &rel);
		out->release = rel.out.ids;
		out->n_release = rel.out.n;
	}
	if (s->n_active != before)
		log_info("holding %d of %d host shards (%d giving back), %d "
			 "node%s live",
			 s->n_active, SHARD_COUNT, s->n_releasing, s->live,
			 s->live == 1 ? "" : "s");
	return 0;
}

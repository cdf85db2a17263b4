/* The store interface: see store.h.  Each call goes to the backend the
 * connection (or, for the tools, the configuration) names. */
#include "store.h"

#include <stddef.h>
#include <string.h>

#include "build-config.h"
#include "config.h"
#if HAVE_LIBPQ
#include "pq_load.h"
#endif
#include "store_backend.h"
#include "util.h"

void store_conf_init(struct store_conf *sc, const struct config *cfg)
{
	sc->kind = cfg->store_backend == CONFIG_STORE_POSTGRESQL
			   ? STORE_POSTGRESQL
			   : STORE_SQLITE;
	sc->database = cfg->database;
	sc->conninfo = cfg->store_conninfo;
	sc->node_name = cfg->node_name;
	sc->queue_file = cfg->queue_file;
	sc->lease_s = cfg->lease_s;
	sc->hand_over_gap_ms = cfg->host_delay_ms;
}

/* The backend a configuration names, or NULL with *cause set (not in
 * this build, or its library cannot be loaded). */
static const struct store_backend *store_backend_of(const struct store_conf *sc,
						   char **cause)
{
	switch (sc->kind) {
	case STORE_SQLITE:
		return &store_sqlite_backend;
	case STORE_POSTGRESQL:
#if HAVE_LIBPQ
	{
		const char *err;

		if (pq_load(&err) != 0) {
			*cause = xstrdup(err);
			return NULL;
		}
		return &store_pg_backend;
	}
#else
		break;
#endif
	}
	*cause = util_printf("this gatherd was built without PostgreSQL "
			     "(libpq)");
	return NULL;
}

/* The backend of sc in `be`, or return the error (the outputs were set
 * to nothing before). */
#define STORE_TOOL_BACKEND(sc, be, cause)                                   \
	const struct store_backend *be = store_backend_of(sc, cause);       \
	if (be == NULL)                                                       \
		return -1;

int store_open(const struct store_conf *sc, struct store **out, char **cause)
{
	*out = NULL;
	STORE_TOOL_BACKEND(sc, be, cause);
	return be->open(sc, out, cause);
}

void store_close(struct store *s)
{
	if (s != NULL)
		s->be->close(s);
}

const char *store_describe(struct store *s)
{
	return s->be->describe(s);
}

bool store_shared(const struct store *s)
{
	return s->be->shared;
}

int store_tick_ms(struct store *s)
{
	return s->be->tick_ms != NULL ? s->be->tick_ms(s) : 0;
}

int store_tick(struct store *s, struct store_tick_out *out, char **cause)
{
	memset(out, 0, sizeof *out);
	return s->be->tick != NULL ? s->be->tick(s, out, cause) : 0;
}

int store_get_queue_state(struct store *s, struct store_queue_state *qs,
			  char **cause)
{
	return s->be->get_queue_state(s, qs, cause);
}

int store_ingest(struct store *s, struct store_line *lines, size_t n,
		 const struct store_queue_state *qs, int64_t now_ms,
		 char **cause)
{
	return s->be->ingest(s, lines, n, qs, now_ms, cause);
}

int store_load_queued(struct store *s, int64_t after_id, int limit,
		      struct store_row **rows, size_t *n, char **cause)
{
	return s->be->load_queued(s, after_id, limit, rows, n, cause);
}

int store_put_results(struct store *s, const struct store_result *res,
		      size_t n, char **cause)
{
	return s->be->put_results(s, res, n, cause);
}

int store_heartbeat(struct store *s, const struct store_heartbeat *hb,
		    char **cause)
{
	return s->be->heartbeat(s, hb, cause);
}

int store_count_results(struct store *s, int64_t *by_error, char **cause)
{
	return s->be->count_results(s, by_error, cause);
}

int store_count_queued(struct store *s, int64_t *count, int64_t *first_id,
		       char **cause)
{
	return s->be->count_queued(s, count, first_id, cause);
}

int store_read_status(const struct store_conf *sc, int64_t now_ms,
		      size_t hosts_max, struct store_status *st, char **cause)
{
	memset(st, 0, sizeof *st);
	STORE_TOOL_BACKEND(sc, be, cause);
	return be->read_status(sc, now_ms, hosts_max, st, cause);
}

int store_refetch(const struct store_conf *sc,
		  const struct store_select *sel, int64_t now_ms, bool dry_run,
		  void (*each)(void *arg, const char *url), void *arg,
		  int64_t *n, char **cause)
{
	*n = 0;
	STORE_TOOL_BACKEND(sc, be, cause);
	return be->refetch(sc, sel, now_ms, dry_run, each, arg, n, cause);
}

int store_prune(const struct store_conf *sc, int64_t before_ms,
		bool keep_latest, bool dry_run, int64_t *n, char **cause)
{
	*n = 0;
	STORE_TOOL_BACKEND(sc, be, cause);
	return be->prune(sc, before_ms, keep_latest, dry_run, n, cause);
}

int store_find_records(const struct store_conf *sc, int64_t id,
		       const char *url, struct store_record *out, size_t max,
		       size_t *n, char **cause)
{
	*n = 0;
	STORE_TOOL_BACKEND(sc, be, cause);
	return be->find_records(sc, id, url, out, max, n, cause);
}

int store_submit(const struct store_conf *sc, const struct store_line *lines,
		 size_t n, int64_t now_ms, char **cause)
{
	STORE_TOOL_BACKEND(sc, be, cause);
	return be->submit(sc, lines, n, now_ms, cause);
}

/* The PostgreSQL backend: connecting, migrating, running statements and
 * writing array parameters.  See store_pg.h. */
#include "store_pg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* The advisory lock key migrations run under ("gatherd" in ASCII, so it
 * does not collide with an application's small integers). */
#define STORE_PG_MIGRATE_LOCK "29113321216517220"

/* How long one statement may run before the server cancels it: a batch
 * takes milliseconds, so this only ends a stuck one (a lock held by a
 * forgotten psql session), which then fails and is retried. */
#define STORE_PG_STATEMENT_TIMEOUT "60s"

/* libpq's notices (NOTICE: relation exists, skipping) are no news. */
static void store_pg_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgresql: %.*s", (int)strcspn(msg, "\n"), msg);
}

char *store_pg_err(PGconn *c, const char *what)
{
	const char *m = c != NULL ? PQerrorMessage(c) : "out of memory";
	size_t n = strlen(m);

	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	return util_printf("%s: %.*s", what, (int)n, m);
}

PGconn *store_pg_connect(const char *conninfo, char **cause)
{
	/* Later keywords win, except that conninfo (the expanded dbname)
	 * overrides the ones before it: the administrator's keepalive and
	 * timeout settings are kept, the encoding is always UTF-8. */
	const char *const keys[] = {"connect_timeout",
				    "keepalives_idle",
				    "keepalives_interval",
				    "keepalives_count",
				    "tcp_user_timeout",
				    "dbname",
				    "fallback_application_name",
				    "client_encoding",
				    NULL};
	const char *const values[] = {"10",	"10",	   "5",	   "3", "30000",
				      conninfo, "gatherd", "UTF8", NULL};
	PGconn *c = PQconnectdbParams(keys, values, 1);
	PGresult *r;

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		*cause = store_pg_err(c, "cannot connect to PostgreSQL");
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, store_pg_notice, NULL);
	r = PQexec(c,
		   "SET statement_timeout = '" STORE_PG_STATEMENT_TIMEOUT "'");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*cause = store_pg_err(c, "cannot set statement_timeout");
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

const char *store_pg_where(PGconn *c)
{
	static char buf[300];
	const char *h = PQhost(c), *p = PQport(c), *d = PQdb(c);

	snprintf(buf, sizeof buf, "%s%s%s/%s", h ? h : "", p && p[0] ? ":" : "",
		 p ? p : "", d ? d : "");
	return buf;
}

PGresult *store_pg_exec(PGconn *c, const char *name, const char *sql, int n,
			const char *const *params, ExecStatusType want,
			const char *what, char **cause)
{
	PGresult *r;

	if (sql != NULL)
		r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	else
		r = PQexecPrepared(c, name, n, params, NULL, NULL, 0);
	if (PQresultStatus(r) != want) {
		*cause = store_pg_err(c, what);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Run one command (no parameters, no rows wanted). */
static int store_pg_command(PGconn *c, const char *sql, const char *what,
			    char **cause)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
		 PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		*cause = store_pg_err(c, what);
	PQclear(r);
	return ok ? 0 : -1;
}

int store_pg_schema_version(PGconn *c, int *version, char **cause)
{
	PGresult *r;

	*version = 0;
	r = PQexec(c, "SELECT version FROM gatherd_schema");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		/* Only "no such table" means a database not migrated yet. */
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		if (state != NULL && strcmp(state, "42P01") == 0) {
			PQclear(r);
			return 0;
		}
		*cause = store_pg_err(c, "read the schema version");
		PQclear(r);
		return -1;
	}
	if (PQntuples(r) == 1)
		*version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int store_pg_migrate(PGconn *c, char **cause)
{
	char *err = NULL;
	int version = 0, rc = -1;

	/* A session lock: held across the transactions below, and released
	 * by the server if this process dies meanwhile. */
	if (store_pg_command(
		c, "SELECT pg_advisory_lock(" STORE_PG_MIGRATE_LOCK ")",
		"take the migration lock", cause) != 0)
		return -1;
	if (store_pg_command(c,
			     "CREATE TABLE IF NOT EXISTS gatherd_schema ("
			     "singleton boolean PRIMARY KEY DEFAULT true "
			     "CHECK (singleton), version integer NOT NULL); "
			     "INSERT INTO gatherd_schema (version) VALUES (0) "
			     "ON CONFLICT DO NOTHING",
			     "create gatherd_schema", cause) != 0 ||
	    store_pg_schema_version(c, &version, cause) != 0)
		goto out;
	if (version > store_pg_migrations_count) {
		*cause = util_printf("database schema version %d is newer than "
				     "this gatherd knows (%d)",
				     version, store_pg_migrations_count);
		goto out;
	}
	for (int i = version; i < store_pg_migrations_count; i++) {
		const struct store_migration *m = &store_pg_migrations[i];
		char *bump = util_printf("UPDATE gatherd_schema SET version = "
					 "%d",
					 m->version);

		if (store_pg_command(c, "BEGIN", "begin", &err) != 0 ||
		    store_pg_command(c, m->sql, "apply", &err) != 0 ||
		    store_pg_command(c, bump, "record the version", &err) !=
			0 ||
		    store_pg_command(c, "COMMIT", "commit", &err) != 0) {
			*cause = util_printf("migration %04d_%s failed: %s",
					     m->version, m->name, err);
			free(err);
			free(bump);
			err = NULL;
			if (store_pg_command(c, "ROLLBACK", "rollback", &err) !=
			    0)
				free(err);
			goto out;
		}
		free(bump);
		log_info("PostgreSQL database migrated to schema version %d "
			 "(%s)",
			 m->version, m->name);
	}
	rc = 0;
out:
	if (store_pg_command(
		c, "SELECT pg_advisory_unlock(" STORE_PG_MIGRATE_LOCK ")",
		"release the migration lock", &err) != 0)
		free(err); /* the session ends soon; the lock goes with it */
	return rc;
}

PGconn *store_pg_connect_tool(const struct store_conf *sc, char **cause)
{
	PGconn *c = store_pg_connect(sc->conninfo, cause);
	int v = 0;

	if (c == NULL)
		return NULL;
	if (store_pg_schema_version(c, &v, cause) != 0) {
		PQfinish(c);
		return NULL;
	}
	if (v < store_pg_migrations_count) {
		*cause = util_printf("%s is not a gatherd database of this "
				     "version (schema %d); start a daemon once "
				     "to migrate",
				     store_pg_where(c), v);
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* ---- text buffers and array literals ---- */

static void pg_buf_room(struct pg_buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2 + 256;
		b->p = xrealloc(b->p, b->cap);
	}
}

static void pg_buf_put(struct pg_buf *b, const char *s, size_t n)
{
	pg_buf_room(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void pg_buf_reset(struct pg_buf *b)
{
	b->len = 0;
	pg_buf_room(b, 0);
	b->p[0] = '\0';
}

void pg_buf_free(struct pg_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

void pg_buf_printf(struct pg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	pg_buf_room(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *pg_buf_str(struct pg_buf *b)
{
	pg_buf_room(b, 0);
	b->p[b->len] = '\0';
	return b->p;
}

/* The length of the valid UTF-8 sequence at s[0..n), or 0 if there is
 * none (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF); NUL counts as invalid. */
static size_t pg_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0x01 && c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

void pg_buf_utf8(struct pg_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start = 0;

	while (i < n) {
		size_t l = pg_utf8_len(u + i, n - i);

		if (l > 0) {
			i += l;
			continue;
		}
		pg_buf_put(b, s + start, i - start);
		pg_buf_put(b, "\xef\xbf\xbd", 3); /* U+FFFD */
		start = ++i;
	}
	pg_buf_put(b, s + start, n - start);
}

/* A comma unless this is the array's first element. */
static void pg_array_sep(struct pg_buf *b)
{
	if (b->len > 0 && b->p[b->len - 1] != '{')
		pg_buf_put(b, ",", 1);
}

void pg_array_open(struct pg_buf *b)
{
	pg_buf_reset(b);
	pg_buf_put(b, "{", 1);
}

void pg_array_close(struct pg_buf *b)
{
	pg_buf_put(b, "}", 1);
}

/* Digits by hand: a batch of results has some 15 numbers per row, and
 * printf's two passes per number were a measurable part of a node's
 * worker time. */
void pg_array_int(struct pg_buf *b, int64_t v)
{
	char d[24], *end = d + sizeof d, *p = end;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	pg_array_sep(b);
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	pg_buf_put(b, p, (size_t)(end - p));
}

void pg_array_opt(struct pg_buf *b, int64_t v)
{
	if (v < 0)
		pg_array_null(b);
	else
		pg_array_int(b, v);
}

void pg_array_null(struct pg_buf *b)
{
	pg_array_sep(b);
	pg_buf_put(b, "NULL", 4);
}

void pg_array_text(struct pg_buf *b, const char *s, size_t n)
{
	size_t start = 0;

	pg_array_sep(b);
	pg_buf_put(b, "\"", 1);
	/* Inside quotes only '"' and '\' need a backslash. */
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			pg_buf_utf8(b, s + start, i - start);
			pg_buf_put(b, "\\", 1);
			start = i;
		}
	}
	pg_buf_utf8(b, s + start, n - start);
	pg_buf_put(b, "\"", 1);
}

void pg_array_str(struct pg_buf *b, const char *s)
{
	if (s == NULL)
		pg_array_null(b);
	else
		pg_array_text(b, s, strlen(s));
}

/* libpq through dlopen(): see pq_load.h. */
#include "pq_load.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "log.h"

/* Every libpq function gatherd calls. */
#define PQ_FUNCTIONS(X)                                                      \
	X(PQclear)                                                           \
	X(PQcmdTuples)                                                       \
	X(PQconnectdbParams)                                                 \
	X(PQconninfoFree)                                                    \
	X(PQconninfoParse)                                                   \
	X(PQdb)                                                              \
	X(PQerrorMessage)                                                    \
	X(PQexec)                                                            \
	X(PQexecParams)                                                      \
	X(PQexecPrepared)                                                    \
	X(PQfinish)                                                          \
	X(PQfreemem)                                                         \
	X(PQgetisnull)                                                       \
	X(PQgetvalue)                                                        \
	X(PQhost)                                                            \
	X(PQntuples)                                                         \
	X(PQport)                                                            \
	X(PQprepare)                                                         \
	X(PQresultErrorField)                                                \
	X(PQresultStatus)                                                    \
	X(PQsetNoticeProcessor)                                              \
	X(PQstatus)

/* The library's functions, by the types libpq-fe.h declares. */
#define PQ_POINTER(f) __typeof__(f) *f;
static struct {
	PQ_FUNCTIONS(PQ_POINTER)
} pq;
#undef PQ_POINTER

static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static const char *pq_err; /* NULL once loaded */
static char pq_err_buf[512];

static void pq_load_once(void)
{
	void *h = dlopen(PQ_LOAD_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (h == NULL) {
		snprintf(pq_err_buf, sizeof pq_err_buf,
			 "the PostgreSQL backend needs PostgreSQL's client "
			 "library, which could not be loaded (install libpq5): "
			 "%s",
			 dlerror());
		pq_err = pq_err_buf;
		return;
	}
#define PQ_RESOLVE(f)                                                        \
	if ((pq.f = (__typeof__(pq.f))dlsym(h, #f)) == NULL) {               \
		snprintf(pq_err_buf, sizeof pq_err_buf,                      \
			 "the PostgreSQL backend cannot use " PQ_LOAD_SONAME \
			 ": it has no " #f " (PostgreSQL 10 or later is "    \
			 "needed)");                                         \
		pq_err = pq_err_buf;                                         \
		dlclose(h);                                                  \
		return;                                                      \
	}
	PQ_FUNCTIONS(PQ_RESOLVE)
#undef PQ_RESOLVE
	pq_err = NULL;
}

int pq_load(const char **err)
{
	pthread_once(&pq_once, pq_load_once);
	*err = pq_err;
	return pq_err == NULL ? 0 : -1;
}

/* Callers load the library before they get here (store_open, the
 * conninfo check); a path that did not is a bug, said as such. */
static void pq_need(void)
{
	const char *err;

	if (pq_load(&err) != 0) {
		log_error("%s", err);
		abort();
	}
}

void PQclear(PGresult *res)
{
	pq_need();
	pq.PQclear(res);
}

char *PQcmdTuples(PGresult *res)
{
	pq_need();
	return pq.PQcmdTuples(res);
}

PGconn *PQconnectdbParams(const char *const *keywords,
			  const char *const *values, int expand_dbname)
{
	pq_need();
	return pq.PQconnectdbParams(keywords, values, expand_dbname);
}

void PQconninfoFree(PQconninfoOption *options)
{
	pq_need();
	pq.PQconninfoFree(options);
}

PQconninfoOption *PQconninfoParse(const char *conninfo, char **errmsg)
{
	pq_need();
	return pq.PQconninfoParse(conninfo, errmsg);
}

char *PQdb(const PGconn *conn)
{
	pq_need();
	return pq.PQdb(conn);
}

char *PQerrorMessage(const PGconn *conn)
{
	pq_need();
	return pq.PQerrorMessage(conn);
}

PGresult *PQexec(PGconn *conn, const char *query)
{
	pq_need();
	return pq.PQexec(conn, query);
}

PGresult *PQexecParams(PGconn *conn, const char *command, int nParams,
		       const Oid *paramTypes, const char *const *paramValues,
		       const int *paramLengths, const int *paramFormats,
		       int resultFormat)
{
	pq_need();
	return pq.PQexecParams(conn, command, nParams, paramTypes, paramValues,
			       paramLengths, paramFormats, resultFormat);
}

PGresult *PQexecPrepared(PGconn *conn, const char *stmtName, int nParams,
			 const char *const *paramValues,
			 const int *paramLengths, const int *paramFormats,
			 int resultFormat)
{
	pq_need();
	return pq.PQexecPrepared(conn, stmtName, nParams, paramValues,
				 paramLengths, paramFormats, resultFormat);
}

void PQfinish(PGconn *conn)
{
	pq_need();
	pq.PQfinish(conn);
}

void PQfreemem(void *ptr)
{
	pq_need();
	pq.PQfreemem(ptr);
}

int PQgetisnull(const PGresult *res, int tup_num, int field_num)
{
	pq_need();
	return pq.PQgetisnull(res, tup_num, field_num);
}

char *PQgetvalue(const PGresult *res, int tup_num, int field_num)
{
	pq_need();
	return pq.PQgetvalue(res, tup_num, field_num);
}

char *PQhost(const PGconn *conn)
{
	pq_need();
	return pq.PQhost(conn);
}

int PQntuples(const PGresult *res)
{
	pq_need();
	return pq.PQntuples(res);
}

char *PQport(const PGconn *conn)
{
	pq_need();
	return pq.PQport(conn);
}

PGresult *PQprepare(PGconn *conn, const char *stmtName, const char *query,
		    int nParams, const Oid *paramTypes)
{
	pq_need();
	return pq.PQprepare(conn, stmtName, query, nParams, paramTypes);
}

char *PQresultErrorField(const PGresult *res, int fieldcode)
{
	pq_need();
	return pq.PQresultErrorField(res, fieldcode);
}

ExecStatusType PQresultStatus(const PGresult *res)
{
	pq_need();
	return pq.PQresultStatus(res);
}

PQnoticeProcessor PQsetNoticeProcessor(PGconn *conn, PQnoticeProcessor proc,
				       void *arg)
{
	pq_need();
	return pq.PQsetNoticeProcessor(conn, proc, arg);
}

ConnStatusType PQstatus(const PGconn *conn)
{
	pq_need();
	return pq.PQstatus(conn);
}

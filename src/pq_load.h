/* libpq, loaded when the PostgreSQL backend is first used.  The client
 * library pulls in about twenty others (Kerberos, LDAP, GnuTLS, p11-kit),
 * ~3.5 MB of resident memory and their start-up work, which a daemon on
 * SQLite never needs; so gatherd is not linked with it but opens it with
 * dlopen() when a configuration names backend = postgresql.  The PQ*
 * functions the PostgreSQL files call are defined here, with libpq-fe.h's
 * own prototypes, and forward to the loaded library. */
#ifndef GATHERD_PQ_LOAD_H
#define GATHERD_PQ_LOAD_H

/* The library's file name (its major version has been 5 since 2005). */
#define PQ_LOAD_SONAME "libpq.so.5"

/* Load libpq (once; safe from any thread).  0, or -1 with *err set to a
 * sentence naming the library and why it could not be used. */
int pq_load(const char **err);

#endif

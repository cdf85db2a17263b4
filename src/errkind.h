/* The stable error kinds of the `error` column, as one enum with one name
 * table: policy (retry, redirect) decides on the enum, and only the store
 * turns it into text. */
#ifndef GATHERD_ERRKIND_H
#define GATHERD_ERRKIND_H

#include <stdbool.h>

enum errkind {
	ERR_NONE = 0,           /* stored as NULL */
	ERR_INVALID_URL,        /* "invalid_url" */
	ERR_DNS,                /* "dns" */
	ERR_CONNECT,            /* "connect" */
	ERR_TLS,                /* "tls" */
	ERR_TIMEOUT,            /* "timeout" */
	ERR_HTTP_PROTOCOL,      /* "http_protocol" */
	ERR_TRUNCATED,          /* "truncated" */
	ERR_TOO_LARGE,          /* "too_large" */
	ERR_TOO_MANY_REDIRECTS, /* "too_many_redirects" */
	ERR_ROBOTS,             /* "robots": disallowed by robots.txt */
	ERR_PROXY,              /* "proxy": the proxy refused or is down */
	ERR_KIND_COUNT
};

/* The name stored in SQLite, or NULL for ERR_NONE (and out-of-range
 * values). */
const char *errkind_name(enum errkind k);

/* The kind with that name; false when there is none. */
bool errkind_parse(const char *name, enum errkind *out);

#endif

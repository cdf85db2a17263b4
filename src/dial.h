/* Opening a connection to a host with several addresses, Happy Eyeballs
 * style (RFC 8305 section 5).  An attempt starts on the first address;
 * every DIAL_ATTEMPT_DELAY_MS without a connection, and at once whenever
 * an attempt fails, the next address gets one too, the earlier attempts
 * going on.  The first to connect wins and the others are closed.  So an
 * address that silently drops SYNs costs DIAL_ATTEMPT_DELAY_MS, not the
 * whole connect timeout.  There is no timeout here: the caller bounds the
 * whole dial (connect_timeout_ms) and cancels it. */
#ifndef GATHERD_DIAL_H
#define GATHERD_DIAL_H

#include <stdbool.h>
#include <stdint.h>

#include "dns.h"

struct event_base;
struct conn;
struct conn_pool;
struct dial;

/* RFC 8305's recommended Connection Attempt Delay: a working address
 * answers well within it on most paths, and a silent one (a firewall
 * dropping SYNs, a broken IPv6 route) costs no more than it. */
#define DIAL_ATTEMPT_DELAY_MS 250

struct dial_result {
	struct conn *conn;	 /* connected (the receiver owns it), or NULL */
	union dns_sockaddr addr; /* the address it connected to */
	int64_t connect_ms; /* of the winning attempt, from its own start */
	/* When conn is NULL: the errno of the last attempt that failed
	 * (EMFILE or ENFILE: out of descriptors, the addresses not all
	 * tried), 0 when there was no address at all. */
	int err;
};

/* The result is valid only during the call. */
typedef void (*dial_cb)(void *arg, const struct dial_result *res);

/* Connect to `port` on addrs, tried in their order, with new connections
 * for the pool's `key` (a string that must outlive the dial; `tls` as for
 * conn_new).  cb runs once, from the loop and never inside dial_start(),
 * unless the dial is cancelled; the dial is gone once cb has run. */
struct dial *dial_start(struct event_base *base, struct conn_pool *pool,
			const char *key, bool tls,
			const struct dns_addrs *addrs, uint16_t port,
			dial_cb cb, void *arg);

/* Stop a dial whose callback has not run, closing every attempt. */
void dial_cancel(struct dial *dl);

#endif

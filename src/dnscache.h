/* The DNS cache: the addresses of each name until their TTL runs out.  It
 * holds at most a fixed number of names; past that the least recently used
 * one makes room.  Pure logic without libevent (the caller passes the time),
 * so it is unit-tested without a resolver. */
#ifndef GATHERD_DNSCACHE_H
#define GATHERD_DNSCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns.h"

struct dnscache;

/* A cache of at most max_names names, each kept ttl_ms after its answer. */
struct dnscache *dnscache_new(size_t max_names, int64_t ttl_ms);
void dnscache_free(struct dnscache *c);

/* The addresses cached for name, or NULL when there are none or they
 * expired (an expired entry is dropped).  A hit becomes the most recently
 * used name.  The pointer is valid until the next dnscache_put(). */
const struct dns_addrs *dnscache_get(struct dnscache *c, const char *name,
				     int64_t now_ms);

/* Remember addrs for name (replacing what was cached) for the TTL from
 * now_ms.  Memory is the only thing that can fail, and then the name is
 * simply not cached. */
void dnscache_put(struct dnscache *c, const char *name,
		  const struct dns_addrs *addrs, int64_t now_ms);

size_t dnscache_count(const struct dnscache *c);

#endif

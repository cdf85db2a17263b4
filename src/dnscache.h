/* The DNS cache: the addresses of each name, kept in the order to try them,
 * until their TTL runs out.  It holds at most a fixed number of names; past
 * that the least recently used one makes room.  Pure logic without libevent
 * (the caller passes the time), so it is unit-tested without a resolver. */
#ifndef GATHERD_DNSCACHE_H
#define GATHERD_DNSCACHE_H

#include <stdbool.h>
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

/* A connection to addr (port ignored) worked: from now on name's cached
 * addresses start with it.  Nothing happens when name or addr is not
 * cached. */
void dnscache_prefer(struct dnscache *c, const char *name,
		     const union dns_sockaddr *addr);

size_t dnscache_count(const struct dnscache *c);

/* Put addrs in the order to try them (RFC 8305 section 4): `first` leads
 * when it is given and among them (port ignored), then the two families
 * alternate, beginning with the leader's family; within a family the
 * order is kept.  Returns whether `first` was found. */
bool dnscache_order(struct dns_addrs *addrs, const union dns_sockaddr *first);

#endif

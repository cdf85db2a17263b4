/* The DNS cache: see dnscache.h. */
#include "dnscache.h"

#include <stdlib.h>
#include <string.h>

#include "lru.h"
#include "util.h"

/* Expired entries found at the least recently used end are dropped a few
 * at a time on each insert: names nobody asks for again would otherwise
 * stay until the cap pushed them out, and a bounded number keeps every
 * insert cheap. */
#define DNSCACHE_SWEEP 4

struct dnscache_entry {
	struct dns_addrs addrs;
	int64_t expires_ms;
};

/* Names in an LRU (lru.c) of at most `max`; none at all when max is 0. */
struct dnscache {
	struct lru *names; /* name -> struct dnscache_entry */
	size_t max;
	int64_t ttl_ms;
};

struct dnscache *dnscache_new(size_t max_names, int64_t ttl_ms)
{
	struct dnscache *c = xcalloc(1, sizeof *c);

	c->names = lru_new(max_names > 0 ? max_names : 1, free);
	c->max = max_names;
	c->ttl_ms = ttl_ms;
	return c;
}

void dnscache_free(struct dnscache *c)
{
	if (c == NULL)
		return;
	lru_free(c->names);
	free(c);
}

const struct dns_addrs *dnscache_get(struct dnscache *c, const char *name,
				     int64_t now_ms)
{
	struct dnscache_entry *e = lru_get(c->names, name);

	if (e == NULL)
		return NULL;
	if (e->expires_ms <= now_ms) {
		lru_remove(c->names, name);
		return NULL;
	}
	return &e->addrs;
}

void dnscache_put(struct dnscache *c, const char *name,
		  const struct dns_addrs *addrs, int64_t now_ms)
{
	struct dnscache_entry *e;
	void *v;

	if (c->max == 0)
		return;
	for (int i = 0; i < DNSCACHE_SWEEP; i++) {
		const char *oldest = lru_oldest(c->names, &v);

		if (oldest == NULL ||
		    ((struct dnscache_entry *)v)->expires_ms > now_ms)
			break;
		lru_remove(c->names, oldest);
	}
	e = lru_get(c->names, name);
	if (e == NULL) {
		e = xmalloc(sizeof *e);
		lru_put(c->names, name, e);
	}
	e->addrs = *addrs;
	e->expires_ms = now_ms + c->ttl_ms;
}

void dnscache_prefer(struct dnscache *c, const char *name,
		     const union dns_sockaddr *addr)
{
	struct dnscache_entry *e = lru_get(c->names, name);

	if (e != NULL)
		dnscache_order(&e->addrs, addr);
}

size_t dnscache_count(const struct dnscache *c)
{
	return lru_count(c->names);
}

/* Whether a is the address b, ports aside. */
static bool dnscache_same_addr(const union dns_sockaddr *a,
			       const union dns_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr,
			      sizeof a->in6.sin6_addr) == 0 &&
		       a->in6.sin6_scope_id == b->in6.sin6_scope_id;
	return false;
}

bool dnscache_order(struct dns_addrs *addrs, const union dns_sockaddr *first)
{
	struct dns_addrs in = *addrs;
	bool taken[DNS_MAX_ADDRS] = {false};
	int lead = -1, family, n = 0;
	bool found;

	for (int i = 0; first != NULL && i < in.n && lead < 0; i++)
		if (dnscache_same_addr(&in.addr[i], first))
			lead = i;
	found = lead >= 0;
	if (in.n == 0)
		return false;
	family = in.addr[lead >= 0 ? lead : 0].sa.sa_family;
	while (n < in.n) {
		int pick = lead;

		/* The first address not yet taken of the family whose turn
		 * it is, else of the other one (it has run out). */
		for (int i = 0; i < in.n && pick < 0; i++)
			if (!taken[i] && in.addr[i].sa.sa_family == family)
				pick = i;
		for (int i = 0; i < in.n && pick < 0; i++)
			if (!taken[i])
				pick = i;
		lead = -1;
		taken[pick] = true;
		addrs->addr[n] = in.addr[pick];
		addrs->len[n] = in.len[pick];
		n++;
		family =
		    in.addr[pick].sa.sa_family == AF_INET ? AF_INET6 : AF_INET;
	}
	return found;
}

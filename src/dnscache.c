/* The DNS cache: see dnscache.h. */
#include "dnscache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "map.h"

/* Expired entries found at the least recently used end are dropped a few
 * at a time on each insert: names nobody asks for again would otherwise
 * stay until the cap pushed them out, and a bounded number keeps every
 * insert cheap. */
#define DNSCACHE_SWEEP 4

struct dnscache_entry {
	TAILQ_ENTRY(dnscache_entry) lru;
	struct dns_addrs addrs;
	int64_t expires_ms;
	char name[];
};
TAILQ_HEAD(dnscache_list, dnscache_entry);

/* Every entry is both in `names` and in `lru` (most recently used first),
 * and there are never more than `max` of them. */
struct dnscache {
	struct map *names; /* name -> struct dnscache_entry */
	struct dnscache_list lru;
	size_t max;
	int64_t ttl_ms;
};

struct dnscache *dnscache_new(size_t max_names, int64_t ttl_ms)
{
	struct dnscache *c = calloc(1, sizeof *c);

	if (c == NULL || (c->names = map_new()) == NULL)
		abort();
	TAILQ_INIT(&c->lru);
	c->max = max_names;
	c->ttl_ms = ttl_ms;
	return c;
}

void dnscache_free(struct dnscache *c)
{
	if (c == NULL)
		return;
	map_free(c->names, free);
	free(c);
}

static void dnscache_drop(struct dnscache *c, struct dnscache_entry *e)
{
	TAILQ_REMOVE(&c->lru, e, lru);
	map_del(c->names, e->name);
	free(e);
}

const struct dns_addrs *dnscache_get(struct dnscache *c, const char *name,
				     int64_t now_ms)
{
	struct dnscache_entry *e = map_get(c->names, name);

	if (e == NULL)
		return NULL;
	if (e->expires_ms <= now_ms) {
		dnscache_drop(c, e);
		return NULL;
	}
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	return &e->addrs;
}

void dnscache_put(struct dnscache *c, const char *name,
		  const struct dns_addrs *addrs, int64_t now_ms)
{
	struct dnscache_entry *e, *old;

	for (int i = 0; i < DNSCACHE_SWEEP; i++) {
		old = TAILQ_LAST(&c->lru, dnscache_list);
		if (old == NULL || old->expires_ms > now_ms)
			break;
		dnscache_drop(c, old);
	}
	e = map_get(c->names, name);
	if (e != NULL) {
		TAILQ_REMOVE(&c->lru, e, lru);
	} else {
		size_t len = strlen(name);

		if (c->max == 0 || (e = malloc(sizeof *e + len + 1)) == NULL)
			return;
		memcpy(e->name, name, len + 1);
		if (map_put(c->names, name, e) != 0) {
			free(e);
			return;
		}
	}
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	e->addrs = *addrs;
	e->expires_ms = now_ms + c->ttl_ms;
	while (map_count(c->names) > c->max)
		dnscache_drop(c, TAILQ_LAST(&c->lru, dnscache_list));
}

void dnscache_prefer(struct dnscache *c, const char *name,
		     const union dns_sockaddr *addr)
{
	struct dnscache_entry *e = map_get(c->names, name);

	if (e != NULL)
		dnscache_order(&e->addrs, addr);
}

size_t dnscache_count(const struct dnscache *c)
{
	return map_count(c->names);
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

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

size_t dnscache_count(const struct dnscache *c)
{
	return map_count(c->names);
}

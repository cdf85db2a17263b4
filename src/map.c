/* String-keyed hash map: see map.h. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct map_entry {
	struct map_entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct map {
	struct map_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};

/* FNV-1a: short keys (host:port), no adversarial concern beyond what a
 * submitter controls, and the table grows with the load. */
static uint64_t map_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct map *map_new(void)
{
	struct map *m = xcalloc(1, sizeof *m);

	m->nbuckets = 64;
	m->buckets = xcalloc(m->nbuckets, sizeof *m->buckets);
	return m;
}

void map_free(struct map *m, void (*free_value)(void *))
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct map_entry *e = m->buckets[i];

		while (e != NULL) {
			struct map_entry *next = e->next;

			if (free_value != NULL)
				free_value(e->value);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	free(m);
}

static struct map_entry **map_find(const struct map *m, const char *key,
				   uint64_t h)
{
	struct map_entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key)))
		pp = &(*pp)->next;
	return pp;
}

void *map_get(const struct map *m, const char *key)
{
	struct map_entry *e = *map_find(m, key, map_hash(key));

	return e ? e->value : NULL;
}

static void map_grow(struct map *m)
{
	size_t n = m->nbuckets * 2;
	struct map_entry **b = xcalloc(n, sizeof *b);

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct map_entry *e = m->buckets[i];

		while (e != NULL) {
			struct map_entry *next = e->next;
			size_t j = e->hash & (n - 1);

			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void map_put(struct map *m, const char *key, void *value)
{
	uint64_t h = map_hash(key);
	struct map_entry **pp = map_find(m, key, h);
	size_t klen;

	if (*pp != NULL) {
		(*pp)->value = value;
		return;
	}
	klen = strlen(key);
	struct map_entry *e = xmalloc(sizeof *e + klen + 1);
	memcpy(e->key, key, klen + 1);
	e->hash = h;
	e->value = value;
	e->next = NULL;
	*pp = e;
	if (++m->count > m->nbuckets)
		map_grow(m);
}

void *map_del(struct map *m, const char *key)
{
	struct map_entry **pp = map_find(m, key, map_hash(key));
	struct map_entry *e = *pp;
	void *v;

	if (e == NULL)
		return NULL;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

void map_foreach(const struct map *m,
		 void (*fn)(void *arg, const char *key, void *value),
		 void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (const struct map_entry *e = m->buckets[i]; e != NULL;
		     e = e->next)
			fn(arg, e->key, e->value);
}

size_t map_count(const struct map *m)
{
	return m->count;
}

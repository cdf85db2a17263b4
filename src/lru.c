/* Bounded least-recently-used map: see lru.h. */
#include "lru.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "map.h"
#include "util.h"

/* One key: indexed by the map, ordered in the list. */
struct lru_node {
	TAILQ_ENTRY(lru_node) link;
	void *value;
	char key[];
};

/* `order` holds every node, least recently used first; `index` maps each
 * key to its node and owns nothing (the nodes are freed here). */
struct lru {
	struct map *index;
	TAILQ_HEAD(lru_list, lru_node) order;
	size_t cap;
	void (*free_value)(void *);
	unsigned long evictions;
};

/* An empty map holding at most cap keys. */
struct lru *lru_new(size_t cap, void (*free_value)(void *))
{
	struct lru *l = xcalloc(1, sizeof *l);

	l->index = map_new();
	TAILQ_INIT(&l->order);
	l->cap = cap > 0 ? cap : 1;
	l->free_value = free_value;
	return l;
}

/* Unlink a node from both structures and free it with its value. */
static void lru_drop(struct lru *l, struct lru_node *n)
{
	map_del(l->index, n->key);
	TAILQ_REMOVE(&l->order, n, link);
	if (l->free_value != NULL)
		l->free_value(n->value);
	free(n);
}

/* Free every value, every node and the map itself. */
void lru_free(struct lru *l)
{
	struct lru_node *n;

	if (l == NULL)
		return;
	while ((n = TAILQ_FIRST(&l->order)) != NULL) {
		TAILQ_REMOVE(&l->order, n, link);
		if (l->free_value != NULL)
			l->free_value(n->value);
		free(n);
	}
	map_free(l->index, NULL);
	free(l);
}

/* Look key up and, on a hit, move it to the recent end. */
void *lru_get(struct lru *l, const char *key)
{
	struct lru_node *n = map_get(l->index, key);

	if (n == NULL)
		return NULL;
	TAILQ_REMOVE(&l->order, n, link);
	TAILQ_INSERT_TAIL(&l->order, n, link);
	return n->value;
}

/* Insert key as the most recent one, evicting the oldest past the cap. */
void lru_put(struct lru *l, const char *key, void *value)
{
	struct lru_node *n = map_get(l->index, key);
	size_t klen;

	if (n != NULL) {
		if (n->value != value && l->free_value != NULL)
			l->free_value(n->value);
		n->value = value;
		TAILQ_REMOVE(&l->order, n, link);
		TAILQ_INSERT_TAIL(&l->order, n, link);
		return;
	}
	klen = strlen(key);
	n = xmalloc(sizeof *n + klen + 1);
	memcpy(n->key, key, klen + 1);
	n->value = value;
	map_put(l->index, key, n);
	TAILQ_INSERT_TAIL(&l->order, n, link);
	/* Evict after inserting, so that the new key is never the victim. */
	if (map_count(l->index) > l->cap) {
		lru_drop(l, TAILQ_FIRST(&l->order));
		l->evictions++;
	}
}

/* Drop key and its value, if present. */
bool lru_remove(struct lru *l, const char *key)
{
	struct lru_node *n = map_get(l->index, key);

	if (n == NULL)
		return false;
	lru_drop(l, n);
	return true;
}

/* Peek at the eviction candidate without changing the order. */
const char *lru_oldest(const struct lru *l, void **value)
{
	struct lru_node *n = TAILQ_FIRST(&l->order);

	if (n == NULL)
		return NULL;
	if (value != NULL)
		*value = n->value;
	return n->key;
}

/* How many keys are held now. */
size_t lru_count(const struct lru *l)
{
	return map_count(l->index);
}

/* How many keys lru_put pushed out. */
unsigned long lru_evictions(const struct lru *l)
{
	return l->evictions;
}

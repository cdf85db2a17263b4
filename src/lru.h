/* A string-keyed map that remembers the order in which its keys were used
 * and holds at most `cap` of them: a cache that a long crawl keeps meeting
 * new keys for (hosts, TLS session keys) stays bounded, and what goes is
 * what was used longest ago.  Keys are copied; values belong to the lru,
 * which frees them with the free_value given to lru_new (on eviction,
 * removal, replacement and lru_free). */
#ifndef GATHERD_LRU_H
#define GATHERD_LRU_H

#include <stdbool.h>
#include <stddef.h>

struct lru;

/* cap >= 1; free_value may be NULL. */
struct lru *lru_new(size_t cap, void (*free_value)(void *));
void lru_free(struct lru *l);

/* The value for key, or NULL; a hit makes key the most recently used. */
void *lru_get(struct lru *l, const char *key);

/* Insert key as the most recently used (replacing and freeing an older
 * value of the same key); past the cap, the least recently used key is
 * evicted. */
void lru_put(struct lru *l, const char *key, void *value);

/* Remove key and free its value; false when it was not there. */
bool lru_remove(struct lru *l, const char *key);

/* The least recently used key (and its value through *value) without
 * making it recent, or NULL when empty; the key is valid until it is
 * removed or evicted. */
const char *lru_oldest(const struct lru *l, void **value);

size_t lru_count(const struct lru *l);
/* Keys evicted by lru_put since lru_new (for stats and tests). */
unsigned long lru_evictions(const struct lru *l);

#endif

/* A string-keyed hash map (chaining, power-of-two buckets).  Keys are
 * copied; values are opaque pointers owned by the caller. */
#ifndef GATHERD_MAP_H
#define GATHERD_MAP_H

#include <stddef.h>

struct map;

/* Never NULL (out of memory aborts, as everywhere: util.h). */
struct map *map_new(void);
/* Free the map, calling free_value (if not NULL) on every value. */
void map_free(struct map *m, void (*free_value)(void *));
void *map_get(const struct map *m, const char *key);
/* Insert or replace. */
void map_put(struct map *m, const char *key, void *value);
/* Remove key; returns its value or NULL. */
void *map_del(struct map *m, const char *key);
size_t map_count(const struct map *m);
/* Call fn on every key and value, in no particular order (fn must not
 * change the map). */
void map_foreach(const struct map *m,
		 void (*fn)(void *arg, const char *key, void *value),
		 void *arg);

#endif

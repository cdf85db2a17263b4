/* A set of row ids, each with a small tag (its host shard), for the rows a
 * node holds under lease (store_pg.c): which ids to renew, and how many
 * held rows each shard has.  Open addressing with linear probing and
 * backward-shift deletion; ids are positive. */
#ifndef GATHERD_IDSET_H
#define GATHERD_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idset;

/* Never NULL (out of memory aborts, as everywhere: util.h). */
struct idset *idset_new(void);
void idset_free(struct idset *s);

/* Add id with its tag (replacing the tag when id is there already). */
void idset_add(struct idset *s, int64_t id, int tag);

/* Remove id: true, with *tag set (when not NULL), when it was there. */
bool idset_remove(struct idset *s, int64_t id, int *tag);

bool idset_has(const struct idset *s, int64_t id);
size_t idset_count(const struct idset *s);

/* Call fn on every id and tag, in no particular order (fn must not change
 * the set). */
void idset_foreach(const struct idset *s,
		   void (*fn)(void *arg, int64_t id, int tag), void *arg);

/* Remove every id. */
void idset_clear(struct idset *s);

#endif

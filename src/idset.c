/* The id set: see idset.h. */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define IDSET_MIN_CAP 64 /* slots; always a power of two */

struct idset_slot {
	int64_t id; /* 0: empty */
	int tag;
};

/* Invariant: every id sits at its home slot or after it, with no empty
 * slot in between (linear probing), and n <= cap / 2. */
struct idset {
	struct idset_slot *slots;
	size_t cap, n;
};

/* The home slot of an id (a 64-bit mix, so runs of ids spread out). */
static size_t idset_home(const struct idset *s, int64_t id)
{
	uint64_t x = (uint64_t)id;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (s->cap - 1);
}

struct idset *idset_new(void)
{
	struct idset *s = xcalloc(1, sizeof *s);

	s->cap = IDSET_MIN_CAP;
	s->slots = xcalloc(s->cap, sizeof *s->slots);
	return s;
}

void idset_free(struct idset *s)
{
	if (s == NULL)
		return;
	free(s->slots);
	free(s);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t idset_find(const struct idset *s, int64_t id)
{
	size_t i = idset_home(s, id);

	while (s->slots[i].id != 0 && s->slots[i].id != id)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static void idset_grow(struct idset *s)
{
	struct idset_slot *old = s->slots;
	size_t old_cap = s->cap;

	s->cap *= 2;
	s->slots = xcalloc(s->cap, sizeof *s->slots);
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].id != 0)
			s->slots[idset_find(s, old[i].id)] = old[i];
	}
	free(old);
}

void idset_add(struct idset *s, int64_t id, int tag)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap)
		idset_grow(s);
	i = idset_find(s, id);
	if (s->slots[i].id == 0)
		s->n++;
	s->slots[i].id = id;
	s->slots[i].tag = tag;
}

bool idset_remove(struct idset *s, int64_t id, int *tag)
{
	size_t mask = s->cap - 1, i = idset_find(s, id), j;

	if (s->slots[i].id == 0)
		return false;
	if (tag != NULL)
		*tag = s->slots[i].tag;
	s->n--;
	/* Backward shift: move up each later entry of the run that may sit
	 * in the hole, so lookups never stop early at it. */
	for (j = (i + 1) & mask; s->slots[j].id != 0; j = (j + 1) & mask) {
		size_t home = idset_home(s, s->slots[j].id);

		/* The entry at j may move to i unless its home lies in the
		 * cyclic range (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i].id = 0;
	return true;
}

bool idset_has(const struct idset *s, int64_t id)
{
	return id != 0 && s->slots[idset_find(s, id)].id == id;
}

size_t idset_count(const struct idset *s)
{
	return s->n;
}

void idset_foreach(const struct idset *s,
		   void (*fn)(void *arg, int64_t id, int tag), void *arg)
{
	for (size_t i = 0; i < s->cap; i++) {
		if (s->slots[i].id != 0)
			fn(arg, s->slots[i].id, s->slots[i].tag);
	}
}

void idset_clear(struct idset *s)
{
	memset(s->slots, 0, s->cap * sizeof *s->slots);
	s->n = 0;
}

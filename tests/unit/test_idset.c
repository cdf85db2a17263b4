/* Unit tests for idset.c: against a plain array as the reference, through
 * growth and deletions that shift runs back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "idset.h"
#include "tap.h"

#define REF_IDS 5000 /* ids 1..REF_IDS - 1 */

/* A small deterministic generator (xorshift), so failures repeat. */
static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The reference: tag + 1 of each id, 0 when absent. */
static int ref[REF_IDS];

struct sum {
	size_t n;
	int64_t ids;
	int bad;
};

/* Every id foreach reports must be in the reference with its tag. */
static void check_each(void *arg, int64_t id, int tag)
{
	struct sum *s = arg;

	s->n++;
	s->ids += id;
	if (id <= 0 || id >= REF_IDS || ref[id] != tag + 1)
		s->bad++;
}

static void test_add_remove_has(void)
{
	struct idset *s = idset_new();
	int tag = -1;

	TAP_CHECK(idset_count(s) == 0);
	TAP_CHECK(!idset_has(s, 0));
	TAP_CHECK(!idset_has(s, 7));
	idset_add(s, 7, 3);
	idset_add(s, 7, 4); /* replaces the tag, not a second entry */
	TAP_CHECK(idset_count(s) == 1);
	TAP_CHECK(idset_has(s, 7));
	TAP_CHECK(idset_remove(s, 7, &tag) && tag == 4);
	TAP_CHECK(!idset_remove(s, 7, &tag));
	TAP_CHECK(idset_count(s) == 0);
	idset_free(s);
}

/* Random adds and removes, the set always agreeing with the reference;
 * enough ids that the table grows several times and runs form. */
static void test_random_against_reference(void)
{
	struct idset *s = idset_new();
	size_t n = 0;
	int mismatches = 0;

	for (int i = 0; i < 200000; i++) {
		int64_t id = 1 + (int64_t)(next() % (REF_IDS - 1));
		int tag = (int)(next() % 1024), got = -1;

		if (next() % 3 != 0) {
			if (ref[id] == 0)
				n++;
			ref[id] = tag + 1;
			idset_add(s, id, tag);
		} else {
			bool had = ref[id] != 0;

			if (idset_remove(s, id, &got) != had ||
			    (had && got != ref[id] - 1))
				mismatches++;
			if (had)
				n--;
			ref[id] = 0;
		}
		if (idset_count(s) != n)
			mismatches++;
	}
	for (int64_t id = 1; id < REF_IDS; id++) {
		if (idset_has(s, id) != (ref[id] != 0))
			mismatches++;
	}
	struct sum sum = {0};
	idset_foreach(s, check_each, &sum);
	TAP_CHECK(sum.n == n);
	TAP_CHECK(sum.bad == 0);
	TAP_CHECK(mismatches == 0);
	if (mismatches)
		printf("# %d mismatches\n", mismatches);
	idset_clear(s);
	TAP_CHECK(idset_count(s) == 0);
	TAP_CHECK(!idset_has(s, 1 + (int64_t)(next() % (REF_IDS - 1))));
	idset_free(s);
}

/* Consecutive ids (how rows are claimed) in and out in claim order. */
static void test_sequential_ids(void)
{
	struct idset *s = idset_new();
	int bad = 0;

	for (int64_t id = 1; id <= 100000; id++)
		idset_add(s, id, (int)(id % 1024));
	TAP_CHECK(idset_count(s) == 100000);
	for (int64_t id = 1; id <= 100000; id += 2) {
		int tag = -1;

		if (!idset_remove(s, id, &tag) || tag != (int)(id % 1024))
			bad++;
	}
	for (int64_t id = 1; id <= 100000; id++) {
		if (idset_has(s, id) != (id % 2 == 0))
			bad++;
	}
	TAP_CHECK(idset_count(s) == 50000);
	TAP_CHECK(bad == 0);
	idset_free(s);
}

static const struct tap_test tests[] = {
	{"add_remove_has", test_add_remove_has},
	{"random_against_reference", test_random_against_reference},
	{"sequential_ids", test_sequential_ids},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

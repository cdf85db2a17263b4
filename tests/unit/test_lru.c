/* Unit tests for lru.c: the cap, the order of eviction, and that every
 * value is freed exactly once whichever way it leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lru.h"
#include "tap.h"

/* Values are counters in this array, so a test sees which were freed. */
static int freed[64];

/* free_value for the tests: count the free instead of freeing. */
static void count_free(void *v)
{
	freed[(int *)v - freed]++;
}

/* The value standing for number i. */
static void *val(int i)
{
	return &freed[i];
}

/* Put key "k<i>" with value i. */
static void put(struct lru *l, int i)
{
	char key[16];

	snprintf(key, sizeof key, "k%d", i);
	lru_put(l, key, val(i));
}

/* Look up key "k<i>" (making it recent on a hit). */
static void *get(struct lru *l, int i)
{
	char key[16];

	snprintf(key, sizeof key, "k%d", i);
	return lru_get(l, key);
}

/* Reset the free counters between tests. */
static void reset(void)
{
	memset(freed, 0, sizeof freed);
}

/* Inserting past the cap evicts the oldest insertion and frees it. */
static void test_cap_evicts_oldest(void)
{
	struct lru *l = lru_new(3, count_free);

	reset();
	for (int i = 0; i < 3; i++)
		put(l, i);
	TAP_CHECK(lru_count(l) == 3);
	TAP_CHECK(lru_evictions(l) == 0);
	put(l, 3);
	TAP_CHECK(lru_count(l) == 3);
	TAP_CHECK(lru_evictions(l) == 1);
	TAP_CHECK(get(l, 0) == NULL);
	TAP_CHECK(freed[0] == 1);
	for (int i = 1; i <= 3; i++)
		TAP_CHECK(get(l, i) == val(i));
	for (int i = 4; i < 40; i++)
		put(l, i);
	TAP_CHECK(lru_count(l) == 3);
	TAP_CHECK(lru_evictions(l) == 37);
	for (int i = 0; i < 37; i++)
		TAP_CHECK(freed[i] == 1);
	lru_free(l);
	for (int i = 0; i < 40; i++)
		TAP_CHECK(freed[i] == 1);
}

/* A lookup makes a key recent, so the next eviction spares it. */
static void test_get_refreshes(void)
{
	struct lru *l = lru_new(3, count_free);
	void *v = NULL;

	reset();
	for (int i = 0; i < 3; i++)
		put(l, i);
	TAP_CHECK_STR(lru_oldest(l, &v), "k0");
	TAP_CHECK(v == val(0));
	TAP_CHECK(get(l, 0) == val(0));
	TAP_CHECK_STR(lru_oldest(l, NULL), "k1");
	put(l, 3);
	TAP_CHECK(get(l, 1) == NULL);
	TAP_CHECK(freed[1] == 1);
	TAP_CHECK(get(l, 0) == val(0));
	TAP_CHECK(freed[0] == 0);
	/* A miss changes nothing. */
	TAP_CHECK(get(l, 9) == NULL);
	TAP_CHECK_STR(lru_oldest(l, NULL), "k2");
	lru_free(l);
}

/* Putting an existing key replaces its value (freeing the old one) and
 * makes it recent without counting it twice. */
static void test_put_replaces(void)
{
	struct lru *l = lru_new(2, count_free);

	reset();
	lru_put(l, "a", val(0));
	lru_put(l, "b", val(1));
	lru_put(l, "a", val(2));
	TAP_CHECK(freed[0] == 1);
	TAP_CHECK(lru_count(l) == 2);
	TAP_CHECK(lru_get(l, "a") == val(2));
	TAP_CHECK_STR(lru_oldest(l, NULL), "b");
	/* The same value again is not freed. */
	lru_put(l, "a", val(2));
	TAP_CHECK(freed[2] == 0);
	lru_put(l, "c", val(3));
	TAP_CHECK(lru_get(l, "b") == NULL);
	TAP_CHECK(freed[1] == 1);
	lru_free(l);
	TAP_CHECK(freed[2] == 1 && freed[3] == 1);
}

/* Removal frees the value and leaves the order of the rest alone. */
static void test_remove(void)
{
	struct lru *l = lru_new(4, count_free);

	reset();
	for (int i = 0; i < 4; i++)
		put(l, i);
	TAP_CHECK(lru_remove(l, "k0"));
	TAP_CHECK(!lru_remove(l, "k0"));
	TAP_CHECK(freed[0] == 1);
	TAP_CHECK(lru_remove(l, "k2"));
	TAP_CHECK(lru_count(l) == 2);
	TAP_CHECK_STR(lru_oldest(l, NULL), "k1");
	/* Room was made: two more fit without an eviction. */
	put(l, 4);
	put(l, 5);
	TAP_CHECK(lru_evictions(l) == 0);
	TAP_CHECK(lru_remove(l, "k1") && lru_remove(l, "k3"));
	TAP_CHECK(lru_remove(l, "k4") && lru_remove(l, "k5"));
	TAP_CHECK(lru_count(l) == 0);
	TAP_CHECK(lru_oldest(l, NULL) == NULL);
	lru_free(l);
	for (int i = 0; i < 6; i++)
		TAP_CHECK(freed[i] == 1);
}

/* A cap of one keeps the last key; no free_value leaves values alone. */
static void test_cap_one_and_no_free(void)
{
	struct lru *l = lru_new(1, NULL);

	reset();
	put(l, 0);
	put(l, 1);
	TAP_CHECK(lru_count(l) == 1);
	TAP_CHECK(get(l, 0) == NULL && get(l, 1) == val(1));
	lru_free(l);
	TAP_CHECK(freed[0] == 0 && freed[1] == 0);
}

/* Many keys through a small cap: the map behind it stays consistent. */
static void test_churn(void)
{
	enum { CAP = 100, N = 100000 };
	struct lru *l = lru_new(CAP, NULL);
	char key[32];
	int bad = 0;

	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "host%d.example:443", i);
		lru_put(l, key, val(i % 64));
		/* Keep one key hot: it must survive all the churn. */
		if (lru_get(l, "host0.example:443") == NULL)
			bad++;
	}
	TAP_CHECK(bad == 0);
	TAP_CHECK(lru_count(l) == CAP);
	TAP_CHECK(lru_evictions(l) == N - CAP);
	for (int i = N - CAP + 1; i < N; i++) {
		snprintf(key, sizeof key, "host%d.example:443", i);
		if (lru_get(l, key) == NULL)
			bad++;
	}
	TAP_CHECK(bad == 0);
	lru_free(l);
}

static const struct tap_test tests[] = {
    {"cap evicts the oldest", test_cap_evicts_oldest},
    {"get refreshes a key", test_get_refreshes},
    {"put replaces a value", test_put_replaces},
    {"remove", test_remove},
    {"cap one, no free function", test_cap_one_and_no_free},
    {"churn through a small cap", test_churn},
    {NULL, NULL},
};

/* Run the table. */
int main(void)
{
	return tap_main(tests);
}

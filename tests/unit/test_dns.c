/* Unit tests for the DNS cache: expiry and least recently used eviction. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dnscache.h"
#include "tap.h"

/* An address list from text, IPv6 when it has a colon. */
static struct dns_addrs addrs_of(const char *const *list)
{
	struct dns_addrs a;

	memset(&a, 0, sizeof a);
	for (; *list != NULL && a.n < DNS_MAX_ADDRS; list++, a.n++) {
		union dns_sockaddr *sa = &a.addr[a.n];

		if (strchr(*list, ':') != NULL) {
			sa->in6.sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, *list, &sa->in6.sin6_addr) != 1)
				abort();
			a.len[a.n] = sizeof sa->in6;
		} else {
			sa->in.sin_family = AF_INET;
			if (inet_pton(AF_INET, *list, &sa->in.sin_addr) != 1)
				abort();
			a.len[a.n] = sizeof sa->in;
		}
	}
	return a;
}

/* The list as "a b c", checking each length against its family. */
static const char *addrs_text(const struct dns_addrs *a)
{
	static char buf[512];
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < a->n; i++) {
		const union dns_sockaddr *sa = &a->addr[i];
		char one[INET6_ADDRSTRLEN];
		bool v6 = sa->sa.sa_family == AF_INET6;

		if (a->len[i] != (v6 ? sizeof sa->in6 : sizeof sa->in))
			return "(bad length)";
		inet_ntop(sa->sa.sa_family,
			  v6 ? (const void *)&sa->in6.sin6_addr
			     : (const void *)&sa->in.sin_addr,
			  one, sizeof one);
		off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s",
					i ? " " : "", one);
	}
	return buf;
}

static void put_name(struct dnscache *c, const char *name, int64_t now)
{
	const char *list[] = {"127.0.0.1", NULL};
	struct dns_addrs a = addrs_of(list);

	dnscache_put(c, name, &a, now);
}

static void test_cache_expiry(void)
{
	struct dnscache *c = dnscache_new(10, 1000);

	put_name(c, "a.test", 0);
	TAP_CHECK(dnscache_get(c, "a.test", 999) != NULL);
	TAP_CHECK(dnscache_get(c, "a.test", 1000) == NULL);
	/* Touched after its expiry, the entry is gone, not just hidden. */
	TAP_CHECK(dnscache_count(c) == 0);
	TAP_CHECK(dnscache_get(c, "b.test", 0) == NULL);
	dnscache_free(c);
}

static void test_cache_replace_refreshes(void)
{
	const char *one[] = {"10.0.0.1", NULL}, *two[] = {"10.0.0.2", NULL};
	struct dns_addrs a = addrs_of(one), b = addrs_of(two);
	struct dnscache *c = dnscache_new(10, 1000);
	const struct dns_addrs *got;

	dnscache_put(c, "a.test", &a, 0);
	dnscache_put(c, "a.test", &b, 500);
	TAP_CHECK(dnscache_count(c) == 1);
	got = dnscache_get(c, "a.test", 1200);
	TAP_CHECK(got != NULL && strcmp(addrs_text(got), "10.0.0.2") == 0);
	dnscache_free(c);
}

static void test_cache_evicts_least_recently_used(void)
{
	struct dnscache *c = dnscache_new(3, 60000);

	put_name(c, "a.test", 0);
	put_name(c, "b.test", 1);
	put_name(c, "c.test", 2);
	/* Using a makes b the least recently used. */
	TAP_CHECK(dnscache_get(c, "a.test", 3) != NULL);
	put_name(c, "d.test", 4);
	TAP_CHECK(dnscache_count(c) == 3);
	TAP_CHECK(dnscache_get(c, "b.test", 5) == NULL);
	TAP_CHECK(dnscache_get(c, "a.test", 5) != NULL);
	TAP_CHECK(dnscache_get(c, "c.test", 5) != NULL);
	TAP_CHECK(dnscache_get(c, "d.test", 5) != NULL);
	dnscache_free(c);
}

/* Far more names than the cap: the newest ones stay, the count does not
 * pass the cap (the old cache stopped caching at its cap instead). */
static void test_cache_bounded(void)
{
	struct dnscache *c = dnscache_new(1000, 60000);
	char name[32];
	bool ok = true;

	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "n%d.bulk.test", i);
		put_name(c, name, i);
		ok = ok && dnscache_count(c) <= 1000;
	}
	TAP_CHECK(ok);
	TAP_CHECK(dnscache_count(c) == 1000);
	TAP_CHECK(dnscache_get(c, "n3999.bulk.test", 5000) == NULL);
	TAP_CHECK(dnscache_get(c, "n4000.bulk.test", 5000) != NULL);
	TAP_CHECK(dnscache_get(c, "n4999.bulk.test", 5000) != NULL);
	dnscache_free(c);
}

/* Expired names nobody asks for again go a few at a time as others are
 * inserted, oldest first, without waiting for the cap. */
static void test_cache_sweeps_expired(void)
{
	struct dnscache *c = dnscache_new(1000, 100);
	char name[32];

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "old%d.test", i);
		put_name(c, name, 0);
	}
	put_name(c, "live.test", 50);
	TAP_CHECK(dnscache_count(c) == 11); /* nothing expired yet */
	put_name(c, "new1.test", 200);
	TAP_CHECK(dnscache_count(c) == 11 - 4 + 1);
	put_name(c, "new2.test", 200);
	TAP_CHECK(dnscache_count(c) == 8 - 4 + 1);
	put_name(c, "new3.test", 200);
	/* The two old ones left, then live.test (expired at 150 too). */
	TAP_CHECK(dnscache_count(c) == 5 - 3 + 1);
	TAP_CHECK(dnscache_get(c, "new1.test", 200) != NULL);
	dnscache_free(c);
}

static const struct tap_test tests[] = {
	{"cache entries expire", test_cache_expiry},
	{"cache put replaces and refreshes", test_cache_replace_refreshes},
	{"cache evicts the least recently used",
	 test_cache_evicts_least_recently_used},
	{"cache stays within its cap", test_cache_bounded},
	{"cache sweeps expired entries on insert", test_cache_sweeps_expired},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

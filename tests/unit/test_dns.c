/* Unit tests for the DNS cache (address order, expiry, least recently used
 * eviction) and for freeing the resolver with lookups still in flight (run
 * it in the ASan build: LeakSanitizer is what checks the latter). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

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

static union dns_sockaddr one_addr(const char *text)
{
	const char *list[] = {text, NULL};

	return addrs_of(list).addr[0];
}

static void test_order_interleaves_families(void)
{
	const char *list[] = {"10.0.0.1", "10.0.0.2", "fd00::1",
			      "fd00::2",  "10.0.0.3", NULL};
	struct dns_addrs a = addrs_of(list);

	TAP_CHECK(!dnscache_order(&a, NULL));
	TAP_CHECK_STR(addrs_text(&a),
		      "10.0.0.1 fd00::1 10.0.0.2 fd00::2 10.0.0.3");
}

static void test_order_first_family_leads(void)
{
	const char *list[] = {"fd00::1", "10.0.0.1", "10.0.0.2", NULL};
	struct dns_addrs a = addrs_of(list);

	dnscache_order(&a, NULL);
	TAP_CHECK_STR(addrs_text(&a), "fd00::1 10.0.0.1 10.0.0.2");
}

static void test_order_preferred_address_leads(void)
{
	const char *list[] = {"10.0.0.1", "10.0.0.2", "fd00::1", "fd00::2",
			      NULL};
	struct dns_addrs a = addrs_of(list);
	union dns_sockaddr want = one_addr("fd00::2");

	/* The port does not matter. */
	want.in6.sin6_port = htons(8080);
	TAP_CHECK(dnscache_order(&a, &want));
	TAP_CHECK_STR(addrs_text(&a), "fd00::2 10.0.0.1 fd00::1 10.0.0.2");

	want = one_addr("10.0.0.2");
	TAP_CHECK(dnscache_order(&a, &want));
	TAP_CHECK_STR(addrs_text(&a), "10.0.0.2 fd00::2 10.0.0.1 fd00::1");

	/* Not among them: the order stays as it was. */
	want = one_addr("10.9.9.9");
	TAP_CHECK(!dnscache_order(&a, &want));
	TAP_CHECK_STR(addrs_text(&a), "10.0.0.2 fd00::2 10.0.0.1 fd00::1");

	struct dns_addrs none;
	memset(&none, 0, sizeof none);
	TAP_CHECK(!dnscache_order(&none, &want));
	TAP_CHECK(none.n == 0);
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

static void test_cache_prefer(void)
{
	const char *list[] = {"10.0.0.1", "10.0.0.2", "fd00::1", NULL};
	struct dns_addrs a = addrs_of(list);
	struct dnscache *c = dnscache_new(10, 60000);
	union dns_sockaddr worked = one_addr("fd00::1");
	const struct dns_addrs *got;

	dnscache_put(c, "a.test", &a, 0);
	dnscache_prefer(c, "a.test", &worked);
	dnscache_prefer(c, "absent.test", &worked);
	got = dnscache_get(c, "a.test", 1);
	TAP_CHECK(got != NULL);
	if (got != NULL)
		TAP_CHECK_STR(addrs_text(got), "fd00::1 10.0.0.1 10.0.0.2");
	TAP_CHECK(dnscache_count(c) == 1);
	dnscache_free(c);
}

/* libevent 2.1 loses the evdns structures of lookups still in flight when
 * the resolver is freed (it frees them only when answering).  They point
 * at gatherd's own lookups, which would hide a leak of those from
 * LeakSanitizer; so libevent allocates through these functions, which keep
 * its live blocks on a list, and the test frees what libevent leaves. */
union ev_block {
	struct {
		union ev_block *prev, *next;
	} link;
	max_align_t align;
};

static union ev_block ev_blocks = {.link = {&ev_blocks, &ev_blocks}};

static void ev_block_link(union ev_block *b)
{
	b->link.prev = &ev_blocks;
	b->link.next = ev_blocks.link.next;
	b->link.next->link.prev = b;
	ev_blocks.link.next = b;
}

static void ev_block_unlink(union ev_block *b)
{
	b->link.prev->link.next = b->link.next;
	b->link.next->link.prev = b->link.prev;
}

static void *ev_malloc(size_t n)
{
	union ev_block *b = malloc(sizeof *b + n);

	if (b == NULL)
		return NULL;
	ev_block_link(b);
	return b + 1;
}

static void *ev_realloc(void *p, size_t n)
{
	union ev_block *b, *nb;

	if (p == NULL)
		return ev_malloc(n);
	b = (union ev_block *)p - 1;
	ev_block_unlink(b);
	nb = realloc(b, sizeof *nb + n);
	if (nb == NULL) {
		ev_block_link(b);
		return NULL;
	}
	ev_block_link(nb);
	return nb + 1;
}

static void ev_free(void *p)
{
	union ev_block *b;

	if (p == NULL)
		return;
	b = (union ev_block *)p - 1;
	ev_block_unlink(b);
	free(b);
}

/* Free every block libevent still holds; returns how many there were. */
static int ev_free_all(void)
{
	int n = 0;

	while (ev_blocks.link.next != &ev_blocks) {
		union ev_block *b = ev_blocks.link.next;

		ev_block_unlink(b);
		free(b);
		n++;
	}
	return n;
}

static int delivered;

static void count_cb(void *arg, const struct dns_addrs *addrs,
		     const char *error)
{
	(void)arg;
	(void)addrs;
	(void)error;
	delivered++;
}

/* dns_free() with lookups waiting for a nameserver that never answers:
 * nothing is delivered, and (under LeakSanitizer) nothing leaks. */
static void test_free_with_lookups_in_flight(void)
{
	struct event_base *base = event_base_new();
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	char ns[64], *cause = NULL, buf[512];
	struct dns *d;
	struct dns_req *r;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (base == NULL || s < 0 ||
	    bind(s, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) != 0)
		abort();
	snprintf(ns, sizeof ns, "127.0.0.1:%u", ntohs(sin.sin_port));
	d = dns_new(base, ns, 5000, 60, &cause);
	TAP_CHECK(d != NULL);
	if (d == NULL) {
		printf("# dns_new: %s\n", cause);
		free(cause);
		return;
	}
	delivered = 0;
	TAP_CHECK(dns_resolve(d, "one.test", count_cb, NULL) != NULL);
	r = dns_resolve(d, "one.test", count_cb, NULL); /* coalesced */
	TAP_CHECK(r != NULL);
	dns_cancel(r); /* a lookup may be left with no waiter at all */
	r = dns_resolve(d, "two.test", count_cb, NULL);
	TAP_CHECK(r != NULL);
	dns_cancel(r);
	event_base_loop(base, EVLOOP_NONBLOCK);
	/* The queries really went out, so the lookups are in flight. */
	TAP_CHECK(recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0);
	TAP_CHECK(dns_queries(d) == 2);
	dns_free(d);
	event_base_free(base);
	close(s);
	TAP_CHECK(delivered == 0);
	printf("# libevent left %d blocks\n", ev_free_all());
}

static const struct tap_test tests[] = {
	{"order alternates the families", test_order_interleaves_families},
	{"order keeps the first family first", test_order_first_family_leads},
	{"order puts a preferred address first",
	 test_order_preferred_address_leads},
	{"cache entries expire", test_cache_expiry},
	{"cache put replaces and refreshes", test_cache_replace_refreshes},
	{"cache evicts the least recently used",
	 test_cache_evicts_least_recently_used},
	{"cache stays within its cap", test_cache_bounded},
	{"cache sweeps expired entries on insert", test_cache_sweeps_expired},
	{"cache keeps what connected first", test_cache_prefer},
	{"dns_free with lookups in flight", test_free_with_lookups_in_flight},
	{NULL, NULL},
};

int main(void)
{
	/* Before libevent allocates anything. */
	event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
	return tap_main(tests);
}

/* Unit tests for shard.c.  The expected shards were computed apart from
 * gatherd (FNV-1a 32 of the host name, modulo 1024, in a few lines of
 * Python): the function is part of the database format, so a change to it
 * must fail here. */
#include <stdio.h>
#include <string.h>

#include "shard.h"
#include "tap.h"

static int shard(const char *url)
{
	return shard_of_url(url, strlen(url));
}

static void test_known_values(void)
{
	TAP_CHECK(shard("http://example.com/") == 806);
	TAP_CHECK(shard("http://127.0.0.1:8080/x") == 286);
	TAP_CHECK(shard("http://[::1]:8080/") == 140);
	TAP_CHECK(shard("https://a/") == 300);
}

/* The host decides, whatever the scheme, port, case, user or path. */
static void test_host_only(void)
{
	int s = shard("http://example.com/");

	TAP_CHECK(shard("https://EXAMPLE.com:8443/a?b#c") == s);
	TAP_CHECK(shard("http://Example.COM/") == s);
	TAP_CHECK(shard("http://example.com:80") == s);
}

/* An international name is sharded by its A-labels, as it is fetched. */
static void test_international(void)
{
	TAP_CHECK(shard("http://b\xc3\xbc" "cher.example/") == 596);
	TAP_CHECK(shard("http://xn--bcher-kva.example/") == 596);
}

/* What is no http(s) URL goes to shard 0; every shard is in range. */
static void test_invalid_and_range(void)
{
	char url[64];
	int bad = 0;

	TAP_CHECK(shard("not a url") == 0);
	TAP_CHECK(shard("ftp://example.com/") == 0);
	TAP_CHECK(shard("") == 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(url, sizeof url, "http://host%d.test/", i);
		int s = shard(url);
		if (s < 0 || s >= SHARD_COUNT)
			bad++;
	}
	TAP_CHECK(bad == 0);
}

static const struct tap_test tests[] = {
	{"known_values", test_known_values},
	{"host_only", test_host_only},
	{"international", test_international},
	{"invalid_and_range", test_invalid_and_range},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

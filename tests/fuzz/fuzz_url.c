/* libFuzzer target for url.c: parse, format, re-parse and resolve arbitrary
 * input, checking the invariants the rest of gatherd relies on (a parsed
 * URL formats to a string that parses back to the same URL, and nothing in
 * it can break a request line or a Host header). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static void check_clean(const char *s)
{
	for (; *s != '\0'; s++)
		CHECK((unsigned char)*s > 0x20 && *s != 0x7f);
}

/* Everything a successful parse promises, and the format round trip. */
static void check_url(const struct url *u)
{
	char buf[URL_MAX_LEN + 400];
	struct url again;
	const char *reason = NULL;
	int n;

	CHECK(u->scheme == URL_HTTP || u->scheme == URL_HTTPS);
	CHECK(u->port != 0);
	CHECK(u->host[0] != '\0');
	CHECK(u->target[0] == '/');
	CHECK(strchr(u->target, '#') == NULL);
	CHECK(!(u->host_is_ipv4 && u->host_is_ipv6));
	check_clean(u->host);
	check_clean(u->authority);
	check_clean(u->target);
	for (const char *p = u->host; *p != '\0'; p++)
		CHECK(!(*p >= 'A' && *p <= 'Z') && (unsigned char)*p < 0x80);

	n = url_format(u, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n == strlen(buf));
	/* A target that grew a "/" may be one byte over the limit. */
	if (n > URL_MAX_LEN)
		return;
	CHECK(url_parse(buf, (size_t)n, &again, &reason) == 0);
	CHECK(again.scheme == u->scheme && again.port == u->port);
	CHECK(again.host_is_ipv4 == u->host_is_ipv4);
	CHECK(again.host_is_ipv6 == u->host_is_ipv6);
	CHECK(strcmp(again.host, u->host) == 0);
	CHECK(strcmp(again.authority, u->authority) == 0);
	CHECK(strcmp(again.target, u->target) == 0);
}

/* The compact parse agrees with the full one on everything, and its
 * NORMAL flag says exactly whether the text is already the formatted
 * form. */
static void check_ref(const char *s, size_t size, const struct url *u)
{
	char buf[URL_MAX_LEN + 400], b2[URL_MAX_LEN + 400];
	const char *reason = NULL;
	struct url_ref r;
	struct url from;

	CHECK(url_parse_ref(s, size, &r, &reason) == 0);
	url_from_ref(&r, s, &from);
	CHECK(from.scheme == u->scheme && from.port == u->port);
	CHECK(strcmp(from.host, u->host) == 0);
	CHECK(strcmp(from.authority, u->authority) == 0);
	CHECK(strcmp(from.target, u->target) == 0);
	int n = url_ref_format(&r, s, buf, sizeof buf);
	CHECK(n > 0 && url_format(u, b2, sizeof b2) == n &&
	      memcmp(buf, b2, (size_t)n) == 0);
	bool same = (size_t)n == size && memcmp(buf, s, size) == 0;
	CHECK(same == ((r.flags & URL_REF_NORMAL) != 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char base_s[] = "https://a:8443/b/c/d;p?q";
	const char *s = (const char *)data;
	const char *reason = NULL;
	struct url u, base, out;

	if (url_parse(s, size, &u, &reason) == 0) {
		check_url(&u);
		check_ref(s, size, &u);
		/* Resolving a URL against itself... */
		if (url_resolve(&u, "", 0, &out, &reason) == 0)
			check_url(&out);
		/* ...and resolving the input as a reference against it. */
		if (url_resolve(&u, s, size, &out, &reason) == 0)
			check_url(&out);
	} else {
		struct url_ref r;
		const char *why = NULL;

		CHECK(reason != NULL && reason[0] != '\0');
		CHECK(url_parse_ref(s, size, &r, &why) == -1 &&
		      strcmp(why, reason) == 0);
	}

	if (url_parse(base_s, sizeof(base_s) - 1, &base, &reason) != 0)
		abort();
	if (url_resolve(&base, s, size, &out, &reason) == 0)
		check_url(&out);
	else
		CHECK(reason != NULL && reason[0] != '\0');
	return 0;
}

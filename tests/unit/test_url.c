/* Unit tests for url.c: parsing, formatting and reference resolution. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "url.h"

/* Record a failed check with a message saying what went wrong. */
#define FAIL(msg)                                                              \
	do {                                                                   \
		printf("# %s\n", (msg));                                       \
		TAP_CHECK(0);                                                  \
	} while (0)

/* A URL that must parse, and every field it must parse into. */
struct valid_case {
	const char *in;
	enum url_scheme scheme;
	const char *host;
	uint16_t port;
	bool port_explicit;
	bool ipv4;
	bool ipv6;
	const char *authority;
	const char *target;
	const char *formatted;
};

static const struct valid_case valid_cases[] = {
    {"http://example.com", URL_HTTP, "example.com", 80, false, false, false,
     "example.com", "/", "http://example.com/"},
    {"https://example.com/", URL_HTTPS, "example.com", 443, false, false, false,
     "example.com", "/", "https://example.com/"},
    {"HTTP://Example.COM/Path/To?Q=Upper", URL_HTTP, "example.com", 80, false,
     false, false, "example.com", "/Path/To?Q=Upper",
     "http://example.com/Path/To?Q=Upper"},
    {"hTtPs://WWW.Example.org", URL_HTTPS, "www.example.org", 443, false, false,
     false, "www.example.org", "/", "https://www.example.org/"},
    {"http://example.com:8080/x", URL_HTTP, "example.com", 8080, true, false,
     false, "example.com:8080", "/x", "http://example.com:8080/x"},
    /* An explicit default port is not repeated in the authority. */
    {"http://example.com:80/x", URL_HTTP, "example.com", 80, true, false, false,
     "example.com", "/x", "http://example.com/x"},
    {"https://example.com:443", URL_HTTPS, "example.com", 443, true, false,
     false, "example.com", "/", "https://example.com/"},
    /* ...but the other scheme's default is not a default. */
    {"https://example.com:80/", URL_HTTPS, "example.com", 80, true, false,
     false, "example.com:80", "/", "https://example.com:80/"},
    {"http://example.com:443/", URL_HTTP, "example.com", 443, true, false,
     false, "example.com:443", "/", "http://example.com:443/"},
    {"http://h:65535/", URL_HTTP, "h", 65535, true, false, false, "h:65535",
     "/", "http://h:65535/"},
    {"http://h:1", URL_HTTP, "h", 1, true, false, false, "h:1", "/",
     "http://h:1/"},
    {"http://h:0080/", URL_HTTP, "h", 80, true, false, false, "h", "/",
     "http://h/"},
    /* An empty port means the default one. */
    {"http://h:/p", URL_HTTP, "h", 80, false, false, false, "h", "/p",
     "http://h/p"},
    {"http://h:?q", URL_HTTP, "h", 80, false, false, false, "h", "/?q",
     "http://h/?q"},
    /* Query without a path gets "/" in front of it. */
    {"http://h?x=1", URL_HTTP, "h", 80, false, false, false, "h", "/?x=1",
     "http://h/?x=1"},
    {"http://h:81?x=1&y=2", URL_HTTP, "h", 81, true, false, false, "h:81",
     "/?x=1&y=2", "http://h:81/?x=1&y=2"},
    {"http://h/?", URL_HTTP, "h", 80, false, false, false, "h", "/?",
     "http://h/?"},
    /* Fragments are dropped, wherever they start. */
    {"http://h/p?q#frag", URL_HTTP, "h", 80, false, false, false, "h", "/p?q",
     "http://h/p?q"},
    {"http://h#frag", URL_HTTP, "h", 80, false, false, false, "h", "/",
     "http://h/"},
    {"http://h/p#f?notquery", URL_HTTP, "h", 80, false, false, false, "h", "/p",
     "http://h/p"},
    {"http://h:8080#", URL_HTTP, "h", 8080, true, false, false, "h:8080", "/",
     "http://h:8080/"},
    /* Path and query are kept byte for byte. */
    {"http://h/a%20b/%7Euser?q=%2F%zz&a=b;c", URL_HTTP, "h", 80, false, false,
     false, "h", "/a%20b/%7Euser?q=%2F%zz&a=b;c",
     "http://h/a%20b/%7Euser?q=%2F%zz&a=b;c"},
    {"http://h/a/../b/./c//d", URL_HTTP, "h", 80, false, false, false, "h",
     "/a/../b/./c//d", "http://h/a/../b/./c//d"},
    {"http://h/\xc3\xa9t\xc3\xa9?\xff", URL_HTTP, "h", 80, false, false, false,
     "h", "/\xc3\xa9t\xc3\xa9?\xff", "http://h/\xc3\xa9t\xc3\xa9?\xff"},
    {"http://h/[]{}|\\^`\"<>@:!$&'()*+,;=~", URL_HTTP, "h", 80, false, false,
     false, "h", "/[]{}|\\^`\"<>@:!$&'()*+,;=~",
     "http://h/[]{}|\\^`\"<>@:!$&'()*+,;=~"},
    /* Host shapes. */
    {"http://example.com./", URL_HTTP, "example.com.", 80, false, false, false,
     "example.com.", "/", "http://example.com./"},
    {"http://my_host-1.example/", URL_HTTP, "my_host-1.example", 80, false,
     false, false, "my_host-1.example", "/", "http://my_host-1.example/"},
    {"http://localhost/", URL_HTTP, "localhost", 80, false, false, false,
     "localhost", "/", "http://localhost/"},
    {"http://1e100.net/", URL_HTTP, "1e100.net", 80, false, false, false,
     "1e100.net", "/", "http://1e100.net/"},
    {"http://123.example/", URL_HTTP, "123.example", 80, false, false, false,
     "123.example", "/", "http://123.example/"},
    {"http://192.168.1.10/x", URL_HTTP, "192.168.1.10", 80, false, true, false,
     "192.168.1.10", "/x", "http://192.168.1.10/x"},
    {"http://0.0.0.0:8080", URL_HTTP, "0.0.0.0", 8080, true, true, false,
     "0.0.0.0:8080", "/", "http://0.0.0.0:8080/"},
    {"https://255.255.255.255/", URL_HTTPS, "255.255.255.255", 443, false, true,
     false, "255.255.255.255", "/", "https://255.255.255.255/"},
    {"http://[::1]/", URL_HTTP, "::1", 80, false, false, true, "[::1]", "/",
     "http://[::1]/"},
    {"http://[::1]:8080/x?y", URL_HTTP, "::1", 8080, true, false, true,
     "[::1]:8080", "/x?y", "http://[::1]:8080/x?y"},
    {"https://[2001:DB8::A]:443", URL_HTTPS, "2001:db8::a", 443, true, false,
     true, "[2001:db8::a]", "/", "https://[2001:db8::a]/"},
    {"http://[::ffff:192.0.2.1]", URL_HTTP, "::ffff:192.0.2.1", 80, false,
     false, true, "[::ffff:192.0.2.1]", "/", "http://[::ffff:192.0.2.1]/"},
    {"http://[::1]:/", URL_HTTP, "::1", 80, false, false, true, "[::1]", "/",
     "http://[::1]/"},
    {"http://[::1]?q", URL_HTTP, "::1", 80, false, false, true, "[::1]", "/?q",
     "http://[::1]/?q"},
    /* An '@' after the authority is only a path byte. */
    {"http://h/user@x", URL_HTTP, "h", 80, false, false, false, "h", "/user@x",
     "http://h/user@x"},
};

static void check_valid(const struct valid_case *c)
{
	struct url u, again;
	const char *reason = NULL;
	char buf[URL_MAX_LEN + 64];
	int n;

	if (url_parse(c->in, strlen(c->in), &u, &reason) != 0) {
		printf("# %s: rejected: %s\n", c->in, reason);
		FAIL("valid URL rejected");
		return;
	}
	TAP_CHECK(u.scheme == c->scheme);
	TAP_CHECK_STR(u.host, c->host);
	TAP_CHECK(u.port == c->port);
	TAP_CHECK(u.port_explicit == c->port_explicit);
	TAP_CHECK(u.host_is_ipv4 == c->ipv4);
	TAP_CHECK(u.host_is_ipv6 == c->ipv6);
	TAP_CHECK_STR(u.authority, c->authority);
	TAP_CHECK_STR(u.target, c->target);
	n = url_format(&u, buf, sizeof(buf));
	TAP_CHECK(n == (int)strlen(c->formatted));
	TAP_CHECK_STR(buf, c->formatted);

	/* The compact parse: the same parts, as offsets into the text, and
	 * NORMAL exactly when the text is already the formatted form. */
	struct url_ref r;
	char rb[URL_MAX_LEN + 64], host[256];
	TAP_CHECK(url_parse_ref(c->in, strlen(c->in), &r, &reason) == 0);
	TAP_CHECK(url_ref_format(&r, c->in, rb, sizeof rb) == n);
	TAP_CHECK_STR(rb, c->formatted);
	TAP_CHECK(url_ref_host(&r, c->in, host, sizeof host) ==
		  (int)strlen(c->host));
	TAP_CHECK_STR(host, c->host);
	TAP_CHECK(url_ref_authority(&r, c->in, rb, sizeof rb) ==
		  (int)strlen(c->authority));
	TAP_CHECK_STR(rb, c->authority);
	TAP_CHECK(r.port == c->port && r.scheme == (uint8_t)c->scheme);
	TAP_CHECK(((r.flags & URL_REF_NORMAL) != 0) ==
		  (strcmp(c->in, c->formatted) == 0));

	/* The formatted form is a fixed point: parsing it again gives the
	 * same host, authority, port and target. */
	if (url_parse(buf, (size_t)n, &again, &reason) != 0) {
		FAIL("formatted URL rejected");
		return;
	}
	TAP_CHECK(again.scheme == u.scheme);
	TAP_CHECK(again.port == u.port);
	TAP_CHECK_STR(again.host, u.host);
	TAP_CHECK_STR(again.authority, u.authority);
	TAP_CHECK_STR(again.target, u.target);
	TAP_CHECK(again.host_is_ipv4 == u.host_is_ipv4);
	TAP_CHECK(again.host_is_ipv6 == u.host_is_ipv6);
}

static void test_valid(void)
{
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]);
	     i++)
		check_valid(&valid_cases[i]);
}

/* Parsing honours `len`: bytes after it, even invalid ones, are unseen. */
static void test_len_not_nul(void)
{
	const char s[] = "http://h/abc def";
	struct url u;
	const char *reason = NULL;

	TAP_CHECK(url_parse(s, 12, &u, &reason) == 0);
	TAP_CHECK_STR(u.target, "/abc");
	TAP_CHECK(url_parse(s, 9, &u, &reason) == 0);
	TAP_CHECK_STR(u.target, "/");
	TAP_CHECK(url_parse(s, 8, &u, &reason) == 0);
	TAP_CHECK_STR(u.host, "h");
	TAP_CHECK(url_parse(s, sizeof(s) - 1, &u, &reason) == -1);
}

struct invalid_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *reason;
};

static const struct invalid_case invalid_cases[] = {
    {"", 0, "missing scheme"},
    {"example.com/x", 0, "missing scheme"},
    {"//example.com/x", 0, "missing scheme"},
    {"/relative", 0, "missing scheme"},
    {"1http://h/", 0, "missing scheme"},
    {"ftp://h/", 0, "unsupported scheme"},
    {"httpx://h/", 0, "unsupported scheme"},
    {"htt://h/", 0, "unsupported scheme"},
    {"mailto:a@b", 0, "unsupported scheme"},
    {"ws://h/", 0, "unsupported scheme"},
    {"http:", 0, "missing host"},
    {"http:/h/x", 0, "missing host"},
    {"http:h/x", 0, "missing host"},
    {"http://", 0, "missing host"},
    {"http:///x", 0, "missing host"},
    {"http://?q", 0, "missing host"},
    {"http://#f", 0, "missing host"},
    {"http://:80/", 0, "missing host"},
    {"http://./", 0, "missing host"},
    {"http://user@h/", 0, "userinfo not supported"},
    {"http://user:pw@h/", 0, "userinfo not supported"},
    {"http://@h/", 0, "userinfo not supported"},
    {"http://[::1]@h/", 0, "userinfo not supported"},
    {"http://h:0/", 0, "invalid port"},
    {"http://h:00/", 0, "invalid port"},
    {"http://h:65536/", 0, "invalid port"},
    {"http://h:99999999999999999999/", 0, "invalid port"},
    {"http://h:8o/", 0, "invalid port"},
    {"http://h:-1/", 0, "invalid port"},
    {"http://h:+80/", 0, "invalid port"},
    {"http://h:80:80/", 0, "invalid port"},
    {"http://[::1]x/", 0, "invalid port"},
    {"http://[::1]:x/", 0, "invalid port"},
    {"http://[::1]:0/", 0, "invalid port"},
    {"http://h%41/", 0, "invalid character in host"},
    {"http://h!/", 0, "invalid character in host"},
    {"http://a,b/", 0, "invalid character in host"},
    {"http://a\\b/", 0, "invalid character in host"},
    {"http://a[b]/", 0, "invalid character in host"},
    {"http://::1/", 0, "missing host"},
    {"http://ex\xc3\xa4mple.com/", 0, "non-ASCII host"},
    {"http://\xff/", 0, "non-ASCII host"},
    {"http://a..b/", 0, "empty label in host"},
    {"http://.a/", 0, "empty label in host"},
    {"http://a../", 0, "empty label in host"},
    {"http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     ".example/",
     0, "host label longer than 63 bytes"},
    {"http://1.2.3/", 0, "invalid IPv4 address"},
    {"http://1.2.3.4.5/", 0, "invalid IPv4 address"},
    {"http://999.1.1.1/", 0, "invalid IPv4 address"},
    {"http://256.1.1.1/", 0, "invalid IPv4 address"},
    {"http://1.2.3.4./", 0, "invalid IPv4 address"},
    {"http://01.2.3.4/", 0, "invalid IPv4 address"},
    {"http://1.2.3.0004/", 0, "invalid IPv4 address"},
    {"http://127.1/", 0, "invalid IPv4 address"},
    {"http://2130706433/", 0, "invalid IPv4 address"},
    {"http://0x7f.0.0.1/", 0, "invalid IPv4 address"},
    {"http://0x7f000001/", 0, "invalid IPv4 address"},
    {"http://example.123/", 0, "invalid IPv4 address"},
    {"http://a.b.c.1/", 0, "invalid IPv4 address"},
    {"http://[::1/", 0, "invalid IPv6 address"},
    {"http://[]/", 0, "invalid IPv6 address"},
    {"http://[1.2.3.4]/", 0, "invalid IPv6 address"},
    {"http://[::g]/", 0, "invalid IPv6 address"},
    {"http://[1:2:3:4:5:6:7:8:9]/", 0, "invalid IPv6 address"},
    {"http://[fe80::1%25eth0]/", 0, "invalid IPv6 address"},
    {"http://[0000:0000:0000:0000:0000:0000:0000:0000:0]/", 0,
     "invalid IPv6 address"},
    {"http://h/a b", 0, "space or control character in URL"},
    {"http://h/a\tb", 0, "space or control character in URL"},
    {"http://h/a\rb", 0, "space or control character in URL"},
    {"http://h/a\nb", 0, "space or control character in URL"},
    {"http://h/a\x7f", 0, "space or control character in URL"},
    {"http://h/#a b", 0, "space or control character in URL"},
    {"http://h/?a b", 0, "space or control character in URL"},
    {" http://h/", 0, "missing scheme"},
    {"not a url", 0, "missing scheme"},
    {"http://h/ ", 0, "space or control character in URL"},
    {"http://h\x01/", 0, "space or control character in URL"},
    {"http://h/a\0b", 12, "space or control character in URL"},
    {"http\0://h/", 10, "missing scheme"},
};

static void test_invalid(void)
{
	for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]);
	     i++) {
		const struct invalid_case *c = &invalid_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		struct url u;
		const char *reason = NULL;

		memset(&u, 0x55, sizeof(u));
		if (url_parse(c->in, len, &u, &reason) != -1) {
			printf("# accepted: %s\n", c->in);
			FAIL("invalid URL accepted");
			continue;
		}
		if (reason == NULL || strcmp(reason, c->reason) != 0)
			printf("# for %s:\n", c->in);
		TAP_CHECK_STR(reason, c->reason);
		/* Nothing half-parsed is left behind. */
		TAP_CHECK(u.host[0] == '\0' && u.target[0] == '\0' &&
			  u.authority[0] == '\0');
	}
}

/* Build "http://<host>/" with a host of `len` bytes made of 63-byte
 * labels. */
static void make_host(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (i % 64 == 63) ? '.' : 'a';
	buf[len] = '\0';
}

static void test_host_limits(void)
{
	char host[300], s[400];
	struct url u;
	const char *reason = NULL;

	/* 63-byte label passes, 64 fails (checked in the invalid table). */
	make_host(host, 63);
	snprintf(s, sizeof(s), "http://%s/", host);
	TAP_CHECK(url_parse(s, strlen(s), &u, &reason) == 0);
	TAP_CHECK(strlen(u.host) == 63);

	/* 253 bytes is the longest name; a trailing dot may follow. */
	make_host(host, 253);
	TAP_CHECK(host[252] != '.');
	snprintf(s, sizeof(s), "http://%s:8080/", host);
	TAP_CHECK(url_parse(s, strlen(s), &u, &reason) == 0);
	TAP_CHECK_STR(u.host, host);
	TAP_CHECK(strlen(u.authority) == 253 + 5);
	snprintf(s, sizeof(s), "http://%s./", host);
	TAP_CHECK(url_parse(s, strlen(s), &u, &reason) == 0);
	TAP_CHECK(strlen(u.host) == 254);

	make_host(host, 254);
	if (host[253] == '.')
		host[253] = 'a';
	snprintf(s, sizeof(s), "http://%s/", host);
	TAP_CHECK(url_parse(s, strlen(s), &u, &reason) == -1);
	TAP_CHECK_STR(reason, "host longer than 253 bytes");
}

/* The whole URL, fragment included, is bounded by URL_MAX_LEN. */
static void test_length_limit(void)
{
	char *s = malloc(URL_MAX_LEN + 2);
	struct url u;
	const char *reason = NULL;
	char out[URL_MAX_LEN + 1];

	memcpy(s, "http://h/", 9);
	memset(s + 9, 'a', URL_MAX_LEN + 1 - 9);
	TAP_CHECK(url_parse(s, URL_MAX_LEN, &u, &reason) == 0);
	TAP_CHECK(strlen(u.target) == URL_MAX_LEN - 8);
	TAP_CHECK(url_format(&u, out, sizeof(out)) == URL_MAX_LEN);
	TAP_CHECK(memcmp(out, s, URL_MAX_LEN) == 0);
	/* One byte short of room for the NUL. */
	TAP_CHECK(url_format(&u, out, URL_MAX_LEN) == -1);

	TAP_CHECK(url_parse(s, URL_MAX_LEN + 1, &u, &reason) == -1);
	TAP_CHECK_STR(reason, "URL longer than 8192 bytes");

	/* The longest target: a query right after the host gets a "/". */
	memcpy(s, "http://h?", 9);
	TAP_CHECK(url_parse(s, URL_MAX_LEN, &u, &reason) == 0);
	TAP_CHECK(strlen(u.target) == URL_MAX_LEN - 7);
	TAP_CHECK(u.target[0] == '/' && u.target[1] == '?');

	/* A fragment counts towards the limit even though it is dropped. */
	memcpy(s, "http://h/#", 10);
	TAP_CHECK(url_parse(s, URL_MAX_LEN + 1, &u, &reason) == -1);
	TAP_CHECK(url_parse(s, URL_MAX_LEN, &u, &reason) == 0);
	TAP_CHECK_STR(u.target, "/");
	free(s);
}

static void test_format_small_buffer(void)
{
	struct url u;
	const char *reason = NULL;
	char buf[32];

	TAP_CHECK(url_parse("https://h:8443/abc", 18, &u, &reason) == 0);
	/* "https://h:8443/abc" is 18 bytes: 19 with the NUL. */
	TAP_CHECK(url_format(&u, buf, 19) == 18);
	TAP_CHECK_STR(buf, "https://h:8443/abc");
	TAP_CHECK(url_format(&u, buf, 18) == -1);
	TAP_CHECK(url_format(&u, buf, 0) == -1);
}

struct resolve_case {
	const char *ref;
	const char *want; /* NULL: must fail */
	const char *reason;
};

/* RFC 3986 section 5.4.1, with fragments dropped and "//g" given its "/"
 * path, as gatherd's target always has one. */
static const struct resolve_case rfc_normal[] = {
    {"g:h", NULL, "unsupported scheme"},
    {"g", "http://a/b/c/g", NULL},
    {"./g", "http://a/b/c/g", NULL},
    {"g/", "http://a/b/c/g/", NULL},
    {"/g", "http://a/g", NULL},
    {"//g", "http://g/", NULL},
    {"?y", "http://a/b/c/d;p?y", NULL},
    {"g?y", "http://a/b/c/g?y", NULL},
    {"#s", "http://a/b/c/d;p?q", NULL},
    {"g#s", "http://a/b/c/g", NULL},
    {"g?y#s", "http://a/b/c/g?y", NULL},
    {";x", "http://a/b/c/;x", NULL},
    {"g;x", "http://a/b/c/g;x", NULL},
    {"g;x?y#s", "http://a/b/c/g;x?y", NULL},
    {"", "http://a/b/c/d;p?q", NULL},
    {".", "http://a/b/c/", NULL},
    {"./", "http://a/b/c/", NULL},
    {"..", "http://a/b/", NULL},
    {"../", "http://a/b/", NULL},
    {"../g", "http://a/b/g", NULL},
    {"../..", "http://a/", NULL},
    {"../../", "http://a/", NULL},
    {"../../g", "http://a/g", NULL},
};

/* RFC 3986 section 5.4.2.  "http:g" is the strict parser's "http:g", which
 * has no host. */
static const struct resolve_case rfc_abnormal[] = {
    {"../../../g", "http://a/g", NULL},
    {"../../../../g", "http://a/g", NULL},
    {"/./g", "http://a/g", NULL},
    {"/../g", "http://a/g", NULL},
    {"g.", "http://a/b/c/g.", NULL},
    {".g", "http://a/b/c/.g", NULL},
    {"g..", "http://a/b/c/g..", NULL},
    {"..g", "http://a/b/c/..g", NULL},
    {"./../g", "http://a/b/g", NULL},
    {"./g/.", "http://a/b/c/g/", NULL},
    {"g/./h", "http://a/b/c/g/h", NULL},
    {"g/../h", "http://a/b/c/h", NULL},
    {"g;x=1/./y", "http://a/b/c/g;x=1/y", NULL},
    {"g;x=1/../y", "http://a/b/c/y", NULL},
    {"g?y/./x", "http://a/b/c/g?y/./x", NULL},
    {"g?y/../x", "http://a/b/c/g?y/../x", NULL},
    {"g#s/./x", "http://a/b/c/g", NULL},
    {"g#s/../x", "http://a/b/c/g", NULL},
    {"http:g", NULL, "missing host"},
};

static void check_resolve(const char *base, const struct resolve_case *c,
			  size_t n)
{
	struct url b, out;
	const char *reason = NULL;
	char buf[URL_MAX_LEN + 64];

	if (url_parse(base, strlen(base), &b, &reason) != 0) {
		FAIL("base rejected");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int rc =
		    url_resolve(&b, c[i].ref, strlen(c[i].ref), &out, &reason);

		if (c[i].want == NULL) {
			if (rc != -1)
				printf("# %s + %s resolved\n", base, c[i].ref);
			TAP_CHECK(rc == -1);
			TAP_CHECK_STR(reason, c[i].reason);
			continue;
		}
		if (rc != 0) {
			printf("# %s + %s: %s\n", base, c[i].ref, reason);
			FAIL("resolve failed");
			continue;
		}
		TAP_CHECK(url_format(&out, buf, sizeof(buf)) ==
			  (int)strlen(c[i].want));
		if (strcmp(buf, c[i].want) != 0)
			printf("# %s + \"%s\":\n", base, c[i].ref);
		TAP_CHECK_STR(buf, c[i].want);
	}
}

static void test_resolve_rfc_normal(void)
{
	check_resolve("http://a/b/c/d;p?q", rfc_normal,
		      sizeof(rfc_normal) / sizeof(rfc_normal[0]));
}

static void test_resolve_rfc_abnormal(void)
{
	check_resolve("http://a/b/c/d;p?q", rfc_abnormal,
		      sizeof(rfc_abnormal) / sizeof(rfc_abnormal[0]));
}

static const struct resolve_case https_port_cases[] = {
    {"g", "https://a:8443/b/c/g", NULL},
    {"/g?x", "https://a:8443/g?x", NULL},
    {"?y", "https://a:8443/b/c/d;p?y", NULL},
    {"#f", "https://a:8443/b/c/d;p?q", NULL},
    {"", "https://a:8443/b/c/d;p?q", NULL},
    /* Scheme-relative: the scheme stays, the port is the new one's. */
    {"//g", "https://g/", NULL},
    {"//g:8443/x/../y", "https://g:8443/y", NULL},
    {"//G:443", "https://g/", NULL},
    {"//[::1]:9/p", "https://[::1]:9/p", NULL},
    /* Absolute references replace everything; dot segments go. */
    {"http://other/x/./y/../z", "http://other/x/z", NULL},
    {"HTTP://Other:80/", "http://other/", NULL},
    {"https://a/./", "https://a/", NULL},
    {"//", NULL, "missing host"},
    {"//u@g/", NULL, "userinfo not supported"},
    {"//g:0/", NULL, "invalid port"},
    {"ftp://g/", NULL, "unsupported scheme"},
    {"javascript:alert(1)", NULL, "unsupported scheme"},
    {"g h", NULL, "space or control character in URL"},
    {"g#a b", NULL, "space or control character in URL"},
    {"/\r\nX: y", NULL, "space or control character in URL"},
    /* A first segment with ':' after a non-letter is a path. */
    {"1a:b", "https://a:8443/b/c/1a:b", NULL},
    {"./g:h", "https://a:8443/b/c/g:h", NULL},
};

static void test_resolve_https_port(void)
{
	check_resolve("https://a:8443/b/c/d;p?q", https_port_cases,
		      sizeof(https_port_cases) / sizeof(https_port_cases[0]));
}

static const struct resolve_case edge_cases[] = {
    /* Base path "/": merging keeps just "/". */
    {"g", "http://[::1]:8080/g", NULL},
    {"../../g", "http://[::1]:8080/g", NULL},
    {"?", "http://[::1]:8080/?", NULL},
    {".", "http://[::1]:8080/", NULL},
    {"/%2e%2E/x", "http://[::1]:8080/%2e%2E/x", NULL},
    {"a//b/../c", "http://[::1]:8080/a//c", NULL},
};

static void test_resolve_edges(void)
{
	check_resolve("http://[::1]:8080", edge_cases,
		      sizeof(edge_cases) / sizeof(edge_cases[0]));
}

/* A base without a query keeps none when the reference has an empty path,
 * and the base's default port never appears. */
static void test_resolve_base_without_query(void)
{
	static const struct resolve_case c[] = {
	    {"", "http://h/dir/file", NULL},
	    {"#x", "http://h/dir/file", NULL},
	    {"other", "http://h/dir/other", NULL},
	    {"..", "http://h/", NULL},
	};

	check_resolve("http://H:80/dir/file#frag", c, sizeof(c) / sizeof(c[0]));
}

static void test_resolve_length(void)
{
	char *ref = malloc(URL_MAX_LEN + 2);
	struct url b, out;
	const char *reason = NULL;

	TAP_CHECK(url_parse("http://h/d/", 11, &b, &reason) == 0);
	/* "http://h/d/" + ref must fit in URL_MAX_LEN. */
	memset(ref, 'x', URL_MAX_LEN + 1);
	TAP_CHECK(url_resolve(&b, ref, URL_MAX_LEN - 11, &out, &reason) == 0);
	TAP_CHECK(strlen(out.target) == URL_MAX_LEN - 8);
	TAP_CHECK(url_resolve(&b, ref, URL_MAX_LEN - 10, &out, &reason) == -1);
	TAP_CHECK_STR(reason, "URL longer than 8192 bytes");
	TAP_CHECK(url_resolve(&b, ref, URL_MAX_LEN + 1, &out, &reason) == -1);
	TAP_CHECK_STR(reason, "URL longer than 8192 bytes");
	/* Dot segments are removed before the limit applies: unresolved,
	 * "http://h/d/../xxx" would be 5 bytes too long. */
	memcpy(ref, "../", 3);
	TAP_CHECK(url_resolve(&b, ref, URL_MAX_LEN - 6, &out, &reason) == 0);
	TAP_CHECK(strlen(out.target) == URL_MAX_LEN - 8);
	TAP_CHECK(out.target[1] == 'x');
	TAP_CHECK(url_resolve(&b, ref, URL_MAX_LEN - 5, &out, &reason) == -1);

	/* A long base plus a long reference overflows nothing. */
	{
		char *s = malloc(URL_MAX_LEN);

		memcpy(s, "http://h/", 9);
		memset(s + 9, 'b', URL_MAX_LEN - 9);
		s[URL_MAX_LEN - 1] = '/';
		TAP_CHECK(url_parse(s, URL_MAX_LEN, &b, &reason) == 0);
		TAP_CHECK(url_resolve(&b, ref + 3, URL_MAX_LEN - 3, &out,
				      &reason) == -1);
		TAP_CHECK_STR(reason, "URL longer than 8192 bytes");
		TAP_CHECK(url_resolve(&b, "..", 2, &out, &reason) == 0);
		TAP_CHECK_STR(out.target, "/");
		free(s);
	}
	free(ref);
}

/* Resolving in place: out may be the base itself. */
static void test_resolve_in_place(void)
{
	struct url u;
	const char *reason = NULL;
	char buf[64];

	TAP_CHECK(url_parse("http://h/a/b?q", 14, &u, &reason) == 0);
	TAP_CHECK(url_resolve(&u, "../c?r", 6, &u, &reason) == 0);
	TAP_CHECK(url_format(&u, buf, sizeof(buf)) > 0);
	TAP_CHECK_STR(buf, "http://h/c?r");
	TAP_CHECK(url_resolve(&u, "//x:81", 6, &u, &reason) == 0);
	TAP_CHECK(url_format(&u, buf, sizeof(buf)) > 0);
	TAP_CHECK_STR(buf, "http://x:81/");
	TAP_CHECK(u.port == 81 && u.port_explicit);
}

static const struct tap_test tests[] = {
    {"valid URLs parse into the right fields", test_valid},
    {"parsing honours the length argument", test_len_not_nul},
    {"invalid URLs are rejected with the right reason", test_invalid},
    {"host length limits", test_host_limits},
    {"URL length limit at exactly 8192", test_length_limit},
    {"url_format with a small buffer", test_format_small_buffer},
    {"resolve: RFC 3986 5.4.1 normal examples", test_resolve_rfc_normal},
    {"resolve: RFC 3986 5.4.2 abnormal examples", test_resolve_rfc_abnormal},
    {"resolve: https base with a port", test_resolve_https_port},
    {"resolve: IPv6 base with an empty path", test_resolve_edges},
    {"resolve: base without a query", test_resolve_base_without_query},
    {"resolve: length limits", test_resolve_length},
    {"resolve: in place", test_resolve_in_place},
    {NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

/* Forward proxies: see proxy.h. */
#include "proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct proxies {
	struct proxy *http;  /* for http URLs */
	struct proxy *https; /* for https URLs */
	char *no_proxy;      /* "" when none */
};

/* %XX decoding of userinfo, in place. */
static void proxy_unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r != '\0'; r++) {
		if (r[0] == '%' && isxdigit((unsigned char)r[1]) &&
		    isxdigit((unsigned char)r[2])) {
			char hex[3] = {r[1], r[2], '\0'};

			*w++ = (char)strtol(hex, NULL, 16);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* RFC 4648 base64 of n bytes into a new string. */
static char *proxy_base64(const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *w = out;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*w++ = tab[(v >> 18) & 63];
		*w++ = tab[(v >> 12) & 63];
		*w++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*w++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*w = '\0';
	return out;
}

/* Parse "http://[user[:password]@]host[:port][/]" into a new proxy, or
 * NULL with *why (static). */
static struct proxy *proxy_parse(const char *value, const char **why)
{
	const char *s = value, *at, *end, *hp, *colon;
	struct proxy *p;
	unsigned char buf[16];
	size_t hlen;

	if (strncasecmp(s, "http://", 7) == 0)
		s += 7;
	else if (strstr(s, "://") != NULL) {
		*why = "only http:// proxies are supported";
		return NULL;
	}
	end = s + strcspn(s, "/?#");
	if (end[0] != '\0' && strcmp(end, "/") != 0) {
		*why = "a proxy URL has no path";
		return NULL;
	}
	p = xcalloc(1, sizeof *p);
	p->port = 1080;
	at = memchr(s, '@', (size_t)(end - s));
	hp = at != NULL ? at + 1 : s;
	if (at != NULL) {
		char *user = xstrndup(s, (size_t)(at - s));
		char *pass = strchr(user, ':');
		char *both;

		if (pass != NULL)
			*pass++ = '\0';
		proxy_unescape(user);
		if (pass != NULL)
			proxy_unescape(pass);
		both = util_printf("%s:%s", user, pass ? pass : "");
		char *b64 = proxy_base64((const unsigned char *)both,
					 strlen(both));
		p->auth = util_printf("Proxy-Authorization: Basic %s\r\n", b64);
		free(b64);
		free(both);
		free(user);
	}
	if (hp < end && *hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));

		if (rb == NULL)
			goto bad_host;
		hlen = (size_t)(rb - hp - 1);
		if (hlen == 0 || hlen >= sizeof p->host)
			goto bad_host;
		memcpy(p->host, hp + 1, hlen);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < end && colon == NULL)
			goto bad_host;
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		hlen = (size_t)((colon ? colon : end) - hp);
		if (hlen == 0 || hlen >= sizeof p->host)
			goto bad_host;
		memcpy(p->host, hp, hlen);
	}
	p->host[hlen] = '\0';
	for (char *c = p->host; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strspn(p->host, "abcdefghijklmnopqrstuvwxyz0123456789-._:") !=
	    strlen(p->host))
		goto bad_host;
	if (colon != NULL) {
		char *e;
		long port = strtol(colon + 1, &e, 10);

		if (e != end || port < 1 || port > 65535) {
			*why = "bad proxy port";
			goto fail;
		}
		p->port = (uint16_t)port;
	}
	p->literal = inet_pton(AF_INET, p->host, buf) == 1 ||
		     inet_pton(AF_INET6, p->host, buf) == 1;
	snprintf(p->name, sizeof p->name, "%s%s%s:%u",
		 strchr(p->host, ':') ? "[" : "", p->host,
		 strchr(p->host, ':') ? "]" : "", p->port);
	return p;
bad_host:
	*why = "bad proxy host";
fail:
	free(p->auth);
	free(p);
	return NULL;
}

static void proxy_free(struct proxy *p)
{
	if (p == NULL)
		return;
	free(p->auth);
	free(p);
}

char *proxy_check_url(const char *value)
{
	const char *why = NULL;
	struct proxy *p;

	if (value[0] == '\0')
		return NULL;
	p = proxy_parse(value, &why);
	if (p == NULL)
		return util_printf("%s (use http://[user:password@]host:port)",
				   why);
	proxy_free(p);
	return NULL;
}

/* The first set value among the arguments (NULL-terminated), or NULL. */
static const char *proxy_first(const char *a, const char *b, const char *c)
{
	if (a != NULL && a[0] != '\0')
		return a;
	if (b != NULL && b[0] != '\0')
		return b;
	if (c != NULL && c[0] != '\0')
		return c;
	return NULL;
}

struct proxies *proxies_new(const char *proxy, const char *https_proxy,
			    const char *no_proxy, bool use_env, char **cause)
{
	struct proxies *ps = xcalloc(1, sizeof *ps);
	const char *http_v, *https_v, *no_v, *why = NULL;

	http_v = proxy_first(proxy, use_env ? getenv("http_proxy") : NULL,
			     NULL);
	https_v = proxy_first(https_proxy,
			      use_env ? getenv("https_proxy") : NULL,
			      use_env ? getenv("HTTPS_PROXY") : NULL);
	if (https_v == NULL && proxy != NULL && proxy[0] != '\0')
		https_v = proxy; /* [fetch] proxy serves both schemes */
	no_v = proxy_first(no_proxy, use_env ? getenv("no_proxy") : NULL,
			   use_env ? getenv("NO_PROXY") : NULL);
	ps->no_proxy = xstrdup(no_v != NULL ? no_v : "");
	if (http_v != NULL && (ps->http = proxy_parse(http_v, &why)) == NULL) {
		*cause = util_printf("proxy for http: %s", why);
		goto fail;
	}
	if (https_v != NULL &&
	    (ps->https = proxy_parse(https_v, &why)) == NULL) {
		*cause = util_printf("proxy for https: %s", why);
		goto fail;
	}
	return ps;
fail:
	proxies_free(ps);
	return NULL;
}

void proxies_free(struct proxies *ps)
{
	if (ps == NULL)
		return;
	proxy_free(ps->http);
	proxy_free(ps->https);
	free(ps->no_proxy);
	free(ps);
}

bool proxy_no_proxy_match(const char *list, const char *host)
{
	size_t hl = strlen(host);

	while (*list != '\0') {
		const char *e = list + strcspn(list, ",");
		const char *a = list;

		while (a < e && (*a == ' ' || *a == '\t'))
			a++;
		const char *b = e;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b - a == 1 && *a == '*')
			return true;
		if (a < b && *a == '.')
			a++; /* ".example.com" means the same as example.com */
		size_t n = (size_t)(b - a);
		if (n > 0 && n <= hl &&
		    strncasecmp(host + hl - n, a, n) == 0 &&
		    (n == hl || host[hl - n - 1] == '.'))
			return true;
		list = *e == ',' ? e + 1 : e;
	}
	return false;
}

const struct proxy *proxies_for(const struct proxies *ps,
				enum url_scheme scheme, const char *host)
{
	const struct proxy *p;

	if (ps == NULL)
		return NULL;
	p = scheme == URL_HTTPS ? ps->https : ps->http;
	if (p == NULL || proxy_no_proxy_match(ps->no_proxy, host))
		return NULL;
	return p;
}

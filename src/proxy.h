/* Forward proxies: which URL goes through which proxy ([fetch] proxy,
 * https_proxy, no_proxy, or curl's environment variables as a fallback),
 * the proxy's address and credentials.  Pure (no I/O): unit-tested.  The
 * fetch sends plain-HTTP requests to the proxy in absolute form and opens
 * a CONNECT tunnel for HTTPS, with TLS to the origin inside it. */
#ifndef GATHERD_PROXY_H
#define GATHERD_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "url.h"

/* One proxy.  `auth` is a whole header line ("Proxy-Authorization: Basic
 * ...\r\n") or NULL; `name` is "host:port", never the credentials: what
 * logs and error details may show. */
struct proxy {
	char host[256];
	uint16_t port;
	bool literal; /* host is an IP address */
	char *auth;
	char name[270];
};

struct proxies;

/* From the configured values ("" = unset).  When use_env, unset ones fall
 * back to the environment as curl does: http_proxy (lower case only: an
 * HTTP_PROXY variable can be set by a CGI request header), https_proxy or
 * HTTPS_PROXY, no_proxy or NO_PROXY.  `proxy` serves both schemes unless
 * `https_proxy` is given.  NULL with *cause when a value is not a proxy
 * URL (http://[user[:password]@]host[:port], port 1080 by default). */
struct proxies *proxies_new(const char *proxy, const char *https_proxy,
			    const char *no_proxy, bool use_env, char **cause);
void proxies_free(struct proxies *p);

/* The proxy for a URL of that scheme and host (lower-case, IPv6 without
 * brackets), or NULL for a direct connection. */
const struct proxy *proxies_for(const struct proxies *p,
				enum url_scheme scheme, const char *host);

/* Whether host is in a no_proxy list: comma-separated names (a name
 * matches itself and its subdomains, a leading dot optional), "*" for
 * everything, IP addresses matched exactly. */
bool proxy_no_proxy_match(const char *list, const char *host);

/* Check a proxy URL for the configuration: NULL, or a malloc'd reason. */
char *proxy_check_url(const char *value);

#endif

/* robots.txt on the wire ([fetch] robots): for each origin (scheme, host,
 * port) /robots.txt is fetched once, through the same connection pool,
 * proxies and timeouts as the pages, and kept for [fetch] robots_ttl_s in
 * a bounded cache; robots.c parses and matches it.
 *
 * RFC 9309 2.3.1: a 2xx is parsed (at most ROBOTS_PARSE_LIMIT bytes);
 * redirects are followed up to ROBOTS_MAX_REDIRECTS hops, more mean "no
 * robots.txt"; 4xx (but 429) mean no rules at all; 5xx, 429 and a server
 * that cannot be reached disallow everything, for ROBOTS_UNREACHABLE_TTL_S
 * only, after which it is asked again.  Before that, a failure that a page
 * would retry (policy.c: [fetch] retries, retry_statuses, the backoff and
 * Retry-After) is retried the same way, its URLs waiting meanwhile.
 *
 * The scheduler asks before every fetch.  While an origin's robots.txt is
 * on its way the answer is ROBOTS_PENDING: the URL waits without a slot,
 * and the scheduler is told when the origin is ready, or when a retry is
 * due (then a URL of it that asks again starts the fetch anew: robots.txt
 * requests start only from the scheduler's dispatch, within its limits). */
#ifndef GATHERD_ROBOTS_FETCH_H
#define GATHERD_ROBOTS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "url.h"

struct fetch_ctx;
struct robots_cache;

#define ROBOTS_MAX_REDIRECTS	 5
#define ROBOTS_UNREACHABLE_TTL_S 300
#define ROBOTS_CACHE_ORIGINS	 10000

/* ready(arg, origin) runs on the loop when an origin's rules are known or
 * a retry of its robots.txt is due (those that waited for it may ask
 * again). */
struct robots_cache *robots_cache_new(const struct fetch_ctx *fctx,
				      void (*ready)(void *, const char *),
				      void *arg);
/* Abort the robots.txt fetches in flight and free everything. */
void robots_cache_free(struct robots_cache *rc);

enum robots_answer {
	ROBOTS_ALLOW,
	ROBOTS_DENY,
	ROBOTS_PENDING,
};

/* May `url` (parsed in ref) be fetched?  ROBOTS_DENY gives the rule (or
 * why everything is disallowed) in *why, malloc'd.  *delay_ms is the
 * origin's Crawl-delay (capped by robots_max_crawl_delay_s), 0 if none.
 * ROBOTS_PENDING starts the fetch of the origin's robots.txt if none
 * runs; its origin is written to origin (size bytes) for the caller to
 * wait on. */
enum robots_answer robots_cache_ask(struct robots_cache *rc, const char *url,
				    const struct url_ref *ref, char **why,
				    int64_t *delay_ms, char *origin,
				    size_t size);

/* Abort every robots.txt fetch under way (a shared store's leases are
 * running out): an origin's first fetch is forgotten, and the URLs that
 * waited for it are handed back through ready() (asking again starts a new
 * fetch); a refresh leaves the old rules answering.  How many requests
 * were aborted.  ready() runs before this returns: the caller must have
 * stopped starting fetches, or a ready() that dispatches would ask, and
 * start them, again at once. */
size_t robots_cache_abort(struct robots_cache *rc);

/* robots.txt fetches under way (they count against max_in_flight). */
size_t robots_cache_in_flight(const struct robots_cache *rc);

struct robots_cache_stats {
	uint64_t fetches; /* robots.txt requests made (redirect hops too) */
	uint64_t denied;  /* URLs refused */
	size_t origins;   /* in the cache */
};
void robots_cache_get_stats(const struct robots_cache *rc,
			    struct robots_cache_stats *st);

#endif

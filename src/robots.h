/* robots.txt (RFC 9309) as pure logic: parse a file's text for one crawler,
 * then answer for each request target whether it may be fetched.  No I/O and
 * no event loop: the fetch path gets /robots.txt per origin, turns the
 * outcome into one of the three states below, caches it, and asks
 * robots_check() before every request to that origin
 * (tests/unit/test_robots.c, tests/fuzz/fuzz_robots.c).
 *
 * The three states, by what fetching /robots.txt gave:
 *   - a body (2xx, after redirects): robots_parse() of its text;
 *   - 4xx, "unavailable" (RFC 9309 2.3.1.3): robots_allow_all();
 *   - 5xx or unreachable (RFC 9309 2.3.1.4): robots_disallow_all(why).
 * All three are used through the same functions and freed with
 * robots_free(). */
#ifndef GATHERD_ROBOTS_H
#define GATHERD_ROBOTS_H

#include <stdbool.h>
#include <stddef.h>

/* How much of a file is parsed (RFC 9309 2.5 asks for at least 500 KiB);
 * the rest is ignored, and so is a line cut in two by the limit. */
#define ROBOTS_PARSE_LIMIT (500 * 1024)

struct robots;

/* The answer for one request target.  `rule` names why: the matching line
 * as "Allow: <path>" or "Disallow: <path>" (the path as written in the
 * file, but cut at 256 bytes with "..." and with control bytes and invalid
 * UTF-8 %-escaped), the reason given to robots_disallow_all(), or NULL when
 * no rule matched (allowed).  A verdict with allowed == false always has a rule,
 * meant for error_detail.  The string belongs to the struct robots: copy it
 * before robots_free(). */
struct robots_verdict {
	bool allowed;
	const char *rule;
};

/* Parse the first ROBOTS_PARSE_LIMIT bytes of a robots.txt body (`len`
 * bytes, no NUL needed) for the crawler named by `product_token`.  Only the
 * token's leading run of letters, '_' and '-' counts, so the configured
 * User-Agent value can be passed as it is ("gatherd/0.1 (+https://...)"
 * names "gatherd").  The groups whose user-agent line names the token
 * (case-insensitively) apply, merged; if there are none, the "*" groups,
 * merged; if there are none either, everything is allowed.  Only the
 * applying rules are kept.  Never fails (out of memory aborts). */
struct robots *robots_parse(const char *text, size_t len,
			    const char *product_token)
	__attribute__((returns_nonnull));

/* Everything allowed: /robots.txt answered 4xx. */
struct robots *robots_allow_all(void) __attribute__((returns_nonnull));

/* Everything but /robots.txt disallowed: /robots.txt answered 5xx or could
 * not be fetched.  `why` (copied; NULL for a generic text) is the verdicts'
 * rule, e.g. "robots.txt unavailable (HTTP 503): everything disallowed". */
struct robots *robots_disallow_all(const char *why)
	__attribute__((returns_nonnull));

/* The verdict for a request target: path and query exactly as the request
 * line sends them ("/a/b?c=d", `len` bytes), matched per RFC 9309 2.2.2 and
 * 2.2.3: rules match from the first octet, '*' matches any run of octets,
 * a final '$' anchors at the end of the target, and both sides are compared
 * with percent-encoding normalised: a printable US-ASCII character and its
 * escape are the same ("~" and "%7E", "/" and "%2F"), hex digits compare
 * case-insensitively, and other octets (non-ASCII, controls, space) compare
 * as escapes, so "ツ" in a rule matches "%E3%83%84" in the target.  A
 * literal '*' or '$' in the target is written %2A or %24 in a rule.  The
 * longest matching rule wins (in octets as normalised: an escaped octet
 * counts 3, the rest as written), Allow on a tie; no match is allowed.
 * /robots.txt itself is always allowed.  Cost: at worst linear in the
 * target's length for each applying rule, and no allocation. */
struct robots_verdict robots_check(const struct robots *r, const char *target,
				   size_t len);

/* The applying group's Crawl-delay in seconds (the largest, if merged
 * groups give several), or -1 when there is none.  Not in RFC 9309, but
 * widely used; values that are not a plain non-negative decimal number
 * ("10", "0.5") are ignored.  Like any record that is not a rule, a
 * Crawl-delay line does not end a group's user-agent lines (RFC 9309
 * 2.2.4), so in "User-agent: a / Crawl-delay: 5 / User-agent: b / ..."
 * a and b are one group.  The caller caps it. */
double robots_crawl_delay(const struct robots *r);

/* How many Allow and Disallow rules apply (for logs and tests). */
size_t robots_rule_count(const struct robots *r);

/* Free r and every rule string its verdicts handed out; NULL is fine. */
void robots_free(struct robots *r);

#endif

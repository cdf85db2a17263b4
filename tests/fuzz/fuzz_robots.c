/* libFuzzer target for robots.c.  The input is parsed as a robots.txt, for
 * a fixed product token and for none, and checked against fixed targets and
 * against its own lines taken as targets: no crash, no leak, /robots.txt
 * always allowed, a refusal always names its rule, a rule's text says the
 * same as the verdict, and the same question gets the same answer.
 *
 * Then a differential check of the matcher: the input, split at its first
 * newline, gives a pattern and a target; a file whose only rule is
 * "Disallow: <pattern>" must refuse the target exactly when a plain
 * dynamic-programming matcher, over a canonical form computed here
 * independently, says the pattern matches. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "robots.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* Longest canonical pattern and target the differential check takes (the
 * reference matcher is quadratic). */
#define REF_PATTERN_MAX 256
#define REF_TARGET_MAX 1024

/* Check the invariants of one verdict. */
static void check_verdict(const struct robots *r, const char *t, size_t n)
{
	struct robots_verdict v = robots_check(r, t, n);
	struct robots_verdict again = robots_check(r, t, n);

	CHECK(v.allowed == again.allowed && v.rule == again.rule);
	if (!v.allowed)
		CHECK(v.rule != NULL && v.rule[0] != '\0');
	if (v.rule != NULL && strncmp(v.rule, "Allow: ", 7) == 0)
		CHECK(v.allowed);
	if (v.rule != NULL && strncmp(v.rule, "Disallow: ", 10) == 0)
		CHECK(!v.allowed);
}

/* Parse the whole input for one token and ask the usual questions. */
static void check_file(const char *s, size_t size, const char *token)
{
	static const char *const targets[] = {
		"/",        "/index.html", "/a",          "/private/x?y=z",
		"/%E3%83%84", "/a*b$c",   "/x%2Fy%zz",   "/fish.php?id=1",
	};
	struct robots *r = robots_parse(s, size, token);
	double d = robots_crawl_delay(r);
	size_t lines = 1, i = 0;

	CHECK(d == -1 || (d >= 0 && isfinite(d)));
	for (size_t k = 0; k < size; k++)
		lines += s[k] == '\n' || s[k] == '\r';
	CHECK(robots_rule_count(r) <= lines);

	CHECK(robots_check(r, "/robots.txt", 11).allowed);
	CHECK(robots_check(r, "/robots.txt?x=1", 15).allowed);
	for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++)
		check_verdict(r, targets[k], strlen(targets[k]));
	check_verdict(r, "", 0);

	/* The input's first lines as targets. */
	for (int count = 0; i < size && count < 16; count++) {
		size_t start = i;

		while (i < size && s[i] != '\n')
			i++;
		check_verdict(r, s + start, i - start);
		i++;
	}
	robots_free(r);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Append octet o to out as the canonical form spells it. */
static size_t put_octet(char *out, size_t k, unsigned o)
{
	static const char hex[] = "0123456789ABCDEF";

	if (o >= 0x21 && o <= 0x7e && o != '%' && o != '*' && o != '$') {
		out[k++] = (char)o;
	} else {
		out[k++] = '%';
		out[k++] = hex[o >> 4];
		out[k++] = hex[o & 15];
	}
	return k;
}

/* The canonical form of a pattern (is_pattern) or a target, as robots.h
 * describes it; returns its length. */
static size_t canon(const unsigned char *s, size_t n, bool is_pattern,
		    char *out)
{
	size_t k = 0;

	if (is_pattern && n > 0 && s[0] != '/' && s[0] != '*')
		out[k++] = '/';
	for (size_t i = 0; i < n; i++) {
		if (is_pattern && s[i] == '*') {
			out[k++] = '*';
		} else if (is_pattern && s[i] == '$' && i == n - 1) {
			out[k++] = '$';
		} else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			k = put_octet(out, k,
				      (unsigned)(hexval(s[i + 1]) * 16 +
						 hexval(s[i + 2])));
			i += 2;
		} else {
			k = put_octet(out, k, s[i]);
		}
	}
	return k;
}

/* Whether canonical pattern p matches canonical target t: '*' any run, a
 * final '$' the end, else a match of any prefix of t. */
static bool ref_match(const char *p, size_t pn, const char *t, size_t tn)
{
	static bool a[REF_TARGET_MAX + 1], b[REF_TARGET_MAX + 1];
	bool anchored = pn > 0 && p[pn - 1] == '$';
	bool *row = a, *next = b, *tmp;

	if (anchored)
		pn--;
	row[0] = true;
	for (size_t j = 1; j <= tn; j++)
		row[j] = false;
	for (size_t i = 0; i < pn; i++) {
		if (p[i] == '*') {
			next[0] = row[0];
			for (size_t j = 1; j <= tn; j++)
				next[j] = row[j] || next[j - 1];
		} else {
			next[0] = false;
			for (size_t j = 1; j <= tn; j++)
				next[j] = row[j - 1] && t[j - 1] == p[i];
		}
		tmp = row;
		row = next;
		next = tmp;
	}
	if (anchored)
		return row[tn];
	for (size_t j = 0; j <= tn; j++)
		if (row[j])
			return true;
	return false;
}

/* The differential check of one pattern against one target. */
static void check_match(const unsigned char *data, size_t size)
{
	static char text[64 + 3 * REF_PATTERN_MAX];
	static char cp[3 * REF_PATTERN_MAX + 4], ct[3 * REF_TARGET_MAX + 4];
	const unsigned char *nl = memchr(data, '\n', size);
	const unsigned char *target;
	size_t pn = 0, tn, cpn, ctn, k;
	unsigned char pattern[REF_PATTERN_MAX];
	struct robots *r;
	struct robots_verdict v;
	bool self, want;

	if (nl == NULL || (size_t)(nl - data) > sizeof pattern)
		return;
	/* What a value in a file can hold: no line end, no comment, no
	 * whitespace at either end. */
	for (const unsigned char *p = data; p < nl; p++)
		if (*p != '\r' && *p != '#')
			pattern[pn++] = *p;
	while (pn > 0 && (pattern[pn - 1] == ' ' || pattern[pn - 1] == '\t'))
		pn--;
	k = 0;
	while (k < pn && (pattern[k] == ' ' || pattern[k] == '\t'))
		k++;
	if (k == pn)
		return;
	target = nl + 1;
	tn = size - (size_t)(target - data);
	if (tn > REF_TARGET_MAX)
		return;

	cpn = canon(pattern + k, pn - k, true, cp);
	ctn = canon(tn > 0 ? target : (const unsigned char *)"/",
		    tn > 0 ? tn : 1, false, ct);
	if (cpn > REF_PATTERN_MAX || ctn > REF_TARGET_MAX)
		return;
	self = (ctn == 11 || (ctn > 11 && ct[11] == '?')) &&
	       memcmp(ct, "/robots.txt", 11) == 0;
	want = !self && ref_match(cp, cpn, ct, ctn);

	memcpy(text, "User-agent: *\nDisallow: ", 24);
	memcpy(text + 24, pattern + k, pn - k);
	text[24 + pn - k] = '\n';
	r = robots_parse(text, 24 + pn - k + 1, "gatherd");
	v = robots_check(r, (const char *)target, tn);
	CHECK(v.allowed == !want);
	if (want)
		CHECK(v.rule != NULL && strncmp(v.rule, "Disallow: ", 10) == 0);
	robots_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	check_file(s, size, "gatherd/1.0 (+https://example.com/bot)");
	check_file(s, size, "");
	check_match(data, size);
	return 0;
}

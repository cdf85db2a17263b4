/* robots.txt rules, RFC 9309: see robots.h.
 *
 * A rule and a request target are compared in one canonical form.  RFC 9309
 * 2.2.2 wants escapes of unreserved characters decoded, reserved characters
 * encoded and non-ASCII octets encoded, on both sides, before octets are
 * compared: so a character and its escape are the same ("/" and "%2F"; its
 * own table matches "https://foo.bar" in a rule with "https%3A%2F%2Ffoo.bar"
 * in a URI) and hex digits are case-insensitive.  The canonical form spells
 * every printable US-ASCII character bare, so that a rule's length in
 * octets is what was written, and everything else (controls, space,
 * non-ASCII, a '%' that starts no escape) as an escape with upper-case hex.
 * '*' and '$' are escaped too, except in a pattern, where '*' is the
 * wildcard and a final '$' the anchor: a bare '*' or '$' is always special.
 * Patterns are brought to that form once, when parsed; the target is
 * brought to it on the fly, one octet at a time, so that robots_check()
 * allocates nothing. */
#include "robots.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* Longest canonical pattern kept, in octets: longer ones are cut or
 * dropped (see robots_add_rule()).  The targets gatherd sends are at most
 * 8 KiB, so no sensible rule comes near it; it bounds a rule's memory, and
 * the KMP tables fit in 16 bits. */
#define ROBOTS_PATTERN_MAX 32768

/* Longest path shown in a rule's text: error_detail stays readable. */
#define ROBOTS_SHOW_MAX 256

/* One Allow or Disallow line of an applying group.  `pattern` is canonical
 * (with the final '$' when anchored) and `len` octets long, which is also
 * the rule's priority.  `fail` holds the KMP failure function of each
 * '*'-separated segment of the pattern, so that a segment is found in one
 * pass over the target.  One allocation holds the struct, `fail`,
 * `pattern` and `text`. */
struct robots_rule {
	uint32_t len;
	uint32_t order; /* position in the file: ties keep the file's order */
	bool allow;
	char *pattern;
	char *text; /* "Disallow: /x" as written, for verdicts */
	uint16_t fail[];
};

/* The rules and Crawl-delay of one kind of group (ours or "*"), merged. */
struct robots_list {
	struct robots_rule **v;
	size_t n, cap;
	double delay; /* -1: none */
};

enum robots_mode {
	ROBOTS_RULES,
	ROBOTS_ALLOW_ALL,
	ROBOTS_DISALLOW_ALL,
};

/* A parsed file or one of the two fixed states.  `rules` are in priority
 * order (longest first, Allow first on a tie), so the first one that
 * matches decides.  Owns the rules and `why`. */
struct robots {
	enum robots_mode mode;
	double crawl_delay;
	char *why; /* ROBOTS_DISALLOW_ALL: the verdicts' rule */
	struct robots_rule **rules;
	size_t nrules;
};

/* What robots_parse() carries from one line to the next.  A group is one
 * or more user-agent lines and the lines after them, up to the next
 * user-agent line that follows an Allow or Disallow; only the rules of
 * groups that may apply are built at all. */
struct robots_parser {
	const char *token; /* the product token: letters, '_' and '-' */
	size_t token_len;
	bool in_group;     /* a user-agent line was seen */
	bool in_agents;    /* reading the group's user-agent lines */
	bool group_mine;   /* the group names our token */
	bool group_star;   /* the group names "*" */
	double group_delay;
	bool found_mine; /* some group names our token: "*" groups are out */
	struct robots_list mine, star;
	uint32_t order;
	char *buf; /* a canonical pattern being built */
};

enum robots_key {
	ROBOTS_KEY_OTHER,
	ROBOTS_KEY_AGENT,
	ROBOTS_KEY_ALLOW,
	ROBOTS_KEY_DISALLOW,
	ROBOTS_KEY_DELAY,
};

/* Keys, case-insensitive, with the misspellings RFC 9309 2.2.4 lets a
 * crawler accept.  Sitemap and every other record are ignored (and, as
 * 2.2.4 requires, do not end a group). */
static const struct {
	const char *name;
	enum robots_key key;
} robots_keys[] = {
	{"user-agent", ROBOTS_KEY_AGENT},
	{"useragent", ROBOTS_KEY_AGENT},
	{"allow", ROBOTS_KEY_ALLOW},
	{"disallow", ROBOTS_KEY_DISALLOW},
	{"dissallow", ROBOTS_KEY_DISALLOW},
	{"dissalow", ROBOTS_KEY_DISALLOW},
	{"disalow", ROBOTS_KEY_DISALLOW},
	{"diasllow", ROBOTS_KEY_DISALLOW},
	{"disallaw", ROBOTS_KEY_DISALLOW},
	{"crawl-delay", ROBOTS_KEY_DELAY},
	{"crawldelay", ROBOTS_KEY_DELAY},
};

static const char robots_hexdig[] = "0123456789ABCDEF";

/* Whitespace within a line (RFC 9309's WS). */
static bool robots_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* A character of a product token (RFC 9309 2.2.1). */
static bool robots_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c == '-';
}

/* How long the product token at the start of s is. */
static size_t robots_token_len(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && robots_token_char(s[i]))
		i++;
	return i;
}

/* The value of a hex digit, or -1. */
static int robots_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Whether an octet stands for itself in the canonical form: printable
 * US-ASCII but for '%', which starts escapes, and the two characters that
 * are special in patterns. */
static bool robots_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%' && c != '*' && c != '$';
}

/* Bring the octet or escape at s[*i] to the canonical form: write 1 or 3
 * octets to out, return how many, and move *i past what was read. */
static size_t robots_canon(const unsigned char *s, size_t n, size_t *i,
			   char *out)
{
	unsigned char c = s[*i];
	int hi, lo;

	if (c == '%' && n - *i >= 3 && (hi = robots_hex(s[*i + 1])) >= 0 &&
	    (lo = robots_hex(s[*i + 2])) >= 0) {
		c = (unsigned char)(hi << 4 | lo);
		*i += 3;
		if (robots_bare(c)) {
			out[0] = (char)c;
			return 1;
		}
	} else {
		*i += 1;
		if (robots_bare(c)) {
			out[0] = (char)c;
			return 1;
		}
	}
	out[0] = '%';
	out[1] = robots_hexdig[c >> 4];
	out[2] = robots_hexdig[c & 15];
	return 3;
}

/* A request target read in the canonical form, one octet at a time. */
struct robots_stream {
	const unsigned char *s;
	size_t n, i;
	char pend[3]; /* the canonical form of the last octet read */
	size_t npend, next;
};

/* The next canonical octet of the target, or -1 at its end. */
static int robots_next(struct robots_stream *st)
{
	if (st->next == st->npend) {
		if (st->i >= st->n)
			return -1;
		st->npend = robots_canon(st->s, st->n, &st->i, st->pend);
		st->next = 0;
	}
	return (unsigned char)st->pend[st->next++];
}

/* Whether the whole target has been read. */
static bool robots_at_end(const struct robots_stream *st)
{
	return st->next == st->npend && st->i >= st->n;
}

/* Find a segment (m octets, with its failure function) in the rest of the
 * stream.  Stops after the leftmost occurrence, or, if to_end, reads the
 * whole stream and tells whether an occurrence ends exactly at its end. */
static bool robots_find(struct robots_stream *st, const char *seg,
			const uint16_t *fail, size_t m, bool to_end)
{
	bool at_end = false;
	size_t q = 0;
	int c;

	if (m == 0)
		return true;
	while ((c = robots_next(st)) >= 0) {
		while (q > 0 && (unsigned char)seg[q] != c)
			q = fail[q - 1];
		if ((unsigned char)seg[q] == c)
			q++;
		at_end = false;
		if (q == m) {
			if (!to_end)
				return true;
			at_end = true;
			q = fail[m - 1];
		}
	}
	return at_end;
}

/* Whether rule r matches target t.  The pattern is a prefix of the target
 * up to its first '*'; after that, each segment between stars is found at
 * its leftmost place, which leaves the most of the target to the segments
 * after it, so no choice is ever revisited: one pass over the target. */
static bool robots_match(const struct robots_rule *r, const unsigned char *t,
			 size_t n)
{
	struct robots_stream st = {.s = t, .n = n};
	const char *p = r->pattern;
	size_t len = r->len, k = 0;
	bool anchored = len > 0 && p[len - 1] == '$';
	int c;

	if (anchored)
		len--;
	for (; k < len && p[k] != '*'; k++) {
		c = robots_next(&st);
		if (c < 0 || c != (unsigned char)p[k])
			return false;
	}
	if (k == len)
		return !anchored || robots_at_end(&st);
	while (k < len) {
		size_t start = ++k;

		while (k < len && p[k] != '*')
			k++;
		if (!robots_find(&st, p + start, r->fail + start, k - start,
				 k == len && anchored))
			return false;
	}
	return true;
}

/* Whether the target is /robots.txt (with or without a query), which RFC
 * 9309 2.2.2 always allows. */
static bool robots_is_self(const unsigned char *t, size_t n)
{
	static const char self[] = "/robots.txt";
	struct robots_stream st = {.s = t, .n = n};
	int c;

	for (const char *p = self; *p != '\0'; p++)
		if (robots_next(&st) != *p)
			return false;
	c = robots_next(&st);
	return c < 0 || c == '?';
}

/* Length of the valid UTF-8 sequence at s (n octets there), or 0 (RFC
 * 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t robots_utf8(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t need;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		need = 1;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		need = 2;
		lo = s[0] == 0xE0 ? 0xA0 : 0x80;
		hi = s[0] == 0xED ? 0x9F : 0xBF;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		need = 3;
		lo = s[0] == 0xF0 ? 0x90 : 0x80;
		hi = s[0] == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	if (n <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k <= need; k++)
		if (s[k] < 0x80 || s[k] > 0xBF)
			return 0;
	return need + 1;
}

/* Write "Allow: v" or "Disallow: v" for verdicts into out (at least
 * 14 + 3 * (ROBOTS_SHOW_MAX + 4) octets): the path as written, but cut to
 * ROBOTS_SHOW_MAX octets and with controls and invalid UTF-8 escaped, as
 * it ends up in a TEXT column that people read.  Returns the length. */
static size_t robots_show(char *out, bool allow, const char *v, size_t vn)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t o, i = 0, k;

	o = (size_t)(stpcpy(out, allow ? "Allow: " : "Disallow: ") - out);
	while (i < vn && i < ROBOTS_SHOW_MAX) {
		k = robots_utf8(s + i, vn - i);
		if (k > 1 || (k == 1 && s[i] >= 0x20 && s[i] != 0x7f)) {
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
			continue;
		}
		out[o++] = '%';
		out[o++] = robots_hexdig[s[i] >> 4];
		out[o++] = robots_hexdig[s[i] & 15];
		i++;
	}
	if (i < vn)
		o = (size_t)(stpcpy(out + o, "...") - out);
	out[o] = '\0';
	return o;
}

/* Free every rule of a list and empty it. */
static void robots_list_clear(struct robots_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
	l->delay = -1;
}

/* Build the rule of an Allow or Disallow line (value v, vn octets) and
 * append it to list l. */
static void robots_add_rule(struct robots_parser *p, struct robots_list *l,
			    bool allow, const char *v, size_t vn)
{
	const unsigned char *s = (const unsigned char *)v;
	char show[14 + 3 * (ROBOTS_SHOW_MAX + 4)];
	struct robots_rule *r;
	size_t n = 0, i = 0, shown, start;

	/* An empty value matches nothing: "Disallow:" allows everything. */
	if (vn == 0)
		return;
	/* A path without its leading "/" means the same path with it
	 * (Google's documentation reads "fish/" as "/fish/"); as written it
	 * could match nothing, since every target starts with "/". */
	if (s[0] != '/' && s[0] != '*')
		p->buf[n++] = '/';
	while (i < vn && n <= ROBOTS_PATTERN_MAX) {
		if (s[i] == '*') {
			p->buf[n++] = '*';
			i++;
		} else if (s[i] == '$') {
			if (++i == vn) {
				p->buf[n++] = '$';
			} else {
				memcpy(p->buf + n, "%24", 3);
				n += 3;
			}
		} else {
			n += robots_canon(s, vn, &i, p->buf + n);
		}
	}
	if (n > ROBOTS_PATTERN_MAX) {
		/* A Disallow cut short (and so without its anchor) still
		 * matches all that the whole one would, and more, which is
		 * the polite side; an Allow cut short would allow more than
		 * was written, so it is dropped. */
		if (allow)
			return;
		n = ROBOTS_PATTERN_MAX;
	}

	shown = robots_show(show, allow, v, vn);
	r = xmalloc(sizeof *r + n * sizeof r->fail[0] + n + 1 + shown + 1);
	r->len = (uint32_t)n;
	r->order = p->order++;
	r->allow = allow;
	r->pattern = (char *)(r->fail + n);
	memcpy(r->pattern, p->buf, n);
	r->pattern[n] = '\0';
	r->text = r->pattern + n + 1;
	memcpy(r->text, show, shown + 1);

	/* The failure function of each segment between stars. */
	for (start = 0; start < n; start++) {
		size_t end = start, q = 0;

		while (end < n && r->pattern[end] != '*')
			end++;
		for (size_t j = start; j < end; j++) {
			if (j == start) {
				r->fail[j] = 0;
				continue;
			}
			while (q > 0 && r->pattern[j] != r->pattern[start + q])
				q = r->fail[start + q - 1];
			if (r->pattern[j] == r->pattern[start + q])
				q++;
			r->fail[j] = (uint16_t)q;
		}
		if (end < n)
			r->fail[end] = 0;
		start = end;
	}

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->v = xrealloc(l->v, l->cap * sizeof l->v[0]);
	}
	l->v[l->n++] = r;
}

/* Read a Crawl-delay value: a plain non-negative decimal number. */
static bool robots_parse_delay(const char *s, size_t n, double *out)
{
	double v = 0, scale = 1;
	size_t i = 0, digits = 0;

	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
		v = v * 10 + (s[i] - '0');
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
			scale /= 10;
			v += (s[i] - '0') * scale;
		}
	}
	if (digits == 0 || i != n || !isfinite(v))
		return false;
	*out = v;
	return true;
}

/* The list the current group's lines go to, or NULL if it cannot apply. */
static struct robots_list *robots_target(struct robots_parser *p)
{
	if (!p->in_group)
		return NULL;
	if (p->group_mine)
		return &p->mine;
	if (p->group_star && !p->found_mine)
		return &p->star;
	return NULL;
}

/* Close the current group: its Crawl-delay is only known to apply now,
 * once all its user-agent lines are read. */
static void robots_group_end(struct robots_parser *p)
{
	struct robots_list *l = robots_target(p);

	if (l != NULL && p->group_delay > l->delay)
		l->delay = p->group_delay;
	p->group_delay = -1;
}

/* A user-agent line with value v. */
static void robots_agent(struct robots_parser *p, const char *v, size_t vn)
{
	size_t n;

	if (!p->in_agents) {
		robots_group_end(p);
		p->in_group = p->in_agents = true;
		p->group_mine = p->group_star = false;
	}
	if (vn > 0 && v[0] == '*' && (vn == 1 || !robots_token_char(v[1]))) {
		p->group_star = true;
		return;
	}
	n = robots_token_len(v, vn);
	if (n == 0 || n != p->token_len || strncasecmp(v, p->token, n) != 0)
		return;
	p->group_mine = true;
	if (!p->found_mine) {
		p->found_mine = true;
		robots_list_clear(&p->star);
	}
}

/* One line (without its end), dispatched on its key. */
static void robots_line(struct robots_parser *p, const char *s, size_t n)
{
	const char *hash = memchr(s, '#', n);
	struct robots_list *l;
	enum robots_key key = ROBOTS_KEY_OTHER;
	size_t kn, j;
	double delay;

	if (hash != NULL)
		n = (size_t)(hash - s);
	while (n > 0 && robots_ws(s[0])) {
		s++;
		n--;
	}
	while (n > 0 && robots_ws(s[n - 1]))
		n--;
	/* "key: value", or "key value" with the colon missing, which Google
	 * reads too since what is meant is plain ("Disallow /"). */
	kn = robots_token_len(s, n);
	j = kn;
	while (j < n && robots_ws(s[j]))
		j++;
	if (j < n && s[j] == ':')
		j++;
	else if (j == kn)
		return;
	for (size_t k = 0; k < sizeof robots_keys / sizeof robots_keys[0]; k++) {
		if (strlen(robots_keys[k].name) == kn &&
		    strncasecmp(s, robots_keys[k].name, kn) == 0) {
			key = robots_keys[k].key;
			break;
		}
	}
	while (j < n && robots_ws(s[j]))
		j++;
	s += j;
	n -= j;

	switch (key) {
	case ROBOTS_KEY_AGENT:
		robots_agent(p, s, n);
		break;
	case ROBOTS_KEY_ALLOW:
	case ROBOTS_KEY_DISALLOW:
		p->in_agents = false;
		l = robots_target(p);
		if (l != NULL)
			robots_add_rule(p, l, key == ROBOTS_KEY_ALLOW, s, n);
		break;
	case ROBOTS_KEY_DELAY:
		/* Not a rule: like any other record, it does not end the
		 * group's user-agent lines (RFC 9309 2.2.4). */
		if (p->in_group && robots_parse_delay(s, n, &delay) &&
		    delay > p->group_delay)
			p->group_delay = delay;
		break;
	case ROBOTS_KEY_OTHER:
		break;
	}
}

/* How much of the text is parsed: all of it within the limit, else only
 * the whole lines within it (a rule cut short could allow more than was
 * written). */
static size_t robots_limit(const char *t, size_t len)
{
	size_t i;

	if (len <= ROBOTS_PARSE_LIMIT)
		return len;
	if (t[ROBOTS_PARSE_LIMIT] == '\n' || t[ROBOTS_PARSE_LIMIT] == '\r')
		return ROBOTS_PARSE_LIMIT;
	for (i = ROBOTS_PARSE_LIMIT; i > 0; i--)
		if (t[i - 1] == '\n' || t[i - 1] == '\r')
			break;
	return i;
}

/* Priority order: longer patterns first, Allow first among equals, then
 * the file's order. */
static int robots_rule_cmp(const void *a, const void *b)
{
	const struct robots_rule *x = *(const struct robots_rule *const *)a;
	const struct robots_rule *y = *(const struct robots_rule *const *)b;

	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	if (x->allow != y->allow)
		return x->allow ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* A state of the given mode, without rules or Crawl-delay. */
static struct robots *robots_new(enum robots_mode mode)
{
	struct robots *r = xcalloc(1, sizeof *r);

	r->mode = mode;
	r->crawl_delay = -1;
	return r;
}

/* Parse line by line, building only the rules of groups that can apply,
 * then keep those of the groups that do, in priority order. */
struct robots *robots_parse(const char *text, size_t len,
			    const char *product_token)
{
	struct robots_parser p = {
		.token = product_token ? product_token : "",
		.group_delay = -1,
		.mine = {.delay = -1},
		.star = {.delay = -1},
	};
	struct robots *r = robots_new(ROBOTS_RULES);
	struct robots_list *use;
	size_t n = len > 0 ? robots_limit(text, len) : 0, i = 0, start;

	p.token_len = robots_token_len(p.token, strlen(p.token));
	p.buf = xmalloc(ROBOTS_PATTERN_MAX + 8);
	if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	/* CR, LF and CRLF all end a line; the empty line between a CR and
	 * an LF means nothing, as every empty line. */
	while (i < n) {
		start = i;
		while (i < n && text[i] != '\n' && text[i] != '\r')
			i++;
		robots_line(&p, text + start, i - start);
		i++;
	}
	robots_group_end(&p);
	free(p.buf);

	use = p.found_mine ? &p.mine : &p.star;
	robots_list_clear(p.found_mine ? &p.star : &p.mine);
	r->crawl_delay = use->delay;
	if (use->n > 0) {
		qsort(use->v, use->n, sizeof use->v[0], robots_rule_cmp);
		r->rules = xrealloc(use->v, use->n * sizeof use->v[0]);
		r->nrules = use->n;
	} else {
		free(use->v);
	}
	return r;
}

/* The state for a 4xx /robots.txt. */
struct robots *robots_allow_all(void)
{
	return robots_new(ROBOTS_ALLOW_ALL);
}

/* The state for a 5xx or unreachable /robots.txt. */
struct robots *robots_disallow_all(const char *why)
{
	struct robots *r = robots_new(ROBOTS_DISALLOW_ALL);

	if (why == NULL || why[0] == '\0')
		why = "robots.txt unreachable: everything disallowed";
	r->why = xstrdup(why);
	return r;
}

/* The first rule in priority order that matches decides. */
struct robots_verdict robots_check(const struct robots *r, const char *target,
				   size_t len)
{
	struct robots_verdict v = {.allowed = true, .rule = NULL};
	const unsigned char *t = (const unsigned char *)target;

	if (len == 0) {
		t = (const unsigned char *)"/";
		len = 1;
	}
	if (r->mode == ROBOTS_ALLOW_ALL || robots_is_self(t, len))
		return v;
	if (r->mode == ROBOTS_DISALLOW_ALL) {
		v.allowed = false;
		v.rule = r->why;
		return v;
	}
	for (size_t i = 0; i < r->nrules; i++) {
		if (robots_match(r->rules[i], t, len)) {
			v.allowed = r->rules[i]->allow;
			v.rule = r->rules[i]->text;
			break;
		}
	}
	return v;
}

/* Seconds, or -1. */
double robots_crawl_delay(const struct robots *r)
{
	return r->crawl_delay;
}

/* The Allow and Disallow rules kept. */
size_t robots_rule_count(const struct robots *r)
{
	return r->nrules;
}

/* Free the state, its rules and its texts. */
void robots_free(struct robots *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrules; i++)
		free(r->rules[i]);
	free(r->rules);
	free(r->why);
	free(r);
}

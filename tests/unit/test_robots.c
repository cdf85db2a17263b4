/* Unit tests for robots.c (RFC 9309 robots.txt rules).
 *
 * Where the vectors come from:
 *  - RFC 9309 itself: the examples of section 5.1 (simple example) and 5.2
 *    (longest match), the group tables of 2.2.1, the percent-encoding table
 *    of 2.2.2 and the special-character tables of 2.2.3 (read from the RFC's
 *    XML source as kept in the google/robotstxt repository).
 *  - Google's "How Google interprets the robots.txt specification" page
 *    (developers.google.com/search/docs/crawling-indexing/robots/robots_txt):
 *    the "URL matching based on path values" table and the "order of
 *    precedence for rules" examples.  That page was not readable from
 *    here; the vectors are written from it as published, checked against a
 *    stored copy of the older version of the path table and against the
 *    same examples in google/robotstxt's robots_test.cc
 *    (GoogleOnly_DocumentationChecks).
 *  - google/robotstxt's robots_test.cc: a few of its published example
 *    files (groups, line syntax, longest match, special characters), where
 *    the RFC is silent.  Where that library departs from the RFC (it does
 *    not decode %62%61%7A, the RFC's table says it must), the RFC wins.
 *  - The rest (limits, Crawl-delay, memory, odd bytes) is gatherd's own. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "robots.h"
#include "tap.h"

#define TOKEN "gatherd"

/* Parse a NUL-terminated file for the token. */
static struct robots *parse(const char *text, const char *token)
{
	return robots_parse(text, strlen(text), token);
}

static struct robots_verdict check(const struct robots *r, const char *target)
{
	return robots_check(r, target, strlen(target));
}

static bool allowed(const struct robots *r, const char *target)
{
	return check(r, target).allowed;
}

/* Parse, check one target, free. */
static bool allowed_by(const char *text, const char *token,
		       const char *target)
{
	struct robots *r = parse(text, token);
	bool ok = allowed(r, target);

	robots_free(r);
	return ok;
}

/* Crawl-delay of a file for TOKEN. */
static double delay_of(const char *text)
{
	struct robots *r = parse(text, TOKEN);
	double d = robots_crawl_delay(r);

	robots_free(r);
	return d;
}

/* A growing text, for the big files. */
struct buf {
	char *s;
	size_t n, cap;
};

static void buf_add(struct buf *b, const char *s)
{
	size_t k = strlen(s);

	if (b->n + k + 1 > b->cap) {
		b->cap = (b->n + k + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL)
			abort();
	}
	memcpy(b->s + b->n, s, k + 1);
	b->n += k;
}

/* RFC 9309 section 5.1, the simple example, for each of its agents. */
static void test_rfc_simple_example(void)
{
	static const char text[] = "User-Agent: *\n"
				   "Disallow: *.gif$\n"
				   "Disallow: /example/\n"
				   "Allow: /publications/\n"
				   "\n"
				   "User-Agent: foobot\n"
				   "Disallow:/\n"
				   "Allow:/example/page.html\n"
				   "Allow:/example/allowed.gif\n"
				   "\n"
				   "User-Agent: barbot\n"
				   "User-Agent: bazbot\n"
				   "Disallow: /example/page.html\n"
				   "\n"
				   "User-Agent: quxbot\n"
				   "\n"
				   "EOF\n";
	struct robots *r;

	/* foobot: only the two allowed prefixes. */
	r = parse(text, "foobot");
	TAP_CHECK(allowed(r, "/example/page.html"));
	TAP_CHECK(allowed(r, "/example/page.html?x=1"));
	TAP_CHECK(allowed(r, "/example/allowed.gif"));
	TAP_CHECK(!allowed(r, "/example/other.html"));
	TAP_CHECK(!allowed(r, "/publications/"));
	TAP_CHECK(!allowed(r, "/"));
	TAP_CHECK(robots_rule_count(r) == 3);
	robots_free(r);

	/* barbot and bazbot share one group. */
	for (int i = 0; i < 2; i++) {
		r = parse(text, i == 0 ? "barbot" : "bazbot");
		TAP_CHECK(!allowed(r, "/example/page.html"));
		TAP_CHECK(allowed(r, "/example/other.html"));
		TAP_CHECK(allowed(r, "/images/logo.gif"));
		TAP_CHECK(allowed(r, "/"));
		robots_free(r);
	}

	/* quxbot: an empty group at the end of the file allows everything,
	 * and it is quxbot's, so "*" does not apply. */
	r = parse(text, "quxbot");
	TAP_CHECK(allowed(r, "/example/page.html"));
	TAP_CHECK(allowed(r, "/images/logo.gif"));
	TAP_CHECK(robots_rule_count(r) == 0);
	robots_free(r);

	/* Anybody else: the "*" group. */
	r = parse(text, "otherbot");
	TAP_CHECK(!allowed(r, "/images/logo.gif"));
	TAP_CHECK(!allowed(r, "/logo.gif"));
	TAP_CHECK(allowed(r, "/logo.gif?v=2")); /* '$' ends the target */
	TAP_CHECK(allowed(r, "/logo.gifs"));
	TAP_CHECK(!allowed(r, "/example/"));
	TAP_CHECK(!allowed(r, "/example/page.html"));
	TAP_CHECK(allowed(r, "/example"));
	TAP_CHECK(allowed(r, "/publications/paper.html"));
	/* /publications/ is longer than *.gif$: the Allow wins. */
	TAP_CHECK(allowed(r, "/publications/chart.gif"));
	TAP_CHECK(allowed(r, "/"));
	robots_free(r);
}

/* RFC 9309 section 5.2: the longest match wins, in either order.  (The
 * RFC's prose names /example/page/disallow.gif, which neither rule's
 * length settles; the file's point is disallowed.gif.) */
static void test_rfc_longest_match(void)
{
	static const char a[] = "User-Agent: foobot\n"
				"Allow: /example/page/\n"
				"Disallow: /example/page/disallowed.gif\n";
	static const char b[] = "User-Agent: foobot\n"
				"Disallow: /example/page/disallowed.gif\n"
				"Allow: /example/page/\n";
	const char *files[] = {a, b};

	for (int i = 0; i < 2; i++) {
		struct robots *r = parse(files[i], "foobot");
		struct robots_verdict v;

		v = check(r, "/example/page/disallowed.gif");
		TAP_CHECK(!v.allowed);
		TAP_CHECK_STR(v.rule, "Disallow: /example/page/disallowed.gif");
		v = check(r, "/example/page/disallow.gif");
		TAP_CHECK(v.allowed);
		TAP_CHECK_STR(v.rule, "Allow: /example/page/");
		TAP_CHECK(allowed(r, "/example/page/"));
		TAP_CHECK(allowed(r, "/example/"));
		robots_free(r);
	}
}

/* RFC 9309 2.2.1: groups for the same agent are merged; with none, "*";
 * with neither, nothing applies. */
static void test_rfc_groups(void)
{
	static const char merged[] = "user-agent: ExampleBot\n"
				     "disallow: /foo\n"
				     "disallow: /bar\n"
				     "\n"
				     "user-agent: ExampleBot\n"
				     "disallow: /baz\n";
	static const char star[] = "user-agent: *\n"
				   "disallow: /foo\n"
				   "disallow: /bar\n"
				   "\n"
				   "user-agent: BazBot\n"
				   "disallow: /baz\n";
	static const char none[] = "user-agent: BazBot\n"
				   "disallow: /\n";
	struct robots *r;

	r = parse(merged, "ExampleBot");
	TAP_CHECK(!allowed(r, "/foo"));
	TAP_CHECK(!allowed(r, "/bar"));
	TAP_CHECK(!allowed(r, "/baz"));
	TAP_CHECK(allowed(r, "/qux"));
	TAP_CHECK(robots_rule_count(r) == 3);
	robots_free(r);

	r = parse(star, "ExampleBot");
	TAP_CHECK(!allowed(r, "/foo"));
	TAP_CHECK(!allowed(r, "/bar"));
	TAP_CHECK(allowed(r, "/baz"));
	TAP_CHECK(robots_rule_count(r) == 2);
	robots_free(r);

	TAP_CHECK(allowed_by(none, "ExampleBot", "/anything"));
	TAP_CHECK(allowed_by("", "ExampleBot", "/anything"));
	TAP_CHECK(!allowed_by(none, "bazbot", "/anything"));
}

/* RFC 9309 2.2.2, the table of percent-encoded paths: each rule, written
 * in the "Path" form, matches the "Path to Match" target. */
static void test_rfc_percent_encoding(void)
{
	static const struct {
		const char *rule, *target;
	} match[] = {
		{"/foo/bar?baz=quz", "/foo/bar?baz=quz"},
		{"/foo/bar?baz=https://foo.bar",
		 "/foo/bar?baz=https%3A%2F%2Ffoo.bar"},
		{"/foo/bar?baz=https://foo.bar", "/foo/bar?baz=https://foo.bar"},
		{"/foo/bar/\xE3\x83\x84", "/foo/bar/%E3%83%84"},
		{"/foo/bar/%E3%83%84", "/foo/bar/%E3%83%84"},
		{"/foo/bar/%62%61%7A", "/foo/bar/baz"},
		/* And the other way round, and hex in either case. */
		{"/foo/bar/baz", "/foo/bar/%62%61%7A"},
		{"/foo/bar/%e3%83%84", "/foo/bar/%E3%83%84"},
		{"/foo/bar/%E3%83%84", "/foo/bar/%e3%83%84"},
		{"/a%3cd.html", "/a%3Cd.html"},
		{"/%7ejoe/", "/~joe/index.html"},
		{"/~joe/", "/%7Ejoe/index.html"},
		/* A target may carry raw UTF-8 (url.c keeps it as
		 * submitted): it compares as its escapes. */
		{"/foo/bar/\xE3\x83\x84", "/foo/bar/\xE3\x83\x84"},
		{"/foo/bar/%E3%83%84", "/foo/bar/\xE3\x83\x84"},
	};
	static const struct {
		const char *rule, *target;
	} differ[] = {
		{"/foo/bar/%E3%83%85", "/foo/bar/%E3%83%84"},
		{"/foo/bar/baz", "/foo/bar/%62%61%7B"},
		{"/a%25b", "/a%2Bb"}, /* an escaped '%' is not an escape */
	};
	char text[256];

	for (size_t i = 0; i < sizeof match / sizeof match[0]; i++) {
		snprintf(text, sizeof text, "User-agent: *\nDisallow: %s\n",
			 match[i].rule);
		if (allowed_by(text, TOKEN, match[i].target))
			printf("# %s should match %s\n", match[i].rule,
			       match[i].target);
		TAP_CHECK(!allowed_by(text, TOKEN, match[i].target));
	}
	for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
		snprintf(text, sizeof text, "User-agent: *\nDisallow: %s\n",
			 differ[i].rule);
		TAP_CHECK(allowed_by(text, TOKEN, differ[i].target));
	}
	/* The same rule in two spellings is one length: the tie goes to
	 * the Allow. */
	TAP_CHECK(allowed_by("User-agent: *\n"
			     "Disallow: /foo/bar/%E3%83%84\n"
			     "Allow: /foo/bar/\xE3\x83\x84\n",
			     TOKEN, "/foo/bar/%E3%83%84"));
}

/* RFC 9309 2.2.3: '#', '$' and '*', and their escapes. */
static void test_rfc_special_characters(void)
{
	struct robots *r;

	r = parse("User-agent: *\n"
		  "Disallow: /\n"
		  "allow: /this/path/exactly$\n"
		  "allow: /that/*/exactly # comment in line\n"
		  "# comment on its own line\n",
		  TOKEN);
	TAP_CHECK(allowed(r, "/this/path/exactly"));
	TAP_CHECK(!allowed(r, "/this/path/exactly/"));
	TAP_CHECK(!allowed(r, "/this/path/exactly?q"));
	TAP_CHECK(allowed(r, "/that/x/exactly"));
	TAP_CHECK(allowed(r, "/that/x/y/exactly/and/more"));
	TAP_CHECK(allowed(r, "/that//exactly"));
	TAP_CHECK(!allowed(r, "/that/exactly"));
	robots_free(r);

	/* "If crawlers match special characters verbatim in the URI, crawlers
	 * SHOULD use "%" encoding." */
	r = parse("User-agent: *\n"
		  "Disallow: /path/file-with-a-%2A.html\n"
		  "Disallow: /path/foo-%24\n",
		  TOKEN);
	TAP_CHECK(!allowed(r, "/path/file-with-a-*.html"));
	TAP_CHECK(!allowed(r, "/path/file-with-a-%2a.html"));
	TAP_CHECK(allowed(r, "/path/file-with-a-x.html"));
	TAP_CHECK(!allowed(r, "/path/foo-$"));
	TAP_CHECK(!allowed(r, "/path/foo-%24"));
	TAP_CHECK(allowed(r, "/path/foo-"));
	robots_free(r);

	/* A '$' that does not end the pattern is a plain '$'. */
	r = parse("User-agent: *\nDisallow: /a$b\n", TOKEN);
	TAP_CHECK(!allowed(r, "/a$b"));
	TAP_CHECK(!allowed(r, "/a$bc"));
	TAP_CHECK(allowed(r, "/a"));
	robots_free(r);

	/* google/robotstxt ID_SpecialCharacters. */
	r = parse("User-agent: FooBot\n"
		  "Disallow: /foo/bar/quz\n"
		  "Allow: /foo/*/qux\n",
		  "FooBot");
	TAP_CHECK(!allowed(r, "/foo/bar/quz"));
	TAP_CHECK(allowed(r, "/foo/quz"));
	TAP_CHECK(allowed(r, "/foo//quz"));
	TAP_CHECK(allowed(r, "/foo/bax/quz"));
	robots_free(r);
	r = parse("User-agent: FooBot\n"
		  "Disallow: /foo/bar$\n"
		  "Allow: /foo/bar/qux\n",
		  "FooBot");
	TAP_CHECK(!allowed(r, "/foo/bar"));
	TAP_CHECK(allowed(r, "/foo/bar/qux"));
	TAP_CHECK(allowed(r, "/foo/bar/"));
	TAP_CHECK(allowed(r, "/foo/bar/baz"));
	robots_free(r);
	r = parse("User-agent: FooBot\n"
		  "# Disallow: /\n"
		  "Disallow: /foo/quz#qux\n"
		  "Allow: /\n",
		  "FooBot");
	TAP_CHECK(allowed(r, "/foo/bar"));
	TAP_CHECK(!allowed(r, "/foo/quz"));
	robots_free(r);
}

/* Google's "URL matching based on path values" table: pattern, target,
 * whether the pattern matches it. */
static void test_google_path_table(void)
{
	static const struct {
		const char *pattern, *target;
		bool match;
	} t[] = {
		{"/", "/", true},
		{"/", "/index.html", true},
		{"/", "/any/lower/level?x", true},
		{"/*", "/", true},
		{"/*", "/any/lower/level?x", true},
		{"/$", "/", true},
		{"/$", "/page.htm", false},
		{"/fish", "/fish", true},
		{"/fish", "/fish.html", true},
		{"/fish", "/fish/salmon.html", true},
		{"/fish", "/fishheads", true},
		{"/fish", "/fishheads/yummy.html", true},
		{"/fish", "/fish.php?id=anything", true},
		{"/fish", "/Fish.asp", false},
		{"/fish", "/catfish", false},
		{"/fish", "/?id=fish", false},
		{"/fish", "/desert/fish", false},
		{"/fish*", "/fish", true},
		{"/fish*", "/fish.html", true},
		{"/fish*", "/fish/salmon.html", true},
		{"/fish*", "/fishheads", true},
		{"/fish*", "/fishheads/yummy.html", true},
		{"/fish*", "/fish.php?id=anything", true},
		{"/fish*", "/Fish.asp", false},
		{"/fish*", "/catfish", false},
		{"/fish*", "/?id=fish", false},
		{"/fish*", "/desert/fish", false},
		{"/fish/", "/fish/", true},
		{"/fish/", "/fish/?id=anything", true},
		{"/fish/", "/fish/salmon.htm", true},
		{"/fish/", "/fish", false},
		{"/fish/", "/fish.html", false},
		{"/fish/", "/animals/fish/", false},
		{"/fish/", "/Fish/Salmon.asp", false},
		{"/*.php", "/index.php", true},
		{"/*.php", "/filename.php", true},
		{"/*.php", "/folder/filename.php", true},
		{"/*.php", "/folder/filename.php?parameters", true},
		{"/*.php", "/folder/any.php.file.html", true},
		{"/*.php", "/filename.php/", true},
		{"/*.php", "/", false},
		{"/*.php", "/windows.PHP", false},
		{"/*.php$", "/filename.php", true},
		{"/*.php$", "/folder/filename.php", true},
		{"/*.php$", "/filename.php?parameters", false},
		{"/*.php$", "/filename.php/", false},
		{"/*.php$", "/filename.php5", false},
		{"/*.php$", "/windows.PHP", false},
		{"/fish*.php", "/fish.php", true},
		{"/fish*.php", "/fishheads/catfish.php?parameters", true},
		{"/fish*.php", "/Fish.PHP", false},
		/* The older table's "fish/ is equivalent to /fish/". */
		{"fish/", "/fish/salmon.htm", true},
		{"fish/", "/fish", false},
	};
	char text[128];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct robots *r;
		struct robots_verdict v;

		snprintf(text, sizeof text, "User-agent: *\nDisallow: %s\n",
			 t[i].pattern);
		r = parse(text, TOKEN);
		v = check(r, t[i].target);
		if (v.allowed == t[i].match)
			printf("# pattern %s, target %s: expected %s\n",
			       t[i].pattern, t[i].target,
			       t[i].match ? "a match" : "no match");
		TAP_CHECK(v.allowed != t[i].match);
		robots_free(r);
	}
}

/* Google's "order of precedence for rules" examples. */
static void test_google_precedence(void)
{
	static const struct {
		const char *rules, *target;
		bool allowed;
		const char *rule;
	} t[] = {
		{"allow: /p\ndisallow: /\n", "/page", true, "Allow: /p"},
		{"allow: /folder\ndisallow: /folder\n", "/folder/page", true,
		 "Allow: /folder"},
		{"disallow: /folder\nallow: /folder\n", "/folder/page", true,
		 "Allow: /folder"},
		{"allow: /page\ndisallow: /*.htm\n", "/page.htm", false,
		 "Disallow: /*.htm"},
		{"allow: /page\ndisallow: /*.ph\n", "/page.php5", true,
		 "Allow: /page"},
		{"allow: /$\ndisallow: /\n", "/", true, "Allow: /$"},
		{"allow: /$\ndisallow: /\n", "/page.htm", false, "Disallow: /"},
		/* google/robotstxt ID_LongestMatch. */
		{"disallow: /x/page.html\nallow: /x/\n", "/x/page.html", false,
		 "Disallow: /x/page.html"},
		{"allow: /x/page.html\ndisallow: /x/\n", "/x/page.html", true,
		 "Allow: /x/page.html"},
		{"allow: /x/page.html\ndisallow: /x/\n", "/x/", false,
		 "Disallow: /x/"},
		{"disallow: \nallow: \n", "/x/page.html", true, NULL},
		{"disallow: /\nallow: /\n", "/x/page.html", true, "Allow: /"},
		{"disallow: /x\nallow: /x/\n", "/x", false, "Disallow: /x"},
		{"disallow: /x\nallow: /x/\n", "/x/", true, "Allow: /x/"},
		{"allow: /page\ndisallow: /*.html\n", "/page.html", false,
		 "Disallow: /*.html"},
		{"allow: /page\ndisallow: /*.html\n", "/page", true,
		 "Allow: /page"},
		{"allow: /x/page.\ndisallow: /*.html\n", "/x/page.html", true,
		 "Allow: /x/page."},
		{"allow: /x/page.\ndisallow: /*.html\n", "/x/y.html", false,
		 "Disallow: /*.html"},
	};
	char text[256];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct robots *r;
		struct robots_verdict v;

		snprintf(text, sizeof text, "user-agent: *\n%s", t[i].rules);
		r = parse(text, TOKEN);
		v = check(r, t[i].target);
		TAP_CHECK(v.allowed == t[i].allowed);
		if (t[i].rule == NULL)
			TAP_CHECK(v.rule == NULL);
		else
			TAP_CHECK_STR(v.rule, t[i].rule);
		robots_free(r);
	}
}

/* Which groups apply: ours over "*", merged, case-insensitive, the token
 * taken from a whole User-Agent value. */
static void test_group_selection(void)
{
	static const char text[] = "User-agent: *\n"
				   "Disallow: /star\n"
				   "\n"
				   "User-agent: GatherD\n"
				   "Disallow: /one\n"
				   "\n"
				   "User-agent: otherbot\n"
				   "Disallow: /other\n"
				   "\n"
				   "user-agent: gatherd/2.0\n"
				   "Disallow: /two\n";
	static const char google_groups[] = "allow: /foo/bar/\n"
					    "\n"
					    "user-agent: FooBot\n"
					    "disallow: /\n"
					    "allow: /x/\n"
					    "user-agent: BarBot\n"
					    "disallow: /\n"
					    "allow: /y/\n"
					    "\n"
					    "\n"
					    "allow: /w/\n"
					    "user-agent: BazBot\n"
					    "\n"
					    "user-agent: FooBot\n"
					    "allow: /z/\n"
					    "disallow: /\n";
	const char *tokens[] = {"gatherd", "GATHERD",
				"gatherd/0.1 (+https://example.com/bot)",
				"Gatherd-"};
	struct robots *r;

	for (size_t i = 0; i < 3; i++) {
		r = parse(text, tokens[i]);
		TAP_CHECK(!allowed(r, "/one"));
		TAP_CHECK(!allowed(r, "/two"));
		TAP_CHECK(allowed(r, "/star"));
		TAP_CHECK(allowed(r, "/other"));
		TAP_CHECK(robots_rule_count(r) == 2);
		robots_free(r);
	}
	/* Token characters are letters, '_' and '-': "Gatherd-" is not
	 * "gatherd". */
	r = parse(text, tokens[3]);
	TAP_CHECK(!allowed(r, "/star"));
	TAP_CHECK(allowed(r, "/one"));
	robots_free(r);
	/* No token at all: only "*" can apply. */
	r = parse(text, "");
	TAP_CHECK(!allowed(r, "/star"));
	TAP_CHECK(allowed(r, "/one"));
	robots_free(r);
	r = parse(text, NULL);
	TAP_CHECK(!allowed(r, "/star"));
	robots_free(r);

	/* A user-agent line's token ends at the first other character, as
	 * "Foo Bar" is read "Foo". */
	TAP_CHECK(!allowed_by("User-agent: gatherd crawler\nDisallow: /\n",
			      TOKEN, "/x"));
	TAP_CHECK(allowed_by("User-agent: gatherdx\nDisallow: /\n", TOKEN,
			     "/x"));
	TAP_CHECK(allowed_by("User-agent: gather\nDisallow: /\n", TOKEN,
			     "/x"));
	/* "*" only when it stands alone. */
	TAP_CHECK(allowed_by("User-agent: *bot\nDisallow: /\n", TOKEN, "/x"));
	TAP_CHECK(!allowed_by("User-agent: * # all\nDisallow: /\n", TOKEN,
			      "/x"));

	/* A group naming both applies as ours. */
	r = parse("User-agent: *\nUser-agent: gatherd\nDisallow: /both\n"
		  "User-agent: *\nDisallow: /star\n",
		  TOKEN);
	TAP_CHECK(!allowed(r, "/both"));
	TAP_CHECK(allowed(r, "/star"));
	robots_free(r);

	/* Our group may come after "*": the "*" rules are dropped then. */
	r = parse("User-agent: *\nDisallow: /a\nDisallow: /b\n"
		  "User-agent: gatherd\nDisallow: /c\n",
		  TOKEN);
	TAP_CHECK(robots_rule_count(r) == 1);
	TAP_CHECK(allowed(r, "/a"));
	TAP_CHECK(!allowed(r, "/c"));
	robots_free(r);

	/* google/robotstxt ID_LineSyntax_Groups: rules outside groups are
	 * ignored, a user-agent line after rules starts a group, blank lines
	 * do not end one. */
	r = parse(google_groups, "FooBot");
	TAP_CHECK(allowed(r, "/x/b"));
	TAP_CHECK(allowed(r, "/z/d"));
	TAP_CHECK(!allowed(r, "/y/c"));
	TAP_CHECK(!allowed(r, "/foo/bar/"));
	robots_free(r);
	r = parse(google_groups, "BarBot");
	TAP_CHECK(allowed(r, "/y/c"));
	TAP_CHECK(allowed(r, "/w/a"));
	TAP_CHECK(!allowed(r, "/z/d"));
	TAP_CHECK(!allowed(r, "/foo/bar/"));
	robots_free(r);
	r = parse(google_groups, "BazBot");
	TAP_CHECK(allowed(r, "/z/d"));
	TAP_CHECK(!allowed(r, "/foo/bar/"));
	robots_free(r);
	TAP_CHECK(allowed_by(google_groups, "QuxBot", "/x"));

	/* Other records do not end a group's user-agent lines (RFC 9309
	 * 2.2.4: a Sitemap record must not end a group). */
	r = parse("User-agent: otherbot\n"
		  "Sitemap: https://example.com/sitemap.xml\n"
		  "Noindex: /foo\n"
		  "User-agent: gatherd\n"
		  "Disallow: /shared\n",
		  TOKEN);
	TAP_CHECK(!allowed(r, "/shared"));
	robots_free(r);
	TAP_CHECK(!allowed_by("User-agent: gatherd\n"
			      "Disallow: /a\n"
			      "Sitemap: https://example.com/sitemap.xml\n"
			      "Disallow: /b\n",
			      TOKEN, "/b"));
}

/* Line syntax: comments, whitespace, line ends, BOM, keys. */
static void test_line_syntax(void)
{
	static const char *const files[] = {
		/* Odd whitespace and comments. */
		"# robots.txt\n"
		"  \tUser-agent \t:\t gatherd  \t# us\n"
		"\tDisallow :   /one  \n"
		"Disallow:/two#three\n"
		"   # Disallow: /\n",
		/* CRLF */
		"User-agent: gatherd\r\nDisallow: /one\r\n\r\nDisallow: /two\r\n",
		/* CR alone */
		"User-agent: gatherd\rDisallow: /one\r\rDisallow: /two\r",
		/* Mixed, and no final line end. */
		"User-agent: gatherd\r\nDisallow: /one\n\rDisallow: /two",
		/* A UTF-8 byte order mark. */
		"\xEF\xBB\xBFUser-agent: gatherd\nDisallow: /one\nDisallow: /two",
		/* Keys in any case. */
		"USER-AGENT: gatherd\nDISALLOW: /one\ndIsAlLoW: /two\n",
		/* A missing colon (google/robotstxt ID_LineSyntax_Line), and
		 * misspellings. */
		"user-agent gatherd\ndisallow /one\ndisalow: /two\n",
		"useragent: gatherd\ndissallow: /one\nDisallow\t/two\n",
	};

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		struct robots *r = parse(files[i], TOKEN);

		if (robots_rule_count(r) != 2)
			printf("# file %zu: %zu rules\n", i,
			       robots_rule_count(r));
		TAP_CHECK(robots_rule_count(r) == 2);
		TAP_CHECK(!allowed(r, "/one"));
		TAP_CHECK(!allowed(r, "/two"));
		TAP_CHECK(allowed(r, "/three"));
		TAP_CHECK(allowed(r, "/"));
		robots_free(r);
	}

	/* Lines that are not records are skipped, not fatal. */
	TAP_CHECK(!allowed_by("User-agent: gatherd\n"
			      "this line means nothing\n"
			      ": nor this\n"
			      "foo: bar\n"
			      "Disallow: /x\n",
			      TOKEN, "/x"));
	/* Not the google/robotstxt "foo: FooBot / bar: /" file either. */
	TAP_CHECK(allowed_by("foo: gatherd\nbar: /\n", TOKEN, "/x/y"));
	/* Rules before any user-agent line are ignored. */
	TAP_CHECK(allowed_by("Disallow: /\nUser-agent: gatherd\nAllow: /a\n",
			     TOKEN, "/x"));
	/* A NUL inside the text is just an octet. */
	{
		static const char nul[] = "User-agent: gatherd\nDisallow: /a\0b\n"
					  "Disallow: /c\n";
		struct robots *r = robots_parse(nul, sizeof nul - 1, TOKEN);

		TAP_CHECK(robots_rule_count(r) == 2);
		TAP_CHECK(!allowed(r, "/c"));
		TAP_CHECK(!allowed(r, "/a%00b"));
		TAP_CHECK(allowed(r, "/a"));
		robots_free(r);
	}
	/* The text needs no NUL: only len bytes are read. */
	{
		static const char t[] = "User-agent: gatherd\nDisallow: /abc";
		struct robots *r = robots_parse(t, sizeof t - 3, TOKEN);

		TAP_CHECK(!allowed(r, "/a"));
		TAP_CHECK(allowed(r, "/b"));
		robots_free(r);
	}
}

/* An empty Disallow allows everything; so does an empty file. */
static void test_empty_rules(void)
{
	struct robots *r;

	r = parse("User-agent: *\nDisallow:\n", TOKEN);
	TAP_CHECK(robots_rule_count(r) == 0);
	TAP_CHECK(allowed(r, "/"));
	TAP_CHECK(allowed(r, "/anything"));
	robots_free(r);
	r = parse("User-agent: *\nDisallow:   # nothing\nAllow:\n", TOKEN);
	TAP_CHECK(allowed(r, "/anything"));
	robots_free(r);
	r = parse("", TOKEN);
	TAP_CHECK(allowed(r, "/anything"));
	TAP_CHECK(robots_crawl_delay(r) == -1);
	robots_free(r);
	r = robots_parse(NULL, 0, TOKEN);
	TAP_CHECK(allowed(r, "/anything"));
	robots_free(r);
	/* Our group, even empty, hides "*". */
	TAP_CHECK(allowed_by("User-agent: *\nDisallow: /\n"
			     "User-agent: gatherd\nDisallow:\n",
			     TOKEN, "/x"));
	TAP_CHECK(allowed_by("User-agent: *\nDisallow: /\n"
			     "User-agent: gatherd\n",
			     TOKEN, "/x"));
}

/* /robots.txt is always allowed, whatever the rules. */
static void test_robots_txt_allowed(void)
{
	struct robots *r = parse("User-agent: *\nDisallow: /\n", TOKEN);

	TAP_CHECK(allowed(r, "/robots.txt"));
	TAP_CHECK(allowed(r, "/robots.txt?x=1"));
	TAP_CHECK(allowed(r, "/robots%2Etxt"));
	TAP_CHECK(!allowed(r, "/robots.txtx"));
	TAP_CHECK(!allowed(r, "/robots.tx"));
	TAP_CHECK(!allowed(r, "/Robots.txt"));
	TAP_CHECK(!allowed(r, "/x/robots.txt"));
	TAP_CHECK(check(r, "/robots.txt").rule == NULL);
	robots_free(r);
	r = robots_disallow_all("down");
	TAP_CHECK(allowed(r, "/robots.txt"));
	robots_free(r);
}

/* The fixed states for a fetch that gave no file. */
static void test_fixed_states(void)
{
	struct robots *r;
	struct robots_verdict v;

	r = robots_allow_all();
	v = check(r, "/anything");
	TAP_CHECK(v.allowed && v.rule == NULL);
	TAP_CHECK(robots_crawl_delay(r) == -1);
	TAP_CHECK(robots_rule_count(r) == 0);
	robots_free(r);

	{
		char why[] = "robots.txt unavailable (HTTP 503): everything "
			     "disallowed";

		r = robots_disallow_all(why);
		why[0] = 'X'; /* copied */
	}
	v = check(r, "/anything");
	TAP_CHECK(!v.allowed);
	TAP_CHECK_STR(v.rule, "robots.txt unavailable (HTTP 503): everything "
			      "disallowed");
	v = check(r, "/");
	TAP_CHECK(!v.allowed);
	TAP_CHECK(robots_crawl_delay(r) == -1);
	robots_free(r);

	r = robots_disallow_all(NULL);
	v = check(r, "/x");
	TAP_CHECK(!v.allowed && v.rule != NULL && v.rule[0] != '\0');
	robots_free(r);
	robots_free(NULL);
}

/* The rule text handed out for error_detail. */
static void test_verdict_text(void)
{
	char big[600];
	struct robots *r;
	struct robots_verdict v;
	struct buf b = {0};

	r = parse("User-agent: *\n"
		  "Disallow:    /private/    # keep out\n"
		  "Allow: /private/ok\n",
		  TOKEN);
	v = check(r, "/private/x");
	TAP_CHECK(!v.allowed);
	TAP_CHECK_STR(v.rule, "Disallow: /private/");
	v = check(r, "/private/ok.html");
	TAP_CHECK(v.allowed);
	TAP_CHECK_STR(v.rule, "Allow: /private/ok");
	v = check(r, "/public");
	TAP_CHECK(v.allowed && v.rule == NULL);
	/* The target is len bytes, not a C string. */
	v = robots_check(r, "/private/xyz", 3);
	TAP_CHECK(v.allowed);
	v = robots_check(r, "/private/xyz", 9);
	TAP_CHECK(!v.allowed);
	/* An empty target is "/". */
	v = robots_check(r, "", 0);
	TAP_CHECK(v.allowed);
	robots_free(r);

	/* UTF-8 as written; controls and invalid bytes escaped. */
	r = parse("User-agent: *\nDisallow: /caf\xC3\xA9\n", TOKEN);
	TAP_CHECK_STR(check(r, "/caf%C3%A9").rule, "Disallow: /caf\xC3\xA9");
	robots_free(r);
	r = parse("User-agent: *\nDisallow: /caf\xE9\n", TOKEN);
	TAP_CHECK_STR(check(r, "/caf%E9").rule, "Disallow: /caf%E9");
	robots_free(r);
	r = parse("User-agent: *\nDisallow: /a\x01 b\n", TOKEN);
	v = check(r, "/a%01%20b");
	TAP_CHECK(!v.allowed);
	TAP_CHECK_STR(v.rule, "Disallow: /a%01 b");
	robots_free(r);

	/* A long path is cut in the text, not in the rule. */
	memset(big, 'x', sizeof big);
	big[0] = '/';
	big[sizeof big - 1] = '\0';
	buf_add(&b, "User-agent: *\nDisallow: ");
	buf_add(&b, big);
	buf_add(&b, "\n");
	r = parse(b.s, TOKEN);
	v = check(r, big);
	TAP_CHECK(!v.allowed);
	TAP_CHECK(v.rule != NULL && strlen(v.rule) == 10 + 256 + 3);
	TAP_CHECK(v.rule != NULL &&
		  strcmp(v.rule + strlen(v.rule) - 3, "...") == 0);
	big[300] = '\0';
	TAP_CHECK(allowed(r, big));
	robots_free(r);
	free(b.s);
}

/* Crawl-delay values: the applying group's, the largest if several. */
static void test_crawl_delay(void)
{
	static const struct {
		const char *value;
		double want;
	} t[] = {
		{"10", 10},   {"0.5", 0.5}, {"2.25 # two and a quarter", 2.25},
		{"0", 0},     {".5", 0.5},  {"5.", 5},
		{"", -1},     {"abc", -1},  {"-1", -1},
		{"1e3", -1},  {"10s", -1},  {"inf", -1},
		{"nan", -1},  {"1 2", -1},  {"1.2.3", -1},
		{"+3", -1},   {"0x10", -1}, {".", -1},
	};
	char text[128];
	struct buf b = {0};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		snprintf(text, sizeof text,
			 "User-agent: gatherd\nCrawl-delay: %s\n", t[i].value);
		if (delay_of(text) != t[i].want)
			printf("# Crawl-delay: %s gave %g\n", t[i].value,
			       delay_of(text));
		TAP_CHECK(delay_of(text) == t[i].want);
	}
	/* Absurdly many digits overflow to infinity: ignored. */
	buf_add(&b, "User-agent: *\nCrawl-delay: ");
	for (int i = 0; i < 400; i++)
		buf_add(&b, "9");
	buf_add(&b, "\n");
	TAP_CHECK(delay_of(b.s) == -1);
	free(b.s);

	/* Merged groups: the largest. */
	TAP_CHECK(delay_of("User-agent: gatherd\nCrawl-delay: 3\n"
			   "User-agent: gatherd\nCrawl-delay: 7\n"
			   "Crawl-delay: 1\n") == 7);
	/* "*" has one, ours has none: ours applies. */
	TAP_CHECK(delay_of("User-agent: *\nDisallow: /y\nCrawl-delay: 5\n"
			   "User-agent: gatherd\nDisallow: /x\n") == -1);
	TAP_CHECK(delay_of("User-agent: *\nDisallow: /y\nCrawl-delay: 5\n"
			   "User-agent: other\nDisallow: /x\n"
			   "Crawl-delay: 9\n") == 5);
	TAP_CHECK(delay_of("User-agent: other\nCrawl-delay: 9\n") == -1);
	/* Before any group: ignored. */
	TAP_CHECK(delay_of("Crawl-delay: 9\nUser-agent: gatherd\n") == -1);
	/* Crawl-delay is not a rule: between user-agent lines it leaves
	 * them one group (RFC 9309 2.2.4: other records must not change how
	 * the rules parse; google/robotstxt reads it so too). */
	TAP_CHECK(delay_of("User-agent: other\nCrawl-delay: 4\n"
			   "User-agent: gatherd\nDisallow: /x\n") == 4);
	TAP_CHECK(!allowed_by("User-agent: *\nCrawl-delay: 4\n\n"
			      "User-agent: other\nDisallow: /x\n",
			      TOKEN, "/x"));
	/* After the rules, still the group's; misspelled key too. */
	TAP_CHECK(delay_of("User-agent: gatherd\nDisallow: /x\n"
			   "crawldelay: 2\nUser-agent: other\n"
			   "Crawl-delay: 30\n") == 2);
	/* The fixed states have none. */
	{
		struct robots *r = robots_allow_all();

		TAP_CHECK(robots_crawl_delay(r) == -1);
		robots_free(r);
	}
}

/* Bytes outside printable US-ASCII in rules compare as escapes. */
static void test_non_ascii(void)
{
	struct robots *r;

	r = parse("User-agent: *\nDisallow: /\xE3\x83\x84/\n"
		  "Disallow: /\xFF\xFE\n",
		  TOKEN);
	TAP_CHECK(!allowed(r, "/%E3%83%84/x"));
	TAP_CHECK(!allowed(r, "/%e3%83%84/x"));
	TAP_CHECK(!allowed(r, "/\xE3\x83\x84/x"));
	TAP_CHECK(allowed(r, "/%E3%83%84"));
	TAP_CHECK(!allowed(r, "/%FF%FE"));
	TAP_CHECK(!allowed(r, "/\xFF\xFE"));
	TAP_CHECK(allowed(r, "/%FF"));
	robots_free(r);
	/* A space inside a path is %20 on both sides. */
	r = parse("User-agent: *\nDisallow: /a b\n", TOKEN);
	TAP_CHECK(!allowed(r, "/a%20b"));
	TAP_CHECK(allowed(r, "/a"));
	robots_free(r);
	/* A '%' that starts no escape is %25. */
	r = parse("User-agent: *\nDisallow: /100%\nDisallow: /x%zz\n", TOKEN);
	TAP_CHECK(!allowed(r, "/100%25"));
	TAP_CHECK(!allowed(r, "/100%"));
	TAP_CHECK(!allowed(r, "/x%zz"));
	TAP_CHECK(!allowed(r, "/x%25zz"));
	TAP_CHECK(allowed(r, "/100"));
	robots_free(r);
}

/* The parse limit: rules past 500 KiB are ignored, and so is a line the
 * limit cuts. */
static void test_parse_limit(void)
{
	struct buf b = {0};
	struct robots *r;
	size_t pad;

	buf_add(&b, "User-agent: gatherd\nDisallow: /early\n");
	while (b.n < ROBOTS_PARSE_LIMIT + 1000)
		buf_add(&b, "# padding padding padding padding padding\n");
	buf_add(&b, "Disallow: /late\n");
	r = robots_parse(b.s, b.n, TOKEN);
	TAP_CHECK(!allowed(r, "/early"));
	TAP_CHECK(allowed(r, "/late"));
	TAP_CHECK(robots_rule_count(r) == 1);
	robots_free(r);

	/* An Allow cut by the limit to "Allow: /a" must not allow /a... */
	b.n = 0;
	buf_add(&b, "User-agent: gatherd\nDisallow: /\n");
	pad = ROBOTS_PARSE_LIMIT - strlen("Allow: /a") - b.n;
	while (pad > 0) {
		char line[64];
		size_t k = pad > 40 ? 40 : pad;

		if (k < 2) { /* a line needs '#' and '\n' */
			buf_add(&b, "\n");
			pad--;
			continue;
		}
		memset(line, '#', k - 1);
		line[k - 1] = '\n';
		line[k] = '\0';
		buf_add(&b, line);
		pad -= k;
	}
	buf_add(&b, "Allow: /abc\n");
	TAP_CHECK(memcmp(b.s + ROBOTS_PARSE_LIMIT - 9, "Allow: /a", 9) == 0);
	r = robots_parse(b.s, b.n, TOKEN);
	TAP_CHECK(!allowed(r, "/axyz"));
	TAP_CHECK(!allowed(r, "/abc"));
	TAP_CHECK(robots_rule_count(r) == 1);
	robots_free(r);

	/* ...but a line that ends right at the limit is whole. */
	b.n -= strlen("bc\n");
	b.s[b.n] = '\0';
	buf_add(&b, "\nAllow: /late\n");
	r = robots_parse(b.s, b.n, TOKEN);
	TAP_CHECK(allowed(r, "/axyz"));
	TAP_CHECK(!allowed(r, "/late"));
	TAP_CHECK(robots_rule_count(r) == 2);
	robots_free(r);
	free(b.s);
}

/* Many rules: all kept when they are ours, none when they are not. */
static void test_many_rules(void)
{
	struct buf b = {0};
	struct robots *r;
	struct robots_verdict v;
	char line[64];
	int n = 25000; /* 475 KB: within the parse limit */

	buf_add(&b, "User-agent: gatherd\n");
	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof line, "Disallow: /p%d/\n", i);
		buf_add(&b, line);
	}
	r = robots_parse(b.s, b.n, TOKEN);
	TAP_CHECK(robots_rule_count(r) == (size_t)n);
	v = check(r, "/p24999/x");
	TAP_CHECK(!v.allowed);
	TAP_CHECK_STR(v.rule, "Disallow: /p24999/");
	TAP_CHECK(allowed(r, "/q"));
	TAP_CHECK(allowed(r, "/p25000/"));
	robots_free(r);

	/* Nearly 500 KiB of other agents' and "*" rules, then ours: only
	 * ours are kept. */
	b.n = 0;
	while (b.n < ROBOTS_PARSE_LIMIT - 4096) {
		buf_add(&b, "User-agent: otherbot\nDisallow: /o\nAllow: /p\n"
			    "User-agent: *\nDisallow: /s\nAllow: /t\n");
	}
	buf_add(&b, "User-agent: gatherd\nDisallow: /mine\n");
	r = robots_parse(b.s, b.n, TOKEN);
	TAP_CHECK(robots_rule_count(r) == 1);
	TAP_CHECK(!allowed(r, "/mine"));
	TAP_CHECK(allowed(r, "/o"));
	TAP_CHECK(allowed(r, "/s"));
	robots_free(r);
	/* Without ours, "*" applies: its rules, merged. */
	r = robots_parse(b.s, b.n, "somebot");
	TAP_CHECK(robots_rule_count(r) > 10000);
	TAP_CHECK(!allowed(r, "/s"));
	TAP_CHECK(allowed(r, "/o"));
	robots_free(r);
	free(b.s);
}

/* Rules longer than any target gatherd sends: a Disallow is cut (and
 * still disallows what it named), an Allow is dropped. */
static void test_long_rules(void)
{
	size_t n = 40000;
	char *path = malloc(n + 1);
	struct buf b = {0};
	struct robots *r;

	if (path == NULL)
		abort();
	memset(path, 'a', n);
	path[0] = '/';
	path[n] = '\0';

	buf_add(&b, "User-agent: *\nDisallow: /\nAllow: ");
	buf_add(&b, path);
	buf_add(&b, "\n");
	r = robots_parse(b.s, b.n, TOKEN);
	TAP_CHECK(robots_rule_count(r) == 1);
	TAP_CHECK(!allowed(r, path));
	robots_free(r);

	b.n = 0;
	buf_add(&b, "User-agent: *\nDisallow: ");
	buf_add(&b, path);
	buf_add(&b, "$\n");
	r = robots_parse(b.s, b.n, TOKEN);
	TAP_CHECK(robots_rule_count(r) == 1);
	TAP_CHECK(!allowed(r, path));
	path[32768] = '\0';
	TAP_CHECK(!allowed(r, path));
	path[1000] = '\0';
	TAP_CHECK(allowed(r, path));
	robots_free(r);
	free(b.s);
	free(path);
}

/* A plain backtracking matcher over canonical patterns, as the reference:
 * '*' any run, a final '$' the end. */
static bool ref_match(const char *p, const char *t)
{
	if (*p == '\0')
		return true;
	if (p[0] == '$' && p[1] == '\0')
		return *t == '\0';
	if (*p == '*') {
		for (;; t++) {
			if (ref_match(p + 1, t))
				return true;
			if (*t == '\0')
				return false;
		}
	}
	return *t != '\0' && *t == *p && ref_match(p + 1, t + 1);
}

/* Every pattern of up to five characters made of 'a', 'b', '/' and '*'
 * (with a final '$' or not) against every target of up to six made of 'a',
 * 'b' and '/': the one-pass matcher agrees with the reference. */
static void test_wildcards_exhaustive(void)
{
	static const char pchars[] = "ab/*", tchars[] = "ab/";
	char pattern[8], target[8], text[64];
	int bad = 0;

	for (int plen = 1; plen <= 5; plen++) {
		int pcount = 1;

		for (int i = 0; i < plen - 1; i++)
			pcount *= 4;
		for (int pi = 0; pi < pcount * 2; pi++) {
			int x = pi / 2;
			struct robots *r;

			/* First character '/' or '*' (else a '/' is put
			 * in front), then any. */
			pattern[0] = (pi & 1) ? '*' : '/';
			for (int i = 1; i < plen; i++, x /= 4)
				pattern[i] = pchars[x % 4];
			for (int anchor = 0; anchor < 2; anchor++) {
				pattern[plen] = anchor ? '$' : '\0';
				pattern[plen + 1] = '\0';
				snprintf(text, sizeof text,
					 "User-agent: *\nDisallow: %s\n",
					 pattern);
				r = parse(text, TOKEN);
				for (int tlen = 0; tlen <= 5; tlen++) {
					int tcount = 1;

					for (int i = 0; i < tlen; i++)
						tcount *= 3;
					for (int ti = 0; ti < tcount; ti++) {
						int y = ti;
						bool want, got;

						target[0] = '/';
						for (int i = 1; i <= tlen;
						     i++, y /= 3)
							target[i] =
								tchars[y % 3];
						target[tlen + 1] = '\0';
						want = ref_match(pattern,
								 target);
						got = !allowed(r, target);
						if (want != got && bad++ < 5)
							printf("# %s vs %s\n",
							       pattern,
							       target);
					}
				}
				robots_free(r);
			}
		}
	}
	TAP_CHECK(bad == 0);
	/* Overlaps that a naive search would step over. */
	TAP_CHECK(!allowed_by("User-agent: *\nDisallow: /*aab$\n", TOKEN,
			      "/aaab"));
	TAP_CHECK(!allowed_by("User-agent: *\nDisallow: /*abab$\n", TOKEN,
			      "/ababab"));
	TAP_CHECK(allowed_by("User-agent: *\nDisallow: /*abab$\n", TOKEN,
			     "/ababa"));
	TAP_CHECK(!allowed_by("User-agent: *\nDisallow: /*a*b*c\n", TOKEN,
			      "/xaybzc/"));
	TAP_CHECK(!allowed_by("User-agent: *\nDisallow: *\n", TOKEN, "/x"));
	TAP_CHECK(!allowed_by("User-agent: *\nDisallow: /**x**$\n", TOKEN,
			      "/yx"));
}

/* The worst case stays linear: a long target against many wildcard rules
 * that never match. */
static void test_worst_case(void)
{
	struct buf b = {0};
	char *target = malloc(8193);
	struct robots *r;

	if (target == NULL)
		abort();
	memset(target, 'a', 8192);
	target[0] = '/';
	target[8192] = '\0';
	buf_add(&b, "User-agent: *\n");
	for (int i = 0; i < 500; i++)
		buf_add(&b, "Disallow: /*a*a*a*a*a*a*a*a*a*a*ab\n"
			    "Disallow: /*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab$\n");
	r = robots_parse(b.s, b.n, TOKEN);
	for (int i = 0; i < 10; i++)
		TAP_CHECK(allowed(r, target));
	target[8191] = 'b';
	TAP_CHECK(!allowed(r, target));
	robots_free(r);
	free(b.s);
	free(target);
}

static const struct tap_test tests[] = {
	{"RFC 9309 5.1: the simple example", test_rfc_simple_example},
	{"RFC 9309 5.2: the longest match", test_rfc_longest_match},
	{"RFC 9309 2.2.1: merged groups, \"*\", none", test_rfc_groups},
	{"RFC 9309 2.2.2: percent-encoding", test_rfc_percent_encoding},
	{"RFC 9309 2.2.3: special characters", test_rfc_special_characters},
	{"Google: URL matching based on path values", test_google_path_table},
	{"Google: order of precedence", test_google_precedence},
	{"group selection", test_group_selection},
	{"line syntax: comments, whitespace, CR/LF, BOM, keys",
	 test_line_syntax},
	{"empty rules and files", test_empty_rules},
	{"/robots.txt is always allowed", test_robots_txt_allowed},
	{"allow-all and disallow-all", test_fixed_states},
	{"verdict rule texts", test_verdict_text},
	{"Crawl-delay", test_crawl_delay},
	{"non-ASCII bytes in rules", test_non_ascii},
	{"the 500 KiB parse limit", test_parse_limit},
	{"many rules, and others' rules not kept", test_many_rules},
	{"rules longer than any target", test_long_rules},
	{"wildcards against a reference matcher", test_wildcards_exhaustive},
	{"the worst case stays linear", test_worst_case},
	{NULL, NULL},
};

int main(void)
{
	return tap_main(tests);
}

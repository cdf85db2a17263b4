/* gatherd.conf(5) against the option table.  The page's source,
 * docs/gatherd.conf.5.scd in the build directory, is made at build time from
 * config/gatherd.conf (scripts/confdoc.py); test_config.c holds that file
 * against the table, this test holds the page: every option once, in its
 * section, with the table's default; the range it states is the one
 * config_load() enforces; it says "Reloadable" exactly for the options whose
 * change config_apply_reload() takes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

#define MAX_ENTRIES 128

/* One option as the page documents it. */
struct entry {
	char name[128]; /* "section.key" */
	char def[512];	/* the default, unescaped ("" for "empty") */
	bool has_def;
	bool has_range;
	long long lo, hi;
	int reloadable; /* 1, 0, or -1 when the page does not say */
	int count;	/* how many times the page documents it */
};

static struct entry entries[MAX_ENTRIES];
static int n_entries;
static char page[PATH_MAX];
static char tmp[PATH_MAX];
static char set_queue[PATH_MAX + 32], set_db[PATH_MAX + 32];

/* Copy scdoc text, dropping the backslashes that escape characters. */
static void unescape(char *dst, size_t size, const char *src, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; i < len && j + 1 < size; i++) {
		if (src[i] == '\\' && i + 1 < len)
			i++;
		dst[j++] = src[i];
	}
	dst[j] = '\0';
}

static struct entry *entry_find(const char *name)
{
	for (int i = 0; i < n_entries; i++)
		if (strcmp(entries[i].name, name) == 0)
			return &entries[i];
	return NULL;
}

/* The facts line of an option: "Type: ... Default: *v* ... Range: a..b.
 * Reloadable." (or "Needs a restart"). */
static void parse_facts(struct entry *e, const char *s)
{
	const char *d = strstr(s, "Default: "), *r = strstr(s, "Range: ");

	if (d != NULL) {
		d += strlen("Default: ");
		if (*d == '*') {
			const char *end = d + 1;

			while (*end != '\0' && *end != '*')
				end += (*end == '\\' && end[1] != '\0') ? 2 : 1;
			unescape(e->def, sizeof e->def, d + 1,
				 (size_t)(end - d - 1));
			e->has_def = *end == '*';
		} else if (strncmp(d, "empty", 5) == 0) {
			e->def[0] = '\0';
			e->has_def = true;
		}
	}
	if (r != NULL)
		e->has_range = sscanf(r, "Range: %lld..%lld", &e->lo, &e->hi) == 2;
	if (strstr(s, "Reloadable.") != NULL)
		e->reloadable = 1;
	else if (strstr(s, "Needs a restart") != NULL)
		e->reloadable = 0;
}

/* Read the page: "## [section]" headings, "*key*" lines starting an
 * option, its indented lines after. */
static bool read_page(void)
{
	char line[4096], section[64] = "";
	struct entry *cur = NULL;
	FILE *f = fopen(page, "r");

	if (f == NULL) {
		printf("# cannot open %s: %s\n", page, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		size_t len;

		line[strcspn(line, "\n")] = '\0';
		len = strlen(line);
		if (line[0] == '#') {
			cur = NULL;
			if (sscanf(line, "## [%63[a-z]]", section) != 1)
				section[0] = '\0';
			continue;
		}
		if (section[0] != '\0' && len > 2 && line[0] == '*' &&
		    line[len - 1] == '*' && strchr("\t ", line[1]) == NULL) {
			char key[128], name[256];

			unescape(key, sizeof key, line + 1, len - 2);
			snprintf(name, sizeof name, "%s.%s", section, key);
			cur = entry_find(name);
			if (cur == NULL && n_entries < MAX_ENTRIES &&
			    strlen(name) < sizeof cur->name) {
				cur = &entries[n_entries++];
				memcpy(cur->name, name, strlen(name) + 1);
				cur->reloadable = -1;
			}
			if (cur != NULL)
				cur->count++;
			continue;
		}
		if (cur != NULL && line[0] == '\t' &&
		    strstr(line, "Default: ") != NULL)
			parse_facts(cur, line + 1);
	}
	fclose(f);
	return true;
}

static void test_every_option(void)
{
	int n = 0;

	TAP_CHECK(n_entries > 0);
	for (; config_option_name(n) != NULL; n++) {
		const char *name = config_option_name(n);
		const struct entry *e = entry_find(name);

		if (e == NULL) {
			printf("# %s is not in %s\n", name, page);
			TAP_CHECK(e != NULL);
			continue;
		}
		if (e->count != 1)
			printf("# %s is documented %d times\n", name, e->count);
		TAP_CHECK(e->count == 1);
		if (!e->has_def || strcmp(e->def, config_option_default(n)) != 0)
			printf("# %s: the page's default is \"%s\", the table's "
			       "\"%s\"\n",
			       name, e->has_def ? e->def : "(none)",
			       config_option_default(n));
		TAP_CHECK(e->has_def &&
			  strcmp(e->def, config_option_default(n)) == 0);
		if (e->reloadable < 0)
			printf("# %s: the page does not say whether it is "
			       "reloadable\n",
			       name);
		TAP_CHECK(e->reloadable >= 0);
	}
	for (int i = 0; i < n_entries; i++) {
		int j = 0;

		while (config_option_name(j) != NULL &&
		       strcmp(config_option_name(j), entries[i].name) != 0)
			j++;
		if (config_option_name(j) == NULL)
			printf("# %s documents %s, which is not an option\n",
			       page, entries[i].name);
		TAP_CHECK(config_option_name(j) != NULL);
	}
}

/* config_load() with queue_file and database in the scratch directory, an
 * empty file (so that /etc/gatherd/gatherd.conf is not read), and `set`
 * (when not NULL) as one more --set. */
static int load(struct config *cfg, const char *set, char **cause)
{
	struct config_override ov[3] = {{set_queue}, {set_db}, {set}};
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof path, "%s/empty.conf", tmp);
	f = fopen(path, "w");
	if (f != NULL)
		fclose(f);
	*cause = NULL;
	return config_load(cfg, path, ov, set != NULL ? 3 : 2, cause);
}

/* Whether `section.key=value` loads; the error is printed when `want` says
 * it should have. */
static bool loads(const char *name, long long value, bool want)
{
	char set[256], *cause = NULL;
	struct config cfg;
	int rc;

	snprintf(set, sizeof set, "%s=%lld", name, value);
	rc = load(&cfg, set, &cause);
	if (rc == 0)
		config_free(&cfg);
	if ((rc == 0) != want)
		printf("# --set %s: %s\n", set,
		       rc == 0 ? "accepted" : (cause ? cause : "refused"));
	free(cause);
	return rc == 0;
}

static void test_ranges(void)
{
	int checked = 0;

	for (int i = 0; i < n_entries; i++) {
		const struct entry *e = &entries[i];

		if (!e->has_range)
			continue;
		checked++;
		TAP_CHECK(loads(e->name, e->lo, true));
		TAP_CHECK(loads(e->name, e->hi, true));
		TAP_CHECK(!loads(e->name, e->lo - 1, false));
		if (e->hi < LLONG_MAX)
			TAP_CHECK(!loads(e->name, e->hi + 1, false));
	}
	TAP_CHECK(checked > 0);
}

/* config_dump()'s output, as a string the caller frees. */
static char *dump(const struct config *cfg)
{
	char path[PATH_MAX + 16], *buf;
	int saved, fd;
	long size;
	FILE *f;

	snprintf(path, sizeof path, "%s/dump", tmp);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (saved < 0 || fd < 0)
		abort();
	dup2(fd, STDOUT_FILENO);
	close(fd);
	config_dump(cfg);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	f = fopen(path, "r");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0)
		abort();
	rewind(f);
	buf = calloc(1, (size_t)size + 1);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size)
		abort();
	fclose(f);
	return buf;
}

/* A value for option `e` other than its default that config_load()
 * accepts, in *out; false when none of the candidates is one. */
static bool other_value(const struct entry *e, const char *defaults,
			char *out, size_t size)
{
	char dir[PATH_MAX + 16], file[PATH_MAX + 16], path[PATH_MAX + 16];
	char range[2][32];
	const char *candidates[] = {
	    range[0], range[1], "true", "false", "debug", "error", "gzip",
	    "none", "X-Test: 1", "500,503", "127.0.0.1:5353",
	    "http://127.0.0.1:3128", "example.org", "test/1.0", "postgresql",
	    "host=127.0.0.1 dbname=gatherd", dir, file, path,
	};
	FILE *f;

	snprintf(range[0], sizeof range[0], "%lld", e->has_range ? e->lo : 1);
	snprintf(range[1], sizeof range[1], "%lld", e->has_range ? e->hi : 2);
	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(file, sizeof file, "%s/file", tmp);
	snprintf(path, sizeof path, "%s/other", tmp);
	if ((f = fopen(file, "w")) != NULL)
		fclose(f);
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0];
	     i++) {
		char set[PATH_MAX + 300], *cause = NULL, *d;
		struct config cfg;
		bool differs;

		if (snprintf(set, sizeof set, "%s=%s", e->name,
			     candidates[i]) >= (int)sizeof set)
			continue;
		if (load(&cfg, set, &cause) != 0) {
			free(cause);
			continue;
		}
		d = dump(&cfg);
		differs = strcmp(d, defaults) != 0;
		free(d);
		config_free(&cfg);
		if (differs) {
			snprintf(out, size, "%s", set);
			return true;
		}
	}
	return false;
}

static void test_reloadable(void)
{
	struct config base;
	char *cause = NULL, *defaults;

	if (load(&base, NULL, &cause) != 0) {
		printf("# defaults do not load: %s\n", cause);
		free(cause);
		TAP_CHECK(false);
		return;
	}
	defaults = dump(&base);
	config_free(&base);
	for (int i = 0; i < n_entries; i++) {
		const struct entry *e = &entries[i];
		struct config cur, next;
		char set[PATH_MAX + 300], *a, *b;
		bool changed_fixed = false, took;

		if (e->reloadable < 0)
			continue;
		if (!other_value(e, defaults, set, sizeof set)) {
			printf("# %s: no candidate value differs from the "
			       "default; add one to other_value()\n",
			       e->name);
			TAP_CHECK(false);
			continue;
		}
		if (load(&cur, NULL, &cause) != 0 ||
		    load(&next, set, &cause) != 0) {
			printf("# %s\n", cause);
			free(cause);
			TAP_CHECK(false);
			continue;
		}
		config_apply_reload(&cur, &next, &changed_fixed);
		a = dump(&cur);
		b = dump(&next);
		took = strcmp(a, b) == 0;
		if (took != (e->reloadable == 1) ||
		    changed_fixed != (e->reloadable == 0))
			printf("# --set %s: the page says %s, but a reload %s "
			       "it%s\n",
			       set,
			       e->reloadable ? "reloadable" : "needs a restart",
			       took ? "takes" : "does not take",
			       changed_fixed ? " and reports a restart needed"
					     : "");
		TAP_CHECK(took == (e->reloadable == 1));
		TAP_CHECK(changed_fixed == (e->reloadable == 0));
		free(a);
		free(b);
		config_free(&cur);
		config_free(&next);
	}
	free(defaults);
}

static const struct tap_test tests[] = {
    {"every option documented once, with its default", test_every_option},
    {"documented ranges are enforced", test_ranges},
    {"reloadable exactly where the page says so", test_reloadable},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	char templ[] = "/tmp/test_manpage.XXXXXX";
	int ret;

	/* Run from the build directory (meson's workdir), or given the page. */
	snprintf(page, sizeof page, "%s",
		 argc > 1 ? argv[1] : "docs/gatherd.conf.5.scd");
	if (mkdtemp(templ) == NULL || realpath(templ, tmp) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(set_queue, sizeof set_queue, "gatherd.queue_file=%s/q", tmp);
	snprintf(set_db, sizeof set_db, "gatherd.database=%s/db", tmp);
	if (!read_page()) {
		printf("Bail out! cannot read %s (run from the build "
		       "directory)\n",
		       page);
		return 1;
	}
	ret = tap_main(tests);
	{
		char path[PATH_MAX + 16];
		const char *names[] = {"empty.conf", "dump", "file"};

		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof path, "%s/%s", tmp, names[i]);
			unlink(path);
		}
		rmdir(tmp);
	}
	return ret;
}

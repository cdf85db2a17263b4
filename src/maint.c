/* gatherd refetch and gatherd prune: see maint.h. */
#include "maint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errkind.h"
#include "store.h"
#include "util.h"

bool maint_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		char unit;
		int64_t ms;
	} units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000},
		     {'d', 86400000}, {'w', 604800000}};
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || v <= 0 || end[0] == '\0' || end[1] != '\0')
		return false;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (*end == units[i].unit) {
			if (v > INT64_MAX / units[i].ms)
				return false;
			*ms = (int64_t)v * units[i].ms;
			return true;
		}
	}
	return false;
}

/* --older-than's value as milliseconds (-1 when absent); false, with the
 * message printed, when it is not a duration. */
static bool maint_older_than(const char *cmd, const struct maint_args *a,
			     int64_t *ms)
{
	*ms = -1;
	if (a->older_than == NULL)
		return true;
	if (maint_parse_duration(a->older_than, ms))
		return true;
	fprintf(stderr,
		"gatherd %s: --older-than \"%s\" is not a duration (use e.g. "
		"30d, 12h, 90m, 45s or 2w)\n",
		cmd, a->older_than);
	return false;
}

/* Print each URL a dry run would queue. */
static void maint_print_url(void *arg, const char *url)
{
	(void)arg;
	printf("%s\n", url);
}

int maint_refetch(const struct config *cfg, const struct maint_args *a)
{
	struct store_select sel = {0};
	struct store_conf sc;
	enum errkind kind;
	char *cause = NULL;
	int64_t n = 0;

	if (!maint_older_than("refetch", a, &sel.older_than_ms))
		return 2;
	if (a->error != NULL && a->state != NULL) {
		fprintf(stderr, "gatherd refetch: give --error or --state, "
				"not both\n");
		return 2;
	}
	if (a->error != NULL && !errkind_parse(a->error, &kind)) {
		fprintf(stderr,
			"gatherd refetch: --error \"%s\" is not an error kind "
			"(see the README's table)\n",
			a->error);
		return 2;
	}
	if (a->state != NULL && strcmp(a->state, "failed") != 0) {
		fprintf(stderr, "gatherd refetch: --state \"%s\": only "
				"\"failed\" can be selected\n",
			a->state);
		return 2;
	}
	sel.url_like = a->url_like;
	sel.error = a->error;
	sel.failed_only = a->state != NULL;
	store_conf_init(&sc, cfg);
	if (store_refetch(&sc, &sel, util_wall_ms(), a->dry_run,
			  a->dry_run ? maint_print_url : NULL, NULL, &n,
			  &cause) != 0) {
		fprintf(stderr, "gatherd refetch: %s\n", cause);
		free(cause);
		return 1;
	}
	fprintf(stderr, "gatherd refetch: %s %lld URL%s%s\n",
		a->dry_run ? "would queue" : "queued", (long long)n,
		n == 1 ? "" : "s",
		a->dry_run ? " (dry run: nothing changed)"
			   : " again (a running daemon takes them at once)");
	return 0;
}

int maint_prune(const struct config *cfg, const struct maint_args *a)
{
	struct store_conf sc;
	char *cause = NULL;
	int64_t older, n = 0;

	if (a->older_than == NULL) {
		fprintf(stderr, "gatherd prune: --older-than is required\n");
		return 2;
	}
	if (!maint_older_than("prune", a, &older))
		return 2;
	store_conf_init(&sc, cfg);
	if (store_prune(&sc, util_wall_ms() - older, a->keep_latest,
			a->dry_run, &n, &cause) != 0) {
		fprintf(stderr, "gatherd prune: %s\n", cause);
		free(cause);
		return 1;
	}
	fprintf(stderr,
		"gatherd prune: %s %lld result row%s older than %s%s; WARC "
		"files are left alone\n",
		a->dry_run ? "would remove" : "removed", (long long)n,
		n == 1 ? "" : "s", a->older_than,
		a->keep_latest ? " (each URL's latest kept)" : "");
	return 0;
}

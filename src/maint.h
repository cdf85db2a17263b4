/* Maintenance commands on the database: `gatherd refetch` (fetch the
 * selected URLs again, conditionally where their last response had
 * validators) and `gatherd prune` (delete old result rows in small
 * transactions).  Both work beside a running daemon. */
#ifndef GATHERD_MAINT_H
#define GATHERD_MAINT_H

#include <stdbool.h>
#include <stdint.h>

struct config;

/* The command-line arguments of refetch and prune (NULL: not given). */
struct maint_args {
	const char *older_than; /* a duration: 30d, 12h, 90m, 45s, 2w */
	const char *url_like;
	const char *error;
	const char *state;
	bool dry_run;
	bool keep_latest;
};

/* Parse a duration ("30d", "12h", "90m", "45s", "2w": a positive number
 * and one unit) into milliseconds; false when it is not one. */
bool maint_parse_duration(const char *s, int64_t *ms);

/* The commands; each returns its exit status (2 for a usage error, with
 * the message printed). */
int maint_refetch(const struct config *cfg, const struct maint_args *a);
int maint_prune(const struct config *cfg, const struct maint_args *a);

#endif

/* gatherd cat: see cat.h. */
#include "cat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "store.h"
#include "util.h"
#include "warc.h"

/* How many rows with the same payload a revisit's payload is looked for
 * in. */
#define CAT_MAX_RECORDS 20

int cat_main(const struct config *cfg, const char *what)
{
	struct store_record rec[CAT_MAX_RECORDS];
	struct store_conf sc;
	size_t n = 0;
	char *cause = NULL, *end;
	long long id = 0;
	const char *url = NULL;
	int rc = 1;

	if (what == NULL) {
		fprintf(stderr, "gatherd cat: which row? Give its id (or its "
				"URL)\nTry 'gatherd --help'.\n");
		return 2;
	}
	id = strtoll(what, &end, 10);
	if (*what == '\0' || *end != '\0' || id <= 0)
		url = what;
	if (cfg->warc_dir == NULL || cfg->warc_dir[0] == '\0') {
		fprintf(stderr,
			"gatherd cat: [capture] warc_dir is not set in the "
			"configuration: there is no archive to read\n");
		return 2;
	}
	store_conf_init(&sc, cfg);
	if (store_find_records(&sc, id, url, rec, CAT_MAX_RECORDS, &n,
			       &cause) != 0) {
		fprintf(stderr, "gatherd cat: %s\n", cause);
		free(cause);
		return 1;
	}
	/* The row's own record; a revisit's payload is in an earlier
	 * capture of the same payload. */
	for (size_t i = 0; i < n; i++) {
		char *why = NULL;
		int r = warc_read_payload(cfg->warc_dir, rec[i].file,
					  rec[i].offset, STDOUT_FILENO, &why);

		if (r == 0) {
			rc = 0;
			break;
		}
		if (r != WARC_READ_REVISIT || i + 1 == n) {
			fprintf(stderr, "gatherd cat: row %lld: %s%s\n",
				(long long)rec[i].id, why,
				r == WARC_READ_REVISIT
					? " (no archived row with the same "
					  "payload is left)"
					: "");
			free(why);
			break;
		}
		free(why);
	}
	for (size_t i = 0; i < n; i++)
		free(rec[i].file);
	return rc;
}

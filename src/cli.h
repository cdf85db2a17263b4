/* The client commands: `gatherd submit` and `gatherd status`.  They run
 * without the daemon's event loop and never disturb a running daemon. */
#ifndef GATHERD_CLI_H
#define GATHERD_CLI_H

#include <stdbool.h>

struct config;

/* Validate each URL (or, for a single "-", each line of stdin with the
 * queue-file rules) and append the valid ones to the queue file, under an
 * exclusive flock so concurrent submitters never interleave partial lines.
 * Returns the exit status: 0 all queued, 2 some were rejected (the valid
 * ones are still queued), 1 the queue file could not be written. */
int cli_submit(const struct config *cfg, int n, char **urls);

/* Print counts by state and error kind, the recent rate and the oldest
 * queued row, as text or JSON.  Returns the exit status. */
int cli_status(const struct config *cfg, bool json);

#endif

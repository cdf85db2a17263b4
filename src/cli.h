/* `gatherd submit`: appending URLs to the queue file from the command
 * line, beside a running daemon. */
#ifndef GATHERD_CLI_H
#define GATHERD_CLI_H

#include <stdbool.h>
#include <stdint.h>

struct config;

/* Validate each URL (or, for a single "-", each line of stdin with the
 * queue-file rules) and append the valid ones to the queue file, under an
 * exclusive flock so concurrent submitters never interleave partial lines.
 * With `direct`, insert them straight into the database instead ([store]
 * decides which; a shared PostgreSQL database from any machine that can
 * reach it), 10,000 rows per transaction.  Returns the exit status: 0 all
 * queued, 2 some were rejected (the valid ones are still queued), 1 the
 * queue file (or the database) could not be written. */
int cli_submit(const struct config *cfg, int n, char **urls, bool direct);

#endif

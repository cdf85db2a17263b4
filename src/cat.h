/* gatherd cat ID|URL: write a row's archived payload (the response body as
 * received, transfer coding removed, content coding kept) to standard
 * output, from the WARC files of [capture] warc_dir.  A row archived as a
 * revisit is served from an earlier capture with the same payload.  Works
 * beside a running daemon. */
#ifndef GATHERD_CAT_H
#define GATHERD_CAT_H

struct config;

/* `what` is a row id, or a URL as submitted (its newest archived row).
 * Returns the exit status: 0, 1 (not found, unreadable), 2 (usage). */
int cat_main(const struct config *cfg, const char *what);

#endif

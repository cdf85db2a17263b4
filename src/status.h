/* `gatherd status`: what the database says (counts by state and error
 * kind, the last minute's rate, the oldest queued row, the busiest hosts)
 * and whether a daemon runs on it (the single-instance lock and the
 * heartbeat).  Needs only read access to the database. */
#ifndef GATHERD_STATUS_H
#define GATHERD_STATUS_H

#include <stdbool.h>
#include <stddef.h>

struct config;

struct status_opts {
	bool json;    /* JSON on stdout, errors included ({"error": ...}) */
	bool check;   /* exit 0 only when a daemon runs and is healthy */
	size_t hosts; /* --hosts N: this many hosts, 0: none */
};

/* Print the status; returns the exit status (0, or 1 with the reason). */
int status_main(const struct config *cfg, const struct status_opts *o);

#endif

/* Host shards: the unit in which nodes sharing one PostgreSQL database
 * divide the hosts among themselves (store_pg.c).  Every host falls in one
 * of SHARD_COUNT shards by a hash of its name, so every node, and `gatherd
 * submit --direct` on any machine, must compute it the same way: the
 * function below is part of the database format and never changes.  Pure
 * (no I/O). */
#ifndef GATHERD_SHARD_H
#define GATHERD_SHARD_H

#include <stddef.h>

#define SHARD_COUNT 1024

/* The shard of the host of url[0..len): FNV-1a (32 bits) of its host name
 * in ASCII (A-labels for an international name), lower-cased, without the
 * port, modulo SHARD_COUNT.  All ports of a host share its shard.  What
 * does not parse as an http(s) URL is in shard 0. */
int shard_of_url(const char *url, size_t len);

#endif

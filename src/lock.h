/* One daemon per database.  The daemon (also with --once) holds an
 * open-file-description lock (F_OFD_SETLK) on DATABASE.lock for its whole
 * life; a second daemon finds it taken and refuses to start.  The kernel
 * drops the lock with the last descriptor, so a killed daemon leaves
 * nothing to clean up (the file may stay; it is reused).  The file holds
 * the holder's pid and start time, which readers (`gatherd status`) can
 * read without taking any lock, so they never block or disturb a daemon. */
#ifndef GATHERD_LOCK_H
#define GATHERD_LOCK_H

#include <stdint.h>
#include <sys/types.h>

struct lock;

/* The lock file's path for a database: malloc'd. */
char *lock_path(const char *database);

/* Take the lock for `database`.  On failure returns -1 with *cause, e.g.
 * "another gatherd (pid 1234) is using /var/lib/gatherd/gatherd.db". */
int lock_acquire(const char *database, struct lock **out, char **cause)
	__attribute__((warn_unused_result));

/* Release the lock (at exit; NULL is fine). */
void lock_release(struct lock *l);

/* Who holds the lock of `database`, without taking it: returns 1 with
 * *pid and *since_ms (Unix ms; 0 when unknown) when a daemon holds it, 0
 * when nobody does, -1 when it cannot be told (no permission). */
int lock_probe(const char *database, pid_t *pid, int64_t *since_ms);

#endif

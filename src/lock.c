/* Single-instance lock: see lock.h.
 *
 * Why OFD locks rather than flock(): a reader can ask F_OFD_GETLK whether
 * the lock is held without taking it.  A reader probing with flock() would
 * hold the lock for a moment and could make a daemon starting at that
 * instant refuse to run. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

struct lock {
	int fd;
};

char *lock_path(const char *database)
{
	return util_printf("%s.lock", database);
}

/* A whole-file write lock request (or query) for fcntl. */
static struct flock lock_whole(short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 0;
	return fl;
}

/* Read "pid start_ms" from the lock file; false when it holds none (yet). */
static bool lock_read_owner(int fd, pid_t *pid, int64_t *since_ms)
{
	char buf[64];
	long long p = 0, t = 0;
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	if (sscanf(buf, "%lld %lld", &p, &t) < 1 || p <= 0)
		return false;
	*pid = (pid_t)p;
	*since_ms = t;
	return true;
}

int lock_acquire(const char *database, struct lock **out, char **cause)
{
	char *path = lock_path(database);
	struct flock fl = lock_whole(F_WRLCK);
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		*cause = util_printf("cannot open lock file %s: %s", path,
				     strerror(errno));
		free(path);
		return -1;
	}
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		int err = errno;
		pid_t pid = 0;
		int64_t since = 0;

		if (err == EAGAIN || err == EACCES) {
			/* The holder writes its pid right after locking:
			 * give it a moment. */
			for (int i = 0; i < 20 && !lock_read_owner(fd, &pid,
								    &since);
			     i++)
				usleep(10000);
			if (pid > 0)
				*cause = util_printf("another gatherd (pid %ld) "
						     "is using %s",
						     (long)pid, database);
			else
				*cause = util_printf("another gatherd is using "
						     "%s",
						     database);
		} else {
			*cause = util_printf("cannot lock %s: %s", path,
					     strerror(err));
		}
		close(fd);
		free(path);
		return -1;
	}
	char buf[64];
	int n = snprintf(buf, sizeof buf, "%ld %lld\n", (long)getpid(),
			 (long long)util_wall_ms());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		*cause = util_printf("cannot write lock file %s: %s", path,
				     strerror(errno));
		close(fd);
		free(path);
		return -1;
	}
	free(path);
	*out = xcalloc(1, sizeof **out);
	(*out)->fd = fd;
	return 0;
}

void lock_release(struct lock *l)
{
	if (l == NULL)
		return;
	close(l->fd); /* drops the lock */
	free(l);
}

int lock_probe(const char *database, pid_t *pid, int64_t *since_ms)
{
	char *path = lock_path(database);
	struct flock fl = lock_whole(F_WRLCK);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	free(path);
	*pid = 0;
	*since_ms = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	/* F_OFD_GETLK asks whether a write lock could be placed: it takes
	 * nothing, whatever the answer. */
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0) {
		close(fd);
		return -1;
	}
	if (fl.l_type == F_UNLCK) {
		close(fd);
		return 0;
	}
	lock_read_owner(fd, pid, since_ms);
	close(fd);
	return 1;
}

/* Small helpers shared by the modules. */
#ifndef GATHERD_UTIL_H
#define GATHERD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation that cannot fail: out of memory, gatherd logs it and aborts.
 * One rule for the whole daemon: there is no partial recovery to get right
 * in a hundred places, and a restart loses nothing (rows stay queued). */
void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
/* What they do when memory runs out, for allocators of other libraries. */
void util_oom(void) __attribute__((noreturn));
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n)
	__attribute__((malloc, returns_nonnull));

/* printf into a new malloc'd string (aborts on out of memory, like
 * xmalloc). */
char *util_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *util_vprintf(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

/* Wall-clock time in Unix milliseconds (for what is recorded). */
int64_t util_wall_ms(void);

/* Monotonic time in milliseconds (for durations and deadlines). */
int64_t util_mono_ms(void);

/* A uniform random number (retry jitter: not for secrets). */
uint32_t util_random32(void);

#endif

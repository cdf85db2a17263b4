/* Small helpers shared by the modules. */
#ifndef GATHERD_UTIL_H
#define GATHERD_UTIL_H

#include <stdint.h>

/* printf into a new malloc'd string; aborts on out of memory, since every
 * caller uses it for error messages on paths that cannot fail again. */
char *util_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall-clock time in Unix milliseconds (for what is recorded). */
int64_t util_wall_ms(void);

/* Monotonic time in milliseconds (for durations and deadlines). */
int64_t util_mono_ms(void);

#endif

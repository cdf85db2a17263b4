/* Logging to stderr.  Under systemd (JOURNAL_STREAM set) each line starts
 * with a syslog priority prefix such as "<6>"; otherwise with a UTC
 * timestamp.  The macros skip formatting when the level is disabled. */
#ifndef GATHERD_LOG_H
#define GATHERD_LOG_H

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

extern int log_level_current;

void log_init(void);
void log_set_level(int level);
/* Parse "error", "warn"/"warning", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);
void log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                     \
	do {                                                                 \
		if ((lvl) <= log_level_current)                              \
			log_write((lvl), __VA_ARGS__);                       \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif

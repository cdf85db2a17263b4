/* Logging: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

int log_level_current = LOG_INFO;
static int log_journal; /* stderr goes to the journal: use <N> prefixes */

static const char *const log_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities: LOG_ERR 3, LOG_WARNING 4, LOG_INFO 6, LOG_DEBUG 7 */
static const int log_prio[] = {3, 4, 6, 7};

void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");

	log_journal = js != NULL && *js != '\0';
}

void log_set_level(int level)
{
	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	log_level_current = level;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, log_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_WARN;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < 0 || level > LOG_DEBUG)
		return "?";
	return log_names[level];
}

void log_write(int level, const char *fmt, ...)
{
	char line[2048];
	size_t n;
	va_list ap;

	if (log_journal) {
		n = (size_t)snprintf(line, sizeof line, "<%d>",
				     log_prio[level]);
	} else {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof line - n, ".%03dZ %s: ",
				      (int)(tv.tv_usec / 1000),
				      log_names[level]);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	/* One write per line so lines from the two threads never interleave. */
	fwrite(line, 1, n, stderr);
}

/* log.c - timestamped, levelled lines on stderr. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum todod_log_level current_level = TODOD_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum todod_log_level level) { current_level = level; }

enum todod_log_level log_get_level(void) { return current_level; }

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void log_vmsg(enum todod_log_level level, const char *who, const char *fmt, va_list ap)
{
	if (level > current_level)
		return;
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

	/* One fprintf per line keeps lines whole when several processes share
	 * the same stderr (tests, supervisors). */
	char text[2048];
	vsnprintf(text, sizeof text, fmt, ap);
	fprintf(stderr, "%s.%03ldZ %s [%s] %s\n", stamp, ts.tv_nsec / 1000000L,
		level_names[level], who ? who : "core", text);
}

void log_msg(enum todod_log_level level, const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, who, fmt, ap);
	va_end(ap);
}

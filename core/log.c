/* log.c - timestamped, levelled lines on stderr. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

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
	char stamp[RFC3339_MS_SIZE];
	rfc3339_format_ms(clock_wall_ms(), stamp, sizeof stamp);

	/* One fprintf per line keeps lines whole when several processes share
	 * the same stderr (tests, supervisors). */
	char text[2048];
	vsnprintf(text, sizeof text, fmt, ap);
	fprintf(stderr, "%s %s [%s] %s\n", stamp, level_names[level], who ? who : "core", text);
}

void log_msg(enum todod_log_level level, const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, who, fmt, ap);
	va_end(ap);
}

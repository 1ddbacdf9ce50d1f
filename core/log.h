/* log.h - one logger for the core and every plugin.
 * Lines go to stderr (journald adds its own timestamps under systemd):
 *   2026-11-27T10:00:00.123Z info [core] listening on 127.0.0.1:8080 */
#ifndef TODOD_LOG_H
#define TODOD_LOG_H

#include "todod-plugin.h"

void log_set_level(enum todod_log_level level);
enum todod_log_level log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *name);

void log_msg(enum todod_log_level level, const char *who, const char *fmt, ...)
	TODOD_PRINTF(3, 4);
void log_vmsg(enum todod_log_level level, const char *who, const char *fmt, va_list ap)
	TODOD_PRINTF(3, 0);

#define log_error(...) log_msg(TODOD_LOG_ERROR, "core", __VA_ARGS__)
#define log_warn(...)  log_msg(TODOD_LOG_WARN, "core", __VA_ARGS__)
#define log_info(...)  log_msg(TODOD_LOG_INFO, "core", __VA_ARGS__)
#define log_debug(...) log_msg(TODOD_LOG_DEBUG, "core", __VA_ARGS__)

#endif

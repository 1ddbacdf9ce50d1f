/* tz.h - local time in any IANA zone, without touching the environment.
 *
 * The C library converts only in the process's own zone (TZ), and
 * switching TZ with setenv is not thread-safe: librdkafka's and libcurl's
 * threads read the environment.  These functions read the compiled zone
 * files themselves (tz_zone.h) and keep no process-global state besides
 * their cache, so any zone can be used on the loop thread while other
 * threads run.  They are meant for one thread (the loop's): the cache has
 * no lock.
 *
 * Zone names are IANA names ("Europe/Berlin", "UTC"), looked up in $TZDIR
 * when set, as the C library does, else /usr/share/zoneinfo.  Anything
 * that is not a plain relative name (an absolute path, "..", characters
 * other than letters, digits and "/_+-") is refused before any file is
 * opened.  A zone's file is read once, on first use, and kept until the
 * process exits (so a tzdata update needs a restart); that first read is
 * synchronous file I/O of a few kilobytes.
 *
 * Errors: "'Mars/Olympus' is not a known time zone" for a name that names
 * no zone file, and a sentence naming the zone for a damaged file or an
 * instant out of range. */
#ifndef TODOD_TZ_H
#define TODOD_TZ_H

#include <stdint.h>
#include <time.h>

#include "todod-plugin.h"

/* `instant` (Unix seconds) on the wall clock of `zone`.  out->tm.tm_zone
 * points at a string that lives as long as the process. */
int tz_to_local(const char *zone, int64_t instant, struct todod_local_time *out,
		struct todod_err *err);

/* The instant that `local` (tm_year .. tm_sec, normalised as timegm does;
 * tm_isdst, tm_wday and tm_yday are ignored) names in `zone`.  A time that
 * a change to DST skips is moved forward by the length of the gap (02:30
 * becomes 03:30); a time that a change back repeats means the first,
 * earlier instant. */
int tz_from_local(const char *zone, const struct tm *local, int64_t *instant,
		  struct todod_err *err);

/* tz_from_local for a wall-clock time given as seconds since 1970-01-01
 * 00:00 on the local calendar. */
int tz_from_wall(const char *zone, int64_t wall, int64_t *instant, struct todod_err *err);

#endif

/* tz_zone.h - one compiled time zone (a TZif file, RFC 8536) in memory.
 *
 * Internal to tz.c and its tests: the zone reader parses a file's bytes
 * into a struct tz_zone, and answers which local time type applies at an
 * instant.  It does no I/O and keeps no state of its own. */
#ifndef TODOD_TZ_ZONE_H
#define TODOD_TZ_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "todod-plugin.h"

/* One local time type: what the wall clock shows during a period. */
struct tz_type {
	int32_t utc_offset; /* seconds east of UTC */
	bool is_dst;
	uint16_t abbrev;    /* offset into tz_zone.abbrevs */
};

/* When one end of daylight saving time falls in a year: a POSIX TZ rule
 * date ("Jn", "n" or "Mm.w.d") and the local time of day it happens. */
struct tz_rule_date {
	enum { TZ_JULIAN_NO_LEAP, TZ_DAY_OF_YEAR, TZ_MONTH_WEEK_DAY } kind;
	int day;      /* Jn: 1..365; n: 0..365; Mm.w.d: weekday d, 0 = Sunday */
	int month;    /* Mm.w.d: 1..12 */
	int week;     /* Mm.w.d: 1..4, 5 = the last */
	int32_t time; /* seconds after local midnight; may be negative or past 24h */
};

/* The footer: the POSIX TZ string for instants after the last transition,
 * e.g. "CET-1CEST,M3.5.0,M10.5.0/3". */
struct tz_rule {
	struct tz_type std, dst;
	bool has_dst;
	struct tz_rule_date dst_start, dst_end;
};

struct tz_zone {
	size_t n_transitions, n_types;
	int64_t *transition_at;   /* ascending */
	uint8_t *transition_type; /* index into types */
	struct tz_type *types;    /* types[0] applies before the first transition */
	char *abbrevs;            /* NUL-terminated names: the file's, then the footer's */
	bool has_rule;
	struct tz_rule rule;
};

/* Abbreviations longer than this are refused, so that every one fits the
 * API's TODOD_TZ_ABBREV_MAX buffer. */
#define TZ_ABBREV_LEN_MAX (TODOD_TZ_ABBREV_MAX - 1)

/* The zone in a TZif file's bytes (versions 1 to 4), or NULL with `err`
 * (a sentence without the file's name).  Leap-second records ("right/"
 * zones) are skipped: todod's instants are POSIX seconds. */
struct tz_zone *tz_zone_parse(const unsigned char *data, size_t size, struct todod_err *err);

void tz_zone_free(struct tz_zone *zone);

/* The type in force at `instant`; *next_change (may be NULL) is the next
 * instant after it at which a type may start, INT64_MAX when none will.
 * `instant` must lie within +-TZ_INSTANT_LIMIT plus a few days. */
struct tz_type tz_zone_type_at(const struct tz_zone *zone, int64_t instant,
			       int64_t *next_change);

/* Instants the zone code accepts: about +-1.1 billion years, so years and
 * day numbers always fit an int. */
#define TZ_INSTANT_LIMIT (INT64_C(1) << 55)

#endif

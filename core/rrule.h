/* rrule.h - the subset of RFC 5545 recurrence rules todod understands.
 *
 * The store validates and normalises a task's RRULE with rrule_parse and
 * rrule_format, so only rules the recurrence plugin can expand are ever
 * kept; the plugin computes the next due date with rrule_next.
 *
 * Accepted (a leading "RRULE:" is allowed; parts in any order; names and
 * values case-insensitive; surrounding white space ignored):
 *   FREQ=DAILY|WEEKLY|MONTHLY|YEARLY     required
 *   INTERVAL=n                           n >= 1, default 1; one step at most
 *                                        100 years (DAILY 36525, WEEKLY
 *                                        5217, MONTHLY 1200, YEARLY 100)
 *   COUNT=n                              n >= 1; the series start counts
 *   UNTIL=20261231                       a date: that whole local day is in
 *   UNTIL=20261231T235959Z               an instant (UTC)
 *   UNTIL=20261231T235959                a wall-clock time in the task's zone
 *   BYDAY=MO,TU,...,SU                   ordinals (2MO, -1FR) only for
 *                                        MONTHLY (1..5) and YEARLY (1..53;
 *                                        1..5 with BYMONTH, where they count
 *                                        within the month)
 *   BYMONTHDAY=1..31 | -31..-1           not with WEEKLY
 *   BYMONTH=1..12
 *   WKST=MO..SU                          default MO
 * COUNT and UNTIL exclude each other.  Everything else (BYSETPOS, BYHOUR,
 * BYWEEKNO, HOURLY, a part given twice, an empty value, ...) is refused
 * with one sentence naming the part, and so is a BYMONTH/BYMONTHDAY pair
 * that no calendar date satisfies (BYMONTH=2;BYMONTHDAY=30).
 *
 * Normal form (rrule_format), the text the store keeps: upper case, parts
 * in the order FREQ;INTERVAL;BYMONTH;BYMONTHDAY;BYDAY;WKST;COUNT|UNTIL,
 * INTERVAL only when not 1, WKST only when not MO, list items in the order
 * given with repeats dropped ("+1MO" and "1MO" are one item). */
#ifndef TODOD_RRULE_H
#define TODOD_RRULE_H

#include <stddef.h>
#include <stdint.h>

#include "todod-plugin.h"

enum rrule_freq { RRULE_DAILY, RRULE_WEEKLY, RRULE_MONTHLY, RRULE_YEARLY };

enum rrule_until {
	RRULE_UNTIL_NONE,
	RRULE_UNTIL_DATE,  /* occurrences on or before that local date */
	RRULE_UNTIL_UTC,   /* occurrences at or before that instant */
	RRULE_UNTIL_LOCAL, /* occurrences at or before that local wall-clock time */
};

/* Weekdays are 0 = MO .. 6 = SU. */
struct rrule_byday {
	int8_t ordinal; /* 0 = every such weekday of the period */
	uint8_t weekday;
};

/* Every distinct BYDAY item: 7 weekdays, each plain or with one of the
 * ordinals -53..-1, 1..53. */
#define RRULE_BYDAY_MAX (7 * 107)
/* Large enough for the normal form of any rule rrule_parse accepts. */
#define RRULE_TEXT_MAX 4608

struct rrule {
	enum rrule_freq freq;
	int interval;
	int count; /* 0 = no COUNT */
	enum rrule_until until_kind;
	struct {
		int year, month, day, hour, minute, second;
	} until;
	int wkst;
	int n_bymonth, n_bymonthday, n_byday;
	uint8_t bymonth[12];
	int8_t bymonthday[62];
	struct rrule_byday byday[RRULE_BYDAY_MAX];
};

/* 0 and `rule` filled, or -1 with the reason in `err` (e.g. "BYSETPOS is
 * not supported", "COUNT and UNTIL cannot both be given"). */
int rrule_parse(const char *text, struct rrule *rule, struct todod_err *err);

/* Writes the normal form; returns its length like snprintf (always less
 * than RRULE_TEXT_MAX). */
int rrule_format(const struct rrule *rule, char *buf, size_t size);

/* The occurrence after occurrence number `occurrence` (1-based) of the
 * series that starts at `series_start` (Unix seconds: the ORIGINAL due
 * date of the first task, which is always occurrence 1 whether or not it
 * matches the rule, as RFC 5545 counts DTSTART).  Occurrences are counted
 * from the series start, so moving one task's due date by hand does not
 * shift the series.
 *
 * The rule is applied to wall-clock dates in the IANA zone `tz` (e.g.
 * "Europe/Berlin"); every occurrence keeps the series start's local time
 * of day across DST changes.  A local time that a spring-forward skips is
 * moved forward by the length of the gap (02:30 becomes 03:30); one that
 * a fall-back repeats means its first instant.
 *
 * Returns 0 with *next set; 1 when the series has ended (COUNT reached,
 * or the next one would be after UNTIL); RRULE_END_OF_CALENDAR when the
 * next one would be after 9999-12-31T23:59:59Z, the last instant todod
 * keeps; -1 with `err` for a bad argument or a rule that yields nothing
 * within 100 years.
 *
 * The zone is read through tz.h, never by switching the process's TZ, so
 * other threads are unaffected; the zone cache makes it a loop-thread
 * function. */
#define RRULE_END_OF_CALENDAR 2
int rrule_next(const struct rrule *rule, int64_t series_start, const char *tz,
	       int occurrence, int64_t *next, struct todod_err *err);

#endif

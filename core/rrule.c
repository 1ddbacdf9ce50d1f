/* rrule.c - parse, normalise and expand the RFC 5545 subset of rrule.h.
 *
 * Expansion works on wall-clock calendar days (day numbers since
 * 1970-01-01, proleptic Gregorian): a period of the rule (a day, a week
 * from WKST, a month or a year) is walked day by day and every day is
 * tested against the BYxxx parts.  Within one period every RFC 5545
 * "expand" or "limit" step reduces to such a test, so one predicate
 * serves all four frequencies, and days come out already in order.  Only
 * the chosen day is turned into an instant, in the task's zone. */
#include "rrule.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tz.h"

static const char *const weekday_names[] = { "MO", "TU", "WE", "TH", "FR", "SA", "SU" };
static const char *const freq_names[] = { "DAILY", "WEEKLY", "MONTHLY", "YEARLY" };

enum part { P_FREQ, P_INTERVAL, P_COUNT, P_UNTIL, P_BYMONTH, P_BYMONTHDAY, P_BYDAY, P_WKST };
static const char *const part_names[] = { "FREQ",    "INTERVAL",   "COUNT", "UNTIL",
					  "BYMONTH", "BYMONTHDAY", "BYDAY", "WKST" };
#define N_PARTS (sizeof part_names / sizeof part_names[0])

/* Valid RFC 5545, but not something todod can honour. */
static const char *const unsupported_parts[] = { "BYSECOND",  "BYMINUTE", "BYHOUR",
						  "BYSETPOS",  "BYYEARDAY", "BYWEEKNO" };
static const char *const unsupported_freqs[] = { "SECONDLY", "MINUTELY", "HOURLY" };

#define DAYS_PER_100_YEARS 36525
/* 9999-12-31, as a day number, and its last second: times go out as
 * RFC 3339 with a four-digit year, so nothing later can be kept. */
#define LAST_DAY INT64_C(2932896)
#define LAST_INSTANT (LAST_DAY * 86400 + 86399)
/* However many occurrences are asked for, the walk stays short. */
#define MAX_SERIES_DAYS (10 * DAYS_PER_100_YEARS)
/* Enough of a bad value to recognise it in a message. */
#define QUOTE_MAX 40

struct span {
	const char *p;
	size_t n;
};

static int quote_len(struct span s)
{
	return (int)(s.n < QUOTE_MAX ? s.n : QUOTE_MAX);
}

static bool span_is(struct span s, const char *word)
{
	return s.n == strlen(word) && strncasecmp(s.p, word, s.n) == 0;
}

/* Index of `s` in `names`, or -1. */
static int span_lookup(struct span s, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (span_is(s, names[i]))
			return (int)i;
	return -1;
}

/* ---- calendar ---------------------------------------------------------------- */

static bool is_leap(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int64_t year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Day number of a proleptic Gregorian date.  Years are counted from
 * 1 March so that the leap day is the last day of its year. */
static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static int64_t day_number(int64_t year, int month, int mday)
{
	int64_t y = month <= 2 ? year - 1 : year;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t year_of_era = y - era * 400;
	int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + mday - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	return era * 146097 + day_of_era - 719468;
}

struct civil {
	int64_t year;
	int month, mday, weekday; /* weekday 0 = MO */
};

static struct civil civil_of(int64_t day)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;
	gmtime_r(&t, &tm);
	return (struct civil){ tm.tm_year + 1900LL, tm.tm_mon + 1, tm.tm_mday, (tm.tm_wday + 6) % 7 };
}

/* ---- parsing -------------------------------------------------------------------- */

/* Digits only, at most 18 of them (no overflow); -1 for anything else. */
static int64_t parse_digits(struct span s)
{
	if (s.n == 0 || s.n > 18)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (!isdigit((unsigned char)s.p[i]))
			return -1;
		v = v * 10 + (s.p[i] - '0');
	}
	return v;
}

static int parse_positive(const char *part, struct span value, int *out, struct todod_err *err)
{
	int64_t v = parse_digits(value);
	if (v < 1)
		return todod_err_set(err, "%s must be a whole number >= 1, got '%.*s'", part,
				     quote_len(value), value.p);
	if (v > INT_MAX)
		return todod_err_set(err, "%s must be at most %d, got '%.*s'", part, INT_MAX,
				     quote_len(value), value.p);
	*out = (int)v;
	return 0;
}

/* "+12", "-3", "7": a sign and 1..`max_digits` digits; false otherwise. */
static bool parse_signed(struct span s, size_t max_digits, int *out)
{
	int sign = 1;
	if (s.n > 0 && (s.p[0] == '+' || s.p[0] == '-')) {
		sign = s.p[0] == '-' ? -1 : 1;
		s.p++;
		s.n--;
	}
	if (s.n > max_digits)
		return false;
	int64_t v = parse_digits(s);
	if (v < 0)
		return false;
	*out = sign * (int)v;
	return true;
}

/* YYYYMMDD at `p`, checked against the calendar. */
static bool parse_date(const char *p, int *year, int *month, int *day)
{
	int64_t y = parse_digits((struct span){ p, 4 });
	int64_t m = parse_digits((struct span){ p + 4, 2 });
	int64_t d = parse_digits((struct span){ p + 6, 2 });
	if (y < 0 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, (int)m))
		return false;
	*year = (int)y;
	*month = (int)m;
	*day = (int)d;
	return true;
}

static int parse_until(struct span v, struct rrule *rule, struct todod_err *err)
{
	bool utc = v.n == 16 && toupper((unsigned char)v.p[15]) == 'Z';
	bool has_time = (v.n == 15 || utc) && toupper((unsigned char)v.p[8]) == 'T';
	int64_t h = 0, m = 0, s = 0;
	if (has_time) {
		h = parse_digits((struct span){ v.p + 9, 2 });
		m = parse_digits((struct span){ v.p + 11, 2 });
		s = parse_digits((struct span){ v.p + 13, 2 });
	}
	if (!(v.n == 8 || has_time) ||
	    !parse_date(v.p, &rule->until.year, &rule->until.month, &rule->until.day) ||
	    h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 59)
		return todod_err_set(err, "UNTIL: '%.*s' is not a date (20261231) or a date-time "
					  "(20261231T235959Z)", quote_len(v), v.p);
	rule->until.hour = (int)h;
	rule->until.minute = (int)m;
	rule->until.second = (int)s;
	rule->until_kind = !has_time ? RRULE_UNTIL_DATE : utc ? RRULE_UNTIL_UTC : RRULE_UNTIL_LOCAL;
	return 0;
}

static int parse_byday_item(struct span item, struct rrule *rule, struct todod_err *err)
{
	int weekday = item.n >= 2 ? span_lookup((struct span){ item.p + item.n - 2, 2 },
						weekday_names, 7) : -1;
	struct span ordinal = { item.p, item.n >= 2 ? item.n - 2 : 0 };
	int value = 0;
	if (weekday < 0 || (ordinal.n > 0 && !parse_signed(ordinal, 2, &value)))
		return todod_err_set(err, "BYDAY: '%.*s' is not a weekday", quote_len(item), item.p);
	if (ordinal.n > 0 && (value == 0 || value < -53 || value > 53))
		return todod_err_set(err, "BYDAY: '%.*s' has ordinal %d; ordinals go from 1 to 53 "
					  "or from -1 to -53", quote_len(item), item.p, value);
	for (int i = 0; i < rule->n_byday; i++)
		if (rule->byday[i].ordinal == value && rule->byday[i].weekday == weekday)
			return 0;
	rule->byday[rule->n_byday++] = (struct rrule_byday){ (int8_t)value, (uint8_t)weekday };
	return 0;
}

static int parse_bymonthday_item(struct span item, struct rrule *rule, struct todod_err *err)
{
	int day = 0;
	if (!parse_signed(item, 2, &day) || day == 0 || day < -31 || day > 31)
		return todod_err_set(err, "BYMONTHDAY: '%.*s' is not a day of the month (1..31 or "
					  "-31..-1)", quote_len(item), item.p);
	if (!memchr(rule->bymonthday, day, (size_t)rule->n_bymonthday))
		rule->bymonthday[rule->n_bymonthday++] = (int8_t)day;
	return 0;
}

static int parse_bymonth_item(struct span item, struct rrule *rule, struct todod_err *err)
{
	int64_t month = item.n <= 2 ? parse_digits(item) : -1;
	if (month < 1 || month > 12)
		return todod_err_set(err, "BYMONTH: '%.*s' is not a month (1..12)", quote_len(item),
				     item.p);
	if (!memchr(rule->bymonth, (int)month, (size_t)rule->n_bymonth))
		rule->bymonth[rule->n_bymonth++] = (uint8_t)month;
	return 0;
}

typedef int (*item_parser)(struct span item, struct rrule *rule, struct todod_err *err);

static int parse_list(const char *part, struct span value, item_parser parse_item,
		      struct rrule *rule, struct todod_err *err)
{
	const char *end = value.p + value.n;
	for (const char *p = value.p; p <= end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		struct span item = { p, (size_t)((comma ? comma : end) - p) };
		if (item.n == 0)
			return todod_err_set(err, "%s: empty item in '%.*s'", part,
					     quote_len(value), value.p);
		if (parse_item(item, rule, err) != 0)
			return -1;
		p = item.p + item.n + 1;
	}
	return 0;
}

static int parse_part(enum part which, struct span value, struct rrule *rule,
		      struct todod_err *err)
{
	int i;
	switch (which) {
	case P_FREQ:
		if ((i = span_lookup(value, freq_names, 4)) >= 0) {
			rule->freq = (enum rrule_freq)i;
			return 0;
		}
		if ((i = span_lookup(value, unsupported_freqs, 3)) >= 0)
			return todod_err_set(err, "FREQ=%s is not supported", unsupported_freqs[i]);
		return todod_err_set(err, "FREQ: '%.*s' is not DAILY, WEEKLY, MONTHLY or YEARLY",
				     quote_len(value), value.p);
	case P_INTERVAL:
		return parse_positive("INTERVAL", value, &rule->interval, err);
	case P_COUNT:
		return parse_positive("COUNT", value, &rule->count, err);
	case P_UNTIL:
		return parse_until(value, rule, err);
	case P_BYMONTH:
		return parse_list("BYMONTH", value, parse_bymonth_item, rule, err);
	case P_BYMONTHDAY:
		return parse_list("BYMONTHDAY", value, parse_bymonthday_item, rule, err);
	case P_BYDAY:
		return parse_list("BYDAY", value, parse_byday_item, rule, err);
	case P_WKST:
		if ((i = span_lookup(value, weekday_names, 7)) < 0)
			return todod_err_set(err, "WKST: '%.*s' is not a weekday", quote_len(value),
					     value.p);
		rule->wkst = i;
		return 0;
	}
	return todod_err_set(err, "internal error: unhandled rule part");
}

/* One NAME=VALUE; `seen` catches repeats. */
static int parse_named(struct span text, unsigned *seen, struct rrule *rule,
		       struct todod_err *err)
{
	const char *eq = memchr(text.p, '=', text.n);
	if (text.n == 0)
		return todod_err_set(err, "empty part: remove the extra ';'");
	if (!eq)
		return todod_err_set(err, "'%.*s' is not a NAME=VALUE part", quote_len(text), text.p);
	struct span name = { text.p, (size_t)(eq - text.p) };
	struct span value = { eq + 1, text.n - name.n - 1 };

	int which = span_lookup(name, part_names, N_PARTS);
	if (which < 0) {
		int i = span_lookup(name, unsupported_parts, 6);
		if (i >= 0)
			return todod_err_set(err, "%s is not supported", unsupported_parts[i]);
		return todod_err_set(err, "'%.*s' is not a recurrence rule part (FREQ, INTERVAL, "
					  "COUNT, UNTIL, BYMONTH, BYMONTHDAY, BYDAY, WKST)",
				     quote_len(name), name.p);
	}
	if (*seen & (1u << which))
		return todod_err_set(err, "%s is given twice", part_names[which]);
	*seen |= 1u << which;
	if (value.n == 0)
		return todod_err_set(err, "%s has an empty value", part_names[which]);
	return parse_part((enum part)which, value, rule, err);
}

/* The walk in next_in_zone gives up when 100 years pass without an
 * occurrence, so one step of a rule may be at most that long; a longer
 * one would be accepted here and then never yield a successor. */
static int check_interval(const struct rrule *rule, struct todod_err *err)
{
	static const int most[] = {
		[RRULE_DAILY] = DAYS_PER_100_YEARS,
		[RRULE_WEEKLY] = DAYS_PER_100_YEARS / 7,
		[RRULE_MONTHLY] = 100 * 12,
		[RRULE_YEARLY] = 100,
	};
	if (rule->interval <= most[rule->freq])
		return 0;
	return todod_err_set(err, "INTERVAL=%d is too large for FREQ=%s: the next occurrence "
				  "must come within 100 years, so INTERVAL is at most %d",
			     rule->interval, freq_names[rule->freq], most[rule->freq]);
}

static bool month_has_day(int month, int mday)
{
	/* A leap year: February 29th exists in some year. */
	int length = days_in_month(2000, month);
	return mday > 0 ? mday <= length : -mday <= length;
}

/* Rules the grammar allows but the calendar or RFC 5545 do not. */
static int check_combination(const struct rrule *rule, unsigned seen, struct todod_err *err)
{
	if (!(seen & (1u << P_FREQ)))
		return todod_err_set(err, "FREQ is required");
	if (rule->count && rule->until_kind != RRULE_UNTIL_NONE)
		return todod_err_set(err, "COUNT and UNTIL cannot both be given");
	if (rule->freq == RRULE_WEEKLY && rule->n_bymonthday)
		return todod_err_set(err, "BYMONTHDAY cannot be used with FREQ=WEEKLY");
	if (check_interval(rule, err) != 0)
		return -1;

	bool within_month = rule->freq == RRULE_MONTHLY ||
			    (rule->freq == RRULE_YEARLY && rule->n_bymonth);
	for (int i = 0; i < rule->n_byday; i++) {
		int ordinal = rule->byday[i].ordinal;
		const char *day = weekday_names[rule->byday[i].weekday];
		if (ordinal && (rule->freq == RRULE_DAILY || rule->freq == RRULE_WEEKLY))
			return todod_err_set(err, "BYDAY: '%d%s' has an ordinal, which only MONTHLY "
						  "and YEARLY rules allow", ordinal, day);
		if (within_month && abs(ordinal) > 5)
			return todod_err_set(err, "BYDAY: '%d%s' cannot happen: within a month "
						  "ordinals go from 1 to 5 or from -1 to -5",
					     ordinal, day);
	}

	if (!rule->n_bymonthday)
		return 0;
	for (int m = 1; m <= 12; m++) {
		if (rule->n_bymonth && !memchr(rule->bymonth, m, (size_t)rule->n_bymonth))
			continue;
		for (int i = 0; i < rule->n_bymonthday; i++)
			if (month_has_day(m, rule->bymonthday[i]))
				return 0;
	}
	return todod_err_set(err, "BYMONTHDAY never happens: none of the months in BYMONTH has "
				  "such a day");
}

static int check_satisfiable(const struct rrule *rule, struct todod_err *err);

int rrule_parse(const char *text, struct rrule *rule, struct todod_err *err)
{
	memset(rule, 0, sizeof *rule);
	rule->interval = 1;
	if (!text)
		return todod_err_set(err, "FREQ is required");

	struct span all = { text, strlen(text) };
	while (all.n && isspace((unsigned char)all.p[0])) {
		all.p++;
		all.n--;
	}
	while (all.n && isspace((unsigned char)all.p[all.n - 1]))
		all.n--;
	if (all.n >= 6 && strncasecmp(all.p, "RRULE:", 6) == 0) {
		all.p += 6;
		all.n -= 6;
	}

	unsigned seen = 0;
	const char *end = all.p + all.n;
	for (const char *p = all.p; all.n && p <= end;) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		struct span part = { p, (size_t)((semi ? semi : end) - p) };
		if (parse_named(part, &seen, rule, err) != 0)
			return -1;
		p = part.p + part.n + 1;
	}
	if (check_combination(rule, seen, err) != 0)
		return -1;
	return check_satisfiable(rule, err);
}

/* ---- normal form ------------------------------------------------------------------ */

struct out {
	char *buf;
	size_t size, len;
};

static void out_add(struct out *o, const char *fmt, ...) TODOD_PRINTF(2, 3);
static void out_add(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
			  o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	o->len += n > 0 ? (size_t)n : 0;
}

int rrule_format(const struct rrule *rule, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };
	if (size)
		buf[0] = '\0';
	out_add(&o, "FREQ=%s", freq_names[rule->freq]);
	if (rule->interval != 1)
		out_add(&o, ";INTERVAL=%d", rule->interval);
	for (int i = 0; i < rule->n_bymonth; i++)
		out_add(&o, "%s%d", i ? "," : ";BYMONTH=", rule->bymonth[i]);
	for (int i = 0; i < rule->n_bymonthday; i++)
		out_add(&o, "%s%d", i ? "," : ";BYMONTHDAY=", rule->bymonthday[i]);
	for (int i = 0; i < rule->n_byday; i++) {
		out_add(&o, "%s", i ? "," : ";BYDAY=");
		if (rule->byday[i].ordinal)
			out_add(&o, "%d", rule->byday[i].ordinal);
		out_add(&o, "%s", weekday_names[rule->byday[i].weekday]);
	}
	if (rule->wkst)
		out_add(&o, ";WKST=%s", weekday_names[rule->wkst]);
	if (rule->count)
		out_add(&o, ";COUNT=%d", rule->count);
	if (rule->until_kind != RRULE_UNTIL_NONE) {
		out_add(&o, ";UNTIL=%04d%02d%02d", rule->until.year, rule->until.month,
			rule->until.day);
		if (rule->until_kind != RRULE_UNTIL_DATE)
			out_add(&o, "T%02d%02d%02d%s", rule->until.hour, rule->until.minute,
				rule->until.second, rule->until_kind == RRULE_UNTIL_UTC ? "Z" : "");
	}
	return (int)o.len;
}

/* ---- the task's time zone ----------------------------------------------------------- */

/* Conversions read the zone database themselves (tz.h): switching the
 * process's TZ would not be thread-safe. */
static int utc_offset_at(const char *tz, int64_t instant, long *offset, struct todod_err *err)
{
	struct todod_local_time local;
	if (tz_to_local(tz, instant, &local, err) != 0)
		return -1;
	*offset = local.utc_offset;
	return 0;
}

/* ---- expansion ------------------------------------------------------------------------- */

struct series {
	const struct rrule *rule;
	struct civil start;
	int64_t start_day;
	/* Without BYDAY and BYMONTHDAY the start fixes what the rule leaves
	 * open: its weekday (WEEKLY), its day of the month (MONTHLY, YEARLY)
	 * and, unless BYMONTH says otherwise, its month (YEARLY). */
	bool keep_weekday, keep_mday, keep_month;
	/* Whether BYDAY ordinals count within the month or the year. */
	bool ordinal_in_month;
};

/* First and last day of the rule's k-th period. */
static void period_of(const struct series *s, int64_t k, int64_t *first, int64_t *last)
{
	int64_t step = k * s->rule->interval;
	switch (s->rule->freq) {
	case RRULE_DAILY:
		*first = *last = s->start_day + step;
		return;
	case RRULE_WEEKLY:
		*first = s->start_day - (s->start.weekday - s->rule->wkst + 7) % 7 + 7 * step;
		*last = *first + 6;
		return;
	case RRULE_MONTHLY: {
		int64_t index = s->start.year * 12 + (s->start.month - 1) + step;
		int64_t year = floor_div(index, 12);
		int month = (int)(index - year * 12) + 1;
		*first = day_number(year, month, 1);
		*last = *first + days_in_month(year, month) - 1;
		return;
	}
	case RRULE_YEARLY:
		*first = day_number(s->start.year + step, 1, 1);
		*last = day_number(s->start.year + step, 12, 31);
		return;
	}
}

static bool byday_matches(const struct series *s, int64_t day, const struct civil *c)
{
	int64_t scope_first, scope_last;
	if (s->ordinal_in_month) {
		scope_first = day - (c->mday - 1);
		scope_last = scope_first + days_in_month(c->year, c->month) - 1;
	} else {
		scope_first = day_number(c->year, 1, 1);
		scope_last = day_number(c->year, 12, 31);
	}
	for (int i = 0; i < s->rule->n_byday; i++) {
		const struct rrule_byday *b = &s->rule->byday[i];
		if (b->weekday != c->weekday)
			continue;
		if (b->ordinal == 0 ||
		    (b->ordinal > 0 && (day - scope_first) / 7 + 1 == b->ordinal) ||
		    (b->ordinal < 0 && (scope_last - day) / 7 + 1 == -b->ordinal))
			return true;
	}
	return false;
}

static bool day_matches(const struct series *s, int64_t day)
{
	const struct rrule *r = s->rule;
	struct civil c = civil_of(day);
	if (r->n_bymonth && !memchr(r->bymonth, c.month, (size_t)r->n_bymonth))
		return false;
	if ((s->keep_month && c.month != s->start.month) ||
	    (s->keep_mday && c.mday != s->start.mday) ||
	    (s->keep_weekday && c.weekday != s->start.weekday))
		return false;
	/* The BYxxx lists hold one byte per value, so memchr finds them,
	 * negative month days included. */
	if (r->n_bymonthday) {
		int from_end = c.mday - days_in_month(c.year, c.month) - 1;
		if (!memchr(r->bymonthday, c.mday, (size_t)r->n_bymonthday) &&
		    !memchr(r->bymonthday, from_end, (size_t)r->n_bymonthday))
			return false;
	}
	return !r->n_byday || byday_matches(s, day, &c);
}

static struct series series_of(const struct rrule *rule, int64_t start_day)
{
	struct series s = { .rule = rule, .start = civil_of(start_day), .start_day = start_day };
	bool open = !rule->n_byday && !rule->n_bymonthday;
	s.keep_weekday = open && rule->freq == RRULE_WEEKLY;
	s.keep_mday = open && (rule->freq == RRULE_MONTHLY || rule->freq == RRULE_YEARLY);
	s.keep_month = open && rule->freq == RRULE_YEARLY && !rule->n_bymonth;
	s.ordinal_in_month = rule->freq == RRULE_MONTHLY || rule->n_bymonth;
	return s;
}

/* BYDAY and BYMONTHDAY can exclude each other (BYMONTHDAY=1;BYDAY=-1MO):
 * such a rule would be kept and then never recur.  The Gregorian calendar
 * repeats every 400 years, so one cycle of the month days tells. */
static int check_satisfiable(const struct rrule *rule, struct todod_err *err)
{
	if (!rule->n_byday || !rule->n_bymonthday)
		return 0;
	struct series s = series_of(rule, 0);
	for (int64_t year = 2000; year < 2400; year++) {
		for (int month = 1; month <= 12; month++) {
			int length = days_in_month(year, month);
			for (int i = 0; i < rule->n_bymonthday; i++) {
				int mday = rule->bymonthday[i] > 0 ? rule->bymonthday[i]
								   : length + 1 + rule->bymonthday[i];
				if (mday >= 1 && mday <= length &&
				    day_matches(&s, day_number(year, month, mday)))
					return 0;
			}
		}
	}
	return todod_err_set(err, "BYDAY and BYMONTHDAY never happen on the same date");
}

/* Whether the occurrence on local `day` at `time_of_day` (an `instant`)
 * lies after UNTIL. */
static bool after_until(const struct rrule *r, int64_t day, long time_of_day, int64_t instant)
{
	int64_t until_day = day_number(r->until.year, r->until.month, r->until.day);
	long until_time = r->until.hour * 3600L + r->until.minute * 60L + r->until.second;
	switch (r->until_kind) {
	case RRULE_UNTIL_NONE:
		return false;
	case RRULE_UNTIL_DATE:
		return day > until_day;
	case RRULE_UNTIL_LOCAL:
		return day > until_day || (day == until_day && time_of_day > until_time);
	case RRULE_UNTIL_UTC:
		return instant > until_day * 86400 + until_time;
	}
	return false;
}

/* Last local day an occurrence may fall on, so the walk stops there. */
static int until_last_day(const struct rrule *r, const char *tz, int64_t *last_day,
			  struct todod_err *err)
{
	*last_day = INT64_MAX;
	if (r->until_kind == RRULE_UNTIL_NONE)
		return 0;
	int64_t day = day_number(r->until.year, r->until.month, r->until.day);
	*last_day = day;
	if (r->until_kind != RRULE_UNTIL_UTC)
		return 0;
	int64_t instant = day * 86400 + r->until.hour * 3600L + r->until.minute * 60L +
			  r->until.second;
	long offset;
	if (utc_offset_at(tz, instant, &offset, err) != 0)
		return -1;
	*last_day = floor_div(instant + offset, 86400);
	return 0;
}

/* rrule_next once the arguments are checked; `local` is the series start
 * on the zone's wall clock (seconds since 1970-01-01 local). */
static int next_in_zone(const struct rrule *rule, int64_t local, const char *tz,
			int occurrence, int64_t *next, struct todod_err *err)
{
	int64_t last_allowed;
	if (until_last_day(rule, tz, &last_allowed, err) != 0)
		return -1;
	int64_t start_day = floor_div(local, 86400);
	long time_of_day = (long)(local - start_day * 86400);
	struct series s = series_of(rule, start_day);

	int64_t latest = start_day; /* the last occurrence found */
	int number = 1;
	for (int64_t k = 0;; k++) {
		int64_t first = 0, last = -1; /* set by period_of; gcc cannot tell */
		period_of(&s, k, &first, &last);
		if (first > last_allowed)
			return 1;
		/* Local day 10000-01-02 is past 9999 in UTC in every zone. */
		if (first - 1 > LAST_DAY)
			return RRULE_END_OF_CALENDAR;
		if (first - start_day > MAX_SERIES_DAYS)
			return todod_err_set(err, "occurrence %d would be more than 1000 years after "
						  "the series start", occurrence + 1);
		if (first - latest > DAYS_PER_100_YEARS) {
			struct civil c = civil_of(latest);
			return todod_err_set(err, "the rule yields no occurrence in the 100 years "
						  "after %04lld-%02d-%02d",
					     (long long)c.year, c.month, c.mday);
		}
		for (int64_t day = first > start_day ? first : start_day + 1; day <= last; day++) {
			if (!day_matches(&s, day))
				continue;
			latest = day;
			if (++number <= occurrence)
				continue;
			int64_t instant;
			if (tz_from_wall(tz, day * 86400 + time_of_day, &instant, err) != 0)
				return -1;
			if (after_until(rule, day, time_of_day, instant))
				return 1;
			if (instant > LAST_INSTANT)
				return RRULE_END_OF_CALENDAR;
			*next = instant;
			return 0;
		}
	}
}

int rrule_next(const struct rrule *rule, int64_t series_start, const char *tz,
	       int occurrence, int64_t *next, struct todod_err *err)
{
	if (occurrence < 1)
		return todod_err_set(err, "occurrence numbers start at 1, got %d", occurrence);
	long start_offset;
	if (utc_offset_at(tz, series_start, &start_offset, err) != 0)
		return -1;
	if (rule->count && occurrence >= rule->count)
		return 1;
	return next_in_zone(rule, series_start + start_offset, tz, occurrence, next, err);
}

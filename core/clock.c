/* clock.c - clock readings and RFC 3339 text.
 *
 * The parser does its own calendar arithmetic rather than going through
 * timegm(): it has to check the fields anyway, and timegm() silently
 * normalises what it should refuse (February 30th). */
#include "clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t read_clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_wall_ms(void) { return read_clock_ns(CLOCK_REALTIME) / 1000000; }
int64_t clock_wall_us(void) { return read_clock_ns(CLOCK_REALTIME) / 1000; }
int64_t clock_mono_ms(void) { return read_clock_ns(CLOCK_MONOTONIC) / 1000000; }
int64_t clock_mono_us(void) { return read_clock_ns(CLOCK_MONOTONIC) / 1000; }
int64_t clock_mono_ns(void) { return read_clock_ns(CLOCK_MONOTONIC); }

/* A year outside 0000-9999 has no RFC 3339 form either: "" too. */
size_t rfc3339_format_ms(int64_t epoch_ms, char *buf, size_t size)
{
	/* Floor division, so an instant before 1970 keeps a positive fraction. */
	int64_t ms = epoch_ms % 1000;
	time_t secs = (time_t)(epoch_ms / 1000 - (ms < 0));
	ms += ms < 0 ? 1000 : 0;
	struct tm tm;
	if (size < RFC3339_MS_SIZE || !gmtime_r(&secs, &tm) || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900) {
		if (size)
			buf[0] = '\0';
		return 0;
	}
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
	return RFC3339_MS_SIZE - 1;
}

static bool read_digits(const char **p, int count, int *value)
{
	*value = 0;
	for (int i = 0; i < count; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		*value = *value * 10 + (c - '0');
	}
	*p += count;
	return true;
}

static bool expect_char(const char **p, const char *accepted)
{
	if (**p == '\0' || !strchr(accepted, **p))
		return false;
	(*p)++;
	return true;
}

static bool is_leap(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to year-month-day in the proleptic Gregorian
 * calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
	year -= month <= 2;
	int64_t era = (year >= 0 ? year : year - 399) / 400;
	int64_t year_of_era = year - era * 400;
	int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	return era * 146097 + day_of_era - 719468;
}

int rfc3339_parse_ms(const char *s, int64_t *epoch_ms)
{
	int year, month, day, hour, min, sec;

	if (!s)
		return -1;
	/* RFC 3339 5.6 allows a lower-case 't' and 'z'; a space instead of
	 * 'T' is only a note about readability, not the grammar. */
	if (!read_digits(&s, 4, &year) || !expect_char(&s, "-") ||
	    !read_digits(&s, 2, &month) || !expect_char(&s, "-") ||
	    !read_digits(&s, 2, &day) || !expect_char(&s, "Tt") ||
	    !read_digits(&s, 2, &hour) || !expect_char(&s, ":") ||
	    !read_digits(&s, 2, &min) || !expect_char(&s, ":") ||
	    !read_digits(&s, 2, &sec))
		return -1;
	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
	    hour > 23 || min > 59 || sec > 60)
		return -1;

	int64_t ms = 0;
	if (*s == '.') {
		const char *digits = ++s;
		for (int64_t scale = 100; *s >= '0' && *s <= '9'; s++, scale /= 10)
			ms += (*s - '0') * scale;
		if (s == digits)
			return -1;
	}

	int64_t offset_min = 0;
	if (!expect_char(&s, "Zz")) {
		int off_hour, off_min;
		char sign = *s;
		if (!expect_char(&s, "+-") || !read_digits(&s, 2, &off_hour) ||
		    !expect_char(&s, ":") || !read_digits(&s, 2, &off_min) || off_hour > 23 ||
		    off_min > 59)
			return -1;
		offset_min = (sign == '-' ? -1 : 1) * (off_hour * 60 + off_min);
	}
	if (*s != '\0')
		return -1;
	int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec -
		       offset_min * 60;
	*epoch_ms = secs * 1000 + ms;
	return 0;
}

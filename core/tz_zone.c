/* tz_zone.c - read a TZif file (RFC 8536) and its POSIX TZ footer, and
 * say which local time type applies at an instant.
 *
 * Of a version 2+ file only the 64-bit data block is used (the 32-bit one
 * ends in 2038); a version 1 file has nothing else.  Instants after the
 * last transition follow the footer's rule ("CET-1CEST,M3.5.0,M10.5.0/3"),
 * which this file evaluates itself: the C library would only do it for
 * the process's own TZ. */
#include "tz_zone.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEADER_SIZE 44
#define TYPE_RECORD_SIZE 6
/* RFC 8536 3.2: -2**31 is not a valid offset; real ones stay within a day
 * or so (-25:59:59 .. 25:59:59). */
#define OFFSET_MAX (26 * 3600 - 1)
/* POSIX TZ strings: offsets up to 24 hours, rule times (RFC 8536 3.3.1)
 * up to 167. */
#define TZ_OFFSET_HOURS_MAX 24
#define TZ_RULE_HOURS_MAX 167
#define DEFAULT_RULE_TIME (2 * 3600)

/* ---- reading the binary file ---------------------------------------------- */

struct reader {
	const unsigned char *p;
	size_t left;
};

/* The next `n` bytes, or NULL when the file is shorter. */
static const unsigned char *take(struct reader *r, size_t n)
{
	if (n > r->left)
		return NULL;
	const unsigned char *at = r->p;
	r->p += n;
	r->left -= n;
	return at;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_signed(const unsigned char *p, size_t size)
{
	if (size == 4)
		return (int32_t)be32(p);
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct counts {
	uint32_t isut, isstd, leap, time, type, chars;
};

/* The header's version ('\0', '2', '3', '4') and counts; -1 if it is none. */
static int read_header(struct reader *r, struct counts *c)
{
	const unsigned char *h = take(r, HEADER_SIZE);
	if (!h || memcmp(h, "TZif", 4) != 0)
		return -1;
	*c = (struct counts){ be32(h + 20), be32(h + 24), be32(h + 28),
			      be32(h + 32), be32(h + 36), be32(h + 40) };
	return h[4];
}

static size_t block_size(const struct counts *c, size_t time_size)
{
	return (size_t)c->time * (time_size + 1) + (size_t)c->type * TYPE_RECORD_SIZE + c->chars +
	       (size_t)c->leap * (time_size + 4) + c->isstd + c->isut;
}

static int check_counts(const struct counts *c, struct todod_err *err)
{
	if (c->type == 0 || c->type > 256 || c->chars == 0 || c->chars > UINT16_MAX / 2)
		return todod_err_set(err, "it has %u time types and %u abbreviation bytes", c->type,
				     c->chars);
	if ((c->isstd && c->isstd != c->type) || (c->isut && c->isut != c->type))
		return todod_err_set(err, "its indicator counts do not match its time types");
	return 0;
}

static int read_transitions(struct reader *r, const struct counts *c, size_t time_size,
			    struct tz_zone *z, struct todod_err *err)
{
	const unsigned char *times = take(r, (size_t)c->time * time_size);
	const unsigned char *indices = take(r, c->time);
	for (size_t i = 0; i < c->time; i++) {
		z->transition_at[i] = be_signed(times + i * time_size, time_size);
		z->transition_type[i] = indices[i];
		if (i && z->transition_at[i] <= z->transition_at[i - 1])
			return todod_err_set(err, "its transitions are out of order");
		if (indices[i] >= c->type)
			return todod_err_set(err, "a transition names time type %u of %u",
					     indices[i], c->type);
	}
	z->n_transitions = c->time;
	return 0;
}

static int read_types(struct reader *r, const struct counts *c, struct tz_zone *z,
		      struct todod_err *err)
{
	const unsigned char *records = take(r, (size_t)c->type * TYPE_RECORD_SIZE);
	const unsigned char *chars = take(r, c->chars);
	if (chars[c->chars - 1] != '\0')
		return todod_err_set(err, "its abbreviations are not NUL-terminated");
	memcpy(z->abbrevs, chars, c->chars);
	for (size_t i = 0; i < c->type; i++) {
		const unsigned char *rec = records + i * TYPE_RECORD_SIZE;
		int32_t offset = (int32_t)be32(rec);
		if (offset < -OFFSET_MAX || offset > OFFSET_MAX || rec[4] > 1 ||
		    rec[5] >= c->chars || strlen(z->abbrevs + rec[5]) > TZ_ABBREV_LEN_MAX)
			return todod_err_set(err, "time type %zu is not valid", i);
		z->types[i] = (struct tz_type){ offset, rec[4] == 1, rec[5] };
	}
	z->n_types = c->type;
	return 0;
}

static struct tz_zone *zone_alloc(const struct counts *c)
{
	struct tz_zone *z = todod_xcalloc(1, sizeof *z);
	z->transition_at = todod_xmalloc(((size_t)c->time + 1) * sizeof *z->transition_at);
	z->transition_type = todod_xmalloc((size_t)c->time + 1);
	z->types = todod_xmalloc(c->type * sizeof *z->types);
	/* Room for the footer's two names after the file's. */
	z->abbrevs = todod_xmalloc(c->chars + 2 * (TZ_ABBREV_LEN_MAX + 1));
	return z;
}

void tz_zone_free(struct tz_zone *zone)
{
	if (!zone)
		return;
	free(zone->transition_at);
	free(zone->transition_type);
	free(zone->types);
	free(zone->abbrevs);
	free(zone);
}

/* ---- the footer: a POSIX TZ string ---------------------------------------- */

struct cursor {
	const char *p, *end;
};

static bool at_char(const struct cursor *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

static bool is_digit(const struct cursor *c)
{
	return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* 1 to `max_digits` digits. */
static bool parse_number(struct cursor *c, int max_digits, int *out)
{
	int value = 0, digits = 0;
	for (; is_digit(c) && digits < max_digits; digits++)
		value = value * 10 + (*c->p++ - '0');
	*out = value;
	return digits > 0;
}

/* "CET" (letters) or "<+0530>" (letters, digits, signs in brackets),
 * 3 to TZ_ABBREV_LEN_MAX characters, appended to the zone's names. */
static bool parse_name(struct cursor *c, struct tz_zone *z, size_t *names_end,
		       uint16_t *abbrev)
{
	bool quoted = at_char(c, '<');
	const char *start = c->p + quoted;
	const char *p = start;
	while (p < c->end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			      (quoted && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-'))))
		p++;
	size_t len = (size_t)(p - start);
	if (len < 3 || len > TZ_ABBREV_LEN_MAX || (quoted && (p == c->end || *p != '>')))
		return false;
	c->p = p + quoted;
	memcpy(z->abbrevs + *names_end, start, len);
	z->abbrevs[*names_end + len] = '\0';
	*abbrev = (uint16_t)*names_end;
	*names_end += len + 1;
	return true;
}

/* [+-]h[h[h]][:mm[:ss]] as seconds, hours at most `max_hours`. */
static bool parse_hms(struct cursor *c, int max_hours, int32_t *seconds)
{
	int sign = at_char(c, '-') ? -1 : 1;
	if (at_char(c, '-') || at_char(c, '+'))
		c->p++;
	int h = 0, m = 0, s = 0;
	if (!parse_number(c, 3, &h) || h > max_hours)
		return false;
	if (at_char(c, ':')) {
		c->p++;
		if (!parse_number(c, 2, &m) || m > 59)
			return false;
		if (at_char(c, ':')) {
			c->p++;
			if (!parse_number(c, 2, &s) || s > 59)
				return false;
		}
	}
	*seconds = sign * (h * 3600 + m * 60 + s);
	return true;
}

/* "Jn", "n" or "Mm.w.d", then an optional "/time". */
static bool parse_rule_date(struct cursor *c, struct tz_rule_date *d)
{
	bool ok;
	if (at_char(c, 'M')) {
		c->p++;
		d->kind = TZ_MONTH_WEEK_DAY;
		ok = parse_number(c, 2, &d->month) && d->month >= 1 && d->month <= 12 &&
		     at_char(c, '.') && (c->p++, parse_number(c, 1, &d->week)) && d->week >= 1 &&
		     d->week <= 5 && at_char(c, '.') && (c->p++, parse_number(c, 1, &d->day)) &&
		     d->day <= 6;
	} else if (at_char(c, 'J')) {
		c->p++;
		d->kind = TZ_JULIAN_NO_LEAP;
		ok = parse_number(c, 3, &d->day) && d->day >= 1 && d->day <= 365;
	} else {
		d->kind = TZ_DAY_OF_YEAR;
		ok = parse_number(c, 3, &d->day) && d->day <= 365;
	}
	d->time = DEFAULT_RULE_TIME;
	if (ok && at_char(c, '/')) {
		c->p++;
		ok = parse_hms(c, TZ_RULE_HOURS_MAX, &d->time);
	}
	return ok;
}

/* std offset [dst [offset] ,start[/time],end[/time]]; POSIX offsets count
 * west of Greenwich, so their sign is the opposite of ours.  A rule is
 * required with DST: the C library's default rule is a US one. */
static bool parse_rule(struct cursor *c, struct tz_zone *z, size_t names_end)
{
	struct tz_rule *r = &z->rule;
	int32_t west;
	if (!parse_name(c, z, &names_end, &r->std.abbrev) ||
	    !parse_hms(c, TZ_OFFSET_HOURS_MAX, &west))
		return false;
	r->std.utc_offset = -west;
	if (c->p == c->end)
		return true;
	r->has_dst = true;
	r->dst.is_dst = true;
	if (!parse_name(c, z, &names_end, &r->dst.abbrev))
		return false;
	r->dst.utc_offset = r->std.utc_offset + 3600;
	if (!at_char(c, ',')) {
		if (!parse_hms(c, TZ_OFFSET_HOURS_MAX, &west))
			return false;
		r->dst.utc_offset = -west;
	}
	if (!at_char(c, ',') || (c->p++, !parse_rule_date(c, &r->dst_start)) ||
	    !at_char(c, ',') || (c->p++, !parse_rule_date(c, &r->dst_end)))
		return false;
	return c->p == c->end;
}

/* What follows the 64-bit block: "\n" TZ-string "\n" (the string may be
 * empty: no rule). */
static int read_footer(struct reader *r, struct tz_zone *z, size_t names_end,
		       struct todod_err *err)
{
	const char *text = (const char *)r->p;
	const char *end = r->left > 1 ? memchr(text + 1, '\n', r->left - 1) : NULL;
	if (r->left == 0 || text[0] != '\n' || !end)
		return todod_err_set(err, "its footer is missing or not terminated");
	struct cursor c = { text + 1, end };
	if (c.p == c.end)
		return 0;
	if (!parse_rule(&c, z, names_end))
		return todod_err_set(err, "its footer '%.*s' is not a POSIX TZ rule",
				     (int)(end - text - 1 < 60 ? end - text - 1 : 60), text + 1);
	z->has_rule = true;
	return 0;
}

struct tz_zone *tz_zone_parse(const unsigned char *data, size_t size, struct todod_err *err)
{
	struct reader r = { data, size };
	struct counts c;
	int version = read_header(&r, &c);
	if (version < 0) {
		todod_err_set(err, "it is not a TZif file");
		return NULL;
	}
	size_t time_size = 4;
	if (version >= '2') {
		/* Skip the 32-bit data to the 64-bit header. */
		if (!take(&r, block_size(&c, 4)) || read_header(&r, &c) < 0) {
			todod_err_set(err, "it is cut short");
			return NULL;
		}
		time_size = 8;
	}
	if (check_counts(&c, err) != 0)
		return NULL;
	if (r.left < block_size(&c, time_size)) {
		todod_err_set(err, "it is cut short");
		return NULL;
	}
	struct tz_zone *z = zone_alloc(&c);
	if (read_transitions(&r, &c, time_size, z, err) != 0 || read_types(&r, &c, z, err) != 0)
		goto fail;
	/* Leap seconds ("right/" zones) are left out: todod's instants are
	 * POSIX seconds, which do not count them, so such a zone reads as its
	 * POSIX twin, its changes some 30 seconds late.  The standard/UT
	 * indicators only matter to POSIX TZ strings without rules. */
	take(&r, (size_t)c.leap * (time_size + 4) + c.isstd + c.isut);
	if (time_size == 8 && read_footer(&r, z, c.chars, err) != 0)
		goto fail;
	return z;
fail:
	tz_zone_free(z);
	return NULL;
}

/* ---- evaluating the footer's rule ------------------------------------------- */

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t m = a % b;
	return m < 0 ? m + b : m;
}

/* Days since 1970-01-01 of a date; the C library's calendar, which
 * normalises month 13 to January of the next year. */
static int64_t day_of(int64_t year, int month, int mday)
{
	struct tm tm = { .tm_year = (int)(year - 1900), .tm_mon = month - 1, .tm_mday = mday };
	return (int64_t)timegm(&tm) / 86400;
}

static int64_t rule_day(const struct tz_rule_date *d, int64_t year)
{
	int64_t jan1 = day_of(year, 1, 1);
	switch (d->kind) {
	case TZ_JULIAN_NO_LEAP: {
		bool leap = day_of(year, 3, 1) - day_of(year, 2, 28) == 2;
		return jan1 + d->day - 1 + (leap && d->day >= 60);
	}
	case TZ_DAY_OF_YEAR:
		return jan1 + d->day;
	case TZ_MONTH_WEEK_DAY:
		break;
	}
	int64_t first = day_of(year, d->month, 1);
	int64_t length = day_of(year, d->month + 1, 1) - first;
	int weekday_of_first = (int)floor_mod(first + 4, 7); /* 1970-01-01 was a Thursday */
	int64_t day = first + (d->day - weekday_of_first + 7) % 7 + 7 * (d->week - 1);
	return day < first + length ? day : day - 7; /* week 5: the last such weekday */
}

struct rule_change {
	int64_t at;
	int64_t year;
	bool to_dst;
};

/* Changes sort by instant; ties (an all-year DST rule ends one year as
 * the next begins) by year, then a start before an end. */
static bool change_before(const struct rule_change *a, const struct rule_change *b)
{
	if (a->at != b->at)
		return a->at < b->at;
	if (a->year != b->year)
		return a->year < b->year;
	return a->to_dst && !b->to_dst;
}

/* DST starts at a standard-time wall clock and ends at a DST one.  The
 * changes of the years around `instant` settle it, whatever the order of
 * start and end within a year (southern zones) and however far a rule
 * time reaches into the next or previous year. */
static struct tz_type rule_type_at(const struct tz_rule *r, int64_t instant, int64_t *next)
{
	*next = INT64_MAX;
	if (!r->has_dst)
		return r->std;
	time_t local = (time_t)(instant + r->std.utc_offset);
	struct tm tm;
	gmtime_r(&local, &tm);
	int64_t year = tm.tm_year + INT64_C(1900);

	struct rule_change last = { INT64_MIN, INT64_MIN, false };
	struct rule_change first_after = { INT64_MAX, 0, false };
	for (int64_t y = year - 2; y <= year + 2; y++) {
		int64_t start = rule_day(&r->dst_start, y) * 86400 + r->dst_start.time;
		int64_t end = rule_day(&r->dst_end, y) * 86400 + r->dst_end.time;
		struct rule_change changes[2] = {
			{ start - r->std.utc_offset, y, true },
			{ end - r->dst.utc_offset, y, false },
		};
		for (int i = 0; i < 2; i++) {
			if (changes[i].at <= instant && change_before(&last, &changes[i]))
				last = changes[i];
			if (changes[i].at > instant && changes[i].at < first_after.at)
				first_after = changes[i];
		}
	}
	*next = first_after.at;
	return last.to_dst ? r->dst : r->std;
}

/* ---- the type at an instant ------------------------------------------------------ */

/* How many transitions happen at or before `instant`. */
static size_t transitions_until(const struct tz_zone *z, int64_t instant)
{
	size_t lo = 0, hi = z->n_transitions;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->transition_at[mid] <= instant)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct tz_type tz_zone_type_at(const struct tz_zone *z, int64_t instant, int64_t *next_change)
{
	size_t done = transitions_until(z, instant);
	int64_t next = done < z->n_transitions ? z->transition_at[done] : INT64_MAX;
	struct tz_type type;
	if (done == z->n_transitions && z->has_rule)
		type = rule_type_at(&z->rule, instant, &next);
	else if (done == 0)
		type = z->types[0]; /* RFC 8536: type 0 before the first transition */
	else
		type = z->types[z->transition_type[done - 1]];
	if (next_change)
		*next_change = next;
	return type;
}

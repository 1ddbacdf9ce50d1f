/* test_tz.c - the zone reader against the C library.
 *
 * The C library converts in the process's own zone, so the reference
 * sets TZ here (this test has one thread) and compares tz.c's answers
 * with localtime_r and mktime across many instants: decades hour by hour,
 * centuries every few days, and years after the last transition, where the
 * file's footer rule decides.  Hand-made zone files in a temporary $TZDIR
 * cover the footer's other rule forms, version 1 files and damaged ones. */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "tz.h"

#define HOUR 3600
#define DAY 86400
#define YEAR_2020 INT64_C(1577836800)
#define YEAR_2025 INT64_C(1735689600)
#define YEAR_2027 INT64_C(1798761600)
#define YEAR_2031 INT64_C(1924992000)
#define YEAR_2099 INT64_C(4070908800)
#define YEAR_2101 INT64_C(4133980800)
#define YEAR_2102 INT64_C(4165603200)

static const char *const system_zones[] = {
	"Europe/Berlin",  "America/New_York",  "Australia/Lord_Howe", "Asia/Kolkata",
	"Pacific/Chatham", "America/Sao_Paulo", "UTC",                 "Europe/Dublin",
};

/* ---- the reference: the C library in zone `tz` ---------------------------------- */

static void use_system_zone(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static long system_offset(int64_t instant)
{
	time_t t = (time_t)instant;
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

/* What rrule_next did before tz.c (and what tz.h promises): the offsets a
 * day either side are the candidates; the earlier fitting instant wins; a
 * skipped time takes the offset from before the skip. */
static int64_t system_instant_of(int64_t wall, int *fits)
{
	long before = system_offset(wall - DAY), after = system_offset(wall + DAY);
	int64_t first = wall - before, second = wall - after;
	bool first_fits = first + system_offset(first) == wall;
	bool second_fits = second + system_offset(second) == wall;
	*fits = first_fits + (second_fits && second != first);
	if (first_fits && second_fits)
		return first < second ? first : second;
	return second_fits ? second : first;
}

/* "" when tz.c and the C library agree on `instant`, else the difference. */
static void compare_instant(const char *zone, int64_t instant, char *why, size_t size)
{
	struct todod_local_time got;
	struct todod_err err = { "" };
	time_t t = (time_t)instant;
	struct tm want;
	localtime_r(&t, &want);
	why[0] = '\0';
	if (tz_to_local(zone, instant, &got, &err) != 0) {
		snprintf(why, size, "%" PRId64 ": %s", instant, err.text);
		return;
	}
	char got_text[96], want_text[96];
	strftime(got_text, sizeof got_text, "%Y-%m-%d %H:%M:%S %a %j %z %Z", &got.tm);
	strftime(want_text, sizeof want_text, "%Y-%m-%d %H:%M:%S %a %j %z %Z", &want);
	bool same = strcmp(got_text, want_text) == 0 && got.is_dst == (want.tm_isdst > 0) &&
		    got.tm.tm_isdst == want.tm_isdst && got.utc_offset == want.tm_gmtoff &&
		    strcmp(got.abbrev, want.tm_zone) == 0;
	if (!same)
		snprintf(why, size, "%" PRId64 ": got %s dst %d, want %s dst %d", instant, got_text,
			 got.is_dst, want_text, want.tm_isdst);
}

/* Every `step` seconds from `from` to `to`: the first disagreement, if any. */
static void agree_to_local(const char *zone, const char *what, int64_t from, int64_t to,
			   int64_t step)
{
	char why[256] = "";
	long checked = 0;
	use_system_zone(zone);
	for (int64_t t = from; t <= to && !why[0]; t += step, checked++)
		compare_instant(zone, t, why, sizeof why);
	ok(!why[0], "%s: %s, %ld instants, as localtime_r%s%s", zone, what, checked,
	   why[0] ? ": " : "", why);
}

static void agree_from_local(const char *zone, const char *what, int64_t from, int64_t to,
			     int64_t step)
{
	char why[256] = "";
	long checked = 0, skipped = 0, repeated = 0;
	use_system_zone(zone);
	for (int64_t wall = from; wall <= to && !why[0]; wall += step, checked++) {
		int fits;
		int64_t want = system_instant_of(wall, &fits), got = 0;
		struct todod_err err = { "" };
		skipped += fits == 0;
		repeated += fits == 2;
		if (tz_from_wall(zone, wall, &got, &err) != 0 || got != want)
			snprintf(why, sizeof why, "wall %" PRId64 ": got %" PRId64 ", want %" PRId64
				 " %s", wall, got, want, err.text);
		time_t t = (time_t)wall;
		struct tm tm;
		gmtime_r(&t, &tm);
		tm.tm_isdst = -1;
		time_t by_mktime = mktime(&tm);
		if (!why[0] && fits == 1 && by_mktime != (time_t)got)
			snprintf(why, sizeof why, "wall %" PRId64 ": got %" PRId64 ", mktime %lld",
				 wall, got, (long long)by_mktime);
	}
	ok(!why[0], "%s: %s, %ld wall times (%ld skipped, %ld repeated), as mktime%s%s",
	   zone, what, checked, skipped, repeated, why[0] ? ": " : "", why);
}

static void test_system_zones(void)
{
	for (size_t i = 0; i < sizeof system_zones / sizeof system_zones[0]; i++) {
		const char *zone = system_zones[i];
		agree_to_local(zone, "2024-2026 every 15 min", YEAR_2025 - 365 * DAY, YEAR_2027,
			       15 * 60);
		agree_to_local(zone, "1850-2600 every 9 days and a bit", INT64_C(-3786825600),
			       INT64_C(19880899200), 9 * DAY + 1234);
		agree_to_local(zone, "2099-2101 (footer rule) hourly", YEAR_2099, YEAR_2102, HOUR);
		agree_from_local(zone, "2025-2026 every 15 min", YEAR_2025, YEAR_2027, 15 * 60);
		agree_from_local(zone, "2100 every 15 min", YEAR_2101 - 365 * DAY, YEAR_2101,
				 15 * 60);
	}
	unsetenv("TZ");
	tzset();
}

/* ---- gaps and overlaps, pinned ---------------------------------------------------- */

/* "2026-03-29 02:30" in `zone` as "YYYY-MM-DDTHH:MM+hhmm". */
static void from_local_text(const char *zone, const char *local, char *out, size_t size)
{
	struct tm tm = { 0 };
	sscanf(local, "%d-%d-%d %d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	       &tm.tm_min);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t instant = 0;
	struct todod_local_time shown;
	struct todod_err err = { "" };
	if (tz_from_local(zone, &tm, &instant, &err) != 0 ||
	    tz_to_local(zone, instant, &shown, &err) != 0) {
		snprintf(out, size, "ERROR %s", err.text);
		return;
	}
	strftime(out, size, "%Y-%m-%dT%H:%M%z", &shown.tm);
}

static void test_gaps_and_overlaps(void)
{
	static const struct {
		const char *zone, *local, *want, *why;
	} cases[] = {
		{ "Europe/Berlin", "2026-03-29 02:30", "2026-03-29T03:30+0200", "skipped: +1h" },
		{ "Europe/Berlin", "2026-10-25 02:30", "2026-10-25T02:30+0200", "repeated: first" },
		{ "America/New_York", "2026-03-08 02:30", "2026-03-08T03:30-0400", "skipped" },
		{ "America/New_York", "2026-11-01 01:30", "2026-11-01T01:30-0400", "repeated" },
		{ "Australia/Lord_Howe", "2026-10-04 02:15", "2026-10-04T02:45+1100",
		  "a 30-minute gap moves 30 minutes" },
		{ "Australia/Lord_Howe", "2026-04-05 01:45", "2026-04-05T01:45+1100",
		  "a 30-minute overlap: first" },
		{ "Pacific/Chatham", "2026-09-27 03:00", "2026-09-27T04:00+1345",
		  "skipped at 2:45" },
		{ "Europe/Berlin", "2100-03-28 02:30", "2100-03-28T03:30+0200",
		  "skipped, footer rule" },
		{ "Europe/Berlin", "2100-10-31 02:30", "2100-10-31T02:30+0200",
		  "repeated, footer rule" },
		{ "Europe/Dublin", "2026-03-29 01:30", "2026-03-29T02:30+0100",
		  "skipped, negative DST" },
		{ "Europe/Berlin", "2026-02-30 25:00", "2026-03-03T01:00+0100",
		  "fields are normalised as timegm does" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char got[64];
		from_local_text(cases[i].zone, cases[i].local, got, sizeof got);
		is_str(got, cases[i].want, "%s %s: %s", cases[i].zone, cases[i].local,
		       cases[i].why);
	}
}

/* ---- names ------------------------------------------------------------------------- */

static void test_names(void)
{
	static const char *const refused[] = {
		"", "Mars/Olympus", "/usr/share/zoneinfo/UTC", "../zoneinfo/UTC", "Europe/../UTC",
		"Europe//Berlin", "Europe/", "Europe", "zone.tab", "Europe/Berlin;rm", "UTC ",
	};
	struct todod_local_time out;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct todod_err err = { "" };
		char want[128];
		snprintf(want, sizeof want, "'%s' is not a known time zone", refused[i]);
		ok(tz_to_local(refused[i], 0, &out, &err) == -1 && strcmp(err.text, want) == 0,
		   "'%s' refused: %s", refused[i], err.text);
	}
	struct todod_err err = { "" };
	ok(tz_to_local(NULL, 0, &out, &err) == -1, "NULL refused: %s", err.text);
	char long_name[300];
	memset(long_name, 'A', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	ok(tz_to_local(long_name, 0, &out, &err) == -1, "a 299-byte name refused");
	struct todod_local_time posix;
	err.text[0] = '\0';
	ok(access("/usr/share/zoneinfo/right/Europe/Berlin", R_OK) != 0 ||
		   (tz_to_local("right/Europe/Berlin", YEAR_2025, &out, &err) == 0 &&
		    tz_to_local("Europe/Berlin", YEAR_2025, &posix, &err) == 0 &&
		    memcmp(&out.tm, &posix.tm, offsetof(struct tm, tm_isdst)) == 0 &&
		    strcmp(out.abbrev, posix.abbrev) == 0),
	   "a zone counting leap seconds reads as its POSIX twin %s", err.text);
	ok(tz_to_local("Etc/GMT-14", 0, &out, &err) == 0 && out.utc_offset == 14 * HOUR &&
		   strcmp(out.abbrev, "+14") == 0,
	   "Etc/GMT-14 is 14 hours east");
	ok(tz_to_local("UTC", INT64_C(1) << 56, &out, &err) == -1 && strstr(err.text, "too far"),
	   "an instant beyond a billion years is refused: %s", err.text);
	int64_t instant;
	struct tm huge = { .tm_year = 2000000000 };
	ok(tz_from_local("UTC", &huge, &instant, &err) == -1, "so is a local year 2 billion: %s",
	   err.text);
	ok(getenv("TZ") == NULL, "the environment was never touched");
}

/* ---- hand-made zone files in a temporary TZDIR ---------------------------------- */

static char tzdir[64];

static void put32(unsigned char **p, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		*(*p)++ = (unsigned char)(v >> (8 * i));
}

/* A version 2 file: no transitions, one type, then `footer`. */
static void write_footer_zone(const char *name, int32_t offset, const char *abbrev,
			      const char *footer)
{
	unsigned char data[512], *p = data;
	size_t abbrev_size = strlen(abbrev) + 1;
	for (int header = 0; header < 2; header++) {
		memcpy(p, "TZif2", 5);
		memset(p + 5, 0, 15);
		p += 20;
		uint32_t types = header ? 1 : 0, chars = header ? (uint32_t)abbrev_size : 0;
		uint32_t counts[6] = { 0, 0, 0, 0, types, chars };
		for (int i = 0; i < 6; i++)
			put32(&p, counts[i]);
	}
	put32(&p, (uint32_t)offset);
	*p++ = 0;
	*p++ = 0;
	memcpy(p, abbrev, abbrev_size);
	p += abbrev_size;
	p += sprintf((char *)p, "\n%s\n", footer);
	char path[128];
	snprintf(path, sizeof path, "%s/%s", tzdir, name);
	FILE *f = fopen(path, "wb");
	fwrite(data, 1, (size_t)(p - data), f);
	fclose(f);
}

static void write_bytes(const char *name, const void *data, size_t size)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", tzdir, name);
	FILE *f = fopen(path, "wb");
	fwrite(data, 1, size, f);
	fclose(f);
}

/* Footer rules of every form, against glibc reading the same TZ string. */
static void test_footer_rules(void)
{
	static const struct {
		const char *name, *rule;
		int32_t std_offset;
		const char *std;
	} rules[] = {
		{ "Julian", "EST5EDT,J60/2,J300/2", -5 * HOUR, "EST" },
		{ "ZeroBased", "EST5EDT,59/2,299/2", -5 * HOUR, "EST" },
		{ "NegativeTimes", "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", -3 * HOUR, "-03" },
		{ "LateTimes", "<+04>-4<+05>,M3.5.0/50,M10.5.0/100", 4 * HOUR, "+04" },
		{ "Southern", "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 12 * HOUR + 45 * 60,
		  "+1245" },
		{ "DstOffset", "AAA3BBB1:30,M3.2.0,M11.1.0", -3 * HOUR, "AAA" },
		{ "Fixed", "<+0530>-5:30", 5 * HOUR + 30 * 60, "+0530" },
	};
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		write_footer_zone(rules[i].name, rules[i].std_offset, rules[i].std, rules[i].rule);
		char why[256] = "";
		use_system_zone(rules[i].rule);
		for (int64_t t = YEAR_2020; t <= YEAR_2031 && !why[0]; t += 37 * 60)
			compare_instant(rules[i].name, t, why, sizeof why);
		ok(!why[0], "footer %s: 2020-2030 as glibc reads it%s%s", rules[i].rule,
		   why[0] ? ": " : "", why);
	}
	unsetenv("TZ");
	tzset();

	/* DST all year: it starts on 1 January and ends after 31 December. */
	write_footer_zone("AllYearDst", -5 * HOUR, "EST", "EST5EDT4,0/0,J365/25");
	struct todod_local_time out;
	struct todod_err err = { "" };
	bool always = true;
	for (int64_t t = YEAR_2020 - 2 * DAY; t <= YEAR_2031; t += 7 * HOUR)
		always = always && tz_to_local("AllYearDst", t, &out, &err) == 0 && out.is_dst &&
			 out.utc_offset == -4 * HOUR;
	ok(always, "an all-year DST rule is DST at every instant, new year's eve too");
}

static void test_damaged_files(void)
{
	static const char *const bad_footers[] = {
		"CET-1CEST",                 /* DST without a rule */
		"CE-1",                      /* a name of two letters */
		"CET-25",                    /* an offset over 24 hours */
		"CET-1CEST,M13.5.0,M10.5.0", /* month 13 */
		"CET-1CEST,M3.6.0,M10.5.0",  /* week 6 */
		"CET-1CEST,J0,J365",         /* Julian day 0 */
		"CET-1CEST,M3.5.0,M10.5.0/168", /* a rule time past 167 hours */
		"<+05-5",                    /* unclosed bracket */
		"CET-1 ",                    /* trailing text */
	};
	struct todod_local_time out;
	for (size_t i = 0; i < sizeof bad_footers / sizeof bad_footers[0]; i++) {
		char name[32];
		snprintf(name, sizeof name, "BadFooter%zu", i);
		write_footer_zone(name, 3600, "CET", bad_footers[i]);
		struct todod_err err = { "" };
		ok(tz_to_local(name, 0, &out, &err) == -1 && strstr(err.text, "is damaged") &&
			   strstr(err.text, "footer"),
		   "footer '%s' refused: %s", bad_footers[i], err.text);
	}

	unsigned char berlin[8192];
	FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
	size_t size = f ? fread(berlin, 1, sizeof berlin, f) : 0;
	if (f)
		fclose(f);
	struct todod_err err = { "" };
	write_bytes("Cut", berlin, size / 2);
	ok(tz_to_local("Cut", 0, &out, &err) == -1 && strstr(err.text, "is damaged"),
	   "half a zone file is refused: %s", err.text);
	write_bytes("NotTzif", "# just text\n", 12);
	ok(tz_to_local("NotTzif", 0, &out, &err) == -1 &&
		   strcmp(err.text, "'NotTzif' is not a known time zone") == 0,
	   "a file that is no TZif is no zone: %s", err.text);
	write_bytes("Copy", berlin, size);
	ok(tz_to_local("Copy", YEAR_2020, &out, &err) == 0 && strcmp(out.abbrev, "CET") == 0,
	   "$TZDIR is where zones are found");
}

/* Version 1: 32-bit data and no footer; the last type lasts for ever. */
static void test_version1(void)
{
	unsigned char data[128], *p = data;
	memcpy(p, "TZif", 4);
	memset(p + 4, 0, 16);
	p += 20;
	uint32_t counts[6] = { 0, 0, 0, 2, 2, 8 };
	for (int i = 0; i < 6; i++)
		put32(&p, counts[i]);
	put32(&p, 0);                  /* 1970-01-01: type 1 */
	put32(&p, (uint32_t)YEAR_2020); /* 2020: type 0 */
	*p++ = 1;
	*p++ = 0;
	put32(&p, 3600);
	*p++ = 0;
	*p++ = 0; /* "ONE" */
	put32(&p, 7200);
	*p++ = 1;
	*p++ = 4; /* "TWO" */
	memcpy(p, "ONE\0TWO\0", 8);
	p += 8;
	write_bytes("Version1", data, (size_t)(p - data));

	struct todod_local_time out;
	struct todod_err err = { "" };
	bool ok_before = tz_to_local("Version1", -DAY, &out, &err) == 0 &&
			 strcmp(out.abbrev, "ONE") == 0;
	bool ok_between = tz_to_local("Version1", DAY, &out, &err) == 0 &&
			  strcmp(out.abbrev, "TWO") == 0 && out.is_dst && out.utc_offset == 7200;
	bool ok_after = tz_to_local("Version1", YEAR_2099, &out, &err) == 0 &&
			strcmp(out.abbrev, "ONE") == 0 && out.tm.tm_hour == 1;
	ok(ok_before && ok_between && ok_after,
	   "a version 1 file: type 0 first, the last for ever %s", err.text);
}

static void remove_tzdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tzdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tzdir);
}

int main(void)
{
	unsetenv("TZDIR");
	test_system_zones();
	test_gaps_and_overlaps();
	test_names();

	snprintf(tzdir, sizeof tzdir, "/tmp/test_tz.XXXXXX");
	if (!mkdtemp(tzdir)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return tap_done();
	}
	setenv("TZDIR", tzdir, 1);
	test_footer_rules();
	test_damaged_files();
	test_version1();
	remove_tzdir();
	return tap_done();
}

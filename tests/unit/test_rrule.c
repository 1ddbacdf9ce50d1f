/* test_rrule.c - RRULE parsing, normal form and expansion.
 *
 * Expansion rows list occurrences as local dates in the row's zone; the
 * first is the series start itself (occurrence 1), "END" means rrule_next
 * said the series is over.  Rows marked `timed` print the local time and
 * UTC offset too, to show DST handling. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rrule.h"

#include "tap.h"

/* ---- parser --------------------------------------------------------------------- */

static const struct {
	const char *text, *normal;
} accepted[] = {
	{ "FREQ=DAILY", "FREQ=DAILY" },
	{ "rrule:freq=weekly;byday=mo,we,fr", "FREQ=WEEKLY;BYDAY=MO,WE,FR" },
	{ "  RRULE:FREQ=DAILY;COUNT=10 ", "FREQ=DAILY;COUNT=10" },
	/* the original refused INTERVAL after COUNT */
	{ "COUNT=5;INTERVAL=2;FREQ=DAILY", "FREQ=DAILY;INTERVAL=2;COUNT=5" },
	{ "FREQ=WEEKLY;INTERVAL=1;WKST=MO", "FREQ=WEEKLY" },
	{ "FREQ=WEEKLY;WKST=su;INTERVAL=2;BYDAY=TU,TH,TU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU" },
	{ "FREQ=MONTHLY;BYDAY=+1MO,1MO,-1FR", "FREQ=MONTHLY;BYDAY=1MO,-1FR" },
	/* BYDAY and BYMONTHDAY that meet only now and then */
	{ "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR" },
	{ "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO" },
	{ "FREQ=YEARLY;BYDAY=53MO;BYMONTHDAY=30", "FREQ=YEARLY;BYMONTHDAY=30;BYDAY=53MO" },
	{ "FREQ=MONTHLY;BYDAY=-1fr", "FREQ=MONTHLY;BYDAY=-1FR" },
	{ "FREQ=YEARLY;BYDAY=20MO", "FREQ=YEARLY;BYDAY=20MO" },
	{ "FREQ=YEARLY;BYDAY=-53SU", "FREQ=YEARLY;BYDAY=-53SU" },
	{ "FREQ=YEARLY;BYMONTHDAY=29;BYMONTH=2", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29" },
	{ "FREQ=YEARLY;BYMONTH=12,1,12", "FREQ=YEARLY;BYMONTH=12,1" },
	{ "FREQ=MONTHLY;BYMONTHDAY=+5,-1,05", "FREQ=MONTHLY;BYMONTHDAY=5,-1" },
	{ "FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=MONTHLY;BYMONTHDAY=31" },
	{ "FREQ=DAILY;UNTIL=20261231", "FREQ=DAILY;UNTIL=20261231" },
	{ "freq=daily;until=20261231t235959z", "FREQ=DAILY;UNTIL=20261231T235959Z" },
	{ "FREQ=DAILY;UNTIL=20261231T235959", "FREQ=DAILY;UNTIL=20261231T235959" },
	/* the longest step each frequency allows: 100 years */
	{ "FREQ=DAILY;INTERVAL=36525", "FREQ=DAILY;INTERVAL=36525" },
	{ "FREQ=WEEKLY;INTERVAL=5217", "FREQ=WEEKLY;INTERVAL=5217" },
	{ "FREQ=MONTHLY;INTERVAL=1200", "FREQ=MONTHLY;INTERVAL=1200" },
	{ "INTERVAL=100;FREQ=YEARLY", "FREQ=YEARLY;INTERVAL=100" },
	{ "WKST=SU;UNTIL=20270101T000000Z;BYDAY=1SU,-1SA;BYMONTHDAY=1,15;BYMONTH=1,7;INTERVAL=3;"
	  "FREQ=MONTHLY",
	  "FREQ=MONTHLY;INTERVAL=3;BYMONTH=1,7;BYMONTHDAY=1,15;BYDAY=1SU,-1SA;WKST=SU;"
	  "UNTIL=20270101T000000Z" },
};

#define RULE_PARTS "(FREQ, INTERVAL, COUNT, UNTIL, BYMONTH, BYMONTHDAY, BYDAY, WKST)"

static const struct {
	const char *text, *message;
} rejected[] = {
	{ "", "FREQ is required" },
	{ "RRULE:", "FREQ is required" },
	{ "COUNT=3", "FREQ is required" },
	{ "FREQ=HOURLY", "FREQ=HOURLY is not supported" },
	{ "FREQ=secondly", "FREQ=SECONDLY is not supported" },
	{ "FREQ=MINUTELY", "FREQ=MINUTELY is not supported" },
	{ "FREQ=FORTNIGHTLY", "FREQ: 'FORTNIGHTLY' is not DAILY, WEEKLY, MONTHLY or YEARLY" },
	{ "FREQ=DAILY;BYSETPOS=1", "BYSETPOS is not supported" },
	{ "FREQ=DAILY;byhour=9", "BYHOUR is not supported" },
	{ "FREQ=DAILY;BYMINUTE=0", "BYMINUTE is not supported" },
	{ "FREQ=YEARLY;BYWEEKNO=20", "BYWEEKNO is not supported" },
	{ "FREQ=YEARLY;BYYEARDAY=100", "BYYEARDAY is not supported" },
	{ "FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number >= 1, got '0'" },
	{ "FREQ=DAILY;INTERVAL=-1", "INTERVAL must be a whole number >= 1, got '-1'" },
	{ "FREQ=DAILY;INTERVAL=two", "INTERVAL must be a whole number >= 1, got 'two'" },
	{ "FREQ=DAILY;INTERVAL=99999999999", "INTERVAL must be at most 2147483647, got '99999999999'" },
	/* a longer step would never yield a successor (issue 9) */
	{ "FREQ=DAILY;INTERVAL=2147483647", "INTERVAL=2147483647 is too large for FREQ=DAILY: the "
					    "next occurrence must come within 100 years, so "
					    "INTERVAL is at most 36525" },
	{ "FREQ=DAILY;INTERVAL=36526", "INTERVAL=36526 is too large for FREQ=DAILY: the next "
				       "occurrence must come within 100 years, so INTERVAL is at "
				       "most 36525" },
	{ "FREQ=WEEKLY;INTERVAL=5218", "INTERVAL=5218 is too large for FREQ=WEEKLY: the next "
				       "occurrence must come within 100 years, so INTERVAL is at "
				       "most 5217" },
	{ "FREQ=MONTHLY;INTERVAL=1201", "INTERVAL=1201 is too large for FREQ=MONTHLY: the next "
					"occurrence must come within 100 years, so INTERVAL is at "
					"most 1200" },
	{ "INTERVAL=100000;FREQ=YEARLY", "INTERVAL=100000 is too large for FREQ=YEARLY: the next "
					 "occurrence must come within 100 years, so INTERVAL is at "
					 "most 100" },
	{ "FREQ=YEARLY;INTERVAL=200", "INTERVAL=200 is too large for FREQ=YEARLY: the next "
				      "occurrence must come within 100 years, so INTERVAL is at "
				      "most 100" },
	{ "FREQ=DAILY;COUNT=0", "COUNT must be a whole number >= 1, got '0'" },
	{ "FREQ=DAILY;COUNT=2;UNTIL=20261231", "COUNT and UNTIL cannot both be given" },
	{ "FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice" },
	{ "FREQ=DAILY;COUNT=1;count=2", "COUNT is given twice" },
	{ "FREQ=DAILY;COUNT=", "COUNT has an empty value" },
	{ "FREQ=DAILY;;COUNT=2", "empty part: remove the extra ';'" },
	{ "FREQ=DAILY;", "empty part: remove the extra ';'" },
	{ "FREQ=DAILY;X-NAME=1", "'X-NAME' is not a recurrence rule part " RULE_PARTS },
	{ "FREQ = DAILY", "'FREQ ' is not a recurrence rule part " RULE_PARTS },
	{ "every monday", "'every monday' is not a NAME=VALUE part" },
	{ "FREQ=WEEKLY;BYDAY=9XX", "BYDAY: '9XX' is not a weekday" },
	{ "FREQ=WEEKLY;BYDAY=+MO", "BYDAY: '+MO' is not a weekday" },
	{ "FREQ=MONTHLY;BYDAY=123MO", "BYDAY: '123MO' is not a weekday" },
	{ "FREQ=WEEKLY;BYDAY=MO,,TU", "BYDAY: empty item in 'MO,,TU'" },
	{ "FREQ=WEEKLY;BYDAY=MO,", "BYDAY: empty item in 'MO,'" },
	{ "FREQ=WEEKLY;BYDAY=2MO", "BYDAY: '2MO' has an ordinal, which only MONTHLY and YEARLY "
				   "rules allow" },
	{ "FREQ=DAILY;BYDAY=-1FR", "BYDAY: '-1FR' has an ordinal, which only MONTHLY and YEARLY "
				   "rules allow" },
	{ "FREQ=MONTHLY;BYDAY=6MO", "BYDAY: '6MO' cannot happen: within a month ordinals go from 1 "
				    "to 5 or from -1 to -5" },
	{ "FREQ=YEARLY;BYMONTH=3;BYDAY=-6SU", "BYDAY: '-6SU' cannot happen: within a month "
					      "ordinals go from 1 to 5 or from -1 to -5" },
	{ "FREQ=YEARLY;BYDAY=54MO", "BYDAY: '54MO' has ordinal 54; ordinals go from 1 to 53 or "
				    "from -1 to -53" },
	{ "FREQ=MONTHLY;BYDAY=0MO", "BYDAY: '0MO' has ordinal 0; ordinals go from 1 to 53 or "
				    "from -1 to -53" },
	{ "FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY: '32' is not a day of the month (1..31 or "
					"-31..-1)" },
	{ "FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY: '0' is not a day of the month (1..31 or "
				       "-31..-1)" },
	{ "FREQ=YEARLY;BYMONTH=13", "BYMONTH: '13' is not a month (1..12)" },
	{ "FREQ=YEARLY;BYMONTH=001", "BYMONTH: '001' is not a month (1..12)" },
	{ "FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY cannot be used with FREQ=WEEKLY" },
	{ "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "BYMONTHDAY never happens: none of the months in "
						 "BYMONTH has such a day" },
	{ "FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31,-31", "BYMONTHDAY never happens: none of the "
							"months in BYMONTH has such a day" },
	{ "FREQ=MONTHLY;BYMONTHDAY=1;BYDAY=-1MO", "BYDAY and BYMONTHDAY never happen on the same "
						  "date" },
	{ "FREQ=YEARLY;BYDAY=1MO;BYMONTHDAY=20", "BYDAY and BYMONTHDAY never happen on the same "
						 "date" },
	{ "FREQ=YEARLY;BYMONTH=2;BYDAY=5MO;BYMONTHDAY=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,"
	  "18,19,20,21,22,23,24,25,26,27,28", "BYDAY and BYMONTHDAY never happen on the same date" },
	{ "FREQ=DAILY;UNTIL=2026-12-31", "UNTIL: '2026-12-31' is not a date (20261231) or a "
					 "date-time (20261231T235959Z)" },
	{ "FREQ=DAILY;UNTIL=20260230", "UNTIL: '20260230' is not a date (20261231) or a date-time "
				       "(20261231T235959Z)" },
	{ "FREQ=DAILY;UNTIL=20261231T250000Z", "UNTIL: '20261231T250000Z' is not a date (20261231) "
					       "or a date-time (20261231T235959Z)" },
	{ "FREQ=DAILY;WKST=XX", "WKST: 'XX' is not a weekday" },
};

static void test_parser(void)
{
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		struct rrule rule, again;
		struct todod_err err = { "" };
		char normal[RRULE_TEXT_MAX] = "", twice[RRULE_TEXT_MAX] = "";
		if (rrule_parse(accepted[i].text, &rule, &err) == 0)
			rrule_format(&rule, normal, sizeof normal);
		is_str(normal, accepted[i].normal, "normal form of '%s' %s", accepted[i].text,
		       err.text);
		if (rrule_parse(normal, &again, &err) == 0)
			rrule_format(&again, twice, sizeof twice);
		is_str(twice, normal, "the normal form parses to itself");
	}
	for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
		struct rrule rule;
		struct todod_err err = { "" };
		int rc = rrule_parse(rejected[i].text, &rule, &err);
		ok(rc == -1, "'%s' is refused", rejected[i].text);
		is_str(err.text, rejected[i].message, "with the message naming the part");
	}
	struct todod_err err = { "" };
	struct rrule rule;
	ok(rrule_parse(NULL, &rule, &err) == -1, "NULL is refused: %s", err.text);
}

/* The longest normal form: every distinct BYDAY and BYMONTHDAY item. */
static void test_longest_rule(void)
{
	static char text[3 * RRULE_TEXT_MAX];
	static const char *const days[] = { "MO", "TU", "WE", "TH", "FR", "SA", "SU" };
	size_t len = (size_t)snprintf(text, sizeof text,
				      "FREQ=YEARLY;INTERVAL=100;UNTIL=20261231T235959Z;"
				      "WKST=SU;BYMONTHDAY=");
	for (int d = -31; d <= 31; d++)
		if (d)
			len += (size_t)snprintf(text + len, sizeof text - len, "%d,", d);
	text[len - 1] = ';';
	len += (size_t)snprintf(text + len, sizeof text - len, "BYDAY=");
	for (int w = 0; w < 7; w++) {
		len += (size_t)snprintf(text + len, sizeof text - len, "%s,", days[w]);
		for (int n = -53; n <= 53; n++)
			if (n)
				len += (size_t)snprintf(text + len, sizeof text - len, "%d%s,", n,
							days[w]);
	}
	text[len - 1] = '\0';

	struct rrule rule;
	struct todod_err err = { "" };
	char normal[RRULE_TEXT_MAX];
	ok(rrule_parse(text, &rule, &err) == 0, "a rule with every BYDAY item parses %s", err.text);
	ok(rule.n_byday == RRULE_BYDAY_MAX && rule.n_bymonthday == 62, "and keeps them all");
	int n = rrule_format(&rule, normal, sizeof normal);
	ok(n > 0 && n < RRULE_TEXT_MAX && strlen(normal) == (size_t)n,
	   "its normal form (%d bytes) fits RRULE_TEXT_MAX", n);
	char small[16];
	ok(rrule_format(&rule, small, sizeof small) == n && strlen(small) == sizeof small - 1,
	   "a short buffer gets a terminated prefix and the full length");
}

/* ---- expansion -------------------------------------------------------------------- */

/* "19970902T090000" in zone `tz`, for times that exist exactly once. */
static int64_t local_instant(const char *tz, const char *text)
{
	struct tm tm = { .tm_isdst = -1 };
	if (sscanf(text, "%4d%2d%2dT%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	setenv("TZ", tz, 1);
	tzset();
	int64_t t = mktime(&tm);
	unsetenv("TZ");
	tzset();
	return t;
}

static void append_local(char *buf, size_t size, const char *tz, int64_t instant, bool timed)
{
	time_t t = (time_t)instant;
	struct tm tm;
	setenv("TZ", tz, 1);
	tzset();
	localtime_r(&t, &tm);
	size_t len = strlen(buf);
	strftime(buf + len, size - len, timed ? " %Y%m%dT%H%M%z" : " %Y%m%d", &tm);
	unsetenv("TZ");
	tzset();
}

/* The first occurrences of a series as text; as many as `want` has
 * words. */
static void expand(const char *text, const char *tz, const char *start, bool timed,
		   const char *want, char *got, size_t size)
{
	struct rrule rule;
	struct todod_err err = { "" };
	got[0] = '\0';
	if (rrule_parse(text, &rule, &err) != 0) {
		snprintf(got, size, "PARSE ERROR %s", err.text);
		return;
	}
	int64_t first = local_instant(tz, start);
	int words = 0;
	for (const char *p = want; *p; p++)
		words += *p != ' ' && (p == want || p[-1] == ' ');
	append_local(got, size, tz, first, timed);
	for (int n = 1; n < words; n++) {
		int64_t next = 0;
		int rc = rrule_next(&rule, first, tz, n, &next, &err);
		if (rc == 0) {
			append_local(got, size, tz, next, timed);
			continue;
		}
		size_t len = strlen(got);
		snprintf(got + len, size - len,
			 rc == RRULE_END_OF_CALENDAR ? " CALENDAR-END" : rc == 1 ? " END" : " ERROR %s",
			 err.text);
		break;
	}
	memmove(got, got + 1, strlen(got)); /* the leading blank */
}

struct expansion {
	const char *rule, *tz, *start;
	bool timed;
	const char *want;
};

#define NY "America/New_York"
#define BERLIN "Europe/Berlin"

/* RFC 5545 section 3.8.5.3, the examples within the supported subset. */
static const struct expansion rfc_examples[] = {
	{ "FREQ=DAILY;COUNT=10", NY, "19970902T090000", false,
	  "19970902 19970903 19970904 19970905 19970906 19970907 19970908 19970909 19970910 "
	  "19970911 END" },
	{ "FREQ=DAILY;INTERVAL=2", NY, "19970902T090000", false,
	  "19970902 19970904 19970906 19970908 19970910 19970912" },
	{ "FREQ=DAILY;INTERVAL=10;COUNT=5", NY, "19970902T090000", false,
	  "19970902 19970912 19970922 19971002 19971012 END" },
	{ "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA", NY,
	  "19980101T090000", false, "19980101 19980102 19980103" },
	{ "FREQ=WEEKLY;COUNT=10", NY, "19970902T090000", true,
	  "19970902T0900-0400 19970909T0900-0400 19970916T0900-0400 19970923T0900-0400 "
	  "19970930T0900-0400 19971007T0900-0400 19971014T0900-0400 19971021T0900-0400 "
	  "19971028T0900-0500 19971104T0900-0500 END" },
	{ "FREQ=WEEKLY;INTERVAL=2;WKST=SU", NY, "19970902T090000", false,
	  "19970902 19970916 19970930 19971014 19971028 19971111 19971125" },
	{ "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH", NY, "19970902T090000", false,
	  "19970902 19970904 19970909 19970911 19970916 19970918 19970923 19970925 19970930 "
	  "19971002 END" },
	{ "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR", NY,
	  "19970901T090000", false,
	  "19970901 19970903 19970905 19970915 19970917 19970919 19970929 19971001 19971003 "
	  "19971013 19971015 19971017 19971027 19971029 19971031 19971110 19971112 19971114 "
	  "19971124 19971126 19971128 19971208 19971210 19971212 19971222 END" },
	{ "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH", NY, "19970902T090000", false,
	  "19970902 19970904 19970916 19970918 19970930 19971002 19971014 19971016 END" },
	{ "FREQ=MONTHLY;COUNT=10;BYDAY=1FR", NY, "19970905T090000", false,
	  "19970905 19971003 19971107 19971205 19980102 19980206 19980306 19980403 19980501 "
	  "19980605 END" },
	{ "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR", NY, "19970905T090000", false,
	  "19970905 19971003 19971107 19971205 END" },
	{ "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU", NY, "19970907T090000", false,
	  "19970907 19970928 19971102 19971130 19980104 19980125 19980301 19980329 19980503 "
	  "19980531 END" },
	{ "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO", NY, "19970922T090000", false,
	  "19970922 19971020 19971117 19971222 19980119 19980216 END" },
	{ "FREQ=MONTHLY;BYMONTHDAY=-3", NY, "19970928T090000", false,
	  "19970928 19971029 19971128 19971229 19980129 19980226" },
	{ "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15", NY, "19970902T090000", false,
	  "19970902 19970915 19971002 19971015 19971102 19971115 19971202 19971215 19980102 "
	  "19980115 END" },
	{ "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1", NY, "19970930T090000", false,
	  "19970930 19971001 19971031 19971101 19971130 19971201 19971231 19980101 19980131 "
	  "19980201 END" },
	{ "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15", NY, "19970910T090000",
	  false, "19970910 19970911 19970912 19970913 19970914 19970915 19990310 19990311 19990312 "
		 "19990313 END" },
	{ "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU", NY, "19970902T090000", false,
	  "19970902 19970909 19970916 19970923 19970930 19971104 19971111 19971118 19971125 "
	  "19980106" },
	{ "FREQ=YEARLY;COUNT=10;BYMONTH=6,7", NY, "19970610T090000", false,
	  "19970610 19970710 19980610 19980710 19990610 19990710 20000610 20000710 20010610 "
	  "20010710 END" },
	{ "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3", NY, "19970310T090000", false,
	  "19970310 19990110 19990210 19990310 20010110 20010210 20010310 20030110 20030210 "
	  "20030310 END" },
	{ "FREQ=YEARLY;BYDAY=20MO", NY, "19970519T090000", false, "19970519 19980518 19990517" },
	{ "FREQ=YEARLY;BYMONTH=3;BYDAY=TH", NY, "19970313T090000", false,
	  "19970313 19970320 19970327 19980305 19980312 19980319 19980326 19990304" },
	{ "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8", NY, "19970605T090000", false,
	  "19970605 19970612 19970619 19970626 19970703 19970710 19970717 19970724 19970731 "
	  "19970807 19970814 19970821 19970828 19980604" },
	/* Friday the 13th; RFC 5545 excludes DTSTART with EXDATE, here it is
	 * simply the first task. */
	{ "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", NY, "19970902T090000", false,
	  "19970902 19980213 19980313 19981113 19990813 20001013" },
	{ "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13", NY, "19970913T090000", false,
	  "19970913 19971011 19971108 19971213 19980110 19980207 19980307 19980411 19980509 "
	  "19980613" },
	{ "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8", NY,
	  "19961105T090000", false, "19961105 20001107 20041102" },
	{ "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5", NY, "20070115T090000", false,
	  "20070115 20070130 20070215 20070315 20070330 END" },
	/* WKST changes which days share a week when INTERVAL > 1 */
	{ "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO", NY, "19970805T090000", false,
	  "19970805 19970810 19970819 19970824 END" },
	{ "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU", NY, "19970805T090000", false,
	  "19970805 19970817 19970819 19970831 END" },
};

static const struct expansion calendar_cases[] = {
	{ "FREQ=MONTHLY;BYDAY=-1FR", BERLIN, "20260130T090000", false,
	  "20260130 20260227 20260327 20260424 20260529" },
	{ "FREQ=MONTHLY;BYMONTHDAY=31", BERLIN, "20260131T090000", false,
	  "20260131 20260331 20260531 20260731 20260831 20261031 20261231" },
	/* without BYMONTHDAY the start's day of the month is kept, and
	 * months without it are skipped, not clamped */
	{ "FREQ=MONTHLY", BERLIN, "20260131T090000", false, "20260131 20260331 20260531" },
	{ "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", BERLIN, "20240229T090000", false,
	  "20240229 20280229 20320229" },
	{ "FREQ=YEARLY", BERLIN, "20960229T090000", false, "20960229 21040229" },
	{ "FREQ=YEARLY;BYMONTHDAY=1", BERLIN, "20260101T090000", false,
	  "20260101 20260201 20260301" },
	{ "FREQ=WEEKLY;BYDAY=MO,WE,FR", BERLIN, "20260106T090000", false,
	  "20260106 20260107 20260109 20260112 20260114" },
	{ "FREQ=DAILY;BYDAY=SA,SU;BYMONTH=1", BERLIN, "20260101T090000", false,
	  "20260101 20260103 20260104 20260110 20260111 20260117" },
	{ "FREQ=DAILY;UNTIL=20260105", BERLIN, "20260101T090000", false,
	  "20260101 20260102 20260103 20260104 20260105 END" },
	{ "FREQ=DAILY;UNTIL=20260105T085959", BERLIN, "20260101T090000", false,
	  "20260101 20260102 20260103 20260104 END" },
	{ "FREQ=DAILY;UNTIL=20260105T090000", BERLIN, "20260101T090000", false,
	  "20260101 20260102 20260103 20260104 20260105 END" },
	{ "FREQ=DAILY;UNTIL=20260105T080000Z", BERLIN, "20260101T090000", false,
	  "20260101 20260102 20260103 20260104 20260105 END" },
	{ "FREQ=DAILY;UNTIL=20260105T075959Z", BERLIN, "20260101T090000", false,
	  "20260101 20260102 20260103 20260104 END" },
	{ "FREQ=DAILY;UNTIL=20251231", BERLIN, "20260101T090000", false, "20260101 END" },
	{ "FREQ=DAILY;COUNT=1", BERLIN, "20260101T090000", false, "20260101 END" },
	{ "FREQ=YEARLY;INTERVAL=100;BYMONTH=2;BYMONTHDAY=29", BERLIN, "20000229T090000", false,
	  "20000229 ERROR the rule yields no occurrence in the 100 years after 2000-02-29" },
	/* Nothing after 9999-12-31T23:59:59Z can be kept: the series ends
	 * there, counted in UTC, not in the zone's own calendar. */
	{ "FREQ=DAILY", "UTC", "99991230T090000", false, "99991230 99991231 CALENDAR-END" },
	{ "FREQ=DAILY", "Pacific/Kiritimati", "99991231T090000", false,
	  "99991231 100000101 CALENDAR-END" },
	{ "FREQ=YEARLY;INTERVAL=100", BERLIN, "99500101T090000", false, "99500101 CALENDAR-END" },
	{ "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=10", NY, "99991031T090000", false,
	  "99991031 99991231 CALENDAR-END" },
};

/* Wall-clock time of day survives DST; skipped times move forward by the
 * gap, repeated ones take the first instant. */
static const struct expansion dst_cases[] = {
	{ "FREQ=DAILY", BERLIN, "20260327T090000", true,
	  "20260327T0900+0100 20260328T0900+0100 20260329T0900+0200 20260330T0900+0200" },
	{ "FREQ=DAILY", BERLIN, "20261024T090000", true,
	  "20261024T0900+0200 20261025T0900+0100 20261026T0900+0100" },
	{ "FREQ=WEEKLY", BERLIN, "20260322T090000", true,
	  "20260322T0900+0100 20260329T0900+0200 20260405T0900+0200" },
	{ "FREQ=WEEKLY;BYDAY=SA,SU", BERLIN, "20261018T090000", true,
	  "20261018T0900+0200 20261024T0900+0200 20261025T0900+0100 20261031T0900+0100" },
	{ "FREQ=DAILY", NY, "20260307T090000", true,
	  "20260307T0900-0500 20260308T0900-0400 20260309T0900-0400" },
	{ "FREQ=DAILY", NY, "20261031T090000", true,
	  "20261031T0900-0400 20261101T0900-0500 20261102T0900-0500" },
	{ "FREQ=WEEKLY", NY, "20260301T090000", true,
	  "20260301T0900-0500 20260308T0900-0400 20260315T0900-0400" },
	{ "FREQ=WEEKLY", NY, "20261025T090000", true,
	  "20261025T0900-0400 20261101T0900-0500 20261108T0900-0500" },
	{ "FREQ=DAILY", BERLIN, "20260328T023000", true,
	  "20260328T0230+0100 20260329T0330+0200 20260330T0230+0200" },
	{ "FREQ=DAILY", NY, "20260307T023000", true,
	  "20260307T0230-0500 20260308T0330-0400 20260309T0230-0400" },
	{ "FREQ=DAILY", BERLIN, "20261024T023000", true,
	  "20261024T0230+0200 20261025T0230+0200 20261026T0230+0100" },
	{ "FREQ=DAILY", NY, "20261031T013000", true,
	  "20261031T0130-0400 20261101T0130-0400 20261102T0130-0500" },
	{ "FREQ=DAILY", "UTC", "20260329T023000", true,
	  "20260329T0230+0000 20260330T0230+0000" },
};

static void run_expansions(const char *what, const struct expansion *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char got[1024];
		expand(rows[i].rule, rows[i].tz, rows[i].start, rows[i].timed, rows[i].want, got,
		       sizeof got);
		is_str(got, rows[i].want, "%s: %s from %s %s", what, rows[i].rule, rows[i].start,
		       rows[i].tz);
	}
}

/* How many occurrences a bounded series has, and the last one's date. */
static void test_series_length(const char *text, const char *start, int want_count,
			       const char *want_last)
{
	struct rrule rule;
	struct todod_err err = { "" };
	char last[32] = "";
	int count = 0;
	if (rrule_parse(text, &rule, &err) == 0) {
		int64_t first = local_instant(NY, start), at = first;
		count = 1;
		while (count < 1000 && rrule_next(&rule, first, NY, count, &at, &err) == 0)
			count++;
		append_local(last, sizeof last, NY, at, false);
	}
	ok(count == want_count && strcmp(last, want_last) == 0,
	   "%s from %s: %d occurrences, the last on%s  [got %d, last on%s; %s]", text, start,
	   want_count, want_last, count, last, err.text);
}

static void test_arguments(void)
{
	struct rrule rule;
	struct todod_err err = { "" };
	int64_t next = 0, start = local_instant(BERLIN, "20260101T090000");

	rrule_parse("FREQ=DAILY;COUNT=3", &rule, &err);
	ok(rrule_next(&rule, start, BERLIN, 2, &next, &err) == 0, "COUNT=3: occurrence 3 exists");
	ok(rrule_next(&rule, start, BERLIN, 3, &next, &err) == 1, "but not a 4th");
	ok(rrule_next(&rule, start, BERLIN, 7, &next, &err) == 1, "nor anything later");

	rrule_parse("FREQ=DAILY", &rule, &err);
	ok(rrule_next(&rule, start, BERLIN, 0, &next, &err) == -1, "occurrence 0 is an error: %s",
	   err.text);
	ok(rrule_next(&rule, start, "Mars/Olympus", 1, &next, &err) == -1 &&
		   strcmp(err.text, "'Mars/Olympus' is not a known time zone") == 0,
	   "an unknown zone is an error: %s", err.text);
	ok(rrule_next(&rule, start, "../../etc/passwd", 1, &next, &err) == -1,
	   "a path is not a zone: %s", err.text);
	ok(rrule_next(&rule, start, "zone.tab", 1, &next, &err) == -1,
	   "nor is a file in the zone directory that is no zone: %s", err.text);
	ok(rrule_next(&rule, start, "UTC", 1000, &next, &err) == 0 && next - start == 1000 * 86400L,
	   "occurrence 1001 of a daily series in UTC is 1000 days on");
	ok(rrule_next(&rule, start, BERLIN, 400000, &next, &err) == -1,
	   "occurrences beyond 1000 years are refused: %s", err.text);

	/* A rule no calendar date satisfies, built past the parser. */
	rrule_parse("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", &rule, &err);
	rule.bymonthday[0] = 30;
	ok(rrule_next(&rule, start, BERLIN, 1, &next, &err) == -1,
	   "February 30th gives up with an error: %s", err.text);

	rrule_parse("FREQ=DAILY", &rule, &err);
	setenv("TZ", "Asia/Tokyo", 1);
	tzset();
	rrule_next(&rule, start, BERLIN, 1, &next, &err);
	is_str(getenv("TZ"), "Asia/Tokyo", "the caller's TZ is restored");
	unsetenv("TZ");
	tzset();
	rrule_next(&rule, start, BERLIN, 1, &next, &err);
	ok(getenv("TZ") == NULL, "and an unset TZ stays unset");
}

int main(void)
{
	test_parser();
	test_longest_rule();
	run_expansions("RFC 5545", rfc_examples, sizeof rfc_examples / sizeof rfc_examples[0]);
	run_expansions("calendar", calendar_cases, sizeof calendar_cases / sizeof calendar_cases[0]);
	run_expansions("DST", dst_cases, sizeof dst_cases / sizeof dst_cases[0]);
	test_series_length("FREQ=DAILY;UNTIL=19971224T000000Z", "19970902T090000", 113, " 19971223");
	test_series_length("FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
			   "19980101T090000", 93, " 20000131");
	test_series_length("FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1", "19980101T090000", 93,
			   " 20000131");
	test_arguments();
	return tap_done();
}

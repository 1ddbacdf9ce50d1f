/* tz.c - zone names, the cache of parsed zones, and the two conversions. */
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tz_zone.h"

#define DEFAULT_TZDIR "/usr/share/zoneinfo"
/* The longest IANA names have about 30 characters. */
#define ZONE_NAME_MAX 255
/* Zone files are a few kilobytes; anything much larger is not one. */
#define ZONE_FILE_MAX (1024 * 1024)
#define CACHE_BUCKETS 64
/* Wider than any UTC offset, so the changes around a wall-clock time that
 * can matter for it all fall within this much either side of it. */
#define WALL_WINDOW (2 * 86400)

/* ---- names ------------------------------------------------------------------ */

/* A relative name of letters, digits and "/_+-" whose parts are not empty:
 * no absolute path, no "." or ".." (no dot at all), no "//". */
static bool valid_zone_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > ZONE_NAME_MAX || name[0] == '/' || name[len - 1] == '/' ||
	    strstr(name, "//"))
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789/_+-") == len;
}

static int unknown_zone(const char *name, struct todod_err *err)
{
	return todod_err_set(err, "'%.80s' is not a known time zone", name ? name : "(null)");
}

/* ---- loading -------------------------------------------------------------------- */

/* The whole file, or NULL when it is no regular file of a plausible size
 * or cannot be read. */
static unsigned char *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	unsigned char *data = NULL;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= ZONE_FILE_MAX)
		data = todod_xmalloc((size_t)st.st_size + 1);
	/* One byte more than expected tells a file that grew meanwhile. */
	size_t n = data ? fread(data, 1, (size_t)st.st_size + 1, f) : 0;
	bool ok = data && !ferror(f) && n == (size_t)st.st_size;
	fclose(f);
	if (!ok) {
		free(data);
		return NULL;
	}
	*size = n;
	return data;
}

/* The C library's rule: $TZDIR when set, else the system's database.
 * getenv only reads; nothing in todod writes the environment. */
static struct tz_zone *load_zone(const char *name, struct todod_err *err)
{
	const char *dir = getenv("TZDIR");
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : DEFAULT_TZDIR, name);
	size_t size = 0;
	unsigned char *data = n > 0 && (size_t)n < sizeof path ? read_file(path, &size) : NULL;
	if (!data) {
		unknown_zone(name, err);
		return NULL;
	}
	struct todod_err why = { "" };
	struct tz_zone *zone = tz_zone_parse(data, size, &why);
	bool is_tzif = size >= 4 && memcmp(data, "TZif", 4) == 0;
	free(data);
	if (!zone && is_tzif)
		todod_err_set(err, "time zone '%s': %s is damaged: %s", name, path, why.text);
	else if (!zone)
		unknown_zone(name, err);
	return zone;
}

/* ---- the cache ------------------------------------------------------------------- */

/* Every zone read so far, by name.  Never emptied: a process sees a few
 * zones, at most the few hundred of the database, and the abbreviations
 * handed out as tm_zone must stay valid. */
struct cached_zone {
	struct cached_zone *next;
	struct tz_zone *zone;
	char name[];
};

static struct cached_zone *cache[CACHE_BUCKETS];

static unsigned name_hash(const char *name)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % CACHE_BUCKETS;
}

static const struct tz_zone *zone_get(const char *name, struct todod_err *err)
{
	if (!valid_zone_name(name)) {
		unknown_zone(name, err);
		return NULL;
	}
	struct cached_zone **bucket = &cache[name_hash(name)];
	for (struct cached_zone *c = *bucket; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c->zone;
	struct tz_zone *zone = load_zone(name, err);
	if (!zone)
		return NULL;
	size_t len = strlen(name);
	struct cached_zone *c = todod_xmalloc(sizeof *c + len + 1);
	c->zone = zone;
	memcpy(c->name, name, len + 1);
	c->next = *bucket;
	*bucket = c;
	return zone;
}

/* ---- conversions ----------------------------------------------------------------- */

static int out_of_range(const char *zone, struct todod_err *err)
{
	return todod_err_set(err, "time zone '%s': the time is too far from 1970", zone);
}

int tz_to_local(const char *zone, int64_t instant, struct todod_local_time *out,
		struct todod_err *err)
{
	const struct tz_zone *z = zone_get(zone, err);
	if (!z)
		return -1;
	if (instant < -TZ_INSTANT_LIMIT || instant > TZ_INSTANT_LIMIT)
		return out_of_range(zone, err);
	struct tz_type type = tz_zone_type_at(z, instant, NULL);
	time_t wall = (time_t)(instant + type.utc_offset);
	memset(out, 0, sizeof *out);
	gmtime_r(&wall, &out->tm);
	out->tm.tm_isdst = type.is_dst;
	out->tm.tm_gmtoff = type.utc_offset;
	out->tm.tm_zone = z->abbrevs + type.abbrev;
	out->utc_offset = type.utc_offset;
	out->is_dst = type.is_dst;
	snprintf(out->abbrev, sizeof out->abbrev, "%s", z->abbrevs + type.abbrev);
	return 0;
}

/* The zone's history near `wall` is a run of periods, each with its own
 * offset; a period shows the wall-clock times [start + offset, end +
 * offset).  Walking them in order, the first that shows `wall` gives the
 * earlier instant of a repeated time; a wall time that falls before the
 * next period's first one was skipped, and the offset from before the
 * skip moves it forward by the gap. */
static int64_t instant_of_wall(const struct tz_zone *z, int64_t wall)
{
	int64_t start = wall - WALL_WINDOW;
	int64_t previous_offset = 0;
	for (bool first = true;; first = false) {
		int64_t end;
		int64_t offset = tz_zone_type_at(z, start, &end).utc_offset;
		if (!first && wall < start + offset)
			return wall - previous_offset;
		if (end > wall + WALL_WINDOW || wall < end + offset)
			return wall - offset;
		previous_offset = offset;
		start = end;
	}
}

int tz_from_wall(const char *zone, int64_t wall, int64_t *instant, struct todod_err *err)
{
	const struct tz_zone *z = zone_get(zone, err);
	if (!z)
		return -1;
	if (wall < -TZ_INSTANT_LIMIT || wall > TZ_INSTANT_LIMIT)
		return out_of_range(zone, err);
	*instant = instant_of_wall(z, wall);
	return 0;
}

/* Years beyond this would overflow timegm's arithmetic on the other
 * fields; TZ_INSTANT_LIMIT is much smaller anyway. */
#define TM_YEAR_LIMIT 1000000000

int tz_from_local(const char *zone, const struct tm *local, int64_t *instant,
		  struct todod_err *err)
{
	if (local->tm_year < -TM_YEAR_LIMIT || local->tm_year > TM_YEAR_LIMIT)
		return valid_zone_name(zone) ? out_of_range(zone, err) : unknown_zone(zone, err);
	struct tm fields = {
		.tm_year = local->tm_year, .tm_mon = local->tm_mon, .tm_mday = local->tm_mday,
		.tm_hour = local->tm_hour, .tm_min = local->tm_min, .tm_sec = local->tm_sec,
	};
	return tz_from_wall(zone, (int64_t)timegm(&fields), instant, err);
}

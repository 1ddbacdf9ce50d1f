/* fuzz_tzif.c - libFuzzer target for the zone file reader.
 *
 * Zone files come from the system, but a damaged or hostile one must not
 * crash the daemon.  Besides crashes and undefined behaviour it checks
 * what the conversions rely on: at any instant the type's abbreviation is
 * short enough for the API's buffer, and the next change lies after the
 * instant (the local-to-UTC walk advances by it). */
#include "tz_zone.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_instant(const struct tz_zone *zone, int64_t instant)
{
	int64_t next = 0;
	struct tz_type type = tz_zone_type_at(zone, instant, &next);
	if (next <= instant || strlen(zone->abbrevs + type.abbrev) > TZ_ABBREV_LEN_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct todod_err err;
	struct tz_zone *zone = tz_zone_parse(data, size, &err);
	if (!zone)
		return 0;
	static const int64_t instants[] = { -TZ_INSTANT_LIMIT, -INT64_C(2208988800), -1, 0,
					    INT64_C(1795770000), INT64_C(4102444800),
					    TZ_INSTANT_LIMIT };
	for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++)
		check_instant(zone, instants[i]);
	for (size_t i = 0; i < zone->n_transitions; i++) {
		int64_t at = zone->transition_at[i];
		if (at > -TZ_INSTANT_LIMIT && at < TZ_INSTANT_LIMIT) {
			check_instant(zone, at - 1);
			check_instant(zone, at);
		}
	}
	tz_zone_free(zone);
	return 0;
}

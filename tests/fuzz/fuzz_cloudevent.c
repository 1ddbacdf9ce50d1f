/* fuzz_cloudevent.c - libFuzzer target for the CloudEvents codec.
 *
 * Besides crashes, leaks and undefined behaviour it checks a round trip:
 * whatever ce_parse accepts, ce_encode must turn into an event that
 * ce_parse accepts again with the same attributes, or a message relayed
 * by one instance could be refused or changed by the next. */
#include "cloudevent.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_SIZE (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

static bool same_event(const struct todod_event *a, const struct todod_event *b)
{
	return same_str(a->id, b->id) && same_str(a->source, b->source) &&
	       same_str(a->type, b->type) && same_str(a->subject, b->subject) &&
	       same_str(a->time, b->time) && same_str(a->traceparent, b->traceparent) &&
	       same_str(a->topic, b->topic) && same_str(a->key, b->key) &&
	       (a->data && b->data ? json_object_equal(a->data, b->data) : a->data == b->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ce_event first, second;
	struct todod_err err;

	if (ce_parse((const char *)data, size, FUZZ_MAX_SIZE, "topic", "key", &first, &err) < 0)
		return 0;

	size_t len = 0;
	char *wire = ce_encode(&first.ev, &len);
	if (!wire)
		abort();
	/* Escaping may make the encoding longer than the input (a raw control
	 * character becomes \u00XX), so the size limit is not the point here. */
	if (ce_parse(wire, len, len, "topic", "key", &second, &err) < 0 ||
	    !same_event(&first.ev, &second.ev))
		abort();

	/* The encoding of a decoded encoding is a fixed point. */
	size_t len2 = 0;
	char *wire2 = ce_encode(&second.ev, &len2);
	if (!wire2 || len2 != len || memcmp(wire, wire2, len) != 0)
		abort();

	free(wire2);
	free(wire);
	ce_event_free(&second);
	ce_event_free(&first);
	return 0;
}

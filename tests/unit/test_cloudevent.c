/* test_cloudevent.c - the CloudEvents codec: what goes on the wire, what
 * comes back from it, and why a message is refused. */
#include "clock.h"
#include "cloudevent.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define SOURCE "/todod/host-1234"
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static bool same_str(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

static json_object *task_data(int64_t task_id, const char *extra_key, json_object *extra)
{
	json_object *data = json_object_new_object();
	json_object *task = json_object_new_object();
	json_object_object_add(task, "id", json_object_new_int64(task_id));
	json_object_object_add(task, "title", json_object_new_string("Buy milk / eggs"));
	json_object_object_add(task, "priority", json_object_new_string("high"));
	json_object_object_add(task, "due_at", json_object_new_string("2026-11-27T10:00:00Z"));
	json_object_object_add(data, "user_id", json_object_new_int64(7));
	json_object_object_add(data, "task", task);
	if (extra_key)
		json_object_object_add(data, extra_key, extra);
	return data;
}

static void test_round_trip(const char *type, json_object *data, const char *traceparent)
{
	struct todod_event ev = {
		.id = "0193a4f2-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
		.source = SOURCE,
		.type = type,
		.subject = "task/42",
		.time = "2026-11-27T09:59:58.123Z",
		.topic = "task-events",
		.key = "42",
		.traceparent = traceparent,
		.data = data,
	};
	struct ce_event ce;
	struct todod_err err = { "" };
	size_t len = 0;
	char *wire = ce_encode(&ev, &len);

	ok(wire && len == strlen(wire), "%s: encodes", type);
	if (!wire) {
		json_object_put(data);
		return;
	}
	int rc = ce_parse(wire, len, CE_MAX_SIZE_DEFAULT, "task-events", "42", &ce, &err);
	ok(rc == 0, "%s: parses back (%s)", type, err.text);
	if (rc == 0) {
		ok(same_str(ce.ev.id, ev.id) && same_str(ce.ev.source, ev.source) &&
			   same_str(ce.ev.type, ev.type) && same_str(ce.ev.subject, ev.subject) &&
			   same_str(ce.ev.time, ev.time) &&
			   same_str(ce.ev.traceparent, ev.traceparent),
		   "%s: attributes survive", type);
		ok(json_object_equal(ce.ev.data, data), "%s: data survives", type);
		ok(same_str(ce.ev.topic, "task-events") && same_str(ce.ev.key, "42"),
		   "%s: topic and key are copied", type);
		ok(ce.ev.raw_len == len && memcmp(ce.ev.raw, wire, len) == 0 &&
			   ce.ev.raw[len] == '\0',
		   "%s: raw is the wire text", type);
	}
	size_t len2 = 0;
	char *again = ce_encode(&ev, &len2);
	ok(again && len2 == len && memcmp(again, wire, len) == 0, "%s: encoding is deterministic",
	   type);
	free(again);
	free(wire);
	ce_event_free(&ce);
	json_object_put(data);
}

static void test_event_types(void)
{
	json_object *changed = json_object_new_array();
	json_object_array_add(changed, json_object_new_string("title"));
	json_object_array_add(changed, json_object_new_string("priority"));

	test_round_trip("todod.task.created", task_data(42, NULL, NULL), TRACEPARENT);
	test_round_trip("todod.task.updated", task_data(42, "changed", changed), NULL);
	test_round_trip("todod.task.completed", task_data(42, NULL, NULL), TRACEPARENT);
	test_round_trip("todod.task.deleted", task_data(42, NULL, NULL), NULL);
	test_round_trip("todod.reminder.due",
			task_data(42, "remind_at", json_object_new_string("2026-11-27T09:45:00Z")),
			TRACEPARENT);
	test_round_trip("com.example.other", NULL, NULL);
}

static void test_exact_encoding(void)
{
	json_object *data = json_object_new_object();
	json_object_object_add(data, "user_id", json_object_new_int64(7));
	json_object_object_add(data, "note", json_object_new_string("caf\xc3\xa9 \"a/b\"\n"));
	struct todod_event ev = {
		.id = "e1",
		.source = SOURCE,
		.type = "todod.task.created",
		.subject = "task/42",
		.time = "2026-11-27T10:00:00.000Z",
		.topic = "not-in-the-envelope",
		.key = "42",
		.traceparent = TRACEPARENT,
		.data = data,
	};
	size_t len = 0;
	char *wire = ce_encode(&ev, &len);
	is_str(wire,
	       "{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/todod/host-1234\","
	       "\"type\":\"todod.task.created\",\"subject\":\"task/42\","
	       "\"time\":\"2026-11-27T10:00:00.000Z\",\"datacontenttype\":\"application/json\","
	       "\"traceparent\":\"" TRACEPARENT "\","
	       "\"data\":{\"user_id\":7,\"note\":\"caf\xc3\xa9 \\\"a/b\\\"\\n\"}}",
	       "byte-exact encoding: fixed order, compact, slashes unescaped");
	ok(wire && len == strlen(wire), "length is reported");
	free(wire);

	struct todod_event bare = { .id = "e2", .source = SOURCE, .type = "t" };
	wire = ce_encode(&bare, NULL);
	is_str(wire, "{\"specversion\":\"1.0\",\"id\":\"e2\",\"source\":\"/todod/host-1234\","
		     "\"type\":\"t\"}",
	       "no data, subject, time or trace: only what is set");
	free(wire);
	json_object_put(data);
}

static void test_encode_refusals(void)
{
	json_object *array = json_object_new_array();
	struct todod_event ev = { .id = "e", .source = SOURCE, .type = "t" };

	ev.id = NULL;
	ok(!ce_encode(&ev, NULL), "encode: no id");
	ev.id = "";
	ok(!ce_encode(&ev, NULL), "encode: empty id");
	ev.id = "e";
	ev.source = NULL;
	ok(!ce_encode(&ev, NULL), "encode: no source");
	ev.source = SOURCE;
	ev.type = "";
	ok(!ce_encode(&ev, NULL), "encode: empty type");
	ev.type = "t";
	ev.data = array;
	ok(!ce_encode(&ev, NULL), "encode: data that is not an object");
	ok(!ce_encode(NULL, NULL), "encode: no event");
	json_object_put(array);
}

#define ENVELOPE_START "{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/todod/x\",\"type\":\"t\""

struct rejection {
	const char *input;
	const char *reason;
};

static const struct rejection rejections[] = {
	{ "", "not valid JSON: unexpected end of data" },
	{ "{\"specversion\":\"1.0\",", "not valid JSON: unexpected end of data" },
	{ "{\"specversion\" \"1.0\"}", "not valid JSON: object property name separator ':' expected" },
	{ ENVELOPE_START "} trailing", "not valid JSON: unexpected character" },
	{ ENVELOPE_START ",\"data\":{\"a\":tru}}", "not valid JSON: boolean expected" },
	{ "{\"id\":\"caf\xc3\x28\"}", "not valid JSON: invalid utf-8 string" },
	{ "[1,2]", "event must be a JSON object, got array" },
	{ "\"1.0\"", "event must be a JSON object, got string" },
	{ "{\"id\":\"e\",\"source\":\"/todod/x\",\"type\":\"t\"}",
	  "missing required attribute 'specversion'" },
	{ "{\"specversion\":\"0.3\",\"id\":\"e\"}",
	  "attribute 'specversion' must be \"1.0\", got \"0.3\"" },
	{ "{\"specversion\":1.0}", "attribute 'specversion' must be a string, got double" },
	{ "{\"specversion\":\"1.0\",\"source\":\"/todod/x\",\"type\":\"t\"}",
	  "missing required attribute 'id'" },
	{ "{\"specversion\":\"1.0\",\"id\":null,\"source\":\"/todod/x\",\"type\":\"t\"}",
	  "missing required attribute 'id'" },
	{ "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/todod/x\",\"type\":\"t\"}",
	  "attribute 'id' must not be empty" },
	{ "{\"specversion\":\"1.0\",\"id\":17,\"source\":\"/todod/x\",\"type\":\"t\"}",
	  "attribute 'id' must be a string, got int" },
	{ "{\"specversion\":\"1.0\",\"id\":\"\\u0000x\",\"source\":\"/todod/x\",\"type\":\"t\"}",
	  "attribute 'id' contains a NUL character" },
	{ "{\"specversion\":\"1.0\",\"id\":\"e\",\"type\":\"t\"}",
	  "missing required attribute 'source'" },
	{ "{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/todod/x\"}",
	  "missing required attribute 'type'" },
	{ "{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/todod/x\",\"type\":\"\"}",
	  "attribute 'type' must not be empty" },
	{ ENVELOPE_START ",\"subject\":\"\"}", "attribute 'subject' must not be empty" },
	{ ENVELOPE_START ",\"subject\":[\"task/1\"]}", "attribute 'subject' must be a string, got array" },
	{ ENVELOPE_START ",\"time\":\"yesterday\"}", "attribute 'time' is not RFC 3339: 'yesterday'" },
	{ ENVELOPE_START ",\"time\":\"2026-02-29T10:00:00Z\"}",
	  "attribute 'time' is not RFC 3339: '2026-02-29T10:00:00Z'" },
	{ ENVELOPE_START ",\"time\":\"\\u001b[31mred\"}", "attribute 'time' is not RFC 3339: '?[31mred'" },
	{ ENVELOPE_START ",\"time\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxyyyy\"}",
	  "attribute 'time' is not RFC 3339: "
	  "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'" },
	{ ENVELOPE_START ",\"traceparent\":true}", "attribute 'traceparent' must be a string, got boolean" },
	{ ENVELOPE_START ",\"datacontenttype\":\"application/octet-stream\",\"data_base64\":\"AAEC\"}",
	  "data_base64 is not supported" },
	{ ENVELOPE_START ",\"data\":[1,2]}", "attribute 'data' must be a JSON object, got array" },
	{ ENVELOPE_START ",\"data\":\"text\"}", "attribute 'data' must be a JSON object, got string" },
	{ ENVELOPE_START ",\"data\":{\"a\":[NaN]}}", "attribute 'data' holds a number that is not finite" },
	{ ENVELOPE_START ",\"data\":{\"a\":1e999}}", "attribute 'data' holds a number that is not finite" },
	{ ENVELOPE_START ",\"datacontenttype\":\"text/plain\",\"data\":{}}",
	  "attribute 'datacontenttype' must be \"application/json\" when data is present, "
	  "got \"text/plain\"" },
	{ ENVELOPE_START ",\"datacontenttype\":\"application/jsonx\",\"data\":{}}",
	  "attribute 'datacontenttype' must be \"application/json\" when data is present, "
	  "got \"application/jsonx\"" },
	{ ENVELOPE_START ",\"datacontenttype\":5}", "attribute 'datacontenttype' must be a string, got int" },
	{ ENVELOPE_START ",\"datacontenttype\":{},\"data\":{}}",
	  "attribute 'datacontenttype' must be a string, got object" },
};

static void test_rejections(void)
{
	for (size_t i = 0; i < sizeof rejections / sizeof rejections[0]; i++) {
		const struct rejection *r = &rejections[i];
		struct ce_event ce;
		struct todod_err err = { "" };
		int rc = ce_parse(r->input, strlen(r->input), CE_MAX_SIZE_DEFAULT, "t", NULL, &ce,
				  &err);
		ok(rc == -1 && !ce.root && !ce.raw, "rejected, nothing kept (case %zu)", i);
		is_str(err.text, r->reason, "reason: %s", r->reason);
		ce_event_free(&ce);
	}
}

/* An event of exactly `size` bytes, padded inside data. */
static char *event_of_size(size_t size)
{
	static const char head[] = ENVELOPE_START ",\"data\":{\"pad\":\"";
	static const char tail[] = "\"}}";
	char *buf = malloc(size + 1);
	size_t pad = size - (sizeof head - 1) - (sizeof tail - 1);
	memcpy(buf, head, sizeof head - 1);
	memset(buf + sizeof head - 1, 'p', pad);
	memcpy(buf + sizeof head - 1 + pad, tail, sizeof tail);
	return buf;
}

static void test_size_limit(void)
{
	struct ce_event ce;
	struct todod_err err = { "" };
	char *buf = event_of_size(300000);

	ok(ce_parse(buf, 300000, CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == -1,
	   "300000 bytes refused with the default limit");
	is_str(err.text, "event is 300000 bytes, limit is 262144", "size reason");
	free(buf);

	buf = event_of_size(CE_MAX_SIZE_DEFAULT);
	ok(ce_parse(buf, CE_MAX_SIZE_DEFAULT, CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == 0,
	   "exactly the limit is accepted");
	ce_event_free(&ce);
	ok(ce_parse(buf, CE_MAX_SIZE_DEFAULT, 1000, NULL, NULL, &ce, &err) == -1,
	   "a smaller limit is honoured");
	is_str(err.text, "event is 262144 bytes, limit is 1000", "reason names the given limit");
	free(buf);
}

static char *nested_data(int levels)
{
	/* levels objects inside data, the innermost empty */
	size_t cap = sizeof ENVELOPE_START + 16 + (size_t)levels * 8;
	char *buf = malloc(cap);
	size_t n = (size_t)snprintf(buf, cap, "%s,\"data\":", ENVELOPE_START);
	for (int i = 0; i < levels; i++)
		n += (size_t)snprintf(buf + n, cap - n, "{\"a\":");
	n += (size_t)snprintf(buf + n, cap - n, "1");
	for (int i = 0; i < levels; i++)
		buf[n++] = '}';
	snprintf(buf + n, cap - n, "}");
	return buf;
}

static void test_depth(void)
{
	struct ce_event ce;
	struct todod_err err = { "" };
	/* envelope (1) + 30 objects + the scalar = 32 levels */
	char *deep = nested_data(30);
	ok(ce_parse(deep, strlen(deep), CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == 0,
	   "32 levels are accepted (%s)", err.text);
	ce_event_free(&ce);
	free(deep);

	deep = nested_data(31);
	ok(ce_parse(deep, strlen(deep), CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == -1,
	   "33 levels are refused");
	is_str(err.text, "JSON is nested deeper than 32 levels", "depth reason");
	free(deep);

	deep = nested_data(5000);
	ok(ce_parse(deep, strlen(deep), CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == -1,
	   "5000 levels are refused without exhausting the stack");
	free(deep);
}

static void test_unterminated_buffer(void)
{
	static const char text[] = ENVELOPE_START ",\"subject\":\"task/9\"}";
	size_t len = sizeof text - 1;
	/* Exactly len bytes on the heap: ASan reports any read past them. */
	char *buf = malloc(len);
	struct ce_event ce;
	struct todod_err err = { "" };

	memcpy(buf, text, len);
	ok(ce_parse(buf, len, CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == 0,
	   "parses a buffer without a terminating NUL (%s)", err.text);
	ok(same_str(ce.ev.subject, "task/9") && ce.ev.raw[len] == '\0' && !ce.ev.topic &&
		   !ce.ev.key,
	   "raw is terminated in the copy; absent topic and key stay NULL");
	ce_event_free(&ce);

	/* A prefix of a valid event is not an event. */
	ok(ce_parse(buf, len - 1, CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == -1,
	   "the length is honoured, not the bytes after it");
	is_str(err.text, "not valid JSON: unexpected end of data", "truncated reason");
	free(buf);

	/* json-c stops at a NUL byte; what follows must not be ignored. */
	static const char with_nul[] = ENVELOPE_START "}\0{\"evil\":1}";
	ok(ce_parse(with_nul, sizeof with_nul - 1, CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == -1,
	   "bytes after an embedded NUL are refused");
	is_str(err.text, "not valid JSON: unexpected character", "embedded NUL reason");
}

static void test_extensions_and_nulls(void)
{
	static const char text[] =
		" {\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"orders-app\",\"type\":\"t\","
		"\"topic\":\"task-events\",\"pubsubname\":\"kafka\",\"traceid\":\"\","
		"\"traceparent\":\"\",\"tracestate\":\"\",\"expiration\":\"2026-11-28T00:00:00Z\","
		"\"subject\":null,\"time\":null,\"data\":null,\"datacontenttype\":\"text/plain\","
		"\"priority\":3} \n";
	struct ce_event ce;
	struct todod_err err = { "" };
	json_object *value;

	ok(ce_parse(text, sizeof text - 1, CE_MAX_SIZE_DEFAULT, "task-events", "1", &ce, &err) == 0,
	   "Dapr-style envelope with extensions parses (%s)", err.text);
	ok(json_object_object_get_ex(ce.root, "pubsubname", &value) &&
		   same_str(json_object_get_string(value), "kafka"),
	   "extension attribute 'pubsubname' is kept in root");
	ok(json_object_object_get_ex(ce.root, "priority", &value) &&
		   json_object_get_int(value) == 3,
	   "non-string extension attribute is kept in root");
	ok(!ce.ev.subject && !ce.ev.time && !ce.ev.data,
	   "null attributes count as absent (JSON format spec)");
	ok(!ce.ev.traceparent, "an empty traceparent means no trace");

	char *wire = ce_encode(&ce.ev, NULL);
	ok(wire && !strstr(wire, "pubsubname") && !strstr(wire, "datacontenttype"),
	   "re-encoding carries only the known attributes");
	free(wire);
	ce_event_free(&ce);
	ce_event_free(&ce);
	ce_event_free(NULL);
	ok(!ce.root && !ce.raw, "freeing twice, or NULL, is harmless");

	ok(ce_parse(NULL, 10, CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == -1,
	   "no buffer is refused");
	is_str(err.text, "not valid JSON: no input", "no buffer reason");

	static const char params[] = ENVELOPE_START
		",\"datacontenttype\":\"Application/JSON ; charset=utf-8\",\"data\":{}}";
	ok(ce_parse(params, sizeof params - 1, CE_MAX_SIZE_DEFAULT, NULL, NULL, &ce, &err) == 0,
	   "datacontenttype with parameters and other case is JSON (%s)", err.text);
	ce_event_free(&ce);
}

struct time_case {
	const char *text;
	bool valid;
};

static const struct time_case times[] = {
	{ "2026-11-27T10:00:00Z", true },
	{ "2026-11-27T10:00:00.123456789Z", true },
	{ "2026-11-27t10:00:00z", true },
	{ "2026-11-27T10:00:00+05:30", true },
	{ "2026-11-27T10:00:00-00:00", true },
	{ "2026-11-27T23:59:60Z", true },
	{ "2024-02-29T00:00:00Z", true },
	{ "2000-02-29T00:00:00Z", true },
	{ "2026-01-31T00:00:00Z", true },
	{ "2026-04-30T00:00:00Z", true },
	{ "0000-01-01T00:00:00Z", true },
	{ "2026-12-31T23:59:59.9+23:59", true },
	{ "1900-02-29T00:00:00Z", false },
	{ "2026-02-29T00:00:00Z", false },
	{ "2026-04-31T00:00:00Z", false },
	{ "2026-00-10T00:00:00Z", false },
	{ "2026-13-10T00:00:00Z", false },
	{ "2026-11-00T00:00:00Z", false },
	{ "2026-11-27T24:00:00Z", false },
	{ "2026-11-27T10:60:00Z", false },
	{ "2026-11-27T10:00:61Z", false },
	{ "2026-11-27T10:00:00+24:00", false },
	{ "2026-11-27T10:00:00+05:60", false },
	{ "2026-11-27T10:00:00", false },
	{ "2026-11-27 10:00:00Z", false },
	{ "2026-11-27T10:00:00.Z", false },
	{ "2026-11-27T10:00Z", false },
	{ "2026-11-27T10:00:00+0530", false },
	{ "2026-11-27T10:00:00Zjunk", false },
	{ "2026-11-27T10:00:00+05:30x", false },
	{ "26-11-27T10:00:00Z", false },
	{ "2026-1-27T10:00:00Z", false },
	{ "+2026-11-27T10:00:00Z", false },
	{ "２026-11-27T10:00:00Z", false },
	{ "", false },
	{ "2026-11-2", false },
};

static void test_times(void)
{
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
		ok(ce_time_valid(times[i].text) == times[i].valid, "time '%s' is %s", times[i].text,
		   times[i].valid ? "valid" : "invalid");
	ok(!ce_time_valid(NULL), "NULL time is invalid");

	static const struct {
		const char *text;
		int64_t ms;
	} instants[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2026-11-27T10:00:00.123456Z", 1795773600123 },
		{ "2026-11-27t15:30:00.1+05:30", 1795773600100 },
		{ "2026-11-27T00:00:00-10:00", 1795773600000 },
		{ "2024-02-29T23:59:60Z", 1709251200000 },
		{ "1969-12-31T23:59:59.999Z", -1 },
	};
	for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++) {
		int64_t ms = 0;
		int rc = rfc3339_parse_ms(instants[i].text, &ms);
		ok(rc == 0 && ms == instants[i].ms, "'%s' is %lld ms after the epoch (got %lld)",
		   instants[i].text, (long long)instants[i].ms, (long long)ms);
	}

	char text[RFC3339_MS_SIZE];
	ok(rfc3339_format_ms(1795773600123, text, sizeof text) == 24 &&
	   strcmp(text, "2026-11-27T10:00:00.123Z") == 0, "formatted: %s", text);
	ok(rfc3339_format_ms(1795773600123, text, sizeof text - 1) == 0 && text[0] == '\0',
	   "a buffer too small gets \"\", not a cut date");
	ok(rfc3339_format_ms(253402300800000, text, sizeof text) == 0 && text[0] == '\0',
	   "year 10000 has no RFC 3339 form");
	rfc3339_format_ms(-1, text, sizeof text);
	ok(strcmp(text, "1969-12-31T23:59:59.999Z") == 0, "before the epoch: %s", text);
	int64_t now = clock_wall_ms(), back = 0;
	rfc3339_format_ms(now, text, sizeof text);
	ok(rfc3339_parse_ms(text, &back) == 0 && back == now, "now round-trips: %s", text);
}

int main(void)
{
	test_event_types();
	test_exact_encoding();
	test_encode_refusals();
	test_rejections();
	test_size_limit();
	test_depth();
	test_unterminated_buffer();
	test_extensions_and_nulls();
	test_times();
	return tap_done();
}

/* cloudevent.c - CloudEvents 1.0 structured JSON: the encoder every
 * transport publishes with and the validating parser every inbound
 * message goes through.
 *
 * Only json-c, libc, todod-plugin.h and clock.c: the fuzz target links
 * these two files alone. */
#include "cloudevent.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

/* json-c counts every value, scalars included, as one level: 32 lets data
 * hold 30 levels of objects and arrays below the envelope. */
#define CE_MAX_DEPTH 32

/* Wire values quoted in a reason are cut to this many bytes. */
#define CE_QUOTE_MAX 64

static const char content_type_json[] = "application/json";

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

bool ce_time_valid(const char *s)
{
	int64_t ms;
	return rfc3339_parse_ms(s, &ms) == 0;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

static bool is_set(const char *s) { return s && *s; }

static void add_string(json_object *obj, const char *name, const char *value)
{
	if (is_set(value))
		json_object_object_add(obj, name, json_object_new_string(value));
}

char *ce_encode(const struct todod_event *ev, size_t *len)
{
	if (!ev || !is_set(ev->id) || !is_set(ev->source) || !is_set(ev->type))
		return NULL;
	if (ev->data && !json_object_is_type(ev->data, json_type_object))
		return NULL;

	/* json-c keeps insertion order, so the order below is the order on
	 * the wire; transports must produce identical bytes for one event. */
	json_object *envelope = json_object_new_object();
	if (!envelope)
		return NULL;
	add_string(envelope, "specversion", "1.0");
	add_string(envelope, "id", ev->id);
	add_string(envelope, "source", ev->source);
	add_string(envelope, "type", ev->type);
	add_string(envelope, "subject", ev->subject);
	add_string(envelope, "time", ev->time);
	if (ev->data)
		add_string(envelope, "datacontenttype", content_type_json);
	add_string(envelope, "traceparent", ev->traceparent);
	if (ev->data)
		json_object_object_add(envelope, "data", json_object_get(ev->data));

	size_t out_len;
	const char *text = json_object_to_json_string_length(
		envelope, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &out_len);
	char *out = text ? malloc(out_len + 1) : NULL;
	if (out) {
		memcpy(out, text, out_len + 1);
		if (len)
			*len = out_len;
	}
	json_object_put(envelope);
	return out;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

/* A wire value made safe to put in a reason, which ends up in logs and in
 * dead-letter records: printable ASCII only, and short.  `size` >= 4. */
static const char *quote_value(const char *value, char *buf, size_t size)
{
	size_t n = 0;
	for (; value[n] && n < CE_QUOTE_MAX && n + 4 < size; n++) {
		unsigned char c = (unsigned char)value[n];
		buf[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (value[n]) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

static const char *type_name(json_object *value)
{
	return json_type_to_name(json_object_get_type(value));
}

/* The attribute `name` as a string, NULL when absent.  The JSON format
 * spec says a null attribute is the same as an absent one.  Returns -1
 * (and err) when the value is not a usable string. */
static int get_string_attr(json_object *root, const char *name, bool required,
			   const char **out, struct todod_err *err)
{
	json_object *value = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(root, name, &value) || !value) {
		if (required)
			return todod_err_set(err, "missing required attribute '%s'", name);
		return 0;
	}
	if (!json_object_is_type(value, json_type_string))
		return todod_err_set(err, "attribute '%s' must be a string, got %s", name,
				     type_name(value));
	const char *s = json_object_get_string(value);
	/* The struct hands out C strings: an embedded NUL would silently
	 * change the value (an id of "\u0000x" would become ""). */
	if (strlen(s) != (size_t)json_object_get_string_len(value))
		return todod_err_set(err, "attribute '%s' contains a NUL character", name);
	*out = s;
	return 0;
}

static int get_nonempty_attr(json_object *root, const char *name, bool required,
			     const char **out, struct todod_err *err)
{
	if (get_string_attr(root, name, required, out, err) < 0)
		return -1;
	if (*out && !**out)
		return todod_err_set(err, "attribute '%s' must not be empty", name);
	return 0;
}

static bool is_json_content_type(const char *s)
{
	size_t n = sizeof content_type_json - 1;
	if (strncasecmp(s, content_type_json, n) != 0)
		return false;
	s += n;
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0' || *s == ';';
}

/* json-c reads NaN and Infinity although they are not JSON; re-encoded
 * they would make the event unreadable for every other consumer. */
static bool numbers_finite(json_object *value)
{
	switch (json_object_get_type(value)) {
	case json_type_double:
		return isfinite(json_object_get_double(value));
	case json_type_object: {
		json_object_object_foreach(value, name, member) {
			(void)name;
			if (!numbers_finite(member))
				return false;
		}
		return true;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(value); i++)
			if (!numbers_finite(json_object_array_get_idx(value, i)))
				return false;
		return true;
	default:
		return true;
	}
}

static json_object *parse_json(const char *buf, size_t len, struct todod_err *err)
{
	struct json_tokener *tok = json_tokener_new_ex(CE_MAX_DEPTH);
	if (!tok) {
		todod_err_set(err, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *root = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);

	if (!root) {
		if (jerr == json_tokener_error_depth)
			todod_err_set(err, "JSON is nested deeper than %d levels", CE_MAX_DEPTH);
		else
			/* "continue" means the input ended inside the value. */
			todod_err_set(err, "not valid JSON: %s",
				      json_tokener_error_desc(jerr == json_tokener_continue
							      ? json_tokener_error_parse_eof
							      : jerr));
	} else if (json_tokener_get_parse_end(tok) < len) {
		/* json-c stops at a NUL byte and reports success. */
		todod_err_set(err, "not valid JSON: %s",
			      json_tokener_error_desc(json_tokener_error_parse_unexpected));
		json_object_put(root);
		root = NULL;
	}
	json_tokener_free(tok);
	return root;
}

/* Fills out->ev from out->root; every pointer stays inside root. */
static int read_attributes(struct ce_event *out, struct todod_err *err)
{
	json_object *root = out->root;
	struct todod_event *ev = &out->ev;
	char quoted[CE_QUOTE_MAX + 8];
	const char *value;

	if (get_string_attr(root, "specversion", true, &value, err) < 0)
		return -1;
	if (strcmp(value, "1.0") != 0)
		return todod_err_set(err, "attribute 'specversion' must be \"1.0\", got \"%s\"",
				     quote_value(value, quoted, sizeof quoted));

	if (get_nonempty_attr(root, "id", true, &ev->id, err) < 0 ||
	    get_nonempty_attr(root, "source", true, &ev->source, err) < 0 ||
	    get_nonempty_attr(root, "type", true, &ev->type, err) < 0 ||
	    get_nonempty_attr(root, "subject", false, &ev->subject, err) < 0 ||
	    get_string_attr(root, "time", false, &ev->time, err) < 0 ||
	    get_string_attr(root, "traceparent", false, &ev->traceparent, err) < 0)
		return -1;
	if (ev->time && !ce_time_valid(ev->time))
		return todod_err_set(err, "attribute 'time' is not RFC 3339: '%s'",
				     quote_value(ev->time, quoted, sizeof quoted));
	/* Dapr's envelope may carry an empty traceparent: no trace. */
	if (ev->traceparent && !*ev->traceparent)
		ev->traceparent = NULL;

	if (get_string_attr(root, "datacontenttype", false, &value, err) < 0)
		return -1;
	json_object *data = NULL;
	if (json_object_object_get_ex(root, "data_base64", &data) && data)
		return todod_err_set(err, "data_base64 is not supported");
	if (!json_object_object_get_ex(root, "data", &data) || !data)
		return 0;
	if (!json_object_is_type(data, json_type_object))
		return todod_err_set(err, "attribute 'data' must be a JSON object, got %s",
				     type_name(data));
	if (!numbers_finite(data))
		return todod_err_set(err, "attribute 'data' holds a number that is not finite");
	ev->data = data;

	/* An absent datacontenttype means JSON in the JSON event format. */
	if (value && !is_json_content_type(value))
		return todod_err_set(err, "attribute 'datacontenttype' must be \"%s\" when data is "
				     "present, got \"%s\"", content_type_json,
				     quote_value(value, quoted, sizeof quoted));
	return 0;
}

static size_t copy_len(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *copy_after(char **cursor, const char *s)
{
	if (!s)
		return NULL;
	char *dst = *cursor;
	size_t n = strlen(s) + 1;
	memcpy(dst, s, n);
	*cursor += n;
	return dst;
}

int ce_size_check(size_t len, size_t max_size, struct todod_err *err)
{
	/* json_tokener takes an int length. */
	size_t limit = max_size < INT_MAX ? max_size : INT_MAX;
	if (len > limit)
		return todod_err_set(err, "event is %zu bytes, limit is %zu", len, limit);
	return 0;
}

int ce_parse(const char *buf, size_t len, size_t max_size, const char *topic,
	     const char *key, struct ce_event *out, struct todod_err *err)
{
	memset(out, 0, sizeof *out);
	if (ce_size_check(len, max_size, err) != 0)
		return -1;
	if (!buf && len)
		return todod_err_set(err, "not valid JSON: no input");

	out->root = parse_json(buf ? buf : "", len, err);
	if (!out->root)
		return -1;
	if (!json_object_is_type(out->root, json_type_object)) {
		todod_err_set(err, "event must be a JSON object, got %s", type_name(out->root));
		goto fail;
	}
	if (read_attributes(out, err) < 0)
		goto fail;

	/* One block holds the raw bytes (NUL-terminated for callers that
	 * treat them as a string) and the copies of topic and key, so that
	 * the struct needs no more fields and one free() releases all. */
	out->raw = malloc(len + 1 + copy_len(topic) + copy_len(key));
	if (!out->raw) {
		todod_err_set(err, "out of memory");
		goto fail;
	}
	if (len)
		memcpy(out->raw, buf, len);
	out->raw[len] = '\0';
	char *cursor = out->raw + len + 1;
	out->ev.topic = copy_after(&cursor, topic);
	out->ev.key = copy_after(&cursor, key);
	out->ev.raw = out->raw;
	out->ev.raw_len = len;
	return 0;

fail:
	ce_event_free(out);
	return -1;
}

void ce_event_free(struct ce_event *ce)
{
	if (!ce)
		return;
	json_object_put(ce->root);
	free(ce->raw);
	memset(ce, 0, sizeof *ce);
}

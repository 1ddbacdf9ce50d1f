/* mcp_json.c - reading one JSON-RPC message exactly as JSON defines it. */
#include "mcp_json.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <todod-plugin.h>

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One tokener for every message: making one costs four allocations, as
 * many as the rest of reading a small message.  The plugin runs on the
 * loop thread only, and a message is read in one call. */
static json_tokener *shared_tokener;

/* 0 with *value set (NULL for a JSON null), or -1 with `why`. */
static int tokenize(const char *text, size_t len, json_object **value, char *why,
		    size_t why_size)
{
	if (!shared_tokener && !(shared_tokener = json_tokener_new())) {
		snprintf(why, why_size, "out of memory");
		return -1;
	}
	json_tokener *tok = shared_tokener;
	json_tokener_reset(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	*value = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	/* json-c cannot tell that a number at the very end ("42") is whole:
	 * it waits for more digits.  The text is complete, and a NUL says so. */
	if (jerr == json_tokener_continue) {
		*value = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		used = len;
	}
	json_tokener_reset(tok); /* lets go of what a failed parse held */
	/* json-c also stops, successfully, at a NUL byte: that is not space. */
	while (jerr == json_tokener_success && used < len && is_space(text[used]))
		used++;
	if (jerr == json_tokener_success && used == len)
		return 0;
	json_object_put(*value);
	*value = NULL;
	snprintf(why, why_size, "%s",
		 jerr == json_tokener_success ? "trailing data after the JSON value"
		 : jerr == json_tokener_error_parse_eof ? "the JSON text is incomplete"
		 : jerr == json_tokener_error_parse_utf8_string ? "a string is not valid UTF-8"
		 : json_tokener_error_desc(jerr));
	return -1;
}

/* NaN, Infinity and -Infinity are JavaScript, not JSON.  A number too
 * large for a double (1e999) is JSON: json-c keeps its text, which
 * PostgreSQL reads as a numeric. */
static bool only_json_numbers(json_object *value)
{
	switch (json_object_get_type(value)) {
	case json_type_double: {
		if (isfinite(json_object_get_double(value)))
			return true;
		const char *text = json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN);
		return isdigit((unsigned char)text[text[0] == '-']);
	}
	case json_type_object: {
		json_object_object_foreach(value, key, member) {
			(void)key;
			if (!only_json_numbers(member))
				return false;
		}
		return true;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(value); i++)
			if (!only_json_numbers(json_object_array_get_idx(value, i)))
				return false;
		return true;
	default:
		return true;
	}
}

/* ---- the id as written ----
 * json-c turns 99999999999999999999 into 18446744073709551615.  A reply
 * must carry the id the client sent, so the id's text is found in the
 * message, which json-c has already accepted: the scanner below only
 * skips well-formed JSON. */

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && is_space(*p))
		p++;
	return p;
}

/* `p` is at the opening quote; returns the position after the closing one. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end && *p != '"'; p++)
		if (*p == '\\')
			p++;
	return p < end ? p + 1 : end;
}

/* Past one value: a string, a number or literal, an object or an array. */
static const char *skip_value(const char *p, const char *end)
{
	if (p < end && *p == '"')
		return skip_string(p, end);
	int depth = 0;
	while (p < end) {
		char c = *p;
		if (c == '"') {
			p = skip_string(p, end);
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (depth == 0 && (c == ',' || is_space(c))) {
			return p;
		}
		p++;
	}
	return p;
}

/* The text of the value of the top-level object's member "id" (the last
 * one, as json-c keeps the last).  A key spelled with escapes is not
 * recognised; its id is then echoed as json-c read it. */
static bool find_id_text(const char *text, size_t len, const char **value, size_t *value_len)
{
	const char *p = skip_space(text, text + len), *end = text + len;
	bool found = false;
	if (p == end || *p != '{')
		return false;
	for (p++;;) {
		p = skip_space(p, end);
		if (p == end || *p != '"')
			return found;
		const char *key = p;
		p = skip_string(p, end);
		bool is_id = p - key == 4 && memcmp(key, "\"id\"", 4) == 0;
		p = skip_space(skip_space(p, end) + 1, end); /* past the ':' */
		const char *start = p;
		p = skip_value(p, end);
		if (is_id) {
			*value = start;
			*value_len = (size_t)(p - start);
			found = true;
		}
		p = skip_space(p, end);
		if (p == end || *p != ',')
			return found;
		p++;
	}
}

static void keep_id_text(json_object *msg, const char *text, size_t len)
{
	json_object *id;
	const char *value;
	size_t value_len;
	if (!json_object_object_get_ex(msg, "id", &id) || !json_object_is_type(id, json_type_int) ||
	    !find_id_text(text, len, &value, &value_len))
		return;
	json_object_set_serializer(id, json_object_userdata_to_json_string,
				   todod_xstrndup(value, value_len), json_object_free_userdata);
}

/* json-c 0.16 accepts two things RFC 8259 forbids, even in strict mode:
 * a member name in single quotes, and a control character (U+0000 to
 * U+001F) written raw inside a string.  Neither can stand in JSON text
 * outside a string, nor raw inside one, so one pass over the text that
 * json-c accepted finds both.  Besides being the error a client expects,
 * this keeps the id scanner below, which reads double-quoted names
 * only, in step with the members json-c kept. */
static const char *not_json_text(const char *text, size_t len)
{
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			else if (c < 0x20)
				return "a control character in a string must be escaped";
		} else if (c == '"') {
			in_string = true;
		} else if (c == '\'') {
			return "a string must be in double quotes";
		}
	}
	return NULL;
}

int mcp_json_read(const char *text, size_t len, json_object **value, char *why, size_t why_size)
{
	if (tokenize(text, len, value, why, why_size) != 0)
		return -1;
	const char *not_json = not_json_text(text, len);
	if (not_json) {
		json_object_put(*value);
		*value = NULL;
		snprintf(why, why_size, "%s", not_json);
		return -1;
	}
	if (!only_json_numbers(*value)) {
		json_object_put(*value);
		*value = NULL;
		snprintf(why, why_size, "NaN and Infinity are not JSON numbers");
		return -1;
	}
	if (json_object_is_type(*value, json_type_object))
		keep_id_text(*value, text, len);
	return 0;
}

void mcp_json_release(void)
{
	if (shared_tokener)
		json_tokener_free(shared_tokener);
	shared_tokener = NULL;
}

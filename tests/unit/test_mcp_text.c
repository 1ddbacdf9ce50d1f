/* test_mcp_text.c - tool replies written around the store's JSON text.
 *
 * mcp-tools used to parse the store's answer with json-c and print it
 * twice; it now copies the text (mcp_text.c).  Clients must not see the
 * difference, so every case here compares the new text, byte for byte,
 * with what the json-c way produces from the same input, and checks that
 * the reply parses strictly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp_json.h"
#include "mcp_text.h"
#include "tap.h"

#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The store's answers as PostgreSQL writes jsonb, and JSON it could write. */
static const char *const inputs[] = {
	"{}",
	"{\"task\": {}}",
	"{\"id\": 42, \"tags\": [], \"title\": \"Buy milk\", \"category\": null}",
	"{\"id\": 7, \"due_at\": \"2026-11-27T09:00:00Z\", \"priority\": \"high\", "
	"\"completed\": false, \"done\": true, \"tags\": [\"a\", \"b c\"], "
	"\"category\": {\"id\": 3, \"name\": \"work\", \"color\": \"#ff0000\"}}",
	/* every escape PostgreSQL writes */
	"{\"d\": \"quote \\\" backslash \\\\ \\b \\f \\n \\r \\t end\"}",
	"{\"c\": \"\\u0001\\u0002\\u001f\\u000b\\u007f\"}",
	/* UTF-8 as it is, and what \u escapes name, \/ */
	"{\"u\": \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8\"}",
	"{\"u\": \"\\u00e9\\u20ac\\ud83d\\ude00\\u2028\\u0041\\/\\u0022\\u005c\"}",
	"{\"z\": \"\\u0000 after a NUL\"}",
	/* numbers as PostgreSQL writes them */
	"{\"n\": [0, -1, 9223372036854775807, -9223372036854775808, 1.50, -0.25, 100000]}",
	/* blanks of every kind, nesting */
	" {\n\t\"a\" :\r\n [ [ ] , { } , [ { \"b\" : [ 1 , 2 ] } ] ] } ",
	"{\"keys in order\": 1, \"b\": 2, \"a\": 3, \"\\\"quoted\\\" key\": 4}",
	"{\"spaces\": \"  inside  strings  stay  \", \"braces\": \"{[,:]}\"}",
};

/* Not JSON as the store writes it. */
static const char *const broken[] = {
	"", "   ", "{\"a\": \"unterminated}", "{\"a\": 1", "{\"a\": 1}}", "[1, 2]]",
	"{\"a\": \"bad escape \\x\"}", "{\"a\": \"lone \\ud83d surrogate\"}",
	"{\"a\": \"lone \\ude00 low\"}", "{\"a\": \"short \\u12\"}", "{\"a\": \"raw \x01 control\"}",
	"{\"a\": \"ends in a backslash\\", "{\"a\": \x01}",
};

static char *compact_text(const char *json, bool quoted, int *rc)
{
	struct printbuf *pb = printbuf_new();
	*rc = mcp_text_compact(pb, json, strlen(json), quoted);
	char *out = strdup(pb->buf);
	printbuf_free(pb);
	return out;
}

/* How mcp-tools wrote a success before: parse, wrap, print twice. */
static char *old_tool_result(const char *wrap, const char *json)
{
	json_object *res = json_tokener_parse(json);
	json_object *doc = res;
	if (wrap) {
		doc = json_object_new_object();
		json_object_object_add(doc, wrap, res);
	}
	json_object *text = json_object_new_object();
	json_object_object_add(text, "type", json_object_new_string("text"));
	json_object_object_add(text, "text",
			       json_object_new_string(json_object_to_json_string_ext(doc, FLAGS)));
	json_object *content = json_object_new_array_ext(1);
	json_object_array_add(content, text);
	json_object *out = json_object_new_object();
	json_object_object_add(out, "content", content);
	json_object_object_add(out, "structuredContent", doc);
	char *s = strdup(json_object_to_json_string_ext(out, FLAGS));
	json_object_put(out);
	return s;
}

static char *new_tool_result(const char *wrap, const char *json, int *rc)
{
	struct printbuf *pb = printbuf_new();
	*rc = mcp_text_tool_result(pb, wrap, json, strlen(json));
	char *out = strdup(pb->buf);
	printbuf_free(pb);
	return out;
}

static bool parses_strictly(const char *text)
{
	char why[120];
	json_object *v = NULL;
	int rc = mcp_json_read(text, strlen(text), &v, why, sizeof why);
	json_object_put(v);
	return rc == 0;
}

static void test_compact(void)
{
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		json_object *parsed = json_tokener_parse(inputs[i]);
		ok(parsed, "input %zu is JSON", i);
		const char *want = json_object_to_json_string_ext(parsed, FLAGS);
		int rc;
		char *got = compact_text(inputs[i], false, &rc);
		ok(rc == 0, "input %zu compacts", i);
		is_str(got, want, "input %zu: the bytes json-c printed", i);
		free(got);

		/* Quoted: the same as json-c escaping that text as a string. */
		json_object *str = json_object_new_string(want);
		const char *quoted_want = json_object_to_json_string_ext(str, FLAGS);
		got = compact_text(inputs[i], true, &rc);
		char *framed = malloc(strlen(got) + 3);
		sprintf(framed, "\"%s\"", got);
		ok(rc == 0, "input %zu compacts quoted", i);
		is_str(framed, quoted_want, "input %zu quoted: the bytes json-c printed", i);
		free(framed);
		free(got);
		json_object_put(str);
		json_object_put(parsed);
	}
}

static void test_broken(void)
{
	for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
		int rc;
		free(compact_text(broken[i], false, &rc));
		ok(rc == -1, "broken input %zu is refused", i);
		free(new_tool_result("task", broken[i], &rc));
		ok(rc == -1, "broken input %zu makes no tool result", i);
	}
}

static void test_tool_results(void)
{
	const char *wraps[] = { NULL, "task", "odd \"key\"\\\n" };
	for (size_t w = 0; w < sizeof wraps / sizeof wraps[0]; w++) {
		for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
			int rc;
			char *got = new_tool_result(wraps[w], inputs[i], &rc);
			char *want = old_tool_result(wraps[w], inputs[i]);
			ok(rc == 0, "wrap %zu, input %zu: a result", w, i);
			is_str(got, want, "wrap %zu, input %zu: the bytes the json-c way wrote", w, i);
			ok(parses_strictly(got), "wrap %zu, input %zu: strict JSON", w, i);
			free(got);
			free(want);
		}
	}
}

/* The envelope around a result: ids of each kind a request may carry
 * come back as the client wrote them. */
static void test_ids(void)
{
	static const struct {
		const char *request;
		const char *id;
	} cases[] = {
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}", "1" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":-7,\"method\":\"x\"}", "-7" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"x\"}", "0" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":99999999999999999999,\"method\":\"x\"}",
		  "99999999999999999999" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"x\"}", "\"abc\"" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"x\"}", "\"\"" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":\"q\\\"\\\\/\\u00e9\\n\",\"method\":\"x\"}",
		  "\"q\\\"\\\\/\xc3\xa9\\n\"" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}", "null" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char why[120];
		json_object *msg = NULL;
		ok(mcp_json_read(cases[i].request, strlen(cases[i].request), &msg, why,
				 sizeof why) == 0, "request %zu reads", i);
		json_object *id = NULL;
		json_object_object_get_ex(msg, "id", &id);
		struct printbuf *pb = printbuf_new();
		printbuf_strappend(pb, "{\"jsonrpc\":\"2.0\",\"id\":");
		mcp_text_id(pb, id);
		size_t id_at = (size_t)printbuf_length(pb);
		printbuf_strappend(pb, ",\"result\":");
		ok(mcp_text_tool_result(pb, "task", inputs[3], strlen(inputs[3])) == 0,
		   "request %zu: a result", i);
		printbuf_strappend(pb, "}");
		size_t id_len = strlen(cases[i].id);
		ok(id_at >= id_len && memcmp(pb->buf + id_at - id_len, cases[i].id, id_len) == 0,
		   "request %zu: the id goes back as %s", i, cases[i].id);
		ok(parses_strictly(pb->buf), "request %zu: the reply is strict JSON", i);
		printbuf_free(pb);
		json_object_put(msg);
	}
}

static void test_escape(void)
{
	struct printbuf *pb = printbuf_new();
	const char raw[] = "a\"b\\c/d\x01\x1f\x7f\xc3\xa9\t";
	mcp_text_escape(pb, raw, sizeof raw - 1);
	is_str(pb->buf, "a\\\"b\\\\c/d\\u0001\\u001f\x7f\xc3\xa9\\t", "escaped as json-c escapes");
	printbuf_reset(pb);
	mcp_text_escape(pb, "a\0b", 3);
	ok(printbuf_length(pb) == 8 && memcmp(pb->buf, "a\\u0000b", 8) == 0, "a NUL escaped");
	printbuf_free(pb);
}

int main(void)
{
	test_compact();
	test_broken();
	test_tool_results();
	test_ids();
	test_escape();
	return tap_done();
}

/* mcp_text.h - replies written around JSON text the store already wrote.
 *
 * A tool's result arrives from the store as PostgreSQL's text of a jsonb
 * value (store_call_text).  Parsing it into json-c only to print it twice
 * (as structuredContent, and escaped as the text content) cost a tools/call
 * more than all the rest of the plugin; these functions copy it instead,
 * in one pass each, and write exactly the bytes json-c's plain printer
 * (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) wrote for the
 * parsed value, so clients see no difference. */
#ifndef TODOD_MCP_TEXT_H
#define TODOD_MCP_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

/* Appends the JSON text `json` (`len` bytes) without blanks between
 * tokens and with its strings escaped as json-c escapes them (\" \\ \b
 * \f \n \r \t, other control characters as \u00xx, everything else as
 * UTF-8, "\/" as "/").  Numbers are copied as written, as json-c does for
 * every number PostgreSQL writes (it would rewrite -0, which PostgreSQL
 * never writes, and integers beyond 64 bits, which it saturates).
 * `quoted`: appends that text escaped once more, as the contents of a
 * JSON string.  Returns 0, or -1 for text that is not JSON as the store
 * writes it (an unterminated string or container, a control character in
 * a string, a bad escape or lone surrogate); `pb` then holds part of it. */
int mcp_text_compact(struct printbuf *pb, const char *json, size_t len, bool quoted);

/* Appends `s` (`len` bytes) as the contents of a JSON string, escaped as
 * json-c escapes. */
void mcp_text_escape(struct printbuf *pb, const char *s, size_t len);

/* Appends the CallToolResult of a successful tool call whose structured
 * content is {wrap: json}, or the object `json` itself when `wrap` is
 * NULL: {"content":[{"type":"text","text":"<it, escaped>"}],
 * "structuredContent":<it>}.  Returns 0, or -1 (see mcp_text_compact). */
int mcp_text_tool_result(struct printbuf *pb, const char *wrap, const char *json, size_t len);

/* Appends a JSON-RPC id as json-c prints it (an integer id read by
 * mcp_json_read keeps the digits the client sent); NULL appends null. */
void mcp_text_id(struct printbuf *pb, json_object *id);

#endif

/* mcp_json.h - reading one JSON-RPC message exactly as JSON defines it.
 *
 * json-c is lenient where MCP must not be: it takes NaN and Infinity as
 * numbers, leaves invalid UTF-8 in strings unless asked, waits for more
 * input after a bare top-level number, and saturates integers beyond 64
 * bits.  Both transports (Streamable HTTP, stdio) read through here. */
#ifndef TODOD_MCP_JSON_H
#define TODOD_MCP_JSON_H

#include <stddef.h>

#include <json-c/json.h>

/* 0 with *value the value of `text` (the whole of it, white space around
 * allowed; NULL for a JSON null), or -1 with a sentence in `why` ("a
 * string is not valid UTF-8", ...).  A top-level object's integer "id"
 * serializes as the digits sent, so a reply echoes it unchanged whatever
 * its size. */
int mcp_json_read(const char *text, size_t len, json_object **value, char *why, size_t why_size);

/* Frees what mcp_json_read keeps between calls; at plugin destroy. */
void mcp_json_release(void);

#endif

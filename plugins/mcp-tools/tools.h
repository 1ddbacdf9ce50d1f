/* tools.h - the 18 todo tools of the mcp-tools plugin, independent of the
 * protocol around them: each tool has its schemas and annotations, and
 * runs by turning its arguments into store calls.
 *
 * The protocol layer (mcp_server.c) lists them for tools/list and calls
 * tool->run for tools/call.  A tool answers exactly once through `done`:
 *   - success:  done(result, NULL, arg) where `result` holds the
 *     structured content (a JSON object matching output_schema) as the
 *     store's JSON text, borrowed for the duration of the call;
 *   - business or validation failure: done(NULL, &error, arg); the
 *     protocol layer turns it into a CallToolResult with isError: true.
 * Protocol errors (unknown tool, arguments that are not an object) are the
 * protocol layer's business, before run() is called. */
#ifndef TODOD_MCP_TOOLS_H
#define TODOD_MCP_TOOLS_H

#include <stdbool.h>
#include <stddef.h>

#include <todod-plugin.h>

struct tool_error {
	const char *code;    /* stable: TASK_NOT_FOUND, INVALID_DUE_DATE, ... */
	const char *field;   /* the offending argument, or NULL */
	const char *message; /* a sentence a language model can act on */
};

/* The structured content is {wrap: json}, or `json` itself when `wrap` is
 * NULL; `json` (`len` bytes) is a JSON object as the store wrote it. */
struct tool_result {
	const char *wrap;
	const char *json;
	size_t len;
};

typedef void (*tool_done)(const struct tool_result *result, const struct tool_error *error,
			  void *arg);

/* What a tool needs from the plugin to run. */
struct tool_env {
	const struct todod_api *api;
	struct todod_ctx *ctx;
};

struct tool {
	const char *name;
	const char *title;
	const char *description;   /* written for a language model */
	const char *input_schema;  /* JSON text; closed: additionalProperties false */
	const char *output_schema; /* JSON text */
	bool read_only;
	bool destructive;
	bool idempotent;
	/* `args` is borrowed for the duration of run() only: copy what an
	 * asynchronous step needs.  Returns -1 (nothing started, done not
	 * called) only when the call cannot even be attempted; `err` says why. */
	int (*run)(const struct tool_env *env, int64_t user_id, json_object *args,
		   tool_done done, void *arg, struct todod_err *err);
};

/* Free what the tools cache (parsed schemas); at plugin destroy. */
void tools_release(void);

/* All tools, in the order tools/list shows them. */
const struct tool *tools_all(size_t *n);
const struct tool *tool_find(const char *name);

#endif

/* tools_internal.h - what tools.c, tools_tasks.c and tools_labels.c share:
 * the schema fragments several tools answer with, and the machinery that
 * runs a tool as a short chain of store calls.
 *
 * A tool is described by a `struct tool_plan`: the store operation that
 * does its work, the argument the store calls "id", and how the store's
 * result is wrapped.  tool_run_plan() checks the arguments against the
 * tool's input schema (unknown and missing fields), renames the id, and
 * either calls the store at once or hands the call to the plan's `begin`
 * for tools that need to look at something first.  Whatever happens, the
 * tool's `done` fires exactly once, and never from inside run(). */
#ifndef TODOD_MCP_TOOLS_INTERNAL_H
#define TODOD_MCP_TOOLS_INTERNAL_H

#include "tools.h"

/* ---- schema fragments -------------------------------------------------- */

/* Output schemas leave additionalProperties open on purpose: a field the
 * store adds later must not make clients that validate structuredContent
 * reject every answer. */
#define SCHEMA_UTC_TIME_OR_NULL \
	"{\"type\":[\"string\",\"null\"],\"description\":\"RFC 3339 in UTC, e.g. 2026-11-27T09:00:00Z\"}"

#define SCHEMA_LABEL \
	"{\"type\":\"object\",\"properties\":{" \
	"\"id\":{\"type\":\"integer\"}," \
	"\"name\":{\"type\":\"string\"}," \
	"\"color\":{\"type\":[\"string\",\"null\"],\"description\":\"#RRGGBB or null\"}}," \
	"\"required\":[\"id\",\"name\",\"color\"]}"

#define SCHEMA_TASK \
	"{\"type\":\"object\",\"properties\":{" \
	"\"id\":{\"type\":\"integer\",\"description\":\"pass it as task_id to the other task tools\"}," \
	"\"title\":{\"type\":\"string\"}," \
	"\"description\":{\"type\":[\"string\",\"null\"]}," \
	"\"priority\":{\"enum\":[\"low\",\"medium\",\"high\",\"urgent\"]}," \
	"\"status\":{\"enum\":[\"pending\",\"completed\"]}," \
	"\"due_at\":" SCHEMA_UTC_TIME_OR_NULL "," \
	"\"remind_at\":" SCHEMA_UTC_TIME_OR_NULL "," \
	"\"reminder_state\":{\"enum\":[\"none\",\"pending\",\"fired\",\"skipped\"]}," \
	"\"rrule\":{\"type\":[\"string\",\"null\"],\"description\":\"RFC 5545 recurrence rule\"}," \
	"\"series_id\":{\"type\":[\"integer\",\"null\"],\"description\":\"id of the first task of a recurring series\"}," \
	"\"occurrence\":{\"type\":\"integer\",\"description\":\"1 for the first task of a series, 2 for its successor, ...\"}," \
	"\"category\":{\"anyOf\":[" SCHEMA_LABEL ",{\"type\":\"null\"}]}," \
	"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}," \
	"\"completed_at\":" SCHEMA_UTC_TIME_OR_NULL "," \
	"\"created_at\":{\"type\":\"string\"}," \
	"\"updated_at\":{\"type\":\"string\"}}," \
	"\"required\":[\"id\",\"title\",\"description\",\"priority\",\"status\",\"due_at\"," \
	"\"remind_at\",\"reminder_state\",\"rrule\",\"category\",\"tags\",\"completed_at\"," \
	"\"created_at\",\"updated_at\"]}"

/* {"task": {...}}: what every tool that changes or reads one task answers. */
#define SCHEMA_TASK_RESULT \
	"{\"type\":\"object\",\"properties\":{\"task\":" SCHEMA_TASK "},\"required\":[\"task\"]}"

#define SCHEMA_TASK_ID_PROPERTY \
	"\"task_id\":{\"type\":\"integer\",\"minimum\":1," \
	"\"description\":\"The task's id, as in the id field of a task returned by any task tool.\"}"

/* A task may carry at most 10 tags of 1-30 characters each. */
#define SCHEMA_TAG_NAMES(what) \
	"{\"type\":\"array\",\"maxItems\":10,\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":30}," \
	"\"description\":\"" what "\"}"

/* ---- running a tool ---------------------------------------------------- */

struct tool_call;

struct tool_plan {
	const char *tool;   /* the tool's name: whose input schema the arguments must fit */
	const char *op;     /* the store operation that does the work */
	const char *id_arg; /* the argument sent as the store's "id", or NULL */
	const char *wrap;   /* the result is answered as {wrap: result}; NULL: as it is */
	/* Optional: runs instead of the store call, once the arguments are
	 * checked; it must end in tool_call_commit() or tool_call_fail(). */
	void (*begin)(struct tool_call *c);
};

int tool_run_plan(const struct tool_plan *plan, const struct tool_env *env, int64_t user_id,
		  json_object *args, tool_done done, void *arg, struct todod_err *err);

/* One run() per tool, all of them the same call with their own plan. */
#define TOOL_RUN(fn, plan) \
	static int fn(const struct tool_env *env, int64_t user_id, json_object *args, \
		      tool_done done, void *arg, struct todod_err *err) \
	{ \
		return tool_run_plan(&(plan), env, user_id, args, done, arg, err); \
	}

/* The arguments as the plan's store operation takes them (the id
 * renamed). */
json_object *tool_call_args(struct tool_call *c);

/* Runs the plan's operation with tool_call_args() and answers with its result. */
void tool_call_commit(struct tool_call *c);
/* Ends the call with a tool error. */
void tool_call_fail(struct tool_call *c, const char *code, const char *field,
		    const char *fmt, ...) TODOD_PRINTF(4, 5);

/* ---- the tools ----------------------------------------------------------- */

extern const struct tool task_tools[];
extern const size_t task_tools_count;
extern const struct tool label_tools[];
extern const size_t label_tools_count;

#endif

/* tools.c - the tool list, and running a tool as store calls: checking its
 * arguments, renaming them to the store's, and turning the store's result
 * or error into the tool's answer. */
#include "tools_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the list ------------------------------------------------------------ */

#define TOOLS_MAX 32

static struct tool all_tools[TOOLS_MAX];
static size_t all_count;

/* The tools live in two files; tools/list wants one array, task tools first. */
const struct tool *tools_all(size_t *n)
{
	if (all_count == 0) {
		memcpy(all_tools, task_tools, task_tools_count * sizeof *task_tools);
		memcpy(all_tools + task_tools_count, label_tools,
		       label_tools_count * sizeof *label_tools);
		all_count = task_tools_count + label_tools_count;
	}
	*n = all_count;
	return all_tools;
}

_Static_assert(TOOLS_MAX >= 18, "room for every tool");

const struct tool *tool_find(const char *name)
{
	size_t n;
	const struct tool *tools = tools_all(&n);
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(tools[i].name, name) == 0)
			return &tools[i];
	return NULL;
}

/* ---- one call ------------------------------------------------------------ */

struct tool_call {
	struct tool_env env;
	int64_t user_id;
	const struct tool_plan *plan;
	tool_done done;
	void *done_arg;
	json_object *args;  /* for the store: the tool's arguments, id renamed */
	bool in_run;        /* still inside run(), where done must not fire */
	char code[64];
	char field[64];
	char message[512];
};

json_object *tool_call_args(struct tool_call *c)
{
	return c->args;
}

static void call_free(struct tool_call *c)
{
	json_object_put(c->args);
	free(c);
}

static void answer(struct tool_call *c, const char *json, size_t len)
{
	const struct tool_result result = { c->plan->wrap, json, len };
	c->done(&result, NULL, c->done_arg);
	call_free(c);
}

static void answer_error(struct tool_call *c)
{
	const struct tool_error e = {
		.code = c->code,
		.field = c->field[0] ? c->field : NULL,
		.message = c->message,
	};
	c->done(NULL, &e, c->done_arg);
	call_free(c);
}

static void answer_error_later(void *arg)
{
	answer_error(arg);
}

/* The error is kept in the call because the store's strings live only as
 * long as its callback, and an error found inside run() is answered from
 * the next loop turn, so that done never fires before run() returns. */
static void fail_with(struct tool_call *c, const char *code, const char *field, const char *message)
{
	snprintf(c->code, sizeof c->code, "%s", code);
	snprintf(c->field, sizeof c->field, "%s", field ? field : "");
	snprintf(c->message, sizeof c->message, "%s", message);
	if (!c->in_run)
		answer_error(c);
	else if (c->env.api->timer_add(c->env.ctx, NULL, 0, 0, answer_error_later, c) != 0)
		abort(); /* only out of memory; done must not fire inside run() */
}

void tool_call_fail(struct tool_call *c, const char *code, const char *field, const char *fmt, ...)
{
	char message[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	fail_with(c, code, field, message);
}

/* The store names the id "id"; the model knows it by the tool's name. */
static const char *tool_field(const struct tool_call *c, const char *store_field)
{
	if (store_field && c->plan->id_arg && strcmp(store_field, "id") == 0)
		return c->plan->id_arg;
	return store_field;
}

/* The result stays the store's text: the reply carries it as it is. */
static void on_store(const char *json, size_t len, const struct todod_store_error *e, void *arg)
{
	struct tool_call *c = arg;
	if (!e) {
		answer(c, json, len);
		return;
	}
	const char *message = e->text ? e->text : e->code;
	/* libpq's words mean nothing to a model; that it may try again does. */
	if (strcmp(e->code, "DATABASE_UNAVAILABLE") == 0)
		message = "The task database cannot be reached right now. Try again in a few seconds; "
			  "if this call was a change, check with get_task or list_tasks whether it "
			  "was made before repeating it.";
	/* The store's sentences quote its own argument name, "id". */
	char renamed[512];
	const char *quoted = c->plan->id_arg ? strstr(message, "\"id\"") : NULL;
	if (quoted) {
		snprintf(renamed, sizeof renamed, "%.*s\"%s\"%s", (int)(quoted - message), message,
			 c->plan->id_arg, quoted + 4);
		message = renamed;
	}
	fail_with(c, e->code, tool_field(c, e->field), message);
}

void tool_call_commit(struct tool_call *c)
{
	struct todod_err err = { { 0 } };
	if (c->env.api->store_call_text(c->env.ctx, c->plan->op, c->user_id, c->args, NULL, NULL,
					on_store, c, &err) == 0)
		return;
	c->env.api->log(c->env.ctx, TODOD_LOG_ERROR, "tool %s: %s", c->plan->tool, err.text);
	tool_call_fail(c, "INTERNAL_ERROR", NULL,
		       "The server could not run this tool; its log has the details.");
}

/* ---- arguments --------------------------------------------------------- */

/* Input schemas, parsed on first use rather than on every call. */
static struct {
	const char *tool;
	json_object *schema;
} parsed_schemas[32];

static json_object *input_schema_of(const char *name)
{
	size_t i;
	for (i = 0; i < sizeof parsed_schemas / sizeof parsed_schemas[0] && parsed_schemas[i].tool; i++)
		if (strcmp(parsed_schemas[i].tool, name) == 0)
			return parsed_schemas[i].schema;
	const struct tool *tool = tool_find(name);
	if (!tool || i == sizeof parsed_schemas / sizeof parsed_schemas[0])
		return NULL;
	parsed_schemas[i].tool = tool->name;
	parsed_schemas[i].schema = json_tokener_parse(tool->input_schema);
	return parsed_schemas[i].schema;
}

void tools_release(void)
{
	for (size_t i = 0; i < sizeof parsed_schemas / sizeof parsed_schemas[0]; i++) {
		json_object_put(parsed_schemas[i].schema);
		parsed_schemas[i].tool = NULL;
		parsed_schemas[i].schema = NULL;
	}
}

/* What the input schema says about fields, checked here so that the model
 * hears about them in its own vocabulary (task_id, not the store's id).
 * Types, lengths and formats are the store's to check: it answers with
 * stable codes such as TITLE_TOO_LONG. */
static bool check_fields(struct tool_call *c, json_object *args)
{
	json_object *schema = input_schema_of(c->plan->tool);
	json_object *props = NULL, *required = NULL;
	if (!schema || !json_object_object_get_ex(schema, "properties", &props))
		props = NULL;
	if (!json_object_object_get_ex(schema, "required", &required) ||
	    !json_object_is_type(required, json_type_array))
		required = NULL;
	bool good = true;

	json_object_object_foreach(args, key, value) {
		(void)value;
		if (props && json_object_object_get_ex(props, key, NULL))
			continue;
		char known[400] = "";
		size_t len = 0;
		if (props) {
			json_object_object_foreach(props, name, spec) {
				(void)spec;
				if (len < sizeof known)
					len += (size_t)snprintf(known + len, sizeof known - len, "%s%s",
								len ? ", " : "", name);
			}
		}
		tool_call_fail(c, "UNKNOWN_FIELD", key, "%s takes no argument \"%s\"; it takes: %s.",
			       c->plan->tool, key, len ? known : "nothing");
		good = false;
		break;
	}
	for (size_t i = 0; good && required && i < json_object_array_length(required); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(required, i));
		json_object *given;
		if (json_object_object_get_ex(args, name, &given) && given)
			continue;
		tool_call_fail(c, "FIELD_REQUIRED", name, "\"%s\" is required.", name);
		good = false;
	}
	return good;
}

/* A copy whose values are shared: steps add or replace keys, never edit
 * the caller's values. */
static json_object *store_args(const struct tool_plan *plan, json_object *args)
{
	json_object *copy = json_object_new_object();
	json_object_object_foreach(args, key, value) {
		const char *name = plan->id_arg && strcmp(key, plan->id_arg) == 0 ? "id" : key;
		json_object_object_add(copy, name, json_object_get(value));
	}
	return copy;
}

int tool_run_plan(const struct tool_plan *plan, const struct tool_env *env, int64_t user_id,
		  json_object *args, tool_done done, void *arg, struct todod_err *err)
{
	json_object *none = NULL;
	if (!args)
		args = none = json_object_new_object();
	if (!json_object_is_type(args, json_type_object)) {
		json_object_put(none);
		return todod_err_set(err, "%s: the arguments must be a JSON object", plan->tool);
	}
	struct tool_call *c = todod_xcalloc(1, sizeof *c);
	c->env = *env;
	c->user_id = user_id;
	c->plan = plan;
	c->done = done;
	c->done_arg = arg;
	c->in_run = true;
	c->args = store_args(plan, args);
	json_object_put(none);

	if (check_fields(c, args)) {
		if (plan->begin) {
			plan->begin(c);
		} else if (env->api->store_call_text(env->ctx, plan->op, user_id, c->args, NULL,
						     NULL, on_store, c, err) != 0) {
			call_free(c);
			return -1;
		}
	}
	/* Nothing answers inside run(): store callbacks come later and errors
	 * are deferred, so `c` is still there. */
	c->in_run = false;
	return 0;
}

/* mcp_server.c - MCP's JSON-RPC methods, independent of the transport.
 *
 * Everything that does not change between requests (the initialize result
 * per protocol revision, the tools/list pages) is serialized once at start,
 * so answering ping, initialize or tools/list is a matter of splicing the
 * request id into a prepared text. */
#include "mcp_server.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/printbuf.h>

#include "mcp_json.h"
#include "mcp_text.h"
#include "tools.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define TOOLS_PAGE_SIZE 10

/* Newest first: an unknown requested revision is answered with the first. */
static const char *const versions[] = { "2025-11-25", "2025-06-18", MCP_VERSION_FALLBACK };
#define N_VERSIONS (sizeof versions / sizeof versions[0])

/* RFC 5424 severities as MCP spells them, least severe first. */
static const char *const log_levels[] = {
	"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency",
};

static const char instructions[] =
	"todod keeps the user's todo list: tasks with a title, description, priority "
	"(low, medium, high, urgent), due date, reminder, optional RFC 5545 recurrence, "
	"a category and tags. Use the tools to list, search, create, update, complete "
	"and delete tasks, and to manage categories and tags. Every call acts "
	"on the authenticated user's own data only. Dates are RFC 3339 timestamps. A tool "
	"that cannot do what was asked returns isError with a JSON object "
	"{\"error\":{\"code\",\"field\",\"message\"}}: read the message, fix the named "
	"argument and try again.";

struct tools_page {
	char *cursor; /* what tools/list sends to get this page; NULL for the first */
	char *result; /* the serialized ListToolsResult */
};

/* A tool's series, registered once so that a call only adds to them. */
struct tool_metrics {
	struct todod_metric *ok, *refused, *failed, *duration;
};

struct mcp_server {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	struct tool_env env;
	char *init_result[N_VERSIONS];
	struct tools_page *pages;
	size_t n_pages;
	struct printbuf *out; /* scratch for the reply being written */
	unsigned inflight;
	struct tool_metrics *metrics; /* one per tool, in tools_all() order */
};

/* A tools/call waiting for its tool. */
struct pending_call {
	struct mcp_server *srv;
	json_object *id;
	mcp_reply_fn reply;
	void *arg;
	const struct tool_metrics *metrics;
	int64_t started_us; /* mono_us */
};

const char *mcp_version_find(const char *text)
{
	for (size_t i = 0; i < N_VERSIONS; i++)
		if (strcmp(text, versions[i]) == 0)
			return versions[i];
	return NULL;
}

/* ---- replies ---------------------------------------------------------------------- */

/* `body` is the serialized result or error object; `id` NULL writes null. */
static void send_envelope(struct mcp_server *srv, int status, json_object *id, const char *member,
			  const char *body, size_t body_len, mcp_reply_fn reply, void *arg)
{
	struct printbuf *pb = srv->out;
	printbuf_reset(pb);
	printbuf_strappend(pb, "{\"jsonrpc\":\"2.0\",\"id\":");
	mcp_text_id(pb, id);
	sprintbuf(pb, ",\"%s\":", member);
	printbuf_memappend_fast(pb, body, (int)body_len);
	printbuf_strappend(pb, "}");
	reply(status, pb->buf, (size_t)printbuf_length(pb), arg);
}

static void send_result_text(struct mcp_server *srv, json_object *id, const char *result,
			     mcp_reply_fn reply, void *arg)
{
	send_envelope(srv, 200, id, "result", result, strlen(result), reply, arg);
}

/* Takes ownership of `result`. */
static void send_result(struct mcp_server *srv, json_object *id, json_object *result,
			mcp_reply_fn reply, void *arg)
{
	size_t len;
	const char *text = json_object_to_json_string_length(result, JSON_FLAGS, &len);
	send_envelope(srv, 200, id, "result", text, len, reply, arg);
	json_object_put(result);
}

static void send_error(struct mcp_server *srv, int status, json_object *id, int code,
		       const char *message, mcp_reply_fn reply, void *arg)
{
	json_object *err = json_object_new_object();
	json_object_object_add(err, "code", json_object_new_int(code));
	json_object_object_add(err, "message", json_object_new_string(message));
	size_t len;
	const char *text = json_object_to_json_string_length(err, JSON_FLAGS, &len);
	send_envelope(srv, status, id, "error", text, len, reply, arg);
	json_object_put(err);
}

void mcp_reply_error(struct mcp_server *srv, int status, int code, const char *message,
		     mcp_reply_fn reply, void *arg)
{
	send_error(srv, status, NULL, code, message, reply, arg);
}

/* ---- parsing ---------------------------------------------------------------------- */

json_object *mcp_parse(struct mcp_server *srv, const char *text, size_t len, mcp_reply_fn reply,
		       void *arg)
{
	char why[120];
	json_object *msg;
	if (mcp_json_read(text, len, &msg, why, sizeof why) != 0) {
		char message[160];
		snprintf(message, sizeof message, "Parse error: %s", why);
		send_error(srv, 400, NULL, MCP_PARSE_ERROR, message, reply, arg);
		return NULL;
	}
	if (json_object_is_type(msg, json_type_array)) {
		json_object_put(msg);
		send_error(srv, 400, NULL, MCP_INVALID_REQUEST,
			   "Invalid Request: JSON-RPC batches are not supported; send one message",
			   reply, arg);
		return NULL;
	}
	if (!json_object_is_type(msg, json_type_object)) {
		json_object_put(msg);
		send_error(srv, 400, NULL, MCP_INVALID_REQUEST,
			   "Invalid Request: a message is a JSON object", reply, arg);
		return NULL;
	}
	return msg;
}

static json_object *member(json_object *obj, const char *key)
{
	json_object *v = NULL;
	return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

/* A usable request id: a string or an integer, never null. */
static bool id_valid(json_object *id)
{
	return json_object_is_type(id, json_type_string) || json_object_is_type(id, json_type_int);
}

const char *mcp_request_method(json_object *msg)
{
	json_object *method = member(msg, "method");
	if (!member(msg, "id") || !json_object_is_type(method, json_type_string))
		return NULL;
	return json_object_get_string(method);
}

/* ---- methods ---------------------------------------------------------------------- */

static const char *string_param(json_object *params, const char *key)
{
	json_object *v = member(params, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void do_initialize(struct mcp_server *srv, struct mcp_peer *peer, json_object *id,
			  json_object *params, mcp_reply_fn reply, void *arg)
{
	const char *requested = string_param(params, "protocolVersion");
	if (!requested) {
		send_error(srv, 200, id, MCP_INVALID_PARAMS,
			   "Invalid params: \"protocolVersion\" (a string) is required", reply, arg);
		return;
	}
	/* An unknown revision is no error: we offer our newest, and the client
	 * decides whether it can speak it. */
	size_t chosen = 0;
	for (size_t i = 0; i < N_VERSIONS; i++)
		if (strcmp(requested, versions[i]) == 0)
			chosen = i;
	peer->version = versions[chosen];
	peer->initialized = false;
	send_result_text(srv, id, srv->init_result[chosen], reply, arg);
}

static void do_tools_list(struct mcp_server *srv, json_object *id, json_object *params,
			  mcp_reply_fn reply, void *arg)
{
	json_object *cursor = member(params, "cursor");
	size_t page = 0;
	if (cursor && !json_object_is_type(cursor, json_type_null)) {
		const char *text = json_object_is_type(cursor, json_type_string)
					   ? json_object_get_string(cursor) : "";
		for (page = 1; page < srv->n_pages; page++)
			if (strcmp(text, srv->pages[page].cursor) == 0)
				break;
		if (page == srv->n_pages) {
			send_error(srv, 200, id, MCP_INVALID_PARAMS,
				   "Invalid params: unknown cursor; start again without one", reply,
				   arg);
			return;
		}
	}
	send_result_text(srv, id, srv->pages[page].result, reply, arg);
}

static void do_set_level(struct mcp_server *srv, struct mcp_peer *peer, json_object *id,
			 json_object *params, mcp_reply_fn reply, void *arg)
{
	const char *level = string_param(params, "level");
	for (size_t i = 0; level && i < sizeof log_levels / sizeof log_levels[0]; i++) {
		if (strcmp(level, log_levels[i]) == 0) {
			peer->log_level = (int)i;
			send_result_text(srv, id, "{}", reply, arg);
			return;
		}
	}
	send_error(srv, 200, id, MCP_INVALID_PARAMS,
		   "Invalid params: \"level\" must be one of debug, info, notice, warning, error, "
		   "critical, alert, emergency",
		   reply, arg);
}

/* The error object the model reads; `field` is null when no argument is to blame. */
static json_object *tool_error_json(const struct tool_error *error)
{
	json_object *detail = json_object_new_object();
	json_object_object_add(detail, "code", json_object_new_string(error->code ? error->code : "ERROR"));
	json_object_object_add(detail, "field",
			       error->field ? json_object_new_string(error->field) : NULL);
	json_object_object_add(detail, "message",
			       json_object_new_string(error->message ? error->message : ""));
	json_object *doc = json_object_new_object();
	json_object_object_add(doc, "error", detail);
	return doc;
}

/* The server's own failures (the database away, a tool that could not
 * run) apart from the caller's mistakes (an unknown task, a bad date):
 * only the former say todod is unwell. */
static bool failed_on_our_side(const struct tool_error *error)
{
	return strcmp(error->code, "INTERNAL_ERROR") == 0 ||
	       strcmp(error->code, "DATABASE_UNAVAILABLE") == 0;
}

/* Counts a finished call; `started` false: the tool could not start. */
static void count_call(const struct mcp_server *srv, const struct pending_call *call,
		       const struct tool_error *error, bool started)
{
	const struct tool_metrics *m = call->metrics;
	struct todod_metric *series = !started                    ? m->failed
				      : !error                    ? m->ok
				      : failed_on_our_side(error) ? m->failed
								  : m->refused;
	srv->api->metric_add(series, 1);
	srv->api->metric_observe(call->metrics->duration,
				 (double)(srv->api->mono_us() - call->started_us) / 1e6);
}

/* A success written into srv->out around the store's text, without
 * parsing it (see mcp_text.h); false when that text is not JSON. */
static bool write_tool_success(struct mcp_server *srv, const struct pending_call *call,
			       const struct tool_result *result)
{
	struct printbuf *pb = srv->out;
	printbuf_reset(pb);
	printbuf_strappend(pb, "{\"jsonrpc\":\"2.0\",\"id\":");
	mcp_text_id(pb, call->id);
	printbuf_strappend(pb, ",\"result\":");
	if (mcp_text_tool_result(pb, result->wrap, result->json, result->len) != 0)
		return false;
	printbuf_strappend(pb, "}");
	return true;
}

/* The same JSON twice: as text for clients that only read content, and as
 * structuredContent for those that read the output schema.  An error result
 * carries no structuredContent: the TypeScript SDK client validates
 * structuredContent against the outputSchema even when isError is set, and
 * an error object never matches a success schema. */
static void tool_done_cb(const struct tool_result *result, const struct tool_error *error,
			 void *arg)
{
	struct pending_call *call = arg;
	struct mcp_server *srv = call->srv;
	static const struct tool_error not_json = {
		"INTERNAL_ERROR", NULL, "The store returned invalid JSON; the server log has the "
					"details.",
	};
	if (!error && write_tool_success(srv, call, result)) {
		count_call(srv, call, NULL, true);
		call->reply(200, srv->out->buf, (size_t)printbuf_length(srv->out), call->arg);
		goto done;
	}
	if (!error) {
		srv->api->log(srv->ctx, TODOD_LOG_ERROR, "a tool's result (%zu bytes) is not JSON",
			      result->len);
		error = &not_json;
	}
	count_call(srv, call, error, true);
	json_object *doc = tool_error_json(error);
	json_object *text = json_object_new_object();
	json_object_object_add(text, "type", json_object_new_string("text"));
	json_object_object_add(text, "text",
			       json_object_new_string(json_object_to_json_string_ext(doc, JSON_FLAGS)));
	json_object *content = json_object_new_array_ext(1);
	json_object_array_add(content, text);
	json_object *out = json_object_new_object();
	json_object_object_add(out, "content", content);
	json_object_object_add(out, "isError", json_object_new_boolean(1));
	json_object_put(doc);
	send_result(srv, call->id, out, call->reply, call->arg);
done:
	json_object_put(call->id);
	free(call);
	srv->inflight--;
}

static void do_tools_call(struct mcp_server *srv, struct mcp_peer *peer, json_object *id,
			  json_object *params, mcp_reply_fn reply, void *arg)
{
	const char *name = string_param(params, "name");
	if (!name) {
		send_error(srv, 200, id, MCP_INVALID_PARAMS,
			   "Invalid params: \"name\" (a string) is required", reply, arg);
		return;
	}
	const struct tool *tool = tool_find(name);
	if (!tool) {
		char message[200];
		snprintf(message, sizeof message,
			 "Invalid params: unknown tool \"%.100s\"; tools/list names them", name);
		send_error(srv, 200, id, MCP_INVALID_PARAMS, message, reply, arg);
		return;
	}
	json_object *args = member(params, "arguments");
	json_object *empty = NULL;
	if (!args || json_object_is_type(args, json_type_null)) {
		args = empty = json_object_new_object();
	} else if (!json_object_is_type(args, json_type_object)) {
		send_error(srv, 200, id, MCP_INVALID_PARAMS,
			   "Invalid params: \"arguments\" must be an object", reply, arg);
		return;
	}
	struct pending_call *call = todod_xmalloc(sizeof *call);
	size_t n;
	*call = (struct pending_call){ srv, json_object_get(id), reply, arg,
				       &srv->metrics[tool - tools_all(&n)], srv->api->mono_us() };
	srv->inflight++;
	struct todod_err err = { "" };
	/* The tool may answer before run() returns; `call` is then gone. */
	if (tool->run(&srv->env, peer->user_id, args, tool_done_cb, call, &err) != 0) {
		srv->api->log(srv->ctx, TODOD_LOG_WARN, "tool %s could not start: %s", name,
			      err.text);
		count_call(srv, call, NULL, false);
		char message[600];
		snprintf(message, sizeof message, "Internal error: %s", err.text);
		send_error(srv, 200, id, MCP_INTERNAL_ERROR, message, reply, arg);
		json_object_put(call->id);
		free(call);
		srv->inflight--;
	}
	json_object_put(empty);
}

void mcp_handle(struct mcp_server *srv, struct mcp_peer *peer, json_object *msg,
		mcp_reply_fn reply, void *arg)
{
	json_object *id = member(msg, "id");
	json_object *method_obj = member(msg, "method");
	json_object *jsonrpc = member(msg, "jsonrpc");
	bool has_id = id && !json_object_is_type(id, json_type_null);

	if (!json_object_is_type(jsonrpc, json_type_string) ||
	    strcmp(json_object_get_string(jsonrpc), "2.0") != 0) {
		send_error(srv, 400, id_valid(id) ? id : NULL, MCP_INVALID_REQUEST,
			   "Invalid Request: \"jsonrpc\" must be \"2.0\"", reply, arg);
		return;
	}
	if (!method_obj) {
		/* A response to a request we never send: accepted and ignored. */
		if (has_id && (member(msg, "result") || member(msg, "error"))) {
			reply(202, NULL, 0, arg);
			return;
		}
		send_error(srv, 400, id_valid(id) ? id : NULL, MCP_INVALID_REQUEST,
			   "Invalid Request: a message needs a \"method\"", reply, arg);
		return;
	}
	/* json-c gives a JSON null as NULL: "id": null is present but null,
	 * which MCP forbids, and must not pass for a notification. */
	bool id_null = !id && json_object_object_get_ex(msg, "id", NULL);
	if (!json_object_is_type(method_obj, json_type_string) || (id && !id_valid(id)) || id_null) {
		send_error(srv, 400, NULL, MCP_INVALID_REQUEST,
			   "Invalid Request: \"method\" must be a string and \"id\" a string or an "
			   "integer",
			   reply, arg);
		return;
	}
	const char *method = json_object_get_string(method_obj);
	json_object *params = member(msg, "params");
	if (params && !json_object_is_type(params, json_type_object) &&
	    !json_object_is_type(params, json_type_null)) {
		if (id)
			send_error(srv, 200, id, MCP_INVALID_PARAMS,
				   "Invalid params: \"params\" must be an object", reply, arg);
		else
			reply(202, NULL, 0, arg);
		return;
	}

	if (!id) {
		/* Notifications.  notifications/cancelled is accepted but cannot
		 * stop anything: a store operation, once sent, runs to its end, and
		 * its answer is small. */
		if (strcmp(method, "notifications/initialized") == 0)
			peer->initialized = true;
		reply(202, NULL, 0, arg);
		return;
	}
	if (strcmp(method, "ping") == 0) {
		send_result_text(srv, id, "{}", reply, arg);
	} else if (strcmp(method, "initialize") == 0) {
		do_initialize(srv, peer, id, params, reply, arg);
	} else if (!peer->version) {
		send_error(srv, 200, id, MCP_INVALID_REQUEST,
			   "Invalid Request: the session is not initialized; send initialize first",
			   reply, arg);
	} else if (strcmp(method, "tools/call") == 0) {
		do_tools_call(srv, peer, id, params, reply, arg);
	} else if (strcmp(method, "tools/list") == 0) {
		do_tools_list(srv, id, params, reply, arg);
	} else if (strcmp(method, "logging/setLevel") == 0) {
		do_set_level(srv, peer, id, params, reply, arg);
	} else {
		char message[200];
		snprintf(message, sizeof message, "Method not found: %.120s", method);
		send_error(srv, 200, id, MCP_METHOD_NOT_FOUND, message, reply, arg);
	}
}

/* ---- start-up: everything that can be prepared once ------------------------------- */

static char *serialize(json_object *obj)
{
	char *text = todod_xstrdup(json_object_to_json_string_ext(obj, JSON_FLAGS));
	json_object_put(obj);
	return text;
}

static json_object *parse_schema(const struct tool *tool, const char *which, const char *text,
				 struct todod_err *err)
{
	enum json_tokener_error jerr = json_tokener_success;
	json_object *schema = text ? json_tokener_parse_verbose(text, &jerr) : NULL;
	if (!json_object_is_type(schema, json_type_object)) {
		json_object_put(schema);
		todod_err_set(err, "tool %s: %s is not a JSON object%s%s", tool->name, which,
			      jerr != json_tokener_success ? ": " : "",
			      jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "");
		return NULL;
	}
	return schema;
}

static json_object *tool_json(const struct tool *tool, struct todod_err *err)
{
	json_object *input = parse_schema(tool, "input_schema", tool->input_schema, err);
	json_object *output = input ? parse_schema(tool, "output_schema", tool->output_schema, err)
				    : NULL;
	if (!output) {
		json_object_put(input);
		return NULL;
	}
	json_object *hints = json_object_new_object();
	json_object_object_add(hints, "title", json_object_new_string(tool->title));
	json_object_object_add(hints, "readOnlyHint", json_object_new_boolean(tool->read_only));
	json_object_object_add(hints, "destructiveHint", json_object_new_boolean(tool->destructive));
	json_object_object_add(hints, "idempotentHint", json_object_new_boolean(tool->idempotent));
	json_object_object_add(hints, "openWorldHint", json_object_new_boolean(0));
	json_object *t = json_object_new_object();
	json_object_object_add(t, "name", json_object_new_string(tool->name));
	json_object_object_add(t, "title", json_object_new_string(tool->title));
	json_object_object_add(t, "description", json_object_new_string(tool->description));
	json_object_object_add(t, "inputSchema", input);
	json_object_object_add(t, "outputSchema", output);
	json_object_object_add(t, "annotations", hints);
	return t;
}

static int build_pages(struct mcp_server *srv, struct todod_err *err)
{
	size_t n;
	const struct tool *all = tools_all(&n);
	srv->n_pages = n ? (n + TOOLS_PAGE_SIZE - 1) / TOOLS_PAGE_SIZE : 1;
	srv->pages = todod_xcalloc(srv->n_pages, sizeof *srv->pages);
	for (size_t p = 0; p < srv->n_pages; p++) {
		json_object *list = json_object_new_array();
		for (size_t i = p * TOOLS_PAGE_SIZE; i < n && i < (p + 1) * TOOLS_PAGE_SIZE; i++) {
			json_object *t = tool_json(&all[i], err);
			if (!t) {
				json_object_put(list);
				return -1;
			}
			json_object_array_add(list, t);
		}
		json_object *result = json_object_new_object();
		json_object_object_add(result, "tools", list);
		if (p + 1 < srv->n_pages) {
			/* Opaque to clients; only its exact spelling is honoured. */
			char cursor[32];
			snprintf(cursor, sizeof cursor, "todod-tools-%zu", (p + 1) * TOOLS_PAGE_SIZE);
			json_object_object_add(result, "nextCursor", json_object_new_string(cursor));
			srv->pages[p + 1].cursor = todod_xstrdup(cursor);
		}
		srv->pages[p].result = serialize(result);
	}
	return 0;
}

static struct todod_metric *calls_series(struct mcp_server *srv, const char *tool,
					  const char *outcome)
{
	char labels[128];
	snprintf(labels, sizeof labels, "tool=\"%s\",outcome=\"%s\"", tool, outcome);
	return srv->api->metric(srv->ctx, TODOD_METRIC_COUNTER, "todod_mcp_tool_calls_total",
				"MCP tool calls, by tool and outcome (refused: the caller's "
				"mistake; failed: the server's, e.g. the database away)",
				labels);
}

static void register_metrics(struct mcp_server *srv)
{
	size_t n;
	const struct tool *all = tools_all(&n);
	srv->metrics = todod_xcalloc(n, sizeof *srv->metrics);
	for (size_t i = 0; i < n; i++) {
		char labels[64];
		snprintf(labels, sizeof labels, "tool=\"%s\"", all[i].name);
		srv->metrics[i] = (struct tool_metrics){
			calls_series(srv, all[i].name, "ok"),
			calls_series(srv, all[i].name, "refused"),
			calls_series(srv, all[i].name, "failed"),
			srv->api->metric(srv->ctx, TODOD_METRIC_HISTOGRAM,
					 "todod_mcp_tool_duration_seconds",
					 "From a tools/call to its tool's answer", labels),
		};
	}
}

static void build_init_results(struct mcp_server *srv, const char *server_version)
{
	for (size_t i = 0; i < N_VERSIONS; i++) {
		json_object *tools = json_object_new_object();
		json_object_object_add(tools, "listChanged", json_object_new_boolean(0));
		json_object *caps = json_object_new_object();
		json_object_object_add(caps, "tools", tools);
		json_object_object_add(caps, "logging", json_object_new_object());
		json_object *info = json_object_new_object();
		json_object_object_add(info, "name", json_object_new_string("todod"));
		json_object_object_add(info, "version", json_object_new_string(server_version));
		json_object *result = json_object_new_object();
		json_object_object_add(result, "protocolVersion", json_object_new_string(versions[i]));
		json_object_object_add(result, "capabilities", caps);
		json_object_object_add(result, "serverInfo", info);
		json_object_object_add(result, "instructions", json_object_new_string(instructions));
		srv->init_result[i] = serialize(result);
	}
}

struct mcp_server *mcp_server_new(const struct todod_api *api, struct todod_ctx *ctx,
				  const char *server_version, struct todod_err *err)
{
	struct mcp_server *srv = todod_xcalloc(1, sizeof *srv);
	srv->api = api;
	srv->ctx = ctx;
	srv->env = (struct tool_env){ api, ctx };
	srv->out = printbuf_new();
	if (!srv->out || build_pages(srv, err) != 0) {
		if (!srv->out)
			todod_err_set(err, "out of memory");
		mcp_server_free(srv);
		return NULL;
	}
	build_init_results(srv, server_version);
	register_metrics(srv);
	return srv;
}

void mcp_server_free(struct mcp_server *srv)
{
	if (!srv)
		return;
	for (size_t i = 0; i < N_VERSIONS; i++)
		free(srv->init_result[i]);
	for (size_t p = 0; srv->pages && p < srv->n_pages; p++) {
		free(srv->pages[p].cursor);
		free(srv->pages[p].result);
	}
	free(srv->pages);
	free(srv->metrics);
	if (srv->out)
		printbuf_free(srv->out);
	free(srv);
}

unsigned mcp_inflight(const struct mcp_server *srv)
{
	return srv->inflight;
}

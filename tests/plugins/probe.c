/*
 * probe.c - a plugin that exists only for the integration tests.
 *
 * It gives the tests two handles on the core that no real plugin offers
 * in so small a form:
 *
 *   POST /probe/tasks   the JSON body is handed to store_call("task.create")
 *                       for the configured user, so a test can drive the
 *                       store over HTTP and see its errors as JSON;
 *
 *   task-events         every todod.task.created event is answered by a
 *                       task.update {"description": "seen by probe"} keyed
 *                       by the delivery's inbox identity, and every update
 *                       that took effect is logged ("marked task N"), so a
 *                       created event handled twice shows in the log and
 *                       in the inbox, which is what the crash tests check.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <todod-plugin.h>

#define PROBE_CONSUMER "probe"
#define PROBE_TOPIC "task-events"
#define PROBE_DESCRIPTION "seen by probe"

struct probe_conf {
	int64_t user_id;
	bool subscribe;
};

static const struct todod_opt probe_options[] = {
	{
		.key = "user_id",
		.type = TODOD_OPT_INT,
		.flags = TODOD_OPT_REQUIRED,
		.offset = offsetof(struct probe_conf, user_id),
		.min = 1,
		.max = INT64_MAX,
		.description = "the user every task created through POST /probe/tasks belongs to",
	},
	{
		.key = "subscribe",
		.type = TODOD_OPT_BOOL,
		.default_value = "yes",
		.flags = TODOD_OPT_NO_RELOAD,
		.offset = offsetof(struct probe_conf, subscribe),
		.description = "mark created tasks as a subscriber (no: only the route, for benchmarks)",
	},
	{ .key = NULL },
};

struct probe {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	int64_t user_id;
	/* Store calls whose callback has not run yet: drain waits for them so
	 * no callback can arrive after destroy() freed this state. */
	int in_flight;
	todod_drained_cb drained;
};

/* One outstanding store call: exactly one of the two handles is set. */
struct probe_call {
	struct probe *probe;
	struct todod_http_req *req;
	struct todod_delivery *delivery;
	int64_t task_id; /* the task a delivery marks */
};

static struct probe_call *probe_call_new(struct probe *p, struct todod_http_req *req,
					 struct todod_delivery *delivery)
{
	struct probe_call *call = calloc(1, sizeof *call);

	if (!call)
		return NULL;
	call->probe = p;
	call->req = req;
	call->delivery = delivery;
	p->in_flight++;
	return call;
}

static void probe_call_done(struct probe_call *call)
{
	struct probe *p = call->probe;

	free(call);
	if (--p->in_flight == 0 && p->drained) {
		todod_drained_cb drained = p->drained;

		p->drained = NULL;
		drained(p->ctx);
	}
}

/* ---- POST /probe/tasks ---------------------------------------------- */

/* {"error":{"code":...,"field":...,"message":...}}: the tests need the
 * field, which http_reply_error() does not carry. */
static void reply_store_error(struct probe *p, struct todod_http_req *req,
			      const struct todod_store_error *err)
{
	json_object *root = json_object_new_object();
	json_object *error = json_object_new_object();
	const char *code = err->code ? err->code : "INTERNAL";
	int status = strcmp(code, "DATABASE_UNAVAILABLE") == 0 ? 503 : 400;
	size_t len;
	const char *body;

	json_object_object_add(error, "code", json_object_new_string(code));
	json_object_object_add(error, "field",
			       err->field ? json_object_new_string(err->field) : NULL);
	json_object_object_add(error, "message",
			       json_object_new_string(err->text ? err->text : code));
	json_object_object_add(root, "error", error);
	body = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
	p->api->http_reply(req, status, "application/json", body, len);
	json_object_put(root);
}

static void on_task_created(json_object *res, const struct todod_store_error *err, void *arg)
{
	struct probe_call *call = arg;
	struct probe *p = call->probe;

	if (err) {
		reply_store_error(p, call->req, err);
	} else {
		size_t len;
		const char *body = json_object_to_json_string_length(res, JSON_C_TO_STRING_PLAIN,
								     &len);

		p->api->http_reply(call->req, 201, "application/json", body, len);
	}
	probe_call_done(call);
}

static void handle_post_task(struct todod_http_req *req, void *arg)
{
	struct probe *p = arg;
	const struct todod_api *api = p->api;
	struct todod_err err = { { 0 } };
	struct json_tokener *tok;
	json_object *args;
	struct probe_call *call;
	size_t len = 0;
	const char *body = api->http_body(req, &len);

	tok = json_tokener_new();
	if (!tok) {
		api->http_reply_error(req, 500, "INTERNAL", "out of memory");
		return;
	}
	args = json_tokener_parse_ex(tok, body ? body : "", (int)len);
	/* A body that stops in the middle of a value is as invalid as a
	 * malformed one. */
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(args, json_type_object)) {
		json_tokener_free(tok);
		json_object_put(args);
		api->http_reply_error(req, 400, "INVALID_JSON",
				      "the body must be one JSON object of task.create arguments");
		return;
	}
	json_tokener_free(tok);

	call = probe_call_new(p, req, NULL);
	if (!call) {
		json_object_put(args);
		api->http_reply_error(req, 500, "INTERNAL", "out of memory");
		return;
	}
	if (api->store_call(p->ctx, "task.create", p->user_id, args, NULL, NULL,
			    on_task_created, call, &err) < 0) {
		api->http_reply_error(req, 500, "INTERNAL", err.text);
		probe_call_done(call);
	}
	json_object_put(args);
}

/* ---- task-events ---------------------------------------------------- */

static void on_task_marked(json_object *res, const struct todod_store_error *err, void *arg)
{
	struct probe_call *call = arg;
	struct probe *p = call->probe;
	const struct todod_api *api = p->api;
	const char *event_id = api->delivery_event_id(call->delivery);

	/* The update itself is idempotent (a second identical description
	 * emits no event), so these lines are what lets a test count how
	 * often an effect really took place, across restarts of the daemon. */
	if (!err) {
		api->log(p->ctx, TODOD_LOG_INFO, "marked task %lld for event %s",
			 (long long)call->task_id, event_id);
		api->bus_answer(call->delivery, TODOD_OK, NULL);
	} else if (err->code && strcmp(err->code, "ALREADY_HANDLED") == 0) {
		api->log(p->ctx, TODOD_LOG_INFO, "event %s already handled", event_id);
		api->bus_answer(call->delivery, TODOD_OK, NULL);
	} else if (err->code && strcmp(err->code, "DATABASE_UNAVAILABLE") == 0) {
		api->bus_answer(call->delivery, TODOD_RETRY, err->text);
	} else {
		char reason[512];

		snprintf(reason, sizeof reason, "task.update: %s: %s",
			 err->code ? err->code : "?", err->text ? err->text : "");
		api->bus_answer(call->delivery, TODOD_DROP, reason);
	}
	probe_call_done(call);
}

static bool json_get_int64(json_object *obj, const char *key, int64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_string)))
		return false;
	*out = json_object_get_int64(v);
	return *out > 0;
}

static void on_task_event(const struct todod_event *ev, struct todod_delivery *d, void *arg)
{
	struct probe *p = arg;
	const struct todod_api *api = p->api;
	struct todod_err err = { { 0 } };
	json_object *task = NULL, *args;
	struct probe_call *call;
	int64_t task_id, user_id;

	if (!ev->type || strcmp(ev->type, "todod.task.created") != 0) {
		api->bus_answer(d, TODOD_OK, NULL);
		return;
	}
	/* The event names its owner: updating as the configured user instead
	 * would turn another user's task into a TASK_NOT_FOUND drop. */
	if (!json_get_int64(ev->data, "user_id", &user_id) ||
	    !json_object_object_get_ex(ev->data, "task", &task) ||
	    !json_get_int64(task, "id", &task_id)) {
		api->bus_answer(d, TODOD_DROP, "event data lacks user_id or task.id");
		return;
	}

	call = probe_call_new(p, NULL, d);
	if (!call) {
		api->bus_answer(d, TODOD_RETRY, "out of memory");
		return;
	}
	call->task_id = task_id;
	args = json_object_new_object();
	json_object_object_add(args, "id", json_object_new_int64(task_id));
	json_object_object_add(args, "description", json_object_new_string(PROBE_DESCRIPTION));
	if (api->store_call(p->ctx, "task.update", user_id, args, api->delivery_consumer(d),
			    api->delivery_event_id(d), on_task_marked, call, &err) < 0) {
		api->bus_answer(d, TODOD_DROP, err.text);
		probe_call_done(call);
	}
	json_object_put(args);
}

/* ---- lifecycle ------------------------------------------------------ */

static int probe_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		      void **state, struct todod_err *err)
{
	const struct probe_conf *pc = conf;
	struct probe *p = calloc(1, sizeof *p);

	if (!p)
		return todod_err_set(err, "out of memory");
	p->api = api;
	p->ctx = ctx;
	p->user_id = pc->user_id;
	if (api->http_route(ctx, TODOD_HTTP_POST, "/probe/tasks", handle_post_task, p, err) < 0 ||
	    (pc->subscribe &&
	     api->bus_subscribe(ctx, PROBE_TOPIC, PROBE_CONSUMER, on_task_event, p, err) < 0)) {
		free(p);
		return -1;
	}
	*state = p;
	return 0;
}

static int probe_reconfigure(void *state, const void *old_conf, const void *new_conf,
			     struct todod_err *err)
{
	struct probe *p = state;

	p->user_id = ((const struct probe_conf *)new_conf)->user_id;
	return 0;
}

static void probe_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct probe *p = state;

	if (p->in_flight == 0)
		done(ctx);
	else
		p->drained = done;
}

static void probe_destroy(void *state)
{
	free(state);
}

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "probe",
	.version = "1.0",
	.description = "test-only: creates tasks over HTTP and marks created tasks once per event",
	.options = probe_options,
	.conf_size = sizeof(struct probe_conf),
	.init = probe_init,
	.reconfigure = probe_reconfigure,
	.drain = probe_drain,
	.destroy = probe_destroy,
};

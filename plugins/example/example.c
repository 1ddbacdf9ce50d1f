/* example.c - a small, complete todod plugin for plugin authors to copy.
 *
 * It shows the three things most plugins do:
 *   - a route:        GET /example/hello answers with what the plugin saw;
 *   - a timer:        every `interval` it logs a heartbeat (at debug level);
 *   - a subscription: it counts task events by type, as consumer "example".
 *
 * Build it out of tree with the installed header:
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags todod-plugin) \
 *      -o example.so example.c $(pkg-config --libs json-c)
 * and load it with a [plugin.example] section in todod.conf. */
#include <stdlib.h>
#include <string.h>

#include <todod-plugin.h>

struct example_conf {
	char *greeting;
	int64_t interval_ms;
};

struct example {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	const struct example_conf *conf;
	struct todod_timer *heartbeat;
	int64_t beats;
	int64_t created, updated, completed, deleted;
};

static void hello(struct todod_http_req *req, void *arg)
{
	struct example *ex = arg;
	json_object *body = json_object_new_object();
	json_object_object_add(body, "greeting", json_object_new_string(ex->conf->greeting));
	json_object_object_add(body, "heartbeats", json_object_new_int64(ex->beats));
	json_object *seen = json_object_new_object();
	json_object_object_add(seen, "created", json_object_new_int64(ex->created));
	json_object_object_add(seen, "updated", json_object_new_int64(ex->updated));
	json_object_object_add(seen, "completed", json_object_new_int64(ex->completed));
	json_object_object_add(seen, "deleted", json_object_new_int64(ex->deleted));
	json_object_object_add(body, "events_seen", seen);
	size_t len;
	const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	ex->api->http_reply(req, 200, "application/json", text, len);
	json_object_put(body);
}

static void beat(void *arg)
{
	struct example *ex = arg;
	ex->beats++;
	ex->api->log(ex->ctx, TODOD_LOG_DEBUG, "heartbeat %lld", (long long)ex->beats);
}

/* Every event gets exactly one answer; counting cannot fail, so OK. */
static void on_task_event(const struct todod_event *ev, struct todod_delivery *d, void *arg)
{
	struct example *ex = arg;
	if (strcmp(ev->type, "todod.task.created") == 0)
		ex->created++;
	else if (strcmp(ev->type, "todod.task.updated") == 0)
		ex->updated++;
	else if (strcmp(ev->type, "todod.task.completed") == 0)
		ex->completed++;
	else if (strcmp(ev->type, "todod.task.deleted") == 0)
		ex->deleted++;
	ex->api->bus_answer(d, TODOD_OK, NULL);
}

static int example_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
			void **state, struct todod_err *err)
{
	struct example *ex = todod_xcalloc(1, sizeof *ex);
	ex->api = api;
	ex->ctx = ctx;
	ex->conf = conf;
	/* On failure the core removes whatever was registered so far, so
	 * only our own memory needs freeing here. */
	if (api->http_route(ctx, TODOD_HTTP_GET, "/example/hello", hello, ex, err) != 0 ||
	    api->bus_subscribe(ctx, "task-events", "example", on_task_event, ex, err) != 0) {
		free(ex);
		return -1;
	}
	/* The core keeps ex->heartbeat current: timer_del(&ex->heartbeat)
	 * or a one-shot firing sets it to NULL. */
	if (api->timer_add(ctx, &ex->heartbeat, ex->conf->interval_ms, TODOD_TIMER_REPEAT, beat,
			   ex) != 0) {
		free(ex);
		return todod_err_set(err, "cannot create the heartbeat timer");
	}
	*state = ex;
	return 0;
}

/* A reload hands over new options; the heartbeat follows a new interval. */
static int example_reconfigure(void *state, const void *old_conf, const void *new_conf,
			       struct todod_err *err)
{
	struct example *ex = state;
	const struct example_conf *next = new_conf;
	/* Arming into the slot replaces the old timer, but only once the new
	 * one exists: on failure the old options and heartbeat stay. */
	if (((const struct example_conf *)old_conf)->interval_ms != next->interval_ms &&
	    ex->api->timer_add(ex->ctx, &ex->heartbeat, next->interval_ms, TODOD_TIMER_REPEAT, beat,
			       ex) != 0)
		return todod_err_set(err, "cannot create a heartbeat timer");
	ex->conf = next;
	return 0;
}

static void example_destroy(void *state) { free(state); }

static const struct todod_opt example_options[] = {
	{ .key = "greeting", .type = TODOD_OPT_STRING, .default_value = "hello from todod",
	  .offset = offsetof(struct example_conf, greeting),
	  .description = "What GET /example/hello says" },
	{ .key = "interval", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = offsetof(struct example_conf, interval_ms), .min = 100, .max = 86400000,
	  .description = "Time between two heartbeats" },
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "example",
	.version = "1.0",
	.description = "A route, a timer and a subscription: a template for plugin authors",
	.options = example_options,
	.conf_size = sizeof(struct example_conf),
	.init = example_init,
	.reconfigure = example_reconfigure,
	.destroy = example_destroy,
};

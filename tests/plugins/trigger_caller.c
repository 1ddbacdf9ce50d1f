/*
 * trigger_caller.c - a plugin that exists only for the integration tests:
 * it fires triggers the way a scheduler plugin (a Dapr Job callback) does.
 *
 *   POST /trigger/fire?NAME        trigger_get(NAME), then fire it:
 *                                  202 when it was fired, 404 when no
 *                                  plugin provides NAME, 503 when its
 *                                  provider refused;
 *   POST /trigger/provide-broken   provides a trigger without `fire`, so a
 *                                  test sees service_provide refuse it:
 *                                  422 with the core's message.
 */
#include <stdio.h>

#include <todod-plugin.h>

struct caller {
	const struct todod_api *api;
	struct todod_ctx *ctx;
};

static void handle_fire(struct todod_http_req *req, void *arg)
{
	struct caller *c = arg;
	const char *name = c->api->http_query(req);
	if (!name || !*name) {
		c->api->http_reply_error(req, 400, "NO_NAME", "POST /trigger/fire?NAME");
		return;
	}
	/* Looked up on every fire, never kept: a reload may unload the
	 * provider. */
	const struct todod_trigger *t = c->api->trigger_get(c->ctx, name);
	struct todod_err err = { { 0 } };
	char message[sizeof err.text + 64];
	if (!t) {
		snprintf(message, sizeof message, "no plugin provides trigger '%s'", name);
		c->api->http_reply_error(req, 404, "NO_TRIGGER", message);
		return;
	}
	if (t->fire(t->self, &err) != 0) {
		snprintf(message, sizeof message, "trigger '%s' refused: %s", name, err.text);
		c->api->http_reply_error(req, 503, "TRIGGER_REFUSED", message);
		return;
	}
	c->api->http_reply(req, 202, "text/plain", "fired\n", 6);
}

static void handle_provide_broken(struct todod_http_req *req, void *arg)
{
	struct caller *c = arg;
	static const struct todod_trigger broken = { .struct_size = sizeof broken,
						     .name = "caller.broken" };
	struct todod_err err = { { 0 } };
	if (c->api->service_provide(c->ctx, "trigger", broken.name, &broken, &err) != 0)
		c->api->http_reply_error(req, 422, "REFUSED", err.text);
	else
		c->api->http_reply(req, 201, "text/plain", "provided\n", 9);
}

static struct caller caller;

static int caller_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		       void **state, struct todod_err *err)
{
	(void)conf;
	caller = (struct caller){ .api = api, .ctx = ctx };
	*state = &caller;
	if (api->http_route(ctx, TODOD_HTTP_POST, "/trigger/fire", handle_fire, &caller, err) != 0)
		return -1;
	return api->http_route(ctx, TODOD_HTTP_POST, "/trigger/provide-broken",
			       handle_provide_broken, &caller, err);
}

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "trigger_caller",
	.version = "1.0",
	.description = "Fires triggers over HTTP, for the integration tests",
	.init = caller_init,
};

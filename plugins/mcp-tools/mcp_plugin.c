/* mcp_plugin.c - the mcp-tools plugin: the todo tools over the Model
 * Context Protocol, on the HTTP endpoint (option `path`, default /mcp) and,
 * for `todod mcp-stdio`, on stdin/stdout (service "stdio"). */
#include <stdlib.h>
#include <string.h>

#include "todod-config.h"

#include "mcp_json.h"
#include "mcp_server.h"
#include "tools.h"

struct mcp_plugin {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	struct mcp_server *srv;
	struct mcp_http *http;
	struct mcp_stdio *stdio;
	/* drain */
	struct todod_timer *drain_poll;
	todod_drained_cb drained;
};

static int mcp_validate(const void *conf_ptr, struct todod_err *err)
{
	const struct mcp_conf *conf = conf_ptr;
	if (conf->auth == MCP_AUTH_NONE && (!conf->default_user || !conf->default_user[0]))
		return todod_err_set(err, "auth = none needs default_user, the user every "
					  "client acts as");
	if (!conf->path || conf->path[0] != '/' || strchr(conf->path, '*'))
		return todod_err_set(err, "path must start with '/' and contain no '*'");
	for (size_t i = 0; i < conf->allowed_origins.n; i++) {
		const char *o = conf->allowed_origins.items[i];
		if (strcmp(o, "*") != 0 && !strstr(o, "://"))
			return todod_err_set(err, "allowed_origins: '%s' is not scheme://host[:port] "
						  "or *", o);
	}
	return 0;
}

static void mcp_destroy(void *state)
{
	struct mcp_plugin *p = state;
	mcp_stdio_free(p->stdio);
	mcp_http_free(p->http);
	mcp_server_free(p->srv);
	tools_release();
	mcp_json_release();
	free(p);
}

static int mcp_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		    void **state, struct todod_err *err)
{
	struct mcp_plugin *p = todod_xcalloc(1, sizeof *p);
	p->api = api;
	p->ctx = ctx;
	/* Registrations made so far are rolled back by the core on failure. */
	if (!(p->srv = mcp_server_new(api, ctx, PACKAGE_VERSION, err)) ||
	    !(p->http = mcp_http_new(api, ctx, p->srv, conf, err)) ||
	    !(p->stdio = mcp_stdio_new(api, ctx, p->srv, err))) {
		mcp_destroy(p);
		return -1;
	}
	*state = p;
	return 0;
}

static int mcp_start(void *state, struct todod_err *err)
{
	struct mcp_plugin *p = state;
	return mcp_http_start(p->http, err);
}

static int mcp_reconfigure(void *state, const void *old_conf, const void *new_conf,
			   struct todod_err *err)
{
	struct mcp_plugin *p = state;
	return mcp_http_reconfigure(p->http, new_conf, err);
}

/* Tool calls end when the store answers, which has no callback of its own
 * to wait on; a short poll is simplest and costs nothing outside a drain. */
static void drain_check(void *arg)
{
	struct mcp_plugin *p = arg;
	if (mcp_inflight(p->srv) || mcp_http_busy(p->http) || mcp_stdio_busy(p->stdio))
		return;
	p->api->timer_del(&p->drain_poll);
	p->drained(p->ctx);
}

static void mcp_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct mcp_plugin *p = state;
	p->drained = done;
	if (!mcp_inflight(p->srv) && !mcp_http_busy(p->http) && !mcp_stdio_busy(p->stdio)) {
		done(ctx);
		return;
	}
	if (p->api->timer_add(ctx, &p->drain_poll, 10, TODOD_TIMER_REPEAT, drain_check, p) != 0) {
		p->api->log(ctx, TODOD_LOG_WARN, "drain: no timer; not waiting for %u tool calls",
			    mcp_inflight(p->srv));
		done(ctx);
	}
}

static int mcp_health(void *state, struct todod_err *why)
{
	return 0;
}

static const char *const auth_choices[] = { "token", "none", NULL };

static const struct todod_opt mcp_options[] = {
	{ .key = "auth", .type = TODOD_OPT_ENUM, .default_value = "token",
	  .offset = offsetof(struct mcp_conf, auth), .choices = auth_choices,
	  .description = "token: every client sends Authorization: Bearer <token> (see `todod "
			 "user add`); none: every client acts as default_user, and only loopback "
			 "peers are served. A reload that changes it (or default_user) ends "
			 "every open session" },
	{ .key = "default_user", .type = TODOD_OPT_STRING,
	  .offset = offsetof(struct mcp_conf, default_user),
	  .description = "With auth = none: the name of the user every client acts as" },
	{ .key = "allowed_origins", .type = TODOD_OPT_LIST,
	  .default_value = "http://localhost http://127.0.0.1 http://[::1]",
	  .offset = offsetof(struct mcp_conf, allowed_origins),
	  .description = "Browser origins allowed to call the endpoint (others get 403; requests "
			 "without Origin are allowed). An entry without a port also admits that "
			 "origin with any port; * admits every origin" },
	{ .key = "session_timeout", .type = TODOD_OPT_DURATION, .default_value = "30m",
	  .offset = offsetof(struct mcp_conf, session_timeout_ms), .min = 1000,
	  .max = 7 * 86400000LL,
	  .description = "An MCP session without a request for this long ends (clients then "
			 "initialize again)" },
	{ .key = "max_sessions_per_user", .type = TODOD_OPT_INT, .default_value = "100",
	  .offset = offsetof(struct mcp_conf, max_sessions_per_user), .min = 1, .max = 65536,
	  .description = "Open MCP sessions one user may have; a new one past this ends that "
			 "user's least recently used session, never another user's" },
	{ .key = "path", .type = TODOD_OPT_STRING, .default_value = "/mcp",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = offsetof(struct mcp_conf, path),
	  .description = "The HTTP path of the MCP endpoint" },
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "mcp-tools",
	.version = PACKAGE_VERSION,
	.description = "Model Context Protocol tools for the todo list (Streamable HTTP and stdio)",
	.options = mcp_options,
	.conf_size = sizeof(struct mcp_conf),
	.validate = mcp_validate,
	.init = mcp_init,
	.start = mcp_start,
	.reconfigure = mcp_reconfigure,
	.drain = mcp_drain,
	.destroy = mcp_destroy,
	.health = mcp_health,
};

/*
 * secret_source.c - a secret resolver for the integration tests.
 *
 * It provides service "secrets" for scheme "testsecret": a SECRET option
 * written "testsecret:NAME" gets the value of the line NAME=value of the
 * file its option `values` names.  The file is read when the answer is
 * due, so a test can change it between reloads, and the answer comes
 * `delay` later from a timer, never from inside resolve(), as a resolver
 * that asks a sidecar over HTTP would.  With `fail = yes` every lookup
 * answers an error instead.
 *
 * Its own SECRET option `token` (which may itself be a testsecret:
 * reference) guards GET /secret-source/check: 200 when the X-Test-Token
 * header equals it, 403 when it does not, so a test sees which value a
 * start-up or a reload put in place without the value being printed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <todod-plugin.h>

struct source_conf {
	char *values;
	int64_t delay_ms;
	bool fail;
	char *token;
};

struct lookup {
	LIST_ENTRY(lookup) link;
	struct source *src;
	char *name;
	todod_secret_cb done;
	void *arg;
	struct todod_timer *timer;
};

struct source {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	const struct source_conf *conf;
	struct todod_secret_resolver resolver;
	LIST_HEAD(, lookup) lookups;
};

/* The value of NAME in the file, or NULL with `why` filled. */
static char *read_value(const char *path, const char *name, char *why, size_t why_size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, why_size, "cannot open %s", path);
		return NULL;
	}
	char line[1024];
	size_t len = strlen(name);
	char *value = NULL;
	while (!value && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, name, len) == 0 && line[len] == '=')
			value = strdup(line + len + 1);
	}
	fclose(f);
	if (!value)
		snprintf(why, why_size, "no secret named '%s' in %s", name, path);
	return value;
}

static void lookup_free(struct lookup *l)
{
	LIST_REMOVE(l, link);
	l->src->api->timer_del(&l->timer);
	free(l->name);
	free(l);
}

static void answer(void *arg)
{
	struct lookup *l = arg;
	const struct source_conf *c = l->src->conf;
	char why[512];
	char *value = NULL;
	if (c->fail)
		snprintf(why, sizeof why, "lookup of '%s' refused (fail = yes)", l->name);
	else
		value = read_value(c->values, l->name, why, sizeof why);
	todod_secret_cb done = l->done;
	void *done_arg = l->arg;
	lookup_free(l);
	done(value, value ? NULL : why, done_arg);
	free(value);
}

static int resolve(void *self, const char *ref, todod_secret_cb done, void *arg,
		   struct todod_err *err)
{
	struct source *src = self;
	if (!*ref)
		return todod_err_set(err, "testsecret: needs a NAME");
	struct lookup *l = calloc(1, sizeof *l);
	if (!l || !(l->name = strdup(ref))) {
		free(l);
		return todod_err_set(err, "out of memory");
	}
	l->src = src;
	l->done = done;
	l->arg = arg;
	LIST_INSERT_HEAD(&src->lookups, l, link);
	if (src->api->timer_add(src->ctx, &l->timer, src->conf->delay_ms, 0, answer, l) != 0) {
		lookup_free(l);
		return todod_err_set(err, "out of memory");
	}
	return 0;
}

static void handle_check(struct todod_http_req *req, void *arg)
{
	struct source *src = arg;
	const char *given = src->api->http_header(req, "X-Test-Token");
	const char *token = src->conf->token;
	if (given && token && *token && strcmp(given, token) == 0)
		src->api->http_reply(req, 200, "text/plain", "ok\n", 3);
	else
		src->api->http_reply_error(req, 403, "BAD_TOKEN", "X-Test-Token does not match");
}

static int source_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		       void **state, struct todod_err *err)
{
	struct source *src = calloc(1, sizeof *src);
	if (!src)
		return todod_err_set(err, "out of memory");
	src->api = api;
	src->ctx = ctx;
	src->conf = conf;
	LIST_INIT(&src->lookups);
	src->resolver = (struct todod_secret_resolver){
		.struct_size = sizeof src->resolver,
		.scheme = "testsecret",
		.resolve = resolve,
		.self = src,
	};
	*state = src;
	if (api->service_provide(ctx, "secrets", "testsecret", &src->resolver, err) != 0 ||
	    api->http_route(ctx, TODOD_HTTP_GET, "/secret-source/check", handle_check, src, err) != 0) {
		free(src);
		*state = NULL;
		return -1;
	}
	return 0;
}

/* The conf is read at every answer and check, so taking the new one is
 * all a reload needs. */
static int source_reconfigure(void *state, const void *old_conf, const void *new_conf,
			      struct todod_err *err)
{
	((struct source *)state)->conf = new_conf;
	return 0;
}

/* Lookups still waiting are dropped without an answer, as the interface
 * allows once the plugin is destroyed. */
static void source_destroy(void *state)
{
	struct source *src = state;
	if (!src)
		return;
	while (!LIST_EMPTY(&src->lookups))
		lookup_free(LIST_FIRST(&src->lookups));
	free(src);
}

#define OPT(field) offsetof(struct source_conf, field)

static const struct todod_opt source_options[] = {
	{ .key = "values", .type = TODOD_OPT_STRING, .flags = TODOD_OPT_REQUIRED,
	  .offset = OPT(values), .description = "File of NAME=value lines" },
	{ .key = "delay", .type = TODOD_OPT_DURATION, .default_value = "100ms",
	  .offset = OPT(delay_ms), .max = 3600000,
	  .description = "How long after a lookup its answer comes" },
	{ .key = "fail", .type = TODOD_OPT_BOOL, .default_value = "no", .offset = OPT(fail),
	  .description = "Answer every lookup with an error" },
	{ .key = "token", .type = TODOD_OPT_SECRET, .offset = OPT(token),
	  .description = "What GET /secret-source/check expects in X-Test-Token" },
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "secret_source",
	.version = "1.0",
	.description = "Resolves testsecret:NAME from a file, later, for the integration tests",
	.options = source_options,
	.conf_size = sizeof(struct source_conf),
	.init = source_init,
	.reconfigure = source_reconfigure,
	.destroy = source_destroy,
};

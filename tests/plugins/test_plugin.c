/* test_plugin.c - plugins for the loader test, each wrong in one way
 * (chosen by a VARIANT_* macro at build time). */
#include <stdlib.h>

#include "todod-plugin.h"

struct test_conf {
	char *label;
	int64_t count;
};

static const struct todod_opt test_options[] = {
	{ .key = "label", .type = TODOD_OPT_STRING, .default_value = "x",
	  .offset = offsetof(struct test_conf, label), .description = "a label" },
	{ .key = "count", .type = TODOD_OPT_INT, .default_value = "1",
	  .offset = offsetof(struct test_conf, count), .min = 1, .max = 10,
	  .description = "a count" },
	{ .key = NULL },
};

static void never(void *arg) { (void)arg; }

static void answer(struct todod_http_req *req, void *arg)
{
	(void)arg;
	(void)req;
}

static void on_event(const struct todod_event *ev, struct todod_delivery *d, void *arg)
{
	(void)ev;
	(void)d;
	(void)arg;
}

static int dummy_service;

/* Registers one of everything, then succeeds or fails as its variant says. */
static int test_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		     void **state, struct todod_err *err)
{
#ifdef VARIANT_FAILING_INIT
	const char *path = "/failing", *service = "test-failing";
#else
	const char *path = "/good", *service = "test-good";
#endif
	if (api->http_route(ctx, TODOD_HTTP_GET, path, answer, NULL, err) != 0 ||
	    api->service_provide(ctx, service, "test", &dummy_service, err) != 0 ||
	    api->bus_subscribe(ctx, "task-events", service, on_event, NULL, err) != 0 ||
	    api->timer_add(ctx, NULL, 3600000, TODOD_TIMER_REPEAT, never, NULL) != 0)
		return -1;
	*state = NULL;
#ifdef VARIANT_FAILING_INIT
	return todod_err_set(err, "deliberate failure");
#else
	return 0;
#endif
}

#ifdef VARIANT_NEEDS_MISSING
static const char *const requirements[] = { "absent", NULL };
#endif

/* The no-symbol variant exports the very same definition under another
 * name, so only the symbol is wrong. */
#ifdef VARIANT_NO_SYMBOL
TODOD_EXPORT const struct todod_plugin_def todod_plugin_under_another_name = {
#else
TODOD_PLUGIN = {
#endif
#ifdef VARIANT_WRONG_ABI
	.abi_major = TODOD_ABI_MAJOR + 1,
	.abi_minor = 0,
	.struct_size = sizeof(struct todod_plugin_def),
	.build_sig = TODOD_BUILD_SIG,
	.option_size = sizeof(struct todod_opt),
	.name = "wrong_abi",
#elif defined(VARIANT_OLD_ABI)
	/* What a plugin built against todod-plugin.h 1.2 says about itself;
	 * the loader must refuse it before reading anything else. */
	.abi_major = 1,
	.abi_minor = 2,
	.struct_size = sizeof(struct todod_plugin_def),
	.build_sig = "todod-abi1-ptr8-long8-jsonc0",
	.name = "old_abi",
#else
	TODOD_PLUGIN_HEADER,
#endif
#if defined(VARIANT_GOOD) || defined(VARIANT_NO_SYMBOL)
	.name = "good",
#endif
#ifdef VARIANT_FAILING_INIT
	.name = "failing_init",
#endif
#ifdef VARIANT_NEEDS_MISSING
	.name = "needs_missing",
	.requires = requirements,
#endif
	.version = "0",
	.options = test_options,
	.conf_size = sizeof(struct test_conf),
	.init = test_init,
};

/* test_loader.c - the plugin loader: good, wrong ABI, an ABI 1.x plugin,
 * missing symbol, missing file, failing init (everything it registered is
 * rolled back), unmet requirement, a name that does not match, duplicates;
 * and what the function table promises plugins: timer handles that never
 * dangle, typed services checked when provided, struct_size checked. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "bus.h"
#include "config.h"
#include "core.h"
#include "http.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "tap.h"

static const char *plugin_dir;
static struct core core;

/* Load the plugins a config names; returns the loader's message or "". */
static const char *load(const char *text, struct plugin_set *set)
{
	static struct todod_err err;
	struct cfg_file *cf = NULL;
	memset(&err, 0, sizeof err);
	if (cfg_parse_buffer("test.conf", text, strlen(text), &cf, &err) != 0)
		return err.text;
	int rc = loader_load(cf, plugin_dir, set, NULL, &err);
	cfg_free(cf);
	return rc == 0 ? "" : err.text;
}

static void noop_handler(struct todod_http_req *req, void *arg)
{
	(void)req;
	(void)arg;
}

static bool contains(const char *haystack, const char *needle)
{
	bool found = strstr(haystack, needle) != NULL;
	if (!found)
		printf("#   '%s'\n#   does not contain '%s'\n", haystack, needle);
	return found;
}

static void test_good(void)
{
	struct plugin_set set;
	struct todod_err err = { "" };
	is_str(load("[plugin.good]\nlabel = hi\ncount = 3\n", &set), "", "good plugin loads");
	ok(set.n == 1 && strcmp(((struct { char *label; int64_t count; } *)set.v[0].conf)->label, "hi") == 0,
	   "its options are bound");
	ok(loader_init_all(&set, &core, &err) == 0, "good plugin initialises: %s", err.text);
	ok(api_live_events() == 1, "its timer is live");
	ok(services_get(&core, "test-good", NULL) != NULL, "its service is registered");
	ok(http_route_add(core.http, NULL, TODOD_HTTP_GET, "/good", noop_handler, NULL, &err) != 0,
	   "its route is taken");
	ok(bus_topics(core.bus)[0] && strcmp(bus_topics(core.bus)[0], "task-events") == 0,
	   "its subscription is registered");
	loader_unload(&set);
	ok(api_live_events() == 0, "unload removes its timer");
	ok(services_get(&core, "test-good", NULL) == NULL, "unload removes its service");
	ok(bus_topics(core.bus)[0] == NULL, "unload removes its subscription");
	ok(http_route_add(core.http, NULL, TODOD_HTTP_GET, "/good", noop_handler, NULL, &err) == 0,
	   "unload frees its route");
}

static void test_failing_init(void)
{
	struct plugin_set set;
	struct todod_err err = { "" };
	is_str(load("[plugin.failing_init]\n", &set), "", "failing plugin loads");
	ok(loader_init_all(&set, &core, &err) != 0, "its init fails");
	is_str(err.text, "plugin 'failing_init' failed to initialise: deliberate failure",
	       "the error names the plugin and its reason");
	ok(api_live_events() == 0, "its timer was rolled back");
	ok(services_get(&core, "test-failing", NULL) == NULL, "its service was rolled back");
	ok(bus_topics(core.bus)[0] == NULL, "its subscription was rolled back");
	ok(http_route_add(core.http, NULL, TODOD_HTTP_GET, "/failing", noop_handler, NULL, &err) == 0,
	   "its route was rolled back");
	loader_unload(&set);
}

static void test_refusals(void)
{
	struct plugin_set set;
	char want[1024];

	snprintf(want, sizeof want,
		 "test.conf:1: [plugin.wrong_abi] %s/wrong_abi.so: plugin built for ABI %d.0, this todod "
		 "requires ABI %d.0", plugin_dir, TODOD_ABI_MAJOR + 1, TODOD_ABI_MAJOR);
	ok(contains(load("[plugin.wrong_abi]\n", &set), want), "wrong ABI: expected vs found");

	snprintf(want, sizeof want,
		 "test.conf:1: [plugin.old_abi] %s/old_abi.so: plugin built for ABI 1.2, this todod "
		 "requires ABI 2.0 to 2.3; rebuild the plugin against this version's todod-plugin.h",
		 plugin_dir);
	is_str(load("[plugin.old_abi]\n", &set), want,
	       "an ABI 1.x plugin is refused by file and ABI");

	snprintf(want, sizeof want,
		 "test.conf:2: [plugin.no_symbol] %s/no_symbol.so: not a todod plugin (no 'todod_plugin' symbol)",
		 plugin_dir);
	is_str(load("\n[plugin.no_symbol]\n", &set), want, "missing symbol");

	snprintf(want, sizeof want,
		 "test.conf:1: [plugin.nope] plugin 'nope' not found: %s/nope.so: No such file or directory "
		 "(plugin_dir is %s)", plugin_dir, plugin_dir);
	is_str(load("[plugin.nope]\n", &set), want, "missing file names the path searched");

	is_str(load("[plugin.needs_missing]\n", &set),
	       "test.conf:1: [plugin.needs_missing] plugin 'needs_missing' requires plugin 'absent'; "
	       "add a [plugin.absent] section", "unmet requirement");

	ok(contains(load("[plugin.good]\n[plugin.good]\n", &set), "test.conf:2: duplicate section [plugin.good]"),
	   "duplicate plugin section");

	ok(contains(load("[plugin.good]\nbogus = 1\n", &set), "test.conf:2: [plugin.good] unknown key 'bogus'"),
	   "unknown option names file:line");
	ok(contains(load("[plugin.good]\ncount = 11\n", &set), "test.conf:2: [plugin.good] key 'count'"),
	   "out-of-range option names file:line");
	ok(contains(load("[plugin.Bad]\n", &set), "invalid plugin name"), "odd names are refused");
	ok(contains(load("[plugins.good]\n", &set), "test.conf:1: unknown section [plugins.good]"),
	   "unknown section");
}

static void test_name_mismatch(void)
{
	/* The same good plugin under another file name must not load as that
	 * name: a plugin is what it says it is. */
	char dir[] = "/tmp/todod-loader-XXXXXX", src[1024], dst[1100], cmd[2300];
	struct plugin_set set;
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(src, sizeof src, "%s/good.so", plugin_dir);
	snprintf(dst, sizeof dst, "%s/alias.so", dir);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, dst);
	ok(system(cmd) == 0, "copied good.so to alias.so");
	const char *saved = plugin_dir;
	plugin_dir = dir;
	ok(contains(load("[plugin.alias]\n", &set), "plugin calls itself 'good', expected 'alias'"),
	   "a plugin under another name is refused");
	plugin_dir = saved;
	unlink(dst);
	rmdir(dir);
}

/* ---- timers ------------------------------------------------------------- */

struct timer_probe {
	struct todod_timer *slot;
	struct todod_timer **seen_slot; /* what the callback found in `slot` */
	int fired;
	bool rearm;
	struct todod_ctx *ctx;
};

static void on_timer(void *arg)
{
	struct timer_probe *tp = arg;
	tp->fired++;
	tp->seen_slot = tp->slot ? &tp->slot : NULL;
	if (tp->rearm) {
		tp->rearm = false;
		core_api.timer_add(tp->ctx, &tp->slot, 1, 0, on_timer, tp);
	}
}

static void run_until_fired(struct timer_probe *tp, int times)
{
	for (int spins = 0; tp->fired < times && spins < 200; spins++)
		event_base_loop(core.base, EVLOOP_ONCE);
}

static void test_timers(void)
{
	struct todod_ctx *ctx = ctx_new(&core, "timers");
	struct timer_probe tp = { .ctx = ctx };

	ok(core_api.timer_add(ctx, &tp.slot, 1, 0, on_timer, &tp) == 0 && tp.slot,
	   "timer_add stores the handle in the slot");
	run_until_fired(&tp, 1);
	ok(tp.fired == 1 && !tp.seen_slot, "a one-shot's slot is NULL before its callback runs");
	ok(!tp.slot && api_live_events() == 0, "and the timer is gone");

	tp = (struct timer_probe){ .ctx = ctx, .rearm = true };
	core_api.timer_add(ctx, &tp.slot, 1, 0, on_timer, &tp);
	run_until_fired(&tp, 2);
	ok(tp.fired == 2 && !tp.slot && api_live_events() == 0,
	   "a callback may arm its own slot again");

	tp = (struct timer_probe){ .ctx = ctx };
	core_api.timer_add(ctx, &tp.slot, 3600000, TODOD_TIMER_REPEAT, on_timer, &tp);
	struct todod_timer *first = tp.slot;
	ok(core_api.timer_add(ctx, &tp.slot, 3600000, TODOD_TIMER_REPEAT, on_timer, &tp) == 0 &&
	   tp.slot != first && api_live_events() == 1, "arming a live slot replaces its timer");
	struct todod_timer *copy = tp.slot;
	core_api.timer_del(&copy);
	ok(!copy && !tp.slot && api_live_events() == 0,
	   "timer_del through a copy clears the copy and the slot");
	core_api.timer_del(&copy);
	ok(api_live_events() == 0, "timer_del of a NULL handle does nothing");

	/* Release must not write slots: at unload the plugin's state that
	 * held them is already freed (ASan watches this one). */
	struct todod_timer **gone = malloc(sizeof *gone);
	*gone = NULL;
	core_api.timer_at(ctx, gone, core_api.now_ms() + 3600000, on_timer, &tp);
	core_api.timer_add(ctx, NULL, 3600000, 0, on_timer, &tp);
	free(gone);
	ctx_release(ctx);
	ok(api_live_events() == 0, "releasing the context removes timers without their slots");
}

/* ---- services and sized structs ----------------------------------------- */

static int t_publish(void *self, const struct todod_event *ev, todod_publish_cb done, void *arg)
{
	return 0;
}
static int t_subscribe(void *self, const char *topic, struct todod_err *err) { return 0; }
static int t_ready(void *self, struct todod_err *why) { return 0; }

static void test_services(void)
{
	struct todod_ctx *ctx = ctx_new(&core, "services");
	struct todod_err err = { "" };
	struct todod_transport t = { .struct_size = sizeof t, .name = "t", .publish = t_publish,
				     .subscribe = t_subscribe };
	ok(core_api.service_provide(ctx, "transport", "t", &t, &err) != 0,
	   "a transport without ready is refused");
	is_str(err.text, "transport service has no 'ready'", "the error names the missing member");
	t.ready = t_ready;
	t.struct_size = offsetof(struct todod_transport, future);
	ok(core_api.service_provide(ctx, "transport", "t", &t, &err) != 0 &&
	   strstr(err.text, "transport service struct_size is"),
	   "a transport smaller than ABI 2.0's is refused");
	t.struct_size = sizeof t;
	ok(core_api.service_provide(ctx, "transport", "t", &t, &err) == 0,
	   "a complete transport is taken");
	ok(services_get(&core, "transport", NULL) == &t, "and found");

	struct todod_stdio_service stdio = { .struct_size = sizeof stdio };
	ok(core_api.service_provide(ctx, "stdio", "s", &stdio, &err) != 0 &&
	   strcmp(err.text, "stdio service has no 'attach'") == 0,
	   "a stdio service without attach is refused");
	int opaque = 0;
	ok(core_api.service_provide(ctx, "plugin-contract", "p", &opaque, &err) == 0,
	   "a kind the core does not use is stored unchecked");

	struct todod_inbound in = { .topic = "task-events", .raw = "{}", .len = 2 };
	ok(core_api.bus_inbound(ctx, &in, &err) != 0 &&
	   strstr(err.text, "bus_inbound: struct_size is 0"),
	   "bus_inbound checks struct_size: %s", err.text);
	struct todod_http_request rq = { .url = "http://127.0.0.1:1/" };
	ok(core_api.http_request(ctx, &rq, NULL, NULL, &err) != 0 &&
	   strstr(err.text, "http_request: struct_size is 0"), "http_request checks struct_size");
	ctx_release(ctx);
	ok(services_get(&core, "transport", NULL) == NULL,
	   "releasing the context removes its services");
}

/* ---- triggers (ABI 2.1) ------------------------------------------------- */

static int t_fire(void *self, struct todod_err *err)
{
	(*(int *)self)++;
	return 0;
}

static void test_triggers(void)
{
	struct todod_ctx *ctx = ctx_new(&core, "triggers");
	struct todod_ctx *other = ctx_new(&core, "scheduler");
	struct todod_err err = { "" };
	int fired = 0;
	struct todod_trigger due = { .struct_size = sizeof due, .name = "x.due", .self = &fired };
	ok(core_api.service_provide(ctx, "trigger", due.name, &due, &err) != 0,
	   "a trigger without fire is refused");
	is_str(err.text, "trigger service has no 'fire'", "the error names the missing member");
	due.fire = t_fire;
	due.struct_size = offsetof(struct todod_trigger, future);
	ok(core_api.service_provide(ctx, "trigger", due.name, &due, &err) != 0 &&
	   strstr(err.text, "trigger service struct_size is"),
	   "a trigger smaller than ABI 2.1's is refused");
	due.struct_size = sizeof due;
	ok(core_api.trigger_get(other, "x.due") == NULL, "no trigger is found before it is provided");
	ok(core_api.service_provide(ctx, "trigger", due.name, &due, &err) == 0,
	   "a complete trigger is taken");
	struct todod_trigger sweep = due;
	sweep.name = "x.sweep";
	ok(core_api.service_provide(ctx, "trigger", sweep.name, &sweep, &err) == 0,
	   "triggers are one per name, not one per kind");
	ok(core_api.service_provide(other, "trigger", due.name, &sweep, &err) != 0 &&
	   strcmp(err.text, "trigger 'x.due' is already provided") == 0,
	   "a second provider of one name is refused: %s", err.text);
	const struct todod_trigger *t = core_api.trigger_get(other, "x.due");
	ok(t == &due, "another plugin finds it by name");
	ok(t && t->fire(t->self, &err) == 0 && fired == 1, "and fires it");
	ok(core_api.trigger_get(other, "x.nothing") == NULL && core_api.trigger_get(other, NULL) == NULL,
	   "an unknown name finds nothing");
	ctx_release(ctx);
	ok(core_api.trigger_get(other, "x.due") == NULL,
	   "releasing the provider's context removes its triggers");
	ctx_release(other);
}

/* ---- driven triggers (ABI 2.2) -------------------------------------------- */

struct drive_log {
	int calls;
	char last[64]; /* "" for NULL */
};

static void t_driven(void *self, const char *driver)
{
	struct drive_log *log = self;
	log->calls++;
	snprintf(log->last, sizeof log->last, "%s", driver ? driver : "");
}

static int t_fire_nothing(void *self, struct todod_err *err) { return 0; }

static void test_driven_triggers(void)
{
	struct todod_ctx *provider = ctx_new(&core, "reminders");
	struct todod_ctx *driver = ctx_new(&core, "dapr-transport");
	struct todod_err err = { "" };
	struct drive_log log = { 0, "" };
	struct todod_trigger due = { .struct_size = sizeof due, .name = "d.due",
				     .fire = t_fire_nothing, .driven = t_driven, .self = &log };
	ok(core_api.trigger_drive(driver, "d.due") == NULL,
	   "driving a trigger nobody provides yet finds nothing");
	ok(core_api.service_provide(provider, "trigger", due.name, &due, &err) == 0,
	   "the trigger is provided later");
	ok(log.calls == 1 && strcmp(log.last, "dapr-transport") == 0,
	   "its provider hears at once who drives it (%d call(s), '%s')", log.calls, log.last);
	ok(core_api.trigger_drive(driver, "d.due") == &due && log.calls == 1,
	   "driving it again returns it and tells nobody twice");
	ctx_release(driver);
	ok(log.calls == 2 && strcmp(log.last, "") == 0,
	   "the provider hears NULL once the driver is unloaded");
	struct todod_trigger plain = { .struct_size = sizeof plain, .name = "d.plain",
				       .fire = t_fire_nothing, .self = &log };
	ok(core_api.service_provide(provider, "trigger", plain.name, &plain, &err) == 0,
	   "a trigger without driven() (ABI 2.1) is still taken");
	driver = ctx_new(&core, "dapr-transport");
	ok(core_api.trigger_drive(driver, "d.plain") == &plain && log.calls == 2,
	   "and can be driven without being told");
	ctx_release(provider);
	ctx_release(driver);
	ok(log.calls == 2, "a driver unloaded after the provider tells nobody");
}

static int i_call(void *self, const struct todod_inbox_key *keys, size_t n,
		  todod_inbox_cb done, void *arg, struct todod_err *err)
{
	return 0;
}

static void test_inbox_service(void)
{
	struct todod_ctx *ctx = ctx_new(&core, "inbox");
	struct todod_err err = { "" };
	struct todod_inbox_driver d = { .struct_size = sizeof d, .seen = i_call, .record = i_call };
	ok(core_api.service_provide(ctx, "inbox", "i", &d, &err) != 0, "an unnamed driver is refused");
	is_str(err.text, "inbox service has no 'name'", "the error names the missing member");
	d.name = "memory";
	d.record = NULL;
	ok(core_api.service_provide(ctx, "inbox", "i", &d, &err) != 0 &&
	   strcmp(err.text, "inbox service has no 'record'") == 0, "a driver without record too");
	d.record = i_call;
	d.struct_size = offsetof(struct todod_inbox_driver, future);
	ok(core_api.service_provide(ctx, "inbox", "i", &d, &err) != 0 &&
	   strstr(err.text, "inbox service struct_size is"),
	   "a driver smaller than its ABI's struct is refused");
	d.struct_size = sizeof d;
	ok(core_api.service_provide(ctx, "inbox", "i", &d, &err) == 0, "a complete driver is taken");
	const void *owner = NULL;
	const char *service = NULL;
	char names[64];
	ok(services_inbox_driver(&core, "memory", &owner, &service, names, sizeof names) == &d &&
	   owner == ctx && strcmp(service, "i") == 0, "and found by its name with its owner");
	struct todod_ctx *other = ctx_new(&core, "dapr");
	struct todod_inbox_driver state = d;
	state.name = "dapr-state";
	ok(core_api.service_provide(other, "inbox", "dapr-state", &state, &err) == 0,
	   "another plugin provides a driver of its own beside it");
	ok(services_inbox_driver(&core, "dapr-state", &owner, &service, names, sizeof names) ==
		   &state && owner == other,
	   "[core] inbox picks either by name");
	ok(strstr(names, "memory") && strstr(names, "dapr-state"), "both are listed: %s", names);
	ok(core_api.service_provide(other, "inbox", "dapr-state", &state, &err) != 0 &&
	   strcmp(err.text, "inbox 'dapr-state' is already provided") == 0,
	   "one driver per name: %s", err.text);
	ctx_release(other);
	ctx_release(ctx);
	ok(services_inbox_driver(&core, "memory", &owner, &service, names, sizeof names) == NULL &&
	   names[0] == '\0', "releasing the contexts removes them");
}

int main(void)
{
	plugin_dir = getenv("TODOD_TEST_PLUGINDIR");
	if (!plugin_dir) {
		printf("1..0 # SKIP TODOD_TEST_PLUGINDIR is not set (run through make check)\n");
		return 0;
	}
	log_set_level(TODOD_LOG_ERROR);
	struct todod_err err = { "" };
	struct http_limits limits = { .max_header_size = 8192, .max_body_size = 1 << 20,
				      .request_timeout_s = 30 };
	struct bus_conf bc = { 3, 100, 65536 };
	core.base = event_base_new();
	core.http = http_server_new(core.base, "127.0.0.1:0", &limits, &err);
	core.bus = bus_new(core.base, NULL, &bc);
	if (!ok(core.http && core.bus, "core parts for the test: %s", err.text))
		return tap_done();

	test_good();
	test_failing_init();
	test_refusals();
	test_name_mismatch();
	test_timers();
	test_services();
	test_triggers();
	test_driven_triggers();
	test_inbox_service();

	bus_free(core.bus);
	http_server_free(core.http);
	metrics_free_all();
	event_base_free(core.base);
	return tap_done();
}

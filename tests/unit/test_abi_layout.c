/* test_abi_layout.c - the binary layout of the plugin ABI, written down.
 *
 * A plugin built against one todod-plugin.h runs against a core built
 * from another, so a member inserted in the middle of a public struct
 * breaks every plugin in the field without a compiler noticing.  This test
 * records the size of every public struct and the offset of every member
 * of the function table and of the definition, as ABI 2.3 has them on
 * x86_64 (LP64).  A change that adds at the end (a minor release) changes
 * a size here and nothing else: update the sizes and bump
 * TODOD_ABI_MINOR.  Any other change here breaks the promise in
 * doc/plugin-api.md. */
#include <stddef.h>

#include "tap.h"
#include "todod-plugin.h"

#if defined(__x86_64__) && defined(__LP64__)

struct layout {
	const char *what;
	size_t got, want;
};

#define SIZE(type, n) { "sizeof(" #type ")", sizeof(type), n }
#define API(member, n) { "offsetof(struct todod_api, " #member ")", offsetof(struct todod_api, member), n }
#define DEF(member, n) \
	{ "offsetof(struct todod_plugin_def, " #member ")", offsetof(struct todod_plugin_def, member), n }

static const struct layout layouts[] = {
	SIZE(struct todod_err, 512),
	SIZE(struct todod_list, 16),
	SIZE(struct todod_opt, 88),
	SIZE(struct todod_http_request, 88),
	SIZE(struct todod_smtp_message, 112),
	SIZE(struct todod_transfer_result, 32),
	SIZE(struct todod_event, 88),
	SIZE(struct todod_inbound, 96),
	SIZE(struct todod_transport, 80),
	SIZE(struct todod_stdio_service, 56),
	SIZE(struct todod_trigger, 64),
	/* ABI 2.2 named the first of the trigger's future slots. */
	{ "offsetof(struct todod_trigger, driven)", offsetof(struct todod_trigger, driven), 32 },
	SIZE(struct todod_local_time, 80),
	SIZE(struct todod_store_error, 24),
	SIZE(struct todod_api, 344),
	SIZE(struct todod_plugin_def, 192),
	/* Inbox drivers (service "inbox"). */
	SIZE(struct todod_inbox_key, 16),
	SIZE(struct todod_inbox_driver, 72),
	{ "offsetof(struct todod_inbox_driver, seen)", offsetof(struct todod_inbox_driver, seen), 16 },
	{ "offsetof(struct todod_inbox_driver, record)", offsetof(struct todod_inbox_driver, record),
	  24 },
	{ "offsetof(struct todod_inbox_driver, self)", offsetof(struct todod_inbox_driver, self), 32 },
	/* Secret resolvers (service "secrets"). */
	SIZE(struct todod_secret_resolver, 64),
	{ "offsetof(struct todod_secret_resolver, scheme)",
	  offsetof(struct todod_secret_resolver, scheme), 8 },
	{ "offsetof(struct todod_secret_resolver, resolve)",
	  offsetof(struct todod_secret_resolver, resolve), 16 },
	{ "offsetof(struct todod_secret_resolver, self)",
	  offsetof(struct todod_secret_resolver, self), 24 },
	API(struct_size, 0),
	API(log, 8),
	API(timer_add, 16),
	API(timer_at, 24),
	API(timer_del, 32),
	API(fd_watch, 40),
	API(fd_unwatch, 48),
	API(http_route, 56),
	API(http_method, 64),
	API(http_path, 72),
	API(http_query, 80),
	API(http_header, 88),
	API(http_body, 96),
	API(http_peer, 104),
	API(http_add_header, 112),
	API(http_reply, 120),
	API(http_reply_error, 128),
	API(http_request, 136),
	API(smtp_send, 144),
	API(bus_publish, 152),
	API(bus_subscribe, 160),
	API(bus_answer, 168),
	API(bus_inbound, 176),
	API(delivery_consumer, 184),
	API(delivery_event_id, 192),
	API(delivery_attempt, 200),
	API(service_provide, 208),
	API(service_get, 216),
	API(store_call, 224),
	API(instance_id, 232),
	API(now_ms, 240),
	API(metric, 248),
	API(metric_add, 256),
	API(metric_set, 264),
	API(metric_observe, 272),
	API(tz_to_local, 280),
	API(tz_from_local, 288),
	API(trigger_get, 296),
	API(mono_us, 304),
	API(rfc3339_parse, 312),
	API(rfc3339_format, 320),
	API(trigger_drive, 328),
	API(store_call_text, 336),
	DEF(abi_major, 0),
	DEF(abi_minor, 2),
	DEF(struct_size, 4),
	DEF(build_sig, 8),
	DEF(name, 16),
	DEF(version, 24),
	DEF(description, 32),
	DEF(requires, 40),
	DEF(options, 48),
	DEF(option_size, 56),
	DEF(conf_size, 64),
	DEF(validate, 72),
	DEF(init, 80),
	DEF(start, 88),
	DEF(reconfigure, 96),
	DEF(drain, 104),
	DEF(destroy, 112),
	DEF(health, 120),
	DEF(future, 128),
};

int main(void)
{
	ok(TODOD_ABI_MAJOR == 2, "these are ABI 2's numbers");
	for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
		ok(layouts[i].got == layouts[i].want, "%s is %zu (recorded: %zu)", layouts[i].what,
		   layouts[i].got, layouts[i].want);
	return tap_done();
}

#else

int main(void)
{
	printf("1..0 # SKIP layouts are recorded for x86_64 (LP64) only\n");
	return 0;
}

#endif

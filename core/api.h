/* api.h - plugin contexts and the function table handed to plugins.
 * A context owns everything its plugin registered, so releasing it
 * removes timers, fd watches, routes, subscriptions, services, and
 * orphans in-flight store calls and transfers. */
#ifndef TODOD_API_H
#define TODOD_API_H

#include "services.h"
#include "todod-plugin.h"

struct core;

extern const struct todod_api core_api;

/* The size of a plugin-filled struct as ABI 2.0 defined it (up to its
 * `future` slots), which every 2.x plugin's struct_size covers. */
#define ABI2_SIZE(type) (offsetof(type, future) + sizeof(((type *)0)->future))

struct todod_ctx *ctx_new(struct core *core, const char *name);
void ctx_release(struct todod_ctx *ctx);
const char *ctx_name(const struct todod_ctx *ctx);
struct core *ctx_core(const struct todod_ctx *ctx);

/* Live timers and fd watches of every context, for leak checks in tests. */
int api_live_events(void);

/* The name in event sources and todod_api.instance_id(). */
void api_set_instance(const char *name);


#endif

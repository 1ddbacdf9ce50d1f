/* api.c - plugin contexts and the todod_api function table.
 *
 * Every registration a plugin makes is linked into its context, so that
 * ctx_release() can undo all of them: after a failed init, at unload, and
 * at exit.  Asynchronous calls that outlive the context (store calls,
 * transfers) are orphaned rather than freed, so their completions find a
 * NULL context and drop the result instead of calling into unloaded code. */
#include "api.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "bus.h"
#include "clock.h"
#include "curlm.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "tz.h"

struct todod_timer {
	LIST_ENTRY(todod_timer) link; /* in its context's timers */
	struct todod_ctx *ctx;
	struct event *ev;
	todod_timer_cb cb;
	void *arg;
	int64_t at_ms;   /* wall-clock deadline, 0 for relative timers */
	/* The caller's copy of the handle, cleared when the timer goes away
	 * through the API (see todod_api.timer_add); NULL when none. */
	struct todod_timer **slot;
};

struct todod_watch {
	LIST_ENTRY(todod_watch) link;
	struct todod_ctx *ctx;
	struct event *ev;
	todod_fd_cb cb;
	void *arg;
};

struct pending_store_call {
	LIST_ENTRY(pending_store_call) link;
	struct todod_ctx *ctx;   /* NULL once the context is gone */
	todod_store_cb cb;
	todod_store_text_cb text_cb; /* store_call_text: instead of cb */
	void *arg;
};

struct todod_ctx {
	struct core *core;
	char *name;
	LIST_HEAD(, todod_timer) timers;
	LIST_HEAD(, todod_watch) watches;
	LIST_HEAD(, pending_store_call) calls;
};

static int live_events;

struct todod_ctx *ctx_new(struct core *core, const char *name)
{
	struct todod_ctx *ctx = todod_xcalloc(1, sizeof *ctx);
	ctx->core = core;
	ctx->name = todod_xstrdup(name);
	return ctx;
}

const char *ctx_name(const struct todod_ctx *ctx) { return ctx->name; }
struct core *ctx_core(const struct todod_ctx *ctx) { return ctx->core; }
int api_live_events(void) { return live_events; }

/* Leaves the caller's slot alone, as ctx_release() must: by then the
 * plugin's state that holds the slot may be freed (destroy() runs first). */
static void timer_free(struct todod_timer *t)
{
	LIST_REMOVE(t, link);
	event_free(t->ev);
	free(t);
	live_events--;
}

/* Removal through the API: the caller's copy of the handle goes too. */
static void timer_remove(struct todod_timer *t)
{
	if (t->slot && *t->slot == t)
		*t->slot = NULL;
	timer_free(t);
}

static void watch_free(struct todod_watch *w)
{
	LIST_REMOVE(w, link);
	event_free(w->ev);
	free(w);
	live_events--;
}

void ctx_release(struct todod_ctx *ctx)
{
	if (!ctx)
		return;
	struct core *core = ctx->core;
	while (!LIST_EMPTY(&ctx->timers))
		timer_free(LIST_FIRST(&ctx->timers));
	while (!LIST_EMPTY(&ctx->watches))
		watch_free(LIST_FIRST(&ctx->watches));
	struct pending_store_call *c;
	while ((c = LIST_FIRST(&ctx->calls))) {
		LIST_REMOVE(c, link);
		c->ctx = NULL;
	}
	if (core) {
		if (core->http)
			http_routes_remove_owner(core->http, ctx);
		if (core->bus)
			bus_unsubscribe_owner(core->bus, ctx);
		if (core->curlm)
			curlm_cancel_owner(core->curlm, ctx);
		services_remove_owner(core, ctx);
	}
	metrics_gauge_fn_remove(ctx);
	free(ctx->name);
	free(ctx);
}

/* ---- logging ----------------------------------------------------------- */

static void api_log(struct todod_ctx *ctx, enum todod_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, ctx ? ctx->name : "plugin", fmt, ap);
	va_end(ap);
}

/* ---- time ---------------------------------------------------------------- */

/* libevent's timers run on the monotonic clock.  A wall-clock deadline is
 * therefore approached in steps of at most a minute and re-checked
 * against the real clock, so that a clock step (NTP, suspend) makes a
 * timer late by at most that step, and never early. */
#define WALL_CLOCK_STEP_MS 60000

static void arm_ms(struct event *ev, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	evtimer_add(ev, &tv);
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct todod_timer *t = arg;
	if (t->at_ms) {
		int64_t left = t->at_ms - clock_wall_ms();
		if (left > 0) {
			arm_ms(t->ev, left < WALL_CLOCK_STEP_MS ? left : WALL_CLOCK_STEP_MS);
			return;
		}
	}
	todod_timer_cb cb = t->cb;
	void *cb_arg = t->arg;
	/* A one-shot timer is gone, and its slot cleared, before its callback
	 * runs: the callback may arm the same slot again. */
	if (!(event_get_events(t->ev) & EV_PERSIST))
		timer_remove(t);
	cb(cb_arg);
}

static void api_timer_del(struct todod_timer **t)
{
	if (t && *t) {
		struct todod_timer *victim = *t;
		*t = NULL;
		timer_remove(victim);
	}
}

/* A new timer, not armed yet, whose handle is in *slot.  The live timer
 * there is replaced only once the new one exists, so a failure leaves
 * the caller's timer running. */
static struct todod_timer *timer_new(struct todod_ctx *ctx, struct todod_timer **slot,
				     bool repeat, todod_timer_cb cb, void *arg)
{
	struct todod_timer *t = todod_xcalloc(1, sizeof *t);
	t->ev = event_new(ctx->core->base, -1, repeat ? EV_PERSIST : 0, timer_fired, t);
	if (!t->ev) {
		free(t);
		return NULL;
	}
	t->ctx = ctx;
	t->cb = cb;
	t->arg = arg;
	api_timer_del(slot);
	t->slot = slot;
	if (slot)
		*slot = t;
	LIST_INSERT_HEAD(&ctx->timers, t, link);
	live_events++;
	return t;
}

static int api_timer_add(struct todod_ctx *ctx, struct todod_timer **slot, int64_t ms,
			 unsigned flags, todod_timer_cb cb, void *arg)
{
	struct todod_timer *t = timer_new(ctx, slot, flags & TODOD_TIMER_REPEAT, cb, arg);
	if (!t)
		return -1;
	arm_ms(t->ev, ms);
	return 0;
}

static int api_timer_at(struct todod_ctx *ctx, struct todod_timer **slot, int64_t epoch_ms,
			todod_timer_cb cb, void *arg)
{
	struct todod_timer *t = timer_new(ctx, slot, false, cb, arg);
	if (!t)
		return -1;
	t->at_ms = epoch_ms > 0 ? epoch_ms : 1;
	int64_t left = epoch_ms - clock_wall_ms();
	arm_ms(t->ev, left < WALL_CLOCK_STEP_MS ? left : WALL_CLOCK_STEP_MS);
	return 0;
}

/* ---- fd watches ------------------------------------------------------------ */

static void watch_fired(evutil_socket_t fd, short what, void *arg)
{
	struct todod_watch *w = arg;
	w->cb((int)fd, what & (EV_READ | EV_WRITE), w->arg);
}

static struct todod_watch *api_fd_watch(struct todod_ctx *ctx, int fd, int what,
					todod_fd_cb cb, void *arg)
{
	struct todod_watch *w = todod_xcalloc(1, sizeof *w);
	short events = EV_PERSIST | (what & TODOD_FD_READ ? EV_READ : 0) |
		       (what & TODOD_FD_WRITE ? EV_WRITE : 0);
	w->ev = event_new(ctx->core->base, fd, events, watch_fired, w);
	if (!w->ev || event_add(w->ev, NULL) != 0) {
		if (w->ev)
			event_free(w->ev);
		free(w);
		return NULL;
	}
	w->ctx = ctx;
	w->cb = cb;
	w->arg = arg;
	LIST_INSERT_HEAD(&ctx->watches, w, link);
	live_events++;
	return w;
}

static void api_fd_unwatch(struct todod_watch **w)
{
	if (w && *w) {
		struct todod_watch *victim = *w;
		*w = NULL;
		watch_free(victim);
	}
}

/* ---- plugin-filled structs --------------------------------------------------- */

/* Copy a plugin-filled struct into the core's own layout: members the
 * plugin's struct_size does not cover (it was built against an older
 * minor) read as zero, and a newer plugin's extra members are ignored.
 * `src` starts with its uint32_t struct_size. */
static int sized_copy(void *dst, size_t dst_size, const void *src, size_t min_size,
		      const char *what, struct todod_err *err)
{
	if (!src)
		return todod_err_set(err, "%s: no struct given", what);
	uint32_t size = *(const uint32_t *)src;
	if (size < min_size)
		return todod_err_set(err, "%s: struct_size is %u, expected at least %zu "
				     "(set it to sizeof the struct)", what, size, min_size);
	memset(dst, 0, dst_size);
	memcpy(dst, src, size < dst_size ? size : dst_size);
	return 0;
}

/* ---- HTTP ------------------------------------------------------------------ */

static int api_http_route(struct todod_ctx *ctx, unsigned methods, const char *path,
			  todod_http_handler handler, void *arg, struct todod_err *err)
{
	return http_route_add(ctx->core->http, ctx, methods, path, handler, arg, err);
}

static int api_http_request(struct todod_ctx *ctx, const struct todod_http_request *rq,
			    todod_transfer_cb done, void *arg, struct todod_err *err)
{
	struct todod_http_request copy;
	if (sized_copy(&copy, sizeof copy, rq, ABI2_SIZE(struct todod_http_request), "http_request",
		       err) != 0)
		return -1;
	return curlm_http(ctx->core->curlm, ctx, &copy, done, arg, err);
}

static int api_smtp_send(struct todod_ctx *ctx, const struct todod_smtp_message *msg,
			 todod_transfer_cb done, void *arg, struct todod_err *err)
{
	struct todod_smtp_message copy;
	if (sized_copy(&copy, sizeof copy, msg, ABI2_SIZE(struct todod_smtp_message), "smtp_send",
		       err) != 0)
		return -1;
	return curlm_smtp(ctx->core->curlm, ctx, &copy, done, arg, err);
}

/* ---- bus ------------------------------------------------------------------- */

struct publish_call {
	todod_publish_cb done;
	void *arg;
};

static void published(const char *error, void *arg)
{
	struct publish_call *pc = arg;
	if (error)
		log_warn("bus_publish: the event was not written to the outbox: %s", error);
	if (pc->done)
		pc->done(error ? TODOD_RETRY : TODOD_OK, error, pc->arg);
	free(pc);
}

static int api_bus_publish(struct todod_ctx *ctx, const char *topic, const char *type,
			   const char *subject, const char *key, json_object *data,
			   todod_publish_cb done, void *arg, struct todod_err *err)
{
	if (!topic || !*topic || !type || !*type || !key || !*key)
		return todod_err_set(err, "bus_publish: topic, type and key are required");
	if (!data || !json_object_is_type(data, json_type_object))
		return todod_err_set(err, "bus_publish: data must be a JSON object");
	struct publish_call *pc = todod_xmalloc(sizeof *pc);
	*pc = (struct publish_call){ done, arg };
	store_outbox_append(ctx->core->store, topic, type, subject, key,
			    json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN), published, pc);
	return 0;
}

static int api_bus_subscribe(struct todod_ctx *ctx, const char *topic, const char *consumer,
			     todod_event_handler handler, void *arg, struct todod_err *err)
{
	return bus_subscribe(ctx->core->bus, ctx, topic, consumer, handler, arg, err);
}

static int api_bus_inbound(struct todod_ctx *ctx, const struct todod_inbound *msg,
			   struct todod_err *err)
{
	struct todod_inbound copy;
	if (sized_copy(&copy, sizeof copy, msg, ABI2_SIZE(struct todod_inbound), "bus_inbound",
		       err) != 0)
		return -1;
	if (!copy.topic || !copy.raw || !copy.done)
		return todod_err_set(err, "bus_inbound: topic, raw and done are required");
	/* Its consumer's broker keeps what our subscribers give up on. */
	const struct bus_sender transport = { .owner = ctx,
					      .dead_letters = BUS_DEAD_LETTERS_RETURNED };
	bus_dispatch(ctx->core->bus, &copy, &transport);
	return 0;
}

/* ---- services -------------------------------------------------------------- */

static int api_service_provide(struct todod_ctx *ctx, const char *kind, const char *name,
			       const void *vtable, struct todod_err *err)
{
	return services_provide(ctx->core, ctx, kind, name, vtable, err);
}

static const void *api_service_get(struct todod_ctx *ctx, const char *kind, const char **name)
{
	return services_get(ctx->core, kind, name);
}

static const struct todod_trigger *api_trigger_get(struct todod_ctx *ctx, const char *name)
{
	return name ? services_get_named(ctx->core, "trigger", name) : NULL;
}

static const struct todod_trigger *api_trigger_drive(struct todod_ctx *ctx, const char *name)
{
	return name ? services_drive_trigger(ctx->core, ctx, ctx->name, name) : NULL;
}

/* ---- store ----------------------------------------------------------------- */

static void store_call_done(json_object *res, const struct todod_store_error *err, void *arg)
{
	struct pending_store_call *c = arg;
	struct todod_ctx *ctx = c->ctx;
	if (ctx) {
		LIST_REMOVE(c, link);
		c->cb(res, err, c->arg);
	}
	free(c);
}

/* store_call and store_call_text: the call `c` is tracked by its context
 * once the store took it (`rc` 0), so an unloaded plugin is never called
 * back; otherwise it is freed. */
static int track_store_call(struct todod_ctx *ctx, struct pending_store_call *c, int rc)
{
	if (rc != 0) {
		free(c);
		return -1;
	}
	LIST_INSERT_HEAD(&ctx->calls, c, link);
	return 0;
}

static struct pending_store_call *new_store_call(struct todod_ctx *ctx, void *arg)
{
	struct pending_store_call *c = todod_xcalloc(1, sizeof *c);
	c->ctx = ctx;
	c->arg = arg;
	return c;
}

static int api_store_call(struct todod_ctx *ctx, const char *op, int64_t user_id,
			  json_object *args, const char *once_consumer, const char *once_event_id,
			  todod_store_cb cb, void *arg, struct todod_err *err)
{
	if (!once_consumer != !once_event_id)
		return todod_err_set(err, "store_call: give both once_consumer and once_event_id, or neither");
	struct pending_store_call *c = new_store_call(ctx, arg);
	c->cb = cb;
	return track_store_call(ctx, c, store_call(ctx->core->store, op, user_id, args,
						   once_consumer, once_event_id,
						   store_call_done, c, err));
}

static void store_call_text_done(const char *json, size_t len,
				 const struct todod_store_error *err, void *arg)
{
	struct pending_store_call *c = arg;
	struct todod_ctx *ctx = c->ctx;
	if (ctx) {
		LIST_REMOVE(c, link);
		c->text_cb(json, len, err, c->arg);
	}
	free(c);
}

static int api_store_call_text(struct todod_ctx *ctx, const char *op, int64_t user_id,
			       json_object *args, const char *once_consumer,
			       const char *once_event_id, todod_store_text_cb cb, void *arg,
			       struct todod_err *err)
{
	if (!once_consumer != !once_event_id)
		return todod_err_set(err, "store_call_text: give both once_consumer and "
					  "once_event_id, or neither");
	struct pending_store_call *c = new_store_call(ctx, arg);
	c->text_cb = cb;
	return track_store_call(ctx, c, store_call_text(ctx->core->store, op, user_id, args,
							once_consumer, once_event_id,
							store_call_text_done, c, err));
}

static const char *api_instance_id(void);

/* ---- metrics ---------------------------------------------------------------- */

/* The API's handle is the registry's series; plugins only see it opaque. */
static struct todod_metric *api_metric(struct todod_ctx *ctx, enum todod_metric_kind kind,
				       const char *name, const char *help, const char *labels)
{
	if (!name || !help)
		return NULL;
	labels = labels ? labels : "";
	switch (kind) {
	case TODOD_METRIC_COUNTER:
		return (struct todod_metric *)metrics_counter(name, help, labels);
	case TODOD_METRIC_GAUGE:
		return (struct todod_metric *)metrics_gauge(name, help, labels);
	case TODOD_METRIC_HISTOGRAM:
		return (struct todod_metric *)metrics_histogram(name, help, labels);
	}
	return NULL;
}

static void api_metric_add(struct todod_metric *m, double v)
{
	if (m)
		metric_add((struct metric *)m, v);
}

static void api_metric_set(struct todod_metric *m, double v)
{
	if (m)
		metric_set((struct metric *)m, v);
}

static void api_metric_observe(struct todod_metric *m, double secs)
{
	if (m)
		metric_observe((struct metric *)m, secs);
}

const struct todod_api core_api = {
	.struct_size = sizeof(struct todod_api),
	.log = api_log,
	.timer_add = api_timer_add,
	.timer_at = api_timer_at,
	.timer_del = api_timer_del,
	.fd_watch = api_fd_watch,
	.fd_unwatch = api_fd_unwatch,
	.http_route = api_http_route,
	.http_method = http_req_method,
	.http_path = http_req_path,
	.http_query = http_req_query,
	.http_header = http_req_header,
	.http_body = http_req_body,
	.http_peer = http_req_peer,
	.http_add_header = http_req_add_header,
	.http_reply = http_reply,
	.http_reply_error = http_reply_error,
	.http_request = api_http_request,
	.smtp_send = api_smtp_send,
	.bus_publish = api_bus_publish,
	.bus_subscribe = api_bus_subscribe,
	.bus_answer = bus_answer,
	.bus_inbound = api_bus_inbound,
	.delivery_consumer = bus_delivery_consumer,
	.delivery_event_id = bus_delivery_event_id,
	.delivery_attempt = bus_delivery_attempt,
	.service_provide = api_service_provide,
	.service_get = api_service_get,
	.store_call = api_store_call,
	.instance_id = api_instance_id,
	.now_ms = clock_wall_ms,
	.metric = api_metric,
	.metric_add = api_metric_add,
	.metric_set = api_metric_set,
	.metric_observe = api_metric_observe,
	.tz_to_local = tz_to_local,
	.tz_from_local = tz_from_local,
	.trigger_get = api_trigger_get,
	.mono_us = clock_mono_us,
	.rfc3339_parse = rfc3339_parse_ms,
	.rfc3339_format = rfc3339_format_ms,
	.trigger_drive = api_trigger_drive,
	.store_call_text = api_store_call_text,
};
_Static_assert(TODOD_RFC3339_SIZE == RFC3339_MS_SIZE, "rfc3339_format's size is the core's");

/* The instance name is process-wide; the daemon sets it at start-up. */
static char instance_name[128] = "todod";

void api_set_instance(const char *name)
{
	snprintf(instance_name, sizeof instance_name, "%s", name);
}

static const char *api_instance_id(void) { return instance_name; }

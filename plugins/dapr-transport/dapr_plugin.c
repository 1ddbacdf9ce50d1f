/* dapr_plugin.c - the dapr-transport plugin: options, lifecycle, readiness.
 *
 * Loading this plugin makes a Dapr sidecar (daprd) the event backbone: it
 * provides the "transport" service (publish through daprd's pub/sub API,
 * deliveries from daprd on todod's listener), the inbox driver
 * "dapr-state", and, with jobs = yes, times the reminders with Dapr Jobs.
 *
 * Readiness is daprd's own view: GET /v1.0/healthz/outbound answers 204
 * once its components are loaded, before it has found the app (which it
 * only looks for once todod listens).  Until then, and whenever a check or
 * a publish finds it unreachable, ready() is false with a reason naming
 * the sidecar, and events wait in the outbox.  An outage is logged once
 * when it starts and once when it ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

/* A sidecar that answers is asked again now and then, so an outage with
 * no traffic shows on /readyz too; one that does not, more often, so
 * events flow soon after it is back. */
#define HEALTH_WHILE_UP_MS 2000
#define HEALTH_WHILE_DOWN_MS 500

/* ---- topics -------------------------------------------------------------- */

const char *dapr_topic_physical(const struct dapr *d, const char *logical)
{
	const char *physical = todod_prefixed_value(&d->conf->topics, logical);
	return physical ? physical : logical;
}

/* ---- readiness ------------------------------------------------------------ */

static void check_sidecar(void *arg);

static void check_again(struct dapr *d, int64_t ms)
{
	if (!d->draining)
		d->api->timer_add(d->ctx, &d->health_check, ms, 0, check_sidecar, d);
}

static void sidecar_answers(struct dapr *d)
{
	if (d->sidecar_up)
		return;
	d->api->log(d->ctx, TODOD_LOG_INFO, "Dapr sidecar at %s is %s", d->endpoint,
		    d->sidecar_seen ? "reachable again" : "ready");
	d->sidecar_up = d->sidecar_seen = true;
	d->why[0] = '\0';
	dapr_jobs_sidecar_up(d);
}

void dapr_sidecar_lost(struct dapr *d, const char *reason)
{
	snprintf(d->why, sizeof d->why, "Dapr sidecar at %s %s: %.400s", d->endpoint,
		 d->sidecar_seen ? "unreachable" : "not ready yet", reason);
	if (d->sidecar_up)
		d->api->log(d->ctx, TODOD_LOG_WARN, "%s; events wait in the outbox", d->why);
	d->sidecar_up = false;
	/* Sooner than the check armed while it answered. */
	if (!d->checking)
		check_again(d, HEALTH_WHILE_DOWN_MS);
}

static void on_health(const struct todod_transfer_result *res, void *arg)
{
	struct dapr *d = arg;
	d->checking = false;
	if (res->status >= 200 && res->status < 300) {
		sidecar_answers(d);
		check_again(d, HEALTH_WHILE_UP_MS);
		return;
	}
	char text[600];
	dapr_failure_text(res, text, sizeof text);
	if (!d->sidecar_seen && !d->said_waiting)
		d->api->log(d->ctx, TODOD_LOG_INFO, "waiting for the Dapr sidecar at %s (%s)",
			    d->endpoint, text);
	d->said_waiting = true;
	dapr_sidecar_lost(d, text);
}

static void check_sidecar(void *arg)
{
	struct dapr *d = arg;
	struct todod_err err = { "" };
	const struct dapr_request rq = { .method = "GET", .path = "/v1.0/healthz/outbound" };
	if (d->checking)
		return;
	if (dapr_call(d, &rq, on_health, d, NULL, &err) != 0) {
		d->api->log(d->ctx, TODOD_LOG_ERROR, "cannot ask the Dapr sidecar for its health: %s",
			    err.text);
		check_again(d, HEALTH_WHILE_DOWN_MS);
		return;
	}
	d->checking = true;
}

static int dapr_health(void *state, struct todod_err *why)
{
	struct dapr *d = state;
	if (!d->sidecar_up)
		return todod_err_set(why, "%s", d->why);
	if (d->refusal[0])
		return todod_err_set(why, "%s", d->refusal);
	return 0;
}

/* ---- the transport service ------------------------------------------------- */

static int transport_subscribe(void *self, const char *topic, struct todod_err *err)
{
	struct dapr *d = self;
	for (size_t i = 0; i < d->n_wanted; i++)
		if (strcmp(d->wanted[i], topic) == 0)
			return 0;
	d->wanted = todod_xrealloc(d->wanted, (d->n_wanted + 1) * sizeof *d->wanted);
	d->wanted[d->n_wanted++] = todod_xstrdup(topic);
	return 0;
}

static int transport_ready(void *self, struct todod_err *why)
{
	return dapr_health(self, why);
}

/* ---- options ------------------------------------------------------------------ */

static bool has_line_break(const char *s)
{
	return s && strpbrk(s, "\r\n");
}

static int dapr_validate(const void *conf, struct todod_err *err)
{
	const struct dapr_conf *c = conf;
	const char *url = c->http_endpoint;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return todod_err_set(err, "http_endpoint: \"%s\" is not an http:// or https:// URL",
				     url);
	if (strpbrk(url, "?# \t\r\n") || strlen(url) >= sizeof ((struct dapr *)0)->endpoint)
		return todod_err_set(err, "http_endpoint: \"%s\" must be scheme://host:port with "
				     "no query, at most %zu characters", url,
				     sizeof ((struct dapr *)0)->endpoint - 1);
	if (!*c->pubsub)
		return todod_err_set(err, "pubsub: give the name of daprd's pub/sub component");
	if (!*c->statestore)
		return todod_err_set(err, "statestore: give the name of daprd's state store "
				     "component");
	/* Each goes into a header line of its own. */
	if (has_line_break(c->api_token))
		return todod_err_set(err, "api_token: contains a line break");
	if (has_line_break(c->app_token))
		return todod_err_set(err, "app_token: contains a line break");
	for (size_t i = 0; i < c->topics.n; i++) {
		const char *item = c->topics.items[i];
		const char *physical = strchr(item, '=') + 1;
		if (!*physical || strpbrk(physical, " \t/"))
			return todod_err_set(err, "topic.%.*s: \"%s\" is not a topic name (no blanks, "
					     "no '/')", (int)(physical - 1 - item), item, physical);
	}
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void dapr_destroy(void *state);

static int dapr_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		     void **state, struct todod_err *err)
{
	struct dapr *d = todod_xcalloc(1, sizeof *d);
	STAILQ_INIT(&d->deferred);
	const struct dapr_conf *c = conf;
	d->api = api;
	d->ctx = ctx;
	d->conf = c;
	snprintf(d->endpoint, sizeof d->endpoint, "%s", c->http_endpoint);
	for (size_t len = strlen(d->endpoint); len && d->endpoint[len - 1] == '/'; len--)
		d->endpoint[len - 1] = '\0';
	snprintf(d->why, sizeof d->why, "Dapr sidecar at %s not asked yet", d->endpoint);

	d->publish_latency = api->metric(ctx, TODOD_METRIC_HISTOGRAM,
					 "todod_dapr_publish_latency_seconds",
					 "From handing an event to daprd to its 204", "");
	d->publish_failures = api->metric(ctx, TODOD_METRIC_COUNTER,
					  "todod_dapr_publish_failures_total",
					  "Events daprd did not acknowledge (the outbox sends them "
					  "again)", "");
	const char *delivery_help = "Deliveries from daprd, by the answer they got";
	d->deliveries_ok = api->metric(ctx, TODOD_METRIC_COUNTER, "todod_dapr_deliveries_total",
				       delivery_help, "status=\"SUCCESS\"");
	d->deliveries_retry = api->metric(ctx, TODOD_METRIC_COUNTER, "todod_dapr_deliveries_total",
					  delivery_help, "status=\"RETRY\"");
	d->deliveries_drop = api->metric(ctx, TODOD_METRIC_COUNTER, "todod_dapr_deliveries_total",
					 delivery_help, "status=\"DROP\"");
	d->job_calls = api->metric(ctx, TODOD_METRIC_COUNTER, "todod_dapr_job_callbacks_total",
				   "Dapr Job callbacks served (each fires reminders.due)", "");
	d->job_failures = api->metric(ctx, TODOD_METRIC_COUNTER, "todod_dapr_job_failures_total",
				      "Jobs daprd did not take (those reminders fall back to the "
				      "scan)", "");

	d->transport = (struct todod_transport){
		.struct_size = sizeof d->transport,
		.name = "dapr-transport",
		.publish = dapr_publish,
		.subscribe = transport_subscribe,
		.ready = transport_ready,
		.self = d,
	};
	/* Whatever was registered goes with the context if this fails. */
	if (api->service_provide(ctx, "transport", "dapr-transport", &d->transport, err) != 0 ||
	    dapr_state_init(d, err) != 0 || dapr_secrets_init(d, err) != 0 ||
	    dapr_app_routes(d, err) != 0 || dapr_jobs_init(d, err) != 0) {
		dapr_destroy(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int dapr_start(void *state, struct todod_err *err)
{
	struct dapr *d = state;
	dapr_jobs_start(d);
	dapr_app_started(d);
	check_sidecar(d);
	return 0;
}

void dapr_settled(struct dapr *d)
{
	if (!d->drained || !LIST_EMPTY(&d->deliveries) || dapr_calls_in_flight(d) > 0)
		return;
	todod_drained_cb done = d->drained;
	d->drained = NULL;
	done(d->drain_ctx);
}

/* Waits for the calls to daprd in flight (publishes the outbox awaits)
 * and for the deliveries being handled; the core's drain deadline bounds
 * both.  No new health checks: the last word stands. */
static void dapr_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct dapr *d = state;
	d->draining = true;
	d->api->timer_del(&d->health_check);
	d->drained = done;
	d->drain_ctx = ctx;
	dapr_settled(d);
}

static void dapr_destroy(void *state)
{
	struct dapr *d = state;
	d->api->timer_del(&d->health_check);
	dapr_calls_forget(d);
	dapr_secrets_free(d);
	dapr_app_free(d);
	dapr_redeliveries_free(d);
	dapr_jobs_free(d);
	for (size_t i = 0; i < d->n_wanted; i++)
		free(d->wanted[i]);
	free(d->wanted);
	free(d);
}

#define OPT(field) offsetof(struct dapr_conf, field)

static const struct todod_opt dapr_options[] = {
	{ .key = "http_endpoint", .type = TODOD_OPT_STRING, .default_value = "http://127.0.0.1:3500",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(http_endpoint),
	  .description = "daprd's HTTP API (its --dapr-http-port)" },
	{ .key = "pubsub", .type = TODOD_OPT_STRING, .default_value = "pubsub",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(pubsub),
	  .description = "Name of daprd's pub/sub component" },
	{ .key = "api_token", .type = TODOD_OPT_SECRET, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(api_token),
	  .description = "Sent to daprd as dapr-api-token (daprd's DAPR_API_TOKEN): literal, "
			 "env:NAME or file:/path" },
	{ .key = "app_token", .type = TODOD_OPT_SECRET, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(app_token),
	  .description = "daprd's calls (deliveries, jobs) must carry it as dapr-api-token "
			 "(daprd's APP_API_TOKEN), else 401: literal, env:NAME or file:/path" },
	{ .key = "request_timeout", .type = TODOD_OPT_DURATION, .default_value = "5s",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(request_timeout_ms), .min = 100,
	  .max = 300000, .description = "Longest wait for daprd's answer to one call" },
	{ .key = "jobs", .type = TODOD_OPT_BOOL, .default_value = "yes",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(jobs),
	  .description = "Time reminders with Dapr Jobs (trigger reminders.due) instead of a "
			 "timer in every replica" },
	{ .key = "statestore", .type = TODOD_OPT_STRING, .default_value = "statestore",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(statestore),
	  .description = "State store component of the inbox driver dapr-state ([core] inbox = "
			 "dapr-state)" },
	{ .key = "inbox_ttl", .type = TODOD_OPT_DURATION, .default_value = "7d",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(inbox_ttl_ms), .max = 3650LL * 86400000,
	  .description = "How long dapr-state keeps an inbox entry (longer than a broker keeps "
			 "a message that could come again); 0: for ever" },
	{ .key = "max_deliveries", .type = TODOD_OPT_INT, .default_value = "31",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(max_deliveries), .min = 0, .max = 10000,
	  .description = "Deliveries of one event answered RETRY (an outcome could not be "
			 "recorded) before todod dead-letters it with the reason; keep it at most "
			 "the Resiliency policy's maxRetries + 1 (contrib/dapr: 31), or daprd "
			 "dead-letters it first, without the reason; 0: leave it to daprd" },
	{ .key = "topic.", .type = TODOD_OPT_PREFIX, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(topics),
	  .description = "Broker name of a topic: topic.task-events = prod.task-events (as "
			 "kafka-direct's, for a fleet on both)" },
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "dapr-transport",
	.version = "1.0",
	.description = "A Dapr sidecar as the event backbone: pub/sub, jobs, state store",
	.options = dapr_options,
	.conf_size = sizeof(struct dapr_conf),
	.validate = dapr_validate,
	.init = dapr_init,
	.start = dapr_start,
	.drain = dapr_drain,
	.destroy = dapr_destroy,
	.health = dapr_health,
};

/* dapr_app.c - what daprd asks of todod, on todod's own listener.
 *
 *   GET  /dapr/subscribe        the topics the loaded consumers need, each
 *                               with its route and dead-letter topic
 *   POST /dapr/events/<topic>   one delivery of a subscribed topic
 *
 * (/dapr/config is not served: daprd takes its 404 as "no app config".)
 *
 * A delivery goes through the bus like one kafka-direct consumed: the
 * inbox first (a redelivery is answered at once), then the subscribers,
 * with the core's retries, and is answered once the bus settled it:
 * {"status":"SUCCESS"} when handled, "RETRY" when an outcome could not be
 * recorded (daprd redelivers as its Resiliency policy says).  One that can
 * never be handled todod dead-letters itself, with the reason
 * (dapr_dlq.c), and answers SUCCESS once daprd has taken the dead letter.
 * Every subscription asks daprd for the broker's bytes (metadata
 * rawPayload), which daprd wraps in a CloudEvent of its own with the
 * bytes in data_base64: those bytes go to the bus as they are, whatever
 * they are, so a message that is not JSON at all reaches the core too,
 * is refused there with the reason, and is dead-lettered with it, like
 * kafka-direct's.  They are the event as dapr-transport or kafka-direct
 * published it, or daprd's re-serialisation of a CloudEvent published
 * through daprd without rawPayload; the core reads both.
 *
 * The answer is one small write (evhttp sends the header block and the
 * body together), so Nagle never holds it back waiting for an ACK. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

#define EVENTS_ROUTE "/dapr/events/"

struct dapr_delivery {
	LIST_ENTRY(dapr_delivery) link;
	struct dapr *d;
	struct dapr_message msg;
	char *unwrapped;          /* msg.body when it came in data_base64 */
};

/* A caller that gets the token wrong usually does so on every call:
 * said at most once per this interval, with the count of the others. */
#define REFUSAL_LOG_INTERVAL_US (60 * 1000000LL)

bool dapr_app_authorized(struct dapr *d, struct todod_http_req *req)
{
	const char *secret = d->conf->app_token;
	if (!secret)
		return true;
	const char *given = d->api->http_header(req, "dapr-api-token");
	if (given && dapr_same_secret(given, secret))
		return true;
	/* A caller's mistake (or daprd without APP_API_TOKEN): not ours to
	 * log as an error, and not a line per call. */
	int64_t now = d->api->mono_us();
	if (d->refusals_logged_us && now - d->refusals_logged_us < REFUSAL_LOG_INTERVAL_US) {
		d->refusals_unlogged++;
	} else {
		char others[96] = "";
		if (d->refusals_unlogged)
			snprintf(others, sizeof others, " (and %" PRId64 " other refusal%s since the "
				 "last such line)", d->refusals_unlogged,
				 d->refusals_unlogged == 1 ? "" : "s");
		d->api->log(d->ctx, TODOD_LOG_WARN, "refused %s from %s: %s dapr-api-token (option "
			    "app_token; daprd sends the one in its APP_API_TOKEN)%s; said at most "
			    "once a minute", d->api->http_path(req), d->api->http_peer(req),
			    given ? "wrong" : "no", others);
		d->refusals_logged_us = now;
		d->refusals_unlogged = 0;
	}
	d->api->http_reply_error(req, 401, "UNAUTHORIZED",
				 "this call needs the app API token in header dapr-api-token");
	return false;
}

/* ---- before start() ---------------------------------------------------------- */

struct dapr_deferred {
	STAILQ_ENTRY(dapr_deferred) link;
	struct todod_http_req *req;
	todod_http_handler handler;
	void *arg;
};

bool dapr_app_defer(struct dapr *d, struct todod_http_req *req, todod_http_handler handler,
		    void *arg)
{
	if (d->started)
		return false;
	struct dapr_deferred *w = todod_xcalloc(1, sizeof *w);
	*w = (struct dapr_deferred){ .req = req, .handler = handler, .arg = arg };
	STAILQ_INSERT_TAIL(&d->deferred, w, link);
	return true;
}

void dapr_app_started(struct dapr *d)
{
	d->started = true;
	while (!STAILQ_EMPTY(&d->deferred)) {
		struct dapr_deferred *w = STAILQ_FIRST(&d->deferred);
		STAILQ_REMOVE_HEAD(&d->deferred, link);
		w->handler(w->req, w->arg);
		free(w);
	}
}

/* ---- the subscription list ------------------------------------------------- */

static void serve_subscribe(struct todod_http_req *req, void *arg)
{
	struct dapr *d = arg;
	if (dapr_app_defer(d, req, serve_subscribe, d) || !dapr_app_authorized(d, req))
		return;
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < d->n_wanted; i++) {
		const char *physical = dapr_topic_physical(d, d->wanted[i]);
		char route[512], dead_letter[512];
		snprintf(route, sizeof route, EVENTS_ROUTE "%s", d->wanted[i]);
		snprintf(dead_letter, sizeof dead_letter, "%s-dlq", physical);
		json_object *sub = json_object_new_object();
		json_object_object_add(sub, "pubsubname", json_object_new_string(d->conf->pubsub));
		json_object_object_add(sub, "topic", json_object_new_string(physical));
		json_object_object_add(sub, "route", json_object_new_string(route));
		json_object_object_add(sub, "deadLetterTopic", json_object_new_string(dead_letter));
		json_object *metadata = json_object_new_object();
		json_object_object_add(metadata, "rawPayload", json_object_new_string("true"));
		json_object_object_add(sub, "metadata", metadata);
		json_object_array_add(list, sub);
	}
	size_t len;
	const char *text = json_object_to_json_string_length(list, JSON_C_TO_STRING_PLAIN, &len);
	d->api->http_reply(req, 200, "application/json", text, len);
	json_object_put(list);
}

/* ---- deliveries ---------------------------------------------------------------- */

static void reply_status(struct dapr *d, struct todod_http_req *req, const char *status)
{
	char body[64];
	int len = snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
	d->api->http_reply(req, 200, "application/json", body, (size_t)len);
}

static void delivery_free(struct dapr_delivery *dl)
{
	LIST_REMOVE(dl, link);
	free(dl->unwrapped);
	free(dl);
}

static void settle(struct dapr_delivery *dl, const char *status)
{
	struct dapr *d = dl->d;
	reply_status(d, dl->msg.req, status);
	delivery_free(dl);
	dapr_settled(d);
}

static void on_dead_lettered(bool taken, void *arg)
{
	struct dapr_delivery *dl = arg;
	/* Not taken: daprd's own dead letter, without the reason, rather
	 * than redelivering what can never be handled. */
	settle(dl, taken ? "SUCCESS" : "DROP");
}

static void dead_letter(struct dapr_delivery *dl, const char *reason, int attempts)
{
	struct dapr *d = dl->d;
	/* What came on the topic is at fault, or what todod depends on: not
	 * todod itself, so a warning. */
	d->api->metric_add(d->deliveries_drop, 1);
	d->api->log(d->ctx, TODOD_LOG_WARN, "delivery on %s goes to %s-dlq: %s", dl->msg.topic,
		    dapr_topic_physical(d, dl->msg.topic), reason);
	if (dapr_dead_letter(d, &dl->msg, reason, attempts, on_dead_lettered, dl) != 0)
		settle(dl, "DROP");
}

static void on_settled(enum todod_result result, const char *reason, int attempts, void *arg)
{
	struct dapr_delivery *dl = arg;
	struct dapr *d = dl->d;
	char why[700];
	int64_t deliveries;
	switch (result) {
	case TODOD_OK:
		d->api->metric_add(d->deliveries_ok, 1);
		dapr_redelivery_settled(d, &dl->msg);
		settle(dl, "SUCCESS");
		return;
	case TODOD_RETRY:
		if (dapr_redelivery_last(d, &dl->msg, &deliveries)) {
			snprintf(why, sizeof why, "not handled in %" PRId64 " deliveries: %s",
				 deliveries, reason ? reason : "no reason given");
			dead_letter(dl, why, (int)deliveries);
			return;
		}
		d->api->metric_add(d->deliveries_retry, 1);
		d->api->log(d->ctx, TODOD_LOG_DEBUG, "delivery on %s: daprd redelivers it (%s)",
			    dl->msg.topic, reason ? reason : "no reason given");
		settle(dl, "RETRY");
		return;
	default:
		dapr_redelivery_settled(d, &dl->msg);
		dead_letter(dl, reason ? reason : "no reason given", attempts);
		return;
	}
}

static const char *wanted_topic(const struct dapr *d, const char *logical)
{
	for (size_t i = 0; i < d->n_wanted; i++)
		if (strcmp(d->wanted[i], logical) == 0)
			return d->wanted[i];
	return NULL;
}

/* The broker's bytes from daprd's wrapper (a subscription with
 * rawPayload): {"data_base64": ..., "datacontenttype":
 * "application/octet-stream", ...}; NULL for a body that is not one,
 * which is then taken as it is. */
static char *broker_bytes(const char *body, size_t len, size_t *out_len)
{
	json_tokener *tok = json_tokener_new();
	json_object *root = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	json_object *data, *type;
	char *bytes = NULL;
	if (root && json_object_object_get_ex(root, "data_base64", &data) &&
	    json_object_is_type(data, json_type_string) &&
	    json_object_object_get_ex(root, "datacontenttype", &type) &&
	    json_object_is_type(type, json_type_string) &&
	    strcmp(json_object_get_string(type), "application/octet-stream") == 0)
		bytes = dapr_base64_decode(json_object_get_string(data), out_len);
	json_object_put(root);
	return bytes;
}

static void serve_delivery(struct todod_http_req *req, void *arg)
{
	struct dapr *d = arg;
	if (dapr_app_defer(d, req, serve_delivery, d) || !dapr_app_authorized(d, req))
		return;
	const char *topic = wanted_topic(d, d->api->http_path(req) + strlen(EVENTS_ROUTE));
	if (!topic) {
		d->api->log(d->ctx, TODOD_LOG_WARN, "delivery to %s, a topic no loaded plugin "
			    "consumes: dropped (daprd's subscriptions are from before a "
			    "configuration change; restart daprd)", d->api->http_path(req));
		reply_status(d, req, "DROP");
		return;
	}
	if (d->draining) {
		reply_status(d, req, "RETRY"); /* another replica, or this one after the restart */
		return;
	}
	/* Kafka names the message key __key; other brokers pass on the
	 * publisher's partitionKey. */
	const char *key = d->api->http_header(req, "__key");
	if (!key)
		key = d->api->http_header(req, "Partitionkey");
	struct dapr_delivery *dl = todod_xcalloc(1, sizeof *dl);
	*dl = (struct dapr_delivery){ .d = d, .msg = { .req = req, .topic = topic, .key = key } };
	LIST_INSERT_HEAD(&d->deliveries, dl, link);
	const char *body = d->api->http_body(req, &dl->msg.len);
	dl->msg.body = body ? body : "";
	dl->unwrapped = broker_bytes(dl->msg.body, dl->msg.len, &dl->msg.len);
	if (dl->unwrapped)
		dl->msg.body = dl->unwrapped;
	const struct todod_inbound in = {
		.struct_size = sizeof in,
		.topic = topic,
		.key = key,
		.raw = dl->msg.body,
		.len = dl->msg.len,
		.done = on_settled,
		.arg = dl,
	};
	struct todod_err err = { "" };
	if (d->api->bus_inbound(d->ctx, &in, &err) != 0)
		on_settled(TODOD_RETRY, err.text, 0, dl);
}

int dapr_app_routes(struct dapr *d, struct todod_err *err)
{
	if (d->api->http_route(d->ctx, TODOD_HTTP_GET, "/dapr/subscribe", serve_subscribe, d,
			       err) != 0 ||
	    d->api->http_route(d->ctx, TODOD_HTTP_POST, EVENTS_ROUTE "*", serve_delivery, d,
			       err) != 0)
		return -1;
	return 0;
}

/* The loop has stopped: nothing settles these any more.  RETRY is what
 * they are (and what waited for a start that failed, 503); the replies
 * only free the requests if daprd is gone. */
void dapr_app_free(struct dapr *d)
{
	while (!STAILQ_EMPTY(&d->deferred)) {
		struct dapr_deferred *w = STAILQ_FIRST(&d->deferred);
		STAILQ_REMOVE_HEAD(&d->deferred, link);
		d->api->http_reply_error(w->req, 503, "NOT_READY", "todod did not start");
		free(w);
	}
	while (!LIST_EMPTY(&d->deliveries)) {
		struct dapr_delivery *dl = LIST_FIRST(&d->deliveries);
		reply_status(d, dl->msg.req, "RETRY");
		delivery_free(dl);
	}
}

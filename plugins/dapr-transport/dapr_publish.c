/* dapr_publish.c - the outbox's events through daprd's pub/sub API.
 *
 * POST /v1.0/publish/{pubsub}/{topic}?metadata.rawPayload=true
 *      &metadata.partitionKey={task id}
 * with the CloudEvent exactly as the outbox encoded it.  rawPayload keeps
 * those bytes on the broker as they are, the same bytes kafka-direct
 * writes, so a fleet half on each transport shares one format, the inbox
 * knows an event by its id whichever way it came, and a dead letter is
 * the event as published.  Without it daprd re-serialises the event with
 * its own attributes (topic, pubsubname, empty trace fields) added.  The
 * partition key is kafka-direct's message key, and both partition like
 * Sarama, so a task's events share a partition whichever side sent them.
 *
 * 204 is the acknowledgement the outbox waits for.  No connection or a
 * 5xx: RETRY, the events wait in the outbox.  401/400/403/404: daprd
 * refuses for a reason only the operator can fix (token, component name,
 * scopes): said once with daprd's message, /readyz false, and RETRY, so
 * nothing is lost while it is fixed (daprd reloads components itself). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

struct publish {
	struct dapr *d;
	todod_publish_cb done;
	void *arg;
	int64_t started_us;
	char topic[256];          /* physical, for the log */
	char *refusal;            /* answered without a call: why */
	struct todod_timer *answer; /* that answer, on the next loop turn */
};

static void publish_free(void *arg)
{
	struct publish *p = arg;
	p->d->api->timer_del(&p->answer);
	free(p->refusal);
	free(p);
}

/* The record goes before its callback runs: the callback may publish
 * again (the next event of the task). */
static void answer(struct publish *p, enum todod_result result, const char *reason)
{
	todod_publish_cb done = p->done;
	void *arg = p->arg;
	char *owned = p->refusal;
	p->refusal = NULL;
	publish_free(p);
	done(result, owned ? owned : reason, arg);
	free(owned);
}

static bool refused_status(long status)
{
	return status == 400 || status == 401 || status == 403 || status == 404;
}

static void note_refusal(struct dapr *d, const char *topic, const char *text)
{
	char refusal[sizeof d->refusal];
	snprintf(refusal, sizeof refusal, "daprd refuses to publish to %.200s/%.250s: %.500s",
		 d->conf->pubsub, topic, text);
	if (strcmp(refusal, d->refusal) != 0)
		d->api->log(d->ctx, TODOD_LOG_ERROR, "%s; events wait in the outbox until the "
			    "component or the token is fixed", refusal);
	snprintf(d->refusal, sizeof d->refusal, "%s", refusal);
	snprintf(d->refused_topic, sizeof d->refused_topic, "%s", topic);
}

static void on_published(const struct todod_transfer_result *res, void *arg)
{
	struct publish *p = arg;
	struct dapr *d = p->d;
	char text[600];
	if (res->status >= 200 && res->status < 300) {
		d->api->metric_observe(d->publish_latency,
				       (double)(d->api->mono_us() - p->started_us) / 1e6);
		/* Only the topic refused says the refusal is over: scopes may
		 * allow one topic and refuse another. */
		if (d->refusal[0] && strcmp(p->topic, d->refused_topic) == 0) {
			d->api->log(d->ctx, TODOD_LOG_INFO, "daprd takes events for %s again",
				    p->topic);
			d->refusal[0] = '\0';
		}
		answer(p, TODOD_OK, NULL);
		return;
	}
	d->api->metric_add(d->publish_failures, 1);
	dapr_failure_text(res, text, sizeof text);
	if (res->status == 0)
		dapr_sidecar_lost(d, text);
	else if (refused_status(res->status))
		note_refusal(d, p->topic, text);
	char reason[900];
	snprintf(reason, sizeof reason, "publish to %s through daprd: %s", p->topic, text);
	answer(p, TODOD_RETRY, reason);
}

static void on_refusal_due(void *arg)
{
	answer(arg, TODOD_RETRY, NULL);
}

/* Not handed to daprd: answered RETRY on the next loop turn, so the
 * caller is never re-entered from its own call. */
static int refuse(struct publish *p, const char *why)
{
	char reason[700];
	snprintf(reason, sizeof reason, "not sent to daprd: %s", why);
	p->refusal = todod_xstrdup(reason);
	if (p->d->api->timer_add(p->d->ctx, &p->answer, 0, 0, on_refusal_due, p) != 0) {
		publish_free(p);
		return -1;
	}
	return 0;
}

/* The path of a raw publish to `topic` keyed by `key` (may be NULL), with
 * `metadata` ("name", "value" pairs, NULL-terminated; may be NULL) as
 * metadata.<name> query parameters. */
static bool publish_path(const struct dapr *d, char *path, size_t size, const char *topic,
			 const char *key, const char *const *metadata)
{
	snprintf(path, size, "/v1.0/publish/");
	if (!dapr_escape(path, size, d->conf->pubsub) || !dapr_append(path, size, "/") ||
	    !dapr_escape(path, size, topic) ||
	    !dapr_append(path, size, "?metadata.rawPayload=true") ||
	    (key && (!dapr_append(path, size, "&metadata.partitionKey=") ||
		     !dapr_escape(path, size, key))))
		return false;
	for (size_t i = 0; metadata && metadata[i]; i += 2)
		if (!dapr_append(path, size, "&metadata.") ||
		    !dapr_escape(path, size, metadata[i]) || !dapr_append(path, size, "=") ||
		    !dapr_escape(path, size, metadata[i + 1]))
			return false;
	return true;
}

int dapr_publish_raw(struct dapr *d, const struct dapr_raw_publish *rp, todod_transfer_cb done,
		     void *arg, void (*forget)(void *arg), struct todod_err *err)
{
	char path[4096];
	if (!publish_path(d, path, sizeof path, rp->topic, rp->key, rp->metadata))
		return todod_err_set(err, "the topic, the partition key or the metadata is too "
				     "long for a URL");
	const struct dapr_request rq = {
		.method = "POST",
		.path = path,
		.content_type = "application/cloudevents+json",
		.body = rp->body,
		.body_len = rp->len,
		.traceparent = rp->traceparent,
	};
	return dapr_call(d, &rq, done, arg, forget, err);
}

int dapr_publish(void *self, const struct todod_event *ev, todod_publish_cb done, void *arg)
{
	struct dapr *d = self;
	struct publish *p = todod_xcalloc(1, sizeof *p);
	*p = (struct publish){ .d = d, .done = done, .arg = arg, .started_us = d->api->mono_us() };
	const char *topic = dapr_topic_physical(d, ev->topic);
	snprintf(p->topic, sizeof p->topic, "%s", topic);
	if (!d->sidecar_up)
		return refuse(p, d->why);
	const struct dapr_raw_publish rp = { .topic = topic, .key = ev->key, .body = ev->raw,
					     .len = ev->raw_len, .traceparent = ev->traceparent };
	struct todod_err err = { "" };
	if (dapr_publish_raw(d, &rp, on_published, p, publish_free, &err) != 0)
		return refuse(p, err.text);
	return 0;
}

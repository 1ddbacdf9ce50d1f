/* dapr_dlq.c - dead letters that say why.
 *
 * daprd's own dead-lettering (a delivery answered DROP, or one whose
 * Resiliency retries ran out) republishes the message to the
 * subscription's deadLetterTopic as it came, with nothing that says why.
 * So when todod gives up on a delivery it publishes the message to
 * <topic>-dlq itself, with the bytes unchanged (rawPayload, the same key)
 * and the reason as publish metadata, which Dapr's Kafka component writes
 * as record headers of the same names as kafka-direct's dead letters:
 *
 *   todod-dlq-reason      why todod gave up (the core's words)
 *   todod-dlq-attempts    tries of the subscriber that gave up (0: the
 *                         message was never handed to one), or the
 *                         deliveries counted below
 *   todod-dlq-topic       the topic it came from
 *   todod-dlq-partition   } where it was consumed (Kafka only; daprd
 *   todod-dlq-offset      } says so in its delivery headers)
 *
 * A delivery answered RETRY (an outcome could not be recorded: the
 * database away) daprd redelivers as its Resiliency policy says, and
 * once those retries run out dead-letters it itself, without a word.  So
 * todod counts the deliveries of each event it answered RETRY (by
 * CloudEvent id, in a table of REDELIVERIES_MAX entries, the least
 * recently seen given up) and dead-letters the one max_deliveries allows
 * itself, with the last reason.  (Deliveries todod never answered, being
 * away, are not counted: those daprd may still dead-letter first.)
 *
 * Only once daprd has taken the dead letter is the delivery answered
 * SUCCESS.  If it does not take it, the answer is DROP: daprd then
 * dead-letters the message itself, without the reason (which stays in
 * todod's log), rather than redelivering what can never be handled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

/* Header values and the URL stay small; the whole reason is in the log. */
#define REASON_MAX 400
#define REDELIVERIES_MAX 1024

/* The deliveries of one event answered RETRY so far. */
struct dapr_redelivery {
	char id[128];
	int64_t count;
	int64_t seen_us;
};

/* The CloudEvent id of `m` (a JSON object's "id"), or false. */
static bool event_id(const struct dapr_message *m, char *id, size_t size)
{
	json_tokener *tok = json_tokener_new();
	json_object *root = json_tokener_parse_ex(tok, m->body, (int)m->len);
	json_tokener_free(tok);
	json_object *v;
	bool found = root && json_object_object_get_ex(root, "id", &v) &&
		     json_object_is_type(v, json_type_string) &&
		     (size_t)snprintf(id, size, "%s", json_object_get_string(v)) < size;
	json_object_put(root);
	return found;
}

static struct dapr_redelivery *redelivery_find(struct dapr *d, const char *id)
{
	for (size_t i = 0; i < d->n_redeliveries; i++)
		if (strcmp(d->redeliveries[i].id, id) == 0)
			return &d->redeliveries[i];
	return NULL;
}

static void redelivery_drop(struct dapr *d, struct dapr_redelivery *r)
{
	*r = d->redeliveries[--d->n_redeliveries];
}

bool dapr_redelivery_last(struct dapr *d, const struct dapr_message *m, int64_t *deliveries)
{
	char id[128];
	if (d->conf->max_deliveries == 0 || !event_id(m, id, sizeof id))
		return false;
	struct dapr_redelivery *r = redelivery_find(d, id);
	if (!r) {
		if (!d->redeliveries)
			d->redeliveries = todod_xcalloc(REDELIVERIES_MAX, sizeof *d->redeliveries);
		if (d->n_redeliveries == REDELIVERIES_MAX) {
			struct dapr_redelivery *oldest = &d->redeliveries[0];
			for (size_t i = 1; i < d->n_redeliveries; i++)
				if (d->redeliveries[i].seen_us < oldest->seen_us)
					oldest = &d->redeliveries[i];
			redelivery_drop(d, oldest);
		}
		r = &d->redeliveries[d->n_redeliveries++];
		*r = (struct dapr_redelivery){ .count = 0 };
		snprintf(r->id, sizeof r->id, "%s", id);
	}
	r->seen_us = d->api->mono_us();
	*deliveries = ++r->count;
	if (r->count < d->conf->max_deliveries)
		return false;
	redelivery_drop(d, r);
	return true;
}

void dapr_redelivery_settled(struct dapr *d, const struct dapr_message *m)
{
	char id[128];
	struct dapr_redelivery *r;
	if (d->n_redeliveries > 0 && event_id(m, id, sizeof id) && (r = redelivery_find(d, id)))
		redelivery_drop(d, r);
}

void dapr_redeliveries_free(struct dapr *d)
{
	free(d->redeliveries);
	d->redeliveries = NULL;
	d->n_redeliveries = 0;
}

struct dead_letter {
	struct dapr *d;
	void (*done)(bool taken, void *arg);
	void *arg;
	char topic[300];           /* the dead-letter topic, for the log */
};

/* Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence. */
static void cut_utf8(char *s, size_t max)
{
	size_t len = strlen(s);
	if (len <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

static void on_taken(const struct todod_transfer_result *res, void *arg)
{
	struct dead_letter *dl = arg;
	struct dapr *d = dl->d;
	bool taken = res->status >= 200 && res->status < 300;
	if (!taken) {
		char text[600];
		dapr_failure_text(res, text, sizeof text);
		d->api->log(d->ctx, TODOD_LOG_WARN, "daprd did not take the dead letter to %s (%s); "
			    "daprd dead-letters the message itself, without the reason", dl->topic,
			    text);
	}
	dl->done(taken, dl->arg);
	free(dl);
}

int dapr_dead_letter(struct dapr *d, const struct dapr_message *m, const char *reason,
		     int attempts, void (*done)(bool taken, void *arg), void *arg)
{
	const char *physical = dapr_topic_physical(d, m->topic);
	char why[REASON_MAX + 1], tries[16];
	snprintf(why, sizeof why, "%s", reason ? reason : "no reason given");
	cut_utf8(why, REASON_MAX);
	snprintf(tries, sizeof tries, "%d", attempts);
	const char *metadata[13] = { "todod-dlq-reason", why, "todod-dlq-attempts", tries,
				     "todod-dlq-topic", physical };
	size_t n = 6;
	const char *partition = d->api->http_header(m->req, "__partition");
	const char *offset = d->api->http_header(m->req, "__offset");
	if (partition && offset) {
		metadata[n++] = "todod-dlq-partition";
		metadata[n++] = partition;
		metadata[n++] = "todod-dlq-offset";
		metadata[n++] = offset;
	}
	metadata[n] = NULL;

	struct dead_letter *dl = todod_xcalloc(1, sizeof *dl);
	*dl = (struct dead_letter){ .d = d, .done = done, .arg = arg };
	snprintf(dl->topic, sizeof dl->topic, "%s-dlq", physical);
	const struct dapr_raw_publish rp = { .topic = dl->topic, .key = m->key,
					     .metadata = metadata, .body = m->body, .len = m->len };
	struct todod_err err = { "" };
	if (dapr_publish_raw(d, &rp, on_taken, dl, free, &err) != 0) {
		d->api->log(d->ctx, TODOD_LOG_WARN, "cannot send the dead letter to %s (%s); daprd "
			    "dead-letters the message itself, without the reason", dl->topic,
			    err.text);
		free(dl);
		return -1;
	}
	return 0;
}

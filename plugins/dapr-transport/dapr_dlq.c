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
 *                         message was never handed to one)
 *   todod-dlq-topic       the topic it came from
 *   todod-dlq-partition   } where it was consumed (Kafka only; daprd
 *   todod-dlq-offset      } says so in its delivery headers)
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

int dapr_dead_letter(struct dapr *d, struct todod_http_req *req, const char *logical,
		     const char *key, const char *reason, int attempts,
		     void (*done)(bool taken, void *arg), void *arg)
{
	const char *physical = dapr_topic_physical(d, logical);
	char why[REASON_MAX + 1], tries[16];
	snprintf(why, sizeof why, "%s", reason ? reason : "no reason given");
	cut_utf8(why, REASON_MAX);
	snprintf(tries, sizeof tries, "%d", attempts);
	const char *metadata[13] = { "todod-dlq-reason", why, "todod-dlq-attempts", tries,
				     "todod-dlq-topic", physical };
	size_t n = 6;
	const char *partition = d->api->http_header(req, "__partition");
	const char *offset = d->api->http_header(req, "__offset");
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
	size_t len;
	const void *body = d->api->http_body(req, &len);
	const struct dapr_raw_publish rp = { .topic = dl->topic, .key = key, .metadata = metadata,
					     .body = body ? body : "", .len = body ? len : 0 };
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

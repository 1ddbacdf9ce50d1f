/* kafka_produce.c - the producer: events, dead letters, topic creation.
 *
 * Each request handed to librdkafka carries a small record as its opaque;
 * the answer (a delivery report, or the result of CreateTopics) arrives
 * as an event on the producer's main queue, which the loop serves, and
 * the record's callback fires from there, exactly once.  A request that
 * librdkafka refuses on the spot (queue full, fatal state) is answered
 * RETRY on the next loop turn, so a caller is never re-entered from its
 * own call.
 *
 * Nothing here waits: draining watches rd_kafka_outq_len() on a short
 * timer instead of calling rd_kafka_flush(), and the core's drain
 * deadline bounds it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "kafka_produce.h"

#define DRAIN_POLL_MS 10
/* CreateTopics waits this long for a controller, e.g. for a broker that
 * is still starting; the consumer starts when it gives up, and
 * kafka_topics.c asks again once a broker is reachable. */
#define CREATE_TOPICS_TIMEOUT_MS 30000
#define DLQ_SUFFIX "-dlq"

/* One request awaiting its answer. */
struct pending {
	TAILQ_ENTRY(pending) link;
	todod_publish_cb done;
	void *arg;
	int64_t started_us;
	bool is_message;                  /* counts in n_messages */
	struct todod_metric *dead_letters; /* counted once the broker has it */
	char *refusal;                    /* refused on the spot: the reason */
};

TAILQ_HEAD(pending_list, pending);

struct kafka_producer {
	rd_kafka_t *rk;
	struct kafka_queue *kq;
	struct pending_list in_flight; /* handed to librdkafka */
	struct pending_list refused;   /* answered on the next turn */
	int n_messages;                /* messages in `in_flight` */
	struct todod_timer *answer_refused;
	void (*drained)(struct kafka *k);
	struct todod_timer *drain_poll;
	bool purged;                   /* drain gave up on an absent broker */
	rd_kafka_topic_t **known;      /* held: librdkafka keeps their leaders */
	size_t n_known;
};

static void pending_free(struct pending *p)
{
	free(p->refusal);
	free(p);
}

/* The record goes before its callback runs: the callback may publish
 * again, or be the last answer a drain waits for. */
static void answer(struct pending *p, enum todod_result result, const char *reason)
{
	todod_publish_cb done = p->done;
	void *arg = p->arg;
	char *owned = p->refusal;
	p->refusal = NULL;
	pending_free(p);
	if (done)
		done(result, owned ? owned : reason, arg);
	free(owned);
}

/* ---- refused on the spot ------------------------------------------------- */

static void on_answer_refused(void *arg)
{
	struct kafka *k = arg;
	struct kafka_producer *pr = k->producer;
	/* Answers may refuse new requests; those wait for the next turn. */
	struct pending_list now = TAILQ_HEAD_INITIALIZER(now);
	TAILQ_CONCAT(&now, &pr->refused, link);
	struct pending *p;
	while ((p = TAILQ_FIRST(&now))) {
		TAILQ_REMOVE(&now, p, link);
		answer(p, TODOD_RETRY, NULL);
	}
}

static void refuse(struct kafka *k, struct pending *p, const char *fmt, ...) TODOD_PRINTF(3, 4);
static void refuse(struct kafka *k, struct pending *p, const char *fmt, ...)
{
	struct kafka_producer *pr = k->producer;
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	p->refusal = todod_xstrdup(reason);
	TAILQ_INSERT_TAIL(&pr->refused, p, link);
	if (!pr->answer_refused)
		k->api->timer_add(k->ctx, &pr->answer_refused, 0, 0, on_answer_refused, k);
}

/* ---- producing ----------------------------------------------------------- */

static void note_fatal(struct kafka *k)
{
	char text[512];
	rd_kafka_resp_err_t code = rd_kafka_fatal_error(k->producer->rk, text, sizeof text);
	kafka_note_error(k, code, text, true);
}

/* Hands one message to librdkafka.  `headers` are taken over. */
static void produce(struct kafka *k, const char *topic, const void *key, size_t key_len,
		   const void *value, size_t value_len, rd_kafka_headers_t *headers,
		   struct todod_metric *dead_letters, todod_publish_cb done, void *arg)
{
	struct kafka_producer *pr = k->producer;
	struct pending *p = todod_xmalloc(sizeof *p);
	*p = (struct pending){ .done = done, .arg = arg, .started_us = k->api->mono_us(),
			       .is_message = true, .dead_letters = dead_letters };
	if (k->fatal) {
		if (headers)
			rd_kafka_headers_destroy(headers);
		refuse(k, p, "%s", k->why);
		return;
	}
	rd_kafka_resp_err_t err = rd_kafka_producev(
		pr->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
		RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
	if (err) {
		/* Headers stay ours when librdkafka refuses the message. */
		if (headers)
			rd_kafka_headers_destroy(headers);
		if (err == RD_KAFKA_RESP_ERR__FATAL)
			note_fatal(k);
		kafka_note_produce_error(k, topic, err);
		refuse(k, p, "cannot produce to %s: %s", topic, rd_kafka_err2str(err));
		return;
	}
	TAILQ_INSERT_TAIL(&pr->in_flight, p, link);
	pr->n_messages++;
}

int kafka_publish(void *self, const struct todod_event *ev, todod_publish_cb done, void *arg)
{
	struct kafka *k = self;
	if (!k->producer)
		return -1; /* not started: the outbox keeps the event */
	produce(k, kafka_topic_physical(k, ev->topic), ev->key, ev->key ? strlen(ev->key) : 0,
		ev->raw, ev->raw_len, NULL, NULL, done, arg);
	return 0;
}

static void add_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
	rd_kafka_header_add(h, name, -1, value ? value : "", -1);
}

void kafka_dead_letter(struct kafka *k, const struct kafka_dead_letter *dl,
		       todod_publish_cb done, void *arg)
{
	char topic[300], attempts[16], partition[16], offset[32], labels[320];
	snprintf(topic, sizeof topic, "%s" DLQ_SUFFIX, dl->topic);
	snprintf(attempts, sizeof attempts, "%d", dl->attempts);
	snprintf(partition, sizeof partition, "%" PRId32, dl->partition);
	snprintf(offset, sizeof offset, "%" PRId64, dl->offset);
	snprintf(labels, sizeof labels, "topic=\"%s\"", dl->topic);

	rd_kafka_headers_t *h = rd_kafka_headers_new(6);
	add_header(h, "todod-dlq-reason", dl->reason);
	add_header(h, "todod-dlq-attempts", attempts);
	add_header(h, "todod-dlq-topic", dl->topic);
	add_header(h, "todod-dlq-partition", partition);
	add_header(h, "todod-dlq-offset", offset);
	add_header(h, "todod-dlq-group", k->conf->group_id);
	struct todod_metric *counter =
		k->api->metric(k->ctx, TODOD_METRIC_COUNTER, "todod_kafka_dead_letters_total",
			       "Messages moved to a dead-letter topic, by the topic they came from",
			       labels);
	produce(k, topic, dl->key, dl->key_len, dl->value, dl->value_len, h, counter, done, arg);
}

/* ---- answers from librdkafka --------------------------------------------- */

static void on_delivery(struct kafka *k, rd_kafka_event_t *ev)
{
	struct kafka_producer *pr = k->producer;
	const rd_kafka_message_t *m;
	while ((m = rd_kafka_event_message_next(ev))) {
		struct pending *p = m->_private;
		TAILQ_REMOVE(&pr->in_flight, p, link);
		pr->n_messages--;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			k->api->metric_observe(k->produce_latency,
					       (double)(k->api->mono_us() - p->started_us) / 1e6);
			if (p->dead_letters)
				k->api->metric_add(p->dead_letters, 1);
			answer(p, TODOD_OK, NULL);
		} else {
			k->api->metric_add(k->delivery_failures, 1);
			kafka_note_produce_error(k, rd_kafka_topic_name(m->rkt), m->err);
			answer(p, TODOD_RETRY, rd_kafka_err2str(m->err));
		}
	}
}

/* The topics created are logged here; a failure goes back as the reason
 * (the first topic that failed, and how many more did), for the caller
 * to log once however often it asks again. */
static void on_topics_created(struct kafka *k, rd_kafka_event_t *ev)
{
	struct pending *p = rd_kafka_event_opaque(ev);
	TAILQ_REMOVE(&k->producer->in_flight, p, link);
	char reason[512] = "";
	int failed = 0;
	if (rd_kafka_event_error(ev)) {
		snprintf(reason, sizeof reason, "%s", rd_kafka_event_error_string(ev));
	} else {
		size_t n = 0;
		const rd_kafka_topic_result_t **results =
			rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		for (size_t i = 0; i < n; i++) {
			const char *name = rd_kafka_topic_result_name(results[i]);
			rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
			if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
				k->api->log(k->ctx, TODOD_LOG_INFO, "created topic %s", name);
			} else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
				const char *why = rd_kafka_topic_result_error_string(results[i]);
				if (!failed)
					snprintf(reason, sizeof reason, "topic %s: %s", name,
						 why ? why : rd_kafka_err2str(err));
				failed++;
			}
		}
	}
	if (failed > 1) {
		size_t len = strlen(reason);
		snprintf(reason + len, sizeof reason - len, " (and %d more)", failed - 1);
	}
	answer(p, reason[0] ? TODOD_RETRY : TODOD_OK, reason[0] ? reason : NULL);
}

static void on_error(struct kafka *k, rd_kafka_event_t *ev)
{
	if (rd_kafka_event_error_is_fatal(ev))
		note_fatal(k);
	else
		kafka_note_error(k, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), false);
}

static void on_event(rd_kafka_event_t *ev, void *arg)
{
	struct kafka *k = arg;
	switch (rd_kafka_event_type(ev)) {
	case RD_KAFKA_EVENT_DR:
		on_delivery(k, ev);
		break;
	case RD_KAFKA_EVENT_ERROR:
		on_error(k, ev);
		break;
	case RD_KAFKA_EVENT_STATS:
		kafka_note_stats(k, rd_kafka_event_stats(ev));
		break;
	case RD_KAFKA_EVENT_LOG:
		kafka_note_log(k, ev);
		break;
	case RD_KAFKA_EVENT_CREATETOPICS_RESULT:
		on_topics_created(k, ev);
		break;
	default:
		break;
	}
}

/* ---- topics -------------------------------------------------------------- */

static void destroy_new_topics(rd_kafka_NewTopic_t **topics, size_t n)
{
	rd_kafka_NewTopic_destroy_array(topics, n);
	free(topics);
}

void kafka_create_topics(struct kafka *k, const char *const *physical, size_t n,
			 todod_publish_cb done, void *arg)
{
	struct kafka_producer *pr = k->producer;
	struct pending *p = todod_xmalloc(sizeof *p);
	rd_kafka_NewTopic_t **topics = todod_xcalloc(2 * n + 1, sizeof *topics);
	*p = (struct pending){ .done = done, .arg = arg, .started_us = k->api->mono_us() };

	size_t count = 0;
	char why[512] = "";
	for (size_t i = 0; i < n && !why[0]; i++) {
		char dlq[300];
		snprintf(dlq, sizeof dlq, "%s" DLQ_SUFFIX, physical[i]);
		const char *names[] = { physical[i], dlq };
		for (size_t j = 0; j < 2 && !why[0]; j++) {
			topics[count] = rd_kafka_NewTopic_new(names[j], (int)k->conf->topic_partitions,
							      (int)k->conf->topic_replication, why,
							      sizeof why);
			if (topics[count])
				count++;
		}
	}
	if (why[0]) {
		destroy_new_topics(topics, count);
		refuse(k, p, "%s", why);
		return;
	}

	rd_kafka_AdminOptions_t *options =
		rd_kafka_AdminOptions_new(pr->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_opaque(options, p);
	rd_kafka_AdminOptions_set_request_timeout(options, CREATE_TOPICS_TIMEOUT_MS, why,
						  sizeof why);
	rd_kafka_queue_t *q = rd_kafka_queue_get_main(pr->rk);
	rd_kafka_CreateTopics(pr->rk, topics, count, options, q);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(options);
	destroy_new_topics(topics, count);
	TAILQ_INSERT_TAIL(&pr->in_flight, p, link);
}

/* librdkafka looks a topic's leaders up when a handle for it is created,
 * but before 2.10.1 not when producev() is the first to name it: that
 * first message waited for the next one-second scan, and with it every
 * event of the topic's first second.  Holding a handle from the moment
 * the topic is known to exist also keeps its metadata fresh, whether the
 * library would look it up on its own or not. */
void kafka_producer_look_up(struct kafka *k, const char *const *physical, size_t n)
{
	struct kafka_producer *pr = k->producer;
	if (!pr)
		return;
	for (size_t i = 0; i < n; i++) {
		bool held = false;
		for (size_t j = 0; j < pr->n_known && !held; j++)
			held = strcmp(rd_kafka_topic_name(pr->known[j]), physical[i]) == 0;
		if (held)
			continue;
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(pr->rk, physical[i], NULL);
		if (!rkt)
			continue; /* producev() looks it up later, as before */
		pr->known = todod_xrealloc(pr->known, (pr->n_known + 1) * sizeof *pr->known);
		pr->known[pr->n_known++] = rkt;
	}
}

/* ---- lifecycle ----------------------------------------------------------- */

int kafka_producer_start(struct kafka *k, struct todod_err *err)
{
	rd_kafka_conf_t *conf = kafka_conf_build(k->conf, KAFKA_PRODUCER, k->client_id, err);
	if (!conf)
		return -1;
	char why[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return todod_err_set(err, "cannot create the producer: %s", why);
	}
	struct kafka_producer *pr = todod_xcalloc(1, sizeof *pr);
	pr->rk = rk;
	TAILQ_INIT(&pr->in_flight);
	TAILQ_INIT(&pr->refused);
	rd_kafka_set_log_queue(rk, NULL);
	k->producer = pr;
	pr->kq = kafka_queue_watch(k->api, k->ctx, rd_kafka_queue_get_main(rk), on_event, k, err);
	if (!pr->kq) {
		kafka_producer_free(k);
		return -1;
	}
	return 0;
}

/* Done when nothing waits for an answer, or when no answer can come:
 * with no broker reachable what is unacknowledged stays in the outbox,
 * and waiting out the drain deadline would only delay the exit. */
/* After a purge only messages count: an admin request (topic creation)
 * waiting for an absent broker is abandoned with it. */
static bool producer_idle(const struct kafka *k)
{
	const struct kafka_producer *pr = k->producer;
	if (pr->purged)
		return pr->n_messages == 0 && TAILQ_EMPTY(&pr->refused);
	return TAILQ_EMPTY(&pr->in_flight) && TAILQ_EMPTY(&pr->refused) &&
	       rd_kafka_outq_len(pr->rk) == 0;
}

static void on_drain_poll(void *arg)
{
	struct kafka *k = arg;
	struct kafka_producer *pr = k->producer;
	/* With no broker to take them, waiting for delivery reports would
	 * only hold the shutdown until its deadline: purged messages are
	 * reported at once (RETRY), so the relay settles its batch and the
	 * events stay in the outbox for the next start. */
	if (!pr->purged && (!k->broker_up || k->fatal) && !producer_idle(k)) {
		pr->purged = true;
		if (pr->n_messages)
			k->api->log(k->ctx, TODOD_LOG_INFO,
				    "no broker reachable: %d event(s) not delivered stay in the outbox",
				    pr->n_messages);
		rd_kafka_purge(pr->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
					       RD_KAFKA_PURGE_F_NON_BLOCKING);
	}
	kafka_queue_serve(pr->kq);
	if (!pr->drained || !producer_idle(k))
		return;
	void (*done)(struct kafka *k) = pr->drained;
	pr->drained = NULL;
	k->api->timer_del(&pr->drain_poll);
	done(k);
}

void kafka_producer_drain(struct kafka *k, void (*done)(struct kafka *k))
{
	struct kafka_producer *pr = k->producer;
	if (!pr) {
		done(k);
		return;
	}
	pr->drained = done;
	k->api->timer_add(k->ctx, &pr->drain_poll, DRAIN_POLL_MS, TODOD_TIMER_REPEAT, on_drain_poll, k);
	on_drain_poll(k);
}

static void free_list(struct pending_list *l)
{
	struct pending *p;
	while ((p = TAILQ_FIRST(l))) {
		TAILQ_REMOVE(l, p, link);
		pending_free(p);
	}
}

/* The loop has stopped: what is still unanswered stays in the outbox (or
 * unsettled at the consumer) and is sent again by the next start. */
void kafka_producer_free(struct kafka *k)
{
	struct kafka_producer *pr = k->producer;
	if (!pr)
		return;
	kafka_queue_free(pr->kq);
	k->api->timer_del(&pr->answer_refused);
	k->api->timer_del(&pr->drain_poll);
	/* Without this, rd_kafka_destroy() would wait for messages that can
	 * no longer be reported to anyone. */
	rd_kafka_purge(pr->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	for (size_t i = 0; i < pr->n_known; i++)
		rd_kafka_topic_destroy(pr->known[i]);
	free(pr->known);
	rd_kafka_destroy(pr->rk);
	free_list(&pr->in_flight);
	free_list(&pr->refused);
	free(pr);
	k->producer = NULL;
}

/* kafka_consume.c - the group consumer's handle: one queue served from
 * the loop, rebalances (eager and cooperative), and a drain that settles
 * what was handed out, then leaves the group without blocking.  The
 * messages themselves live in their partition's window
 * (kafka_partition.c). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_consume.h"

/* The queue is also polled by a timer: librdkafka counts an empty poll
 * towards max.poll.interval.ms, and an idle topic with statistics turned
 * off would otherwise never wake the loop and get us thrown out of the
 * group.  A closing consumer looks more often whether librdkafka is done:
 * the end of the close is a state change, not always an event. */
#define POLL_MS 1000
#define CLOSE_POLL_MS 20

static void append(char *buf, size_t size, size_t *used, const char *fmt, ...)
	TODOD_PRINTF(4, 5);
static void append(char *buf, size_t size, size_t *used, const char *fmt, ...)
{
	if (*used >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *used, size - *used, fmt, ap);
	va_end(ap);
	*used += n > 0 ? (size_t)n : 0;
}

static void on_settled(struct kafka_consumer *kc);

/* ---- rebalances and events ---------------------------------------------- */

static void list_partitions(const rd_kafka_topic_partition_list_t *list, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; list && i < list->cnt; i++)
		append(buf, size, &used, "%s%s [%" PRId32 "]", i ? ", " : "", list->elems[i].topic,
		       list->elems[i].partition);
	if (!used)
		append(buf, size, &used, "nothing");
}

static bool cooperative(const struct kafka_consumer *kc)
{
	const char *protocol = rd_kafka_rebalance_protocol(kc->rk);
	return protocol && strcmp(protocol, "COOPERATIVE") == 0;
}

/* Takes or gives back partitions as the group's protocol wants it:
 * cooperative (cooperative-sticky) moves only the listed partitions,
 * eager (the default assignors) replaces the whole assignment.  A NULL
 * list gives everything back, whatever the protocol (after an error). */
static void apply_assignment(struct kafka_consumer *kc, rd_kafka_topic_partition_list_t *list,
			     bool assign)
{
	const char *failure = NULL;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	if (list && cooperative(kc))
		error = assign ? rd_kafka_incremental_assign(kc->rk, list)
			       : rd_kafka_incremental_unassign(kc->rk, list);
	else
		err = rd_kafka_assign(kc->rk, assign ? list : NULL);
	if (error)
		failure = rd_kafka_error_string(error);
	else if (err)
		failure = rd_kafka_err2str(err);
	if (failure)
		KC_LOG(kc, ERROR, "cannot %s partitions: %s", assign ? "assign" : "unassign",
		       failure);
	if (error)
		rd_kafka_error_destroy(error);
}

static void on_rebalance(struct kafka_consumer *kc, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t what = rd_kafka_event_error(ev);
	rd_kafka_topic_partition_list_t *list = rd_kafka_event_topic_partition_list(ev);
	char names[512];
	list_partitions(list, names, sizeof names);
	if (what == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		KC_LOG(kc, INFO, "assigned %s", names);
		apply_assignment(kc, list, true);
		for (int i = 0; list && i < list->cnt; i++)
			partition_add(kc, list->elems[i].topic, list->elems[i].partition);
		return;
	}
	bool revoke = what == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
	if (!revoke)
		KC_LOG(kc, WARN, "rebalance failed (%s); giving up every partition",
		       rd_kafka_err2str(what));
	else if (rd_kafka_assignment_lost(kc->rk))
		KC_LOG(kc, WARN, "lost %s", names);
	else
		KC_LOG(kc, INFO, "revoked %s", names);
	/* Eager revokes everything; so does a failure, whatever the protocol. */
	partitions_forget(kc, revoke && list && cooperative(kc) ? list : NULL);
	apply_assignment(kc, revoke ? list : NULL, false);
}

static void on_committed(struct kafka_consumer *kc, rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
	const rd_kafka_topic_partition_list_t *list = rd_kafka_event_topic_partition_list(ev);
	for (int i = 0; !err && list && i < list->cnt; i++)
		err = list->elems[i].err;
	if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
		return; /* nothing new to commit */
	if (err && !kc->commit_failing)
		KC_LOG(kc, WARN, "cannot commit offsets (%s); the next auto commit tries again",
		       rd_kafka_err2str(err));
	else if (!err && kc->commit_failing)
		KC_LOG(kc, INFO, "offsets are committed again");
	kc->commit_failing = err != RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void on_event(rd_kafka_event_t *ev, void *arg)
{
	struct kafka_consumer *kc = arg;
	const rd_kafka_message_t *rm;
	switch (rd_kafka_event_type(ev)) {
	case RD_KAFKA_EVENT_FETCH:
		while ((rm = rd_kafka_event_message_next(ev)))
			partitions_fetched(kc, rm);
		break;
	case RD_KAFKA_EVENT_REBALANCE:
		on_rebalance(kc, ev);
		break;
	case RD_KAFKA_EVENT_OFFSET_COMMIT:
		on_committed(kc, ev);
		break;
	case RD_KAFKA_EVENT_ERROR:
		kafka_note_error(kc->k, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev),
				 rd_kafka_event_error_is_fatal(ev));
		break;
	case RD_KAFKA_EVENT_STATS:
		kafka_note_stats(kc->k, rd_kafka_event_stats(ev));
		break;
	case RD_KAFKA_EVENT_LOG:
		kafka_note_log(kc->k, ev);
		break;
	default:
		break;
	}
}

/* ---- lifecycle ----------------------------------------------------------- */

static int subscribe(struct kafka_consumer *kc, struct todod_err *err)
{
	struct kafka *k = kc->k;
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)k->n_wanted);
	char names[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < k->n_wanted; i++) {
		const char *physical = kafka_topic_physical(k, k->wanted[i]);
		rd_kafka_topic_partition_list_add(list, physical, RD_KAFKA_PARTITION_UA);
		append(names, sizeof names, &used, "%s%s", i ? ", " : "", physical);
	}
	rd_kafka_resp_err_t e = rd_kafka_subscribe(kc->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (e)
		return todod_err_set(err, "cannot subscribe to %s: %s", names, rd_kafka_err2str(e));
	kc->subscribed = true;
	KC_LOG(kc, INFO, "consuming %s as group '%s'", names, k->conf->group_id);
	return 0;
}

static void consumer_destroy(struct kafka_consumer *kc)
{
	kc->k->api->timer_del(&kc->poll);
	if (kc->kq)
		kafka_queue_free(kc->kq);
	partitions_free(kc);
	if (kc->rk) {
		/* A close that ran (or was begun) is not repeated, nor one for a
		 * group never joined. */
		if (kc->subscribed && !kc->closing)
			rd_kafka_destroy(kc->rk);
		else
			rd_kafka_destroy_flags(kc->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	free(kc);
}

static void close_done(struct kafka_consumer *kc)
{
	kc->k->api->timer_del(&kc->poll);
	kc->closed = true;
	void (*done)(struct kafka *k) = kc->drained;
	kc->drained = NULL;
	if (done)
		done(kc->k);
}

static void on_poll(void *arg)
{
	struct kafka_consumer *kc = arg;
	kafka_queue_serve(kc->kq);
	if (kc->closing && !kc->closed && rd_kafka_consumer_closed(kc->rk)) {
		KC_LOG(kc, INFO, "left the consumer group");
		close_done(kc);
	}
}

static int poll_every(struct kafka_consumer *kc, int64_t ms)
{
	return kc->k->api->timer_add(kc->k->ctx, &kc->poll, ms, TODOD_TIMER_REPEAT, on_poll, kc);
}

int kafka_consumer_start(struct kafka *k, struct todod_err *err)
{
	if (k->n_wanted == 0)
		return 0; /* nothing to consume, no group to join */
	struct kafka_consumer *kc = todod_xcalloc(1, sizeof *kc);
	kc->k = k;
	kc->settled = on_settled;
	TAILQ_INIT(&kc->orphans);
	rd_kafka_conf_t *conf = kafka_conf_build(k->conf, KAFKA_CONSUMER, k->client_id, err);
	if (!conf) {
		free(kc);
		return -1;
	}
	char errstr[512];
	kc->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
	if (!kc->rk) {
		rd_kafka_conf_destroy(conf);
		free(kc);
		return todod_err_set(err, "cannot create the consumer: %s", errstr);
	}
	/* One queue, one fd: the handle's own events (errors, statistics,
	 * logs) join the fetched messages and rebalances. */
	rd_kafka_queue_t *main_q = rd_kafka_queue_get_main(kc->rk);
	rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(kc->rk);
	rd_kafka_queue_forward(main_q, q);
	rd_kafka_queue_destroy(main_q);
	rd_kafka_set_log_queue(kc->rk, q); /* not configured unless log.queue is on: fine */
	kc->kq = kafka_queue_watch(k->api, k->ctx, q, on_event, kc, err);
	if (kc->kq && poll_every(kc, POLL_MS) != 0)
		todod_err_set(err, "cannot arm the consumer's poll timer");
	if (!kc->poll || subscribe(kc, err) != 0) {
		consumer_destroy(kc);
		return -1;
	}
	k->consumer = kc;
	return 0;
}

/* Leaves the group without blocking: the revoke comes through the queue
 * we serve anyway, librdkafka commits the stored offsets on it, and a
 * timer watches for the end. */
static void begin_close(struct kafka_consumer *kc)
{
	kc->closing = true;
	/* Leaving needs the group coordinator: with no broker reachable (or
	 * none that lets us log in) the close would only wait out the drain's
	 * deadline.  The broker drops the member when its session times out;
	 * what was not committed is delivered again. */
	if (!kc->k->broker_up || kc->k->fatal) {
		KC_LOG(kc, INFO, "no broker reachable: not waiting to leave the consumer group");
		close_done(kc);
		return;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(kc->rk);
	rd_kafka_error_t *error = rd_kafka_consumer_close_queue(kc->rk, q);
	rd_kafka_queue_destroy(q);
	if (error) {
		KC_LOG(kc, WARN, "cannot leave the consumer group: %s",
		       rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		close_done(kc);
		return;
	}
	if (poll_every(kc, CLOSE_POLL_MS) != 0)
		close_done(kc); /* destroy skips the close it would wait for */
}

static void on_settled(struct kafka_consumer *kc)
{
	if (kc->draining && !kc->closing && kc->outstanding == 0)
		begin_close(kc);
}

void kafka_consumer_drain(struct kafka *k, void (*done)(struct kafka *k))
{
	struct kafka_consumer *kc = k->consumer;
	if (!kc) {
		done(k);
		return;
	}
	kc->draining = true;
	kc->drained = done;
	partitions_pause(kc);
	on_settled(kc);
}

void kafka_consumer_free(struct kafka *k)
{
	if (!k->consumer)
		return;
	consumer_destroy(k->consumer);
	k->consumer = NULL;
}

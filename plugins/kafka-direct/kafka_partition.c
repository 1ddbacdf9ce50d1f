/* kafka_partition.c - one window per assigned partition: fetched
 * messages to the core's bus in order per key, offsets stored only for
 * what is settled.
 *
 * The window holds a partition's fetched messages in offset order.  A
 * message goes to the bus once no earlier unsettled message of the same
 * key is in the window (a message without a key waits for every earlier
 * one), so one task's events are handled in the order they were produced
 * while other tasks flow past a slow one.  After each settle the settled
 * head of the window is cut off and the next offset is stored;
 * librdkafka's auto commit takes it to the group coordinator.
 *
 *   OK     settled.
 *   RETRY  the core could not record an outcome: the same message goes
 *          to the bus again after retry_backoff_ms (a timer; the rest of
 *          the partition keeps flowing).
 *   DROP   a dead letter to <topic>-dlq; settled only once the broker has
 *          it, else sent again after retry_backoff_ms.
 *
 * A revoked partition is forgotten at once.  Messages still with the bus
 * or the producer become orphans: their outcome counts for nothing, since
 * the new owner redelivers and the core's inbox makes a repeat harmless.
 * A full window pauses its partition, and a window half emptied resumes
 * it, so a stuck key cannot make the process buffer a whole topic. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_consume.h"

enum msg_state {
	MSG_WAITING,          /* for its turn, or for the bus again */
	MSG_IN_BUS,           /* bus_inbound's done is pending */
	MSG_RETRY_WAIT,       /* back to the bus when its timer fires */
	MSG_DEAD_LETTERING,   /* kafka_dead_letter's done is pending */
	MSG_DEAD_LETTER_WAIT, /* the dead letter failed: again when its timer fires */
	MSG_SETTLED,
};

struct message {
	TAILQ_ENTRY(message) link; /* in its partition's window, or an orphan */
	struct kafka_consumer *kc;
	struct partition *part;   /* NULL once its partition was revoked */
	enum msg_state state;
	int64_t offset;
	uint32_t hash;            /* of the key, for the ordering scan */
	bool has_key;
	struct todod_timer *timer;
	char *reason;             /* why it is being dead-lettered */
	int attempts;
	size_t key_len, len;
	char *key;                /* NUL-terminated; the core wants a C string */
	char *value;
	char data[];
};

/* One slot of the ordering scan's set of keys already taken. */
struct key_slot {
	uint32_t generation;
	const struct message *m;
};

struct partition {
	LIST_ENTRY(partition) link;
	struct kafka_consumer *kc;
	char *topic;              /* physical */
	int32_t id;
	struct message_list window; /* in offset order */
	size_t n;                 /* messages in the window, settled or not */
	int64_t next_offset;      /* below it: in the window already, or settled */
	int64_t stored;           /* last offset given to rd_kafka_offsets_store */
	bool paused;
	bool pumping, pump_again;
	struct todod_metric *consumed;
	/* Open addressing; a slot counts only in the scan of its generation,
	 * so a new scan starts with an empty set without clearing it. */
	struct key_slot *slots;
	size_t n_slots;
	uint32_t generation;
};

static void pump(struct partition *p);

/* ---- messages ------------------------------------------------------------ */

static uint32_t key_hash(const char *key, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h;
}

static struct message *message_new(struct partition *p, const rd_kafka_message_t *rm)
{
	struct message *m = todod_xmalloc(sizeof *m + rm->key_len + 1 + rm->len + 1);
	*m = (struct message){ .kc = p->kc, .part = p, .offset = rm->offset,
			       .has_key = rm->key_len > 0, .key_len = rm->key_len, .len = rm->len };
	m->key = m->data;
	m->value = m->data + rm->key_len + 1;
	if (rm->key_len)
		memcpy(m->key, rm->key, rm->key_len);
	m->key[rm->key_len] = '\0';
	if (rm->len)
		memcpy(m->value, rm->payload, rm->len);
	m->value[rm->len] = '\0';
	m->hash = key_hash(m->key, m->key_len);
	return m;
}

static void message_free(struct message *m)
{
	m->kc->k->api->timer_del(&m->timer);
	free(m->reason);
	free(m);
}

/* An orphan's callback came: nothing is left to do with it. */
static void orphan_release(struct message *m)
{
	TAILQ_REMOVE(&m->kc->orphans, m, link);
	message_free(m);
}

static const char *describe(const struct message *m, char *buf, size_t size)
{
	snprintf(buf, size, "%s [%" PRId32 "] at offset %" PRId64 " (key %s)", m->part->topic,
		 m->part->id, m->offset, m->has_key ? m->key : "none");
	return buf;
}

/* ---- partitions ---------------------------------------------------------- */

static rd_kafka_topic_partition_list_t *one_partition(const struct partition *p)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, p->topic, p->id);
	return list;
}

static void set_paused(struct partition *p, bool paused)
{
	rd_kafka_topic_partition_list_t *list = one_partition(p);
	rd_kafka_resp_err_t err = paused ? rd_kafka_pause_partitions(p->kc->rk, list)
					 : rd_kafka_resume_partitions(p->kc->rk, list);
	if (err)
		KC_LOG(p->kc, WARN, "cannot %s %s [%" PRId32 "]: %s", paused ? "pause" : "resume",
		       p->topic, p->id, rd_kafka_err2str(err));
	else
		p->paused = paused;
	rd_kafka_topic_partition_list_destroy(list);
}

static struct partition *part_find(struct kafka_consumer *kc, const char *topic, int32_t id)
{
	struct partition *p;
	LIST_FOREACH(p, &kc->parts, link)
		if (p->id == id && strcmp(p->topic, topic) == 0)
			return p;
	return NULL;
}

void partition_add(struct kafka_consumer *kc, const char *topic, int32_t id)
{
	if (part_find(kc, topic, id))
		return;
	struct partition *p = todod_xcalloc(1, sizeof *p);
	p->topic = todod_xstrdup(topic);
	p->kc = kc;
	p->id = id;
	TAILQ_INIT(&p->window);
	p->stored = RD_KAFKA_OFFSET_INVALID;
	char labels[300];
	snprintf(labels, sizeof labels, "topic=\"%s\"", topic);
	p->consumed = kc->k->api->metric(kc->k->ctx, TODOD_METRIC_COUNTER,
					 "todod_kafka_consumed_total",
					 "Messages fetched from Kafka, by topic", labels);
	LIST_INSERT_HEAD(&kc->parts, p, link);
	/* Whatever state an earlier assignment left it in, the partition
	 * flows, unless we are on our way out. */
	set_paused(p, kc->draining);
}

/* Drops the partition's state; what is still out with the bus or the
 * producer stays alive until its callback, as an orphan. */
static void part_forget(struct partition *p)
{
	struct kafka_consumer *kc = p->kc;
	LIST_REMOVE(p, link);
	struct message *m;
	while ((m = TAILQ_FIRST(&p->window))) {
		TAILQ_REMOVE(&p->window, m, link);
		if (m->state == MSG_IN_BUS || m->state == MSG_DEAD_LETTERING) {
			m->part = NULL;
			TAILQ_INSERT_HEAD(&kc->orphans, m, link);
		} else {
			message_free(m);
		}
	}
	free(p->slots);
	free(p->topic);
	free(p);
}

void partitions_forget(struct kafka_consumer *kc, const rd_kafka_topic_partition_list_t *list)
{
	for (struct partition *p = LIST_FIRST(&kc->parts), *next; p; p = next) {
		next = LIST_NEXT(p, link);
		if (!list || rd_kafka_topic_partition_list_find(list, p->topic, p->id))
			part_forget(p);
	}
}

void partitions_pause(struct kafka_consumer *kc)
{
	struct partition *p;
	LIST_FOREACH(p, &kc->parts, link)
		if (!p->paused)
			set_paused(p, true);
}

void partitions_free(struct kafka_consumer *kc)
{
	partitions_forget(kc, NULL);
	/* The core and the producer are gone or told to stay silent: no
	 * callback can come for these any more. */
	struct message *m;
	while ((m = TAILQ_FIRST(&kc->orphans))) {
		TAILQ_REMOVE(&kc->orphans, m, link);
		message_free(m);
	}
}

/* ---- ordering ------------------------------------------------------------ */

/* A fresh, empty key set large enough for the whole window. */
static void keys_reset(struct partition *p)
{
	size_t want = 16;
	while (want < 2 * p->n)
		want *= 2;
	if (want > p->n_slots) {
		free(p->slots);
		p->slots = todod_xcalloc(want, sizeof *p->slots);
		p->n_slots = want;
		p->generation = 0;
	}
	if (++p->generation == 0) {
		memset(p->slots, 0, p->n_slots * sizeof *p->slots);
		p->generation = 1;
	}
}

/* Takes m's key for this scan; false when an earlier message had it. */
static bool key_take(struct partition *p, const struct message *m)
{
	size_t mask = p->n_slots - 1;
	for (size_t i = m->hash & mask;; i = (i + 1) & mask) {
		struct key_slot *s = &p->slots[i];
		if (s->generation != p->generation) {
			s->generation = p->generation;
			s->m = m;
			return true;
		}
		if (s->m->hash == m->hash && s->m->key_len == m->key_len &&
		    memcmp(s->m->key, m->key, m->key_len) == 0)
			return false;
	}
}

static void on_inbound(enum todod_result result, const char *reason, int attempts, void *arg);

static void dispatch(struct message *m)
{
	struct kafka_consumer *kc = m->kc;
	struct kafka *k = kc->k;
	struct todod_err err = { "" };
	m->state = MSG_IN_BUS;
	kc->outstanding++;
	const struct todod_inbound in = {
		.struct_size = sizeof in,
		.topic = kafka_topic_logical(k, m->part->topic),
		.key = m->has_key ? m->key : NULL,
		.raw = m->value,
		.len = m->len,
		.max_attempts = (int)k->conf->max_attempts,
		.done = on_inbound,
		.arg = m,
	};
	if (k->api->bus_inbound(k->ctx, &in, &err) != 0)
		on_inbound(TODOD_RETRY, err.text, 0, m);
}

/* Hands every message whose turn has come to the bus. */
static void dispatch_ready(struct partition *p)
{
	keys_reset(p);
	bool earlier_unsettled = false;
	struct message *m;
	TAILQ_FOREACH(m, &p->window, link) {
		if (m->state == MSG_SETTLED)
			continue;
		bool turn = m->has_key ? key_take(p, m) : !earlier_unsettled;
		if (turn && m->state == MSG_WAITING)
			dispatch(m);
		earlier_unsettled = true;
	}
}

/* ---- offsets and flow ---------------------------------------------------- */

static void store_offset(struct partition *p, int64_t next)
{
	rd_kafka_topic_partition_list_t *list = one_partition(p);
	list->elems[0].offset = next;
	rd_kafka_resp_err_t err = rd_kafka_offsets_store(p->kc->rk, list);
	if (!err)
		err = list->elems[0].err;
	if (err)
		KC_LOG(p->kc, DEBUG, "cannot store offset %" PRId64 " of %s [%" PRId32 "]: %s",
		       next, p->topic, p->id, rd_kafka_err2str(err));
	else
		p->stored = next;
	rd_kafka_topic_partition_list_destroy(list);
}

/* Cuts the settled head off the window and stores the offset after it. */
static void advance(struct partition *p)
{
	int64_t next = RD_KAFKA_OFFSET_INVALID;
	struct message *m;
	while ((m = TAILQ_FIRST(&p->window)) && m->state == MSG_SETTLED) {
		TAILQ_REMOVE(&p->window, m, link);
		p->n--;
		next = m->offset + 1;
		message_free(m);
	}
	if (next > p->stored)
		store_offset(p, next);
}

static void flow_control(struct partition *p)
{
	int64_t max = p->kc->k->conf->max_in_flight > 0 ? p->kc->k->conf->max_in_flight : 1;
	if (!p->paused && (int64_t)p->n >= max)
		set_paused(p, true);
	else if (p->paused && !p->kc->draining && (int64_t)p->n * 2 < max)
		set_paused(p, false);
}

/* Everything that may follow a change in the window.  A settle reported
 * from inside dispatch() (the bus answers at once for a message that is
 * not a CloudEvent, or has no subscriber) only asks for another round, so
 * the window is never cut while a scan walks it. */
static void pump(struct partition *p)
{
	if (p->pumping) {
		p->pump_again = true;
		return;
	}
	p->pumping = true;
	do {
		p->pump_again = false;
		if (!p->kc->draining)
			dispatch_ready(p);
	} while (p->pump_again);
	p->pumping = false;
	advance(p);
	flow_control(p);
}

/* ---- settling ------------------------------------------------------------ */

static void on_wait_over(void *arg);

static void wait_then_retry(struct message *m, enum msg_state state)
{
	struct kafka *k = m->kc->k;
	m->state = state;
	if (k->api->timer_add(k->ctx, &m->timer, k->conf->retry_backoff_ms, 0, on_wait_over, m) != 0)
		KC_LOG(m->kc, ERROR, "cannot arm a retry timer: offset %" PRId64 " of %s [%" PRId32
		       "] waits for the next assignment", m->offset, m->part->topic, m->part->id);
}

static void on_dead_lettered(enum todod_result result, const char *reason, void *arg);

static void dead_letter(struct message *m)
{
	struct partition *p = m->part;
	m->state = MSG_DEAD_LETTERING;
	m->kc->outstanding++;
	const struct kafka_dead_letter dl = {
		.topic = p->topic, .partition = p->id, .offset = m->offset,
		.key = m->has_key ? m->key : NULL, .key_len = m->key_len,
		.value = m->value, .value_len = m->len,
		.reason = m->reason ? m->reason : "dropped", .attempts = m->attempts,
	};
	kafka_dead_letter(m->kc->k, &dl, on_dead_lettered, m);
}

static void on_wait_over(void *arg)
{
	struct message *m = arg;
	if (m->state == MSG_RETRY_WAIT) {
		m->state = MSG_WAITING;
		pump(m->part);
	} else if (!m->kc->draining) {
		/* A dead letter not sent while draining stays unsettled: the
		 * message comes again after the restart. */
		dead_letter(m);
	}
}

static void on_inbound(enum todod_result result, const char *reason, int attempts, void *arg)
{
	struct message *m = arg;
	struct kafka_consumer *kc = m->kc;
	char what[400];
	kc->outstanding--;
	if (!m->part) {
		orphan_release(m);
		kc->settled(kc);
		return;
	}
	switch (result) {
	case TODOD_OK:
		m->state = MSG_SETTLED;
		break;
	case TODOD_RETRY:
		KC_LOG(kc, DEBUG, "%s: again in %" PRId64 " ms (%s)",
		       describe(m, what, sizeof what), kc->k->conf->retry_backoff_ms,
		       reason ? reason : "no reason given");
		wait_then_retry(m, MSG_RETRY_WAIT);
		break;
	default:
		free(m->reason);
		m->reason = todod_xstrdup(reason ? reason : "dropped");
		m->attempts = attempts;
		KC_LOG(kc, WARN, "%s goes to the dead-letter topic: %s",
		       describe(m, what, sizeof what), reason ? reason : "dropped");
		dead_letter(m);
		break;
	}
	pump(m->part);
	kc->settled(kc);
}

static void on_dead_lettered(enum todod_result result, const char *reason, void *arg)
{
	struct message *m = arg;
	struct kafka_consumer *kc = m->kc;
	kc->outstanding--;
	if (!m->part) {
		orphan_release(m);
	} else if (result == TODOD_OK) {
		m->state = MSG_SETTLED;
		pump(m->part);
	} else {
		char what[400];
		KC_LOG(kc, DEBUG, "dead letter of %s not taken (%s); again in %" PRId64 " ms",
		       describe(m, what, sizeof what), reason ? reason : "no reason given",
		       kc->k->conf->retry_backoff_ms);
		wait_then_retry(m, MSG_DEAD_LETTER_WAIT);
	}
	kc->settled(kc);
}

/* ---- fetching ------------------------------------------------------------ */

void partitions_fetched(struct kafka_consumer *kc, const rd_kafka_message_t *rm)
{
	if (rm->err) {
		if (rm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			kafka_note_error(kc->k, rm->err, rd_kafka_message_errstr(rm), false);
		return;
	}
	struct partition *p = part_find(kc, rd_kafka_topic_name(rm->rkt), rm->partition);
	/* Not ours (any more), or fetched again after a pause. */
	if (!p || rm->offset < p->next_offset)
		return;
	p->next_offset = rm->offset + 1;
	kc->k->api->metric_add(p->consumed, 1);
	struct message *m = message_new(p, rm);
	TAILQ_INSERT_TAIL(&p->window, m, link);
	p->n++;
	pump(p);
}


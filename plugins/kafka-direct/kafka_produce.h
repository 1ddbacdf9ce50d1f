/* kafka_produce.h - the producer (kafka_produce.c), for the parts above
 * it: the transport, dead letters, topic creation and the drain. */
#ifndef TODOD_KAFKA_PRODUCE_H
#define TODOD_KAFKA_PRODUCE_H

#include "kafka.h"

int kafka_producer_start(struct kafka *k, struct todod_err *err);
/* The transport's publish(): `done` fires once from the delivery report. */
int kafka_publish(void *self, const struct todod_event *ev, todod_publish_cb done, void *arg);

/* A dead letter: the original value and key go to `<physical topic>-dlq`
 * with headers todod-dlq-reason, todod-dlq-attempts, todod-dlq-topic,
 * todod-dlq-partition, todod-dlq-offset and todod-dlq-group.  `done` fires
 * once: OK when the broker has it, RETRY with the reason when not. */
struct kafka_dead_letter {
	const char *topic;        /* physical topic it was consumed from */
	int32_t partition;
	int64_t offset;
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	const char *reason;
	int attempts;
};
void kafka_dead_letter(struct kafka *k, const struct kafka_dead_letter *dl,
		       todod_publish_cb done, void *arg);

/* Creates the topics (each with its -dlq) that are missing, then calls
 * `done` once; existing topics are fine, other failures are reported as
 * RETRY with the reason (not logged: the caller knows whether it said
 * so before). */
void kafka_create_topics(struct kafka *k, const char *const *physical, size_t n,
			 todod_publish_cb done, void *arg);

/* Has librdkafka look up the leaders of these topics (physical names)
 * now rather than at their first message, and keep them: once they are
 * known to exist (created, or create_topics = no). */
void kafka_producer_look_up(struct kafka *k, const char *const *physical, size_t n);

/* Drain: calls `done` once nothing is waiting for a delivery report, or
 * when the core's drain deadline stops the loop first. */
void kafka_producer_drain(struct kafka *k, void (*done)(struct kafka *k));
void kafka_producer_free(struct kafka *k);

#endif

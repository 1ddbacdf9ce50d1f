/* kafka_consume.h - what the group consumer's two halves share, and
 * nothing else of the plugin needs:
 *
 *   kafka_consume.c    the handle: events, rebalances, drain, close
 *   kafka_partition.c  one window per assigned partition: ordering,
 *                      settling, dead letters, offsets, flow control */
#ifndef TODOD_KAFKA_CONSUME_H
#define TODOD_KAFKA_CONSUME_H

#include <sys/queue.h>

#include "kafka_consumer.h"
#include "kafka_produce.h"

struct partition;
struct message;
TAILQ_HEAD(message_list, message);

struct kafka_consumer {
	struct kafka *k;
	rd_kafka_t *rk;
	struct kafka_queue *kq;
	LIST_HEAD(, partition) parts;
	struct message_list orphans; /* messages of forgotten partitions */
	int outstanding;          /* messages whose done callback is pending */
	bool subscribed;          /* leaving the group needs a close */
	bool draining, closing, closed;
	bool commit_failing;      /* said once per failing streak */
	struct todod_timer *poll; /* serves the queue now and then (POLL_MS) */
	void (*drained)(struct kafka *k);
	/* A message settled, or an orphan's callback came: a drain may be
	 * over.  Set by kafka_consume.c, called by kafka_partition.c, which
	 * so calls nothing in the file above it. */
	void (*settled)(struct kafka_consumer *kc);
};

#define KC_LOG(kc, level, ...) (kc)->k->api->log((kc)->k->ctx, TODOD_LOG_##level, __VA_ARGS__)

/* ---- kafka_partition.c ---- */
/* A partition was assigned: an empty window, flowing unless draining. */
void partition_add(struct kafka_consumer *kc, const char *topic, int32_t id);
/* Forgets the partitions in `list` (NULL: all of them); messages still
 * with the bus or the producer become orphans until their callback. */
void partitions_forget(struct kafka_consumer *kc, const rd_kafka_topic_partition_list_t *list);
/* A fetched message joins its partition's window; one of a partition
 * not ours (any more) is ignored. */
void partitions_fetched(struct kafka_consumer *kc, const rd_kafka_message_t *rm);
/* Draining: no partition fetches more. */
void partitions_pause(struct kafka_consumer *kc);
/* The loop has stopped: everything goes, orphans included. */
void partitions_free(struct kafka_consumer *kc);

#endif

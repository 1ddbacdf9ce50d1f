/* kafka.h - the kafka-direct plugin's parts and what they share.
 *
 *   kafka_plugin.c   options, lifecycle, readiness, the "transport" service
 *   kafka_conf.c     options -> rd_kafka_conf_t (security, pass-through)
 *   kafka_queue.c    a librdkafka queue driven by the loop (io-event fd)
 *   kafka_produce.c  publishing, delivery reports, dead letters, CreateTopics
 *   kafka_topics.c   which topics to create, and creating them again
 *   kafka_consume.c  the group consumer: dispatch, ordering, offsets
 *
 * Everything runs on the loop thread: librdkafka's own threads only wake
 * the loop by writing to a non-blocking pipe, and every event (delivery
 * report, fetched message, rebalance, error, statistics, log line) is
 * served from the loop. */
#ifndef TODOD_KAFKA_H
#define TODOD_KAFKA_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <todod-plugin.h>

enum kafka_security { KAFKA_PLAINTEXT, KAFKA_SSL, KAFKA_SASL_PLAINTEXT, KAFKA_SASL_SSL };
enum kafka_sasl { KAFKA_SASL_PLAIN, KAFKA_SASL_SCRAM_256, KAFKA_SASL_SCRAM_512 };

struct kafka_conf {
	struct todod_list brokers;
	char *group_id;
	char *client_id;          /* NULL: the instance id */
	int security_protocol;    /* enum kafka_security */
	int sasl_mechanism;       /* enum kafka_sasl */
	char *username;
	char *password;           /* secret */
	char *ssl_ca;
	bool create_topics;
	int64_t topic_partitions;
	int64_t topic_replication;
	int64_t max_attempts;     /* per subscriber, before dead-lettering */
	int64_t retry_backoff_ms; /* redelivery of a message whose outcome was not recorded */
	int64_t linger_ms;
	int64_t batch_size;
	int compression;          /* index into kafka_compressions */
	int64_t max_in_flight;    /* consumed messages dispatched at once, per partition */
	struct todod_list topics;    /* "logical=physical" from topic.<logical> = <physical> */
	struct todod_list librdkafka; /* "property=value" from librdkafka.<property> = <value> */
};

extern const char *const kafka_compressions[];

/* ---- kafka_conf.c ---- */
enum kafka_role { KAFKA_PRODUCER, KAFKA_CONSUMER };
/* A configuration for one client handle: brokers, security, the role's
 * settings, then the pass-through properties (which win).  NULL with
 * `err` naming the property librdkafka refused. */
rd_kafka_conf_t *kafka_conf_build(const struct kafka_conf *c, enum kafka_role role,
				  const char *client_id, struct todod_err *err);

/* ---- kafka_queue.c ---- */
struct kafka_queue;
typedef void (*kafka_event_fn)(rd_kafka_event_t *ev, void *arg);
/* Serve `q` from the loop: `fn` gets every event, the caller's reference
 * to `q` is taken over.  The event is destroyed after `fn` returns. */
struct kafka_queue *kafka_queue_watch(const struct todod_api *api, struct todod_ctx *ctx,
				      rd_kafka_queue_t *q, kafka_event_fn fn, void *arg,
				      struct todod_err *err);
/* Serve what is queued now, without waiting for the fd (used while
 * draining and right after requests whose answers are already queued). */
void kafka_queue_serve(struct kafka_queue *kq);
void kafka_queue_free(struct kafka_queue *kq);

/* ---- shared state ---- */
struct kafka_producer;
struct kafka_consumer;
struct kafka_topics;

struct kafka {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	const struct kafka_conf *conf;
	char client_id[256];

	struct kafka_producer *producer;
	struct kafka_consumer *consumer;
	struct kafka_topics *topics; /* NULL without create_topics */

	/* Topics the core's subscribers need (logical names), collected by
	 * the transport's subscribe() before start. */
	char **wanted;
	size_t n_wanted;

	/* Readiness: set from statistics (a broker is UP), errors (all
	 * brokers down, authentication) and fatal errors. */
	bool broker_up;
	bool fatal;
	char why[512];            /* why not ready; "" when ready */

	bool draining;

	struct todod_metric *produce_latency;   /* histogram: produce() to delivery report */
	struct todod_metric *delivery_failures; /* counter */
};

/* Physical (Kafka) name of a logical topic, and back; a name without a
 * `topic.` mapping is its own.  The returned string lives as long as the
 * configuration. */
const char *kafka_topic_physical(const struct kafka *k, const char *logical);
const char *kafka_topic_logical(const struct kafka *k, const char *physical);

/* Readiness bookkeeping shared by both handles: errors and statistics
 * events of either handle go through here. */
void kafka_note_error(struct kafka *k, rd_kafka_resp_err_t code, const char *text, bool fatal);
void kafka_note_stats(struct kafka *k, const char *json);
void kafka_note_log(struct kafka *k, rd_kafka_event_t *ev);

/* ---- kafka_produce.c ---- */
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

/* Drain: calls `done` once nothing is waiting for a delivery report, or
 * when the core's drain deadline stops the loop first. */
void kafka_producer_drain(struct kafka *k, void (*done)(struct kafka *k));
void kafka_producer_free(struct kafka *k);

/* ---- kafka_topics.c ---- */
/* Creates the topics todod uses now, and again after a failure once the
 * brokers are reachable, or when one turns out to be missing.
 * `first_answer` is called once, when the first request is answered. */
int kafka_topics_start(struct kafka *k, void (*first_answer)(struct kafka *k),
		       struct todod_err *err);
/* The brokers became reachable (again). */
void kafka_topics_brokers_up(struct kafka *k);
/* A produce to `topic` (physical name) failed: the topic does not exist. */
void kafka_topics_unknown(struct kafka *k, const char *topic);
void kafka_topics_free(struct kafka *k);

/* ---- kafka_consume.c ---- */
int kafka_consumer_start(struct kafka *k, struct todod_err *err);
void kafka_consumer_drain(struct kafka *k, void (*done)(struct kafka *k));
void kafka_consumer_free(struct kafka *k);

#endif

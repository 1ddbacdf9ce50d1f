/* kafka.h - the bottom of the kafka-direct plugin: what every part
 * shares, and nothing that calls back up.
 *
 *   kafka_plugin.c   options, lifecycle, the "transport" service (top)
 *   kafka_topics.c   which topics to create, and creating them again
 *   kafka_consume.c  the group consumer's handle: events, rebalances, drain
 *   kafka_partition.c  its partitions' windows: dispatch, ordering, offsets
 *   kafka_produce.c  publishing, delivery reports, dead letters, CreateTopics
 *   kafka_state.c    the shared state, the topic map, readiness (this header)
 *   kafka_conf.c     options -> rd_kafka_conf_t (this header)
 *   kafka_queue.c    a librdkafka queue driven by the loop (this header)
 *
 * Each part calls only the parts listed below it.  Where a lower part has
 * news for a higher one (the brokers are back, a topic is missing, a
 * consumed message settled) it goes through a hook the higher part sets
 * (in struct kafka, or struct kafka_consumer for the last).
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
extern const char *const kafka_security_protocols[];
extern const char *const kafka_sasl_mechanisms[];
bool kafka_uses_sasl(const struct kafka_conf *c);
bool kafka_uses_tls(const struct kafka_conf *c);

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

/* ---- kafka_state.c ---- */
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
	 * the transport's subscribe() before start (kafka_topic_want). */
	char **wanted;
	size_t n_wanted;

	/* Readiness: set from statistics (a broker is UP), errors (all
	 * brokers down, authentication) and fatal errors. */
	bool broker_up;
	bool fatal;
	char why[512];            /* why not ready; "" when ready */

	/* Set by the plugin's drain: the parts stop taking new work, and
	 * `drained(drain_ctx)` is called once the last of them is done. */
	bool draining;
	todod_drained_cb drained;
	struct todod_ctx *drain_ctx;

	struct todod_metric *produce_latency;   /* histogram: produce() to delivery report */
	struct todod_metric *delivery_failures; /* counter */

	/* Set by kafka_topics.c (create_topics = yes), NULL otherwise: the
	 * brokers became reachable (again), and a produce found `physical`
	 * missing. */
	void (*on_brokers_up)(struct kafka *k);
	void (*on_topic_missing)(struct kafka *k, const char *physical);
};

/* The state of one plugin instance, its metrics registered. */
struct kafka *kafka_new(const struct todod_api *api, struct todod_ctx *ctx,
			const struct kafka_conf *conf);
/* After the parts above have freed theirs. */
void kafka_free(struct kafka *k);

/* Adds a logical topic the core's subscribers need (once). */
void kafka_topic_want(struct kafka *k, const char *logical);
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
/* librdkafka refused or failed a message for `topic` with `err`. */
void kafka_note_produce_error(struct kafka *k, const char *topic, rd_kafka_resp_err_t err);
/* The consumer could not start: not ready, for this reason (logged). */
void kafka_note_consumer_failure(struct kafka *k, const char *reason);
/* 0 when ready, else -1 with the reason in `why`. */
int kafka_ready(const struct kafka *k, struct todod_err *why);

#endif

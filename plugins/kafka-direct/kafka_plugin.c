/* kafka_plugin.c - the kafka-direct plugin: options, lifecycle, the
 * transport service.
 *
 * Loading this plugin makes Kafka the event backbone: it provides the
 * "transport" service, whose publish() the core's outbox relay calls and
 * whose subscribe() collects the topics the loaded consumer plugins need.
 * Two librdkafka handles do the work, a producer (kafka_produce.c) and,
 * when anything is subscribed, a group consumer (kafka_consume.c); what
 * they share, readiness included, is in kafka_state.c.  This file is the
 * top of the plugin: nothing calls into it but the core. */
#include <stdlib.h>
#include <string.h>

#include "kafka_consumer.h"
#include "kafka_produce.h"
#include "kafka_topics.h"

/* Kafka's limit is 249; "-dlq" must still fit. */
#define TOPIC_NAME_MAX (249 - 4)

#define SASL_DEFAULT KAFKA_SASL_SCRAM_512

struct kafka_plugin {
	struct kafka *k;
	struct todod_transport transport;
};

/* ---- the transport service ----------------------------------------------- */

static int transport_subscribe(void *self, const char *topic, struct todod_err *err)
{
	(void)err; /* nothing here can fail */
	kafka_topic_want(self, topic);
	return 0;
}

static int transport_ready(void *self, struct todod_err *why)
{
	return kafka_ready(self, why);
}

static int kafka_health(void *state, struct todod_err *why)
{
	const struct kafka_plugin *kp = state;
	return kafka_ready(kp->k, why);
}

/* ---- options ------------------------------------------------------------- */

static bool valid_topic_name(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > TOPIC_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       len;
}

static int validate_topics(const struct kafka_conf *c, struct todod_err *err)
{
	for (size_t i = 0; i < c->topics.n; i++) {
		const char *item = c->topics.items[i];
		const char *physical = strchr(item, '=') + 1;
		int logical_len = (int)(physical - 1 - item);
		if (!valid_topic_name(physical))
			return todod_err_set(err, "topic.%.*s: \"%s\" is not a Kafka topic name "
					     "(letters, digits, '.', '_' and '-'; at most %d "
					     "characters, so that the -dlq topic fits)",
					     logical_len, item, physical, TOPIC_NAME_MAX);
		for (size_t j = 0; j < i; j++) {
			const char *other = strchr(c->topics.items[j], '=') + 1;
			if (strcmp(other, physical) == 0)
				return todod_err_set(err, "topic.%.*s: \"%s\" is already the name of "
						     "topic.%.*s", logical_len, item, physical,
						     (int)(other - 1 - c->topics.items[j]),
						     c->topics.items[j]);
		}
	}
	return 0;
}

static int validate_security(const struct kafka_conf *c, struct todod_err *err)
{
	const char *protocol = kafka_security_protocols[c->security_protocol];
	if (kafka_uses_sasl(c)) {
		if (!c->username || !c->password)
			return todod_err_set(err, "security_protocol %s needs both username and password",
					     protocol);
		return 0;
	}
	if (c->username || c->password)
		return todod_err_set(err, "%s: only used with security_protocol sasl_plaintext or "
				     "sasl_ssl, not %s", c->username ? "username" : "password",
				     protocol);
	/* The default cannot be told from an explicit choice of it. */
	if (c->sasl_mechanism != SASL_DEFAULT)
		return todod_err_set(err, "sasl_mechanism: only used with security_protocol "
				     "sasl_plaintext or sasl_ssl, not %s", protocol);
	return 0;
}

static int kafka_validate(const void *conf, struct todod_err *err)
{
	const struct kafka_conf *c = conf;
	if (c->brokers.n == 0)
		return todod_err_set(err, "brokers: give at least one host:port");
	if (validate_security(c, err) != 0)
		return -1;
	if (c->ssl_ca && !kafka_uses_tls(c))
		return todod_err_set(err, "ssl_ca: only used with security_protocol ssl or sasl_ssl, "
				     "not %s", kafka_security_protocols[c->security_protocol]);
	if (c->topic_replication == 0)
		return todod_err_set(err, "topic_replication: 0 is not a replication factor; use -1 "
				     "for the broker's default");
	if (validate_topics(c, err) != 0)
		return -1;
	/* Builds both configurations, which checks every property without
	 * connecting anywhere. */
	for (int role = KAFKA_PRODUCER; role <= KAFKA_CONSUMER; role++) {
		rd_kafka_conf_t *rk = kafka_conf_build(c, (enum kafka_role)role, "todod", err);
		if (!rk)
			return -1;
		rd_kafka_conf_destroy(rk);
	}
	return 0;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int kafka_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		      void **state, struct todod_err *err)
{
	struct kafka_plugin *kp = todod_xcalloc(1, sizeof *kp);
	kp->k = kafka_new(api, ctx, conf);
	kp->transport = (struct todod_transport){
		.struct_size = sizeof kp->transport,
		.name = "kafka-direct",
		.publish = kafka_publish,
		.subscribe = transport_subscribe,
		.ready = transport_ready,
		.self = kp->k,
	};
	if (api->service_provide(ctx, "transport", "kafka-direct", &kp->transport, err) != 0) {
		kafka_free(kp->k);
		free(kp);
		return -1;
	}
	*state = kp;
	return 0;
}

static int start_consumer(struct kafka *k, struct todod_err *err)
{
	if (k->n_wanted == 0 || k->draining)
		return 0;
	return kafka_consumer_start(k, err);
}

/* Whatever became of the topics (failures are logged): a consumer of a
 * topic that is still missing simply waits for it. */
static void on_topics_answered(struct kafka *k)
{
	struct todod_err err = { "" };
	if (start_consumer(k, &err) != 0)
		kafka_note_consumer_failure(k, err.text);
}

static int kafka_start(void *state, struct todod_err *err)
{
	struct kafka *k = ((struct kafka_plugin *)state)->k;
	if (kafka_producer_start(k, err) != 0)
		return -1;
	if (!k->conf->create_topics) {
		kafka_topics_look_up(k);
		return start_consumer(k, err);
	}
	return kafka_topics_start(k, on_topics_answered, err);
}

static void producer_drained(struct kafka *k)
{
	todod_drained_cb done = k->drained;
	k->drained = NULL;
	done(k->drain_ctx);
}

/* The consumer first: settling its messages may still produce dead
 * letters, which the producer then flushes. */
static void consumer_drained(struct kafka *k)
{
	kafka_producer_drain(k, producer_drained);
}

static void kafka_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct kafka *k = ((struct kafka_plugin *)state)->k;
	k->draining = true;
	k->drained = done;
	k->drain_ctx = ctx;
	if (k->consumer)
		kafka_consumer_drain(k, consumer_drained);
	else
		consumer_drained(k);
}

static void kafka_destroy(void *state)
{
	struct kafka_plugin *kp = state;
	struct kafka *k = kp->k;
	kafka_topics_free(k);
	if (k->consumer)
		kafka_consumer_free(k);
	kafka_producer_free(k);
	kafka_free(k);
	free(kp);
}

#define OPT(field) offsetof(struct kafka_conf, field)

static const struct todod_opt kafka_options[] = {
	{ .key = "brokers", .type = TODOD_OPT_LIST, .default_value = "127.0.0.1:9092",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(brokers),
	  .description = "Bootstrap brokers, host:port, comma-separated" },
	{ .key = "group_id", .type = TODOD_OPT_STRING, .default_value = "todod",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(group_id),
	  .description = "Consumer group; instances in one group share the partitions" },
	{ .key = "client_id", .type = TODOD_OPT_STRING, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(client_id),
	  .description = "Client id the brokers see (default: [core] instance, else the host "
			 "name)" },
	{ .key = "security_protocol", .type = TODOD_OPT_ENUM, .default_value = "plaintext",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(security_protocol),
	  .choices = kafka_security_protocols,
	  .description = "How to talk to the brokers: TLS, SASL login, both or neither" },
	{ .key = "sasl_mechanism", .type = TODOD_OPT_ENUM, .default_value = "SCRAM-SHA-512",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(sasl_mechanism),
	  .choices = kafka_sasl_mechanisms,
	  .description = "SASL mechanism, with security_protocol sasl_plaintext or sasl_ssl" },
	{ .key = "username", .type = TODOD_OPT_STRING, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(username), .description = "SASL user name" },
	{ .key = "password", .type = TODOD_OPT_SECRET, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(password),
	  .description = "SASL password: literal, env:NAME or file:/path" },
	{ .key = "ssl_ca", .type = TODOD_OPT_STRING, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(ssl_ca),
	  .description = "CA certificate file (PEM) for the brokers' TLS certificates (default: "
			 "the system's)" },
	{ .key = "create_topics", .type = TODOD_OPT_BOOL, .default_value = "yes",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(create_topics),
	  .description = "Create missing topics and their -dlq topics at start, and again when "
			 "one is missing" },
	{ .key = "topic_partitions", .type = TODOD_OPT_INT, .default_value = "6",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(topic_partitions), .min = 1, .max = 10000,
	  .description = "Partitions of a topic created at start" },
	{ .key = "topic_replication", .type = TODOD_OPT_INT, .default_value = "1",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(topic_replication), .min = -1, .max = 100,
	  .description = "Replication factor of a topic created at start; -1: the broker's "
			 "default" },
	{ .key = "max_attempts", .type = TODOD_OPT_INT, .default_value = "5",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(max_attempts), .min = 1, .max = 100,
	  .description = "Tries per subscriber before a consumed message goes to <topic>-dlq" },
	{ .key = "retry_backoff", .type = TODOD_OPT_DURATION, .default_value = "1s",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(retry_backoff_ms), .max = 3600000,
	  .description = "Wait before a consumed message whose outcome was not recorded is "
			 "delivered again" },
	{ .key = "linger", .type = TODOD_OPT_DURATION, .default_value = "0ms",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(linger_ms), .max = 10000,
	  .description = "How long the producer waits to fill a batch (librdkafka linger.ms)" },
	{ .key = "batch_size", .type = TODOD_OPT_SIZE, .default_value = "1M",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(batch_size), .min = 1, .max = 2147483647,
	  .description = "Largest batch the producer sends (librdkafka batch.size)" },
	{ .key = "compression", .type = TODOD_OPT_ENUM, .default_value = "none",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(compression), .choices = kafka_compressions,
	  .description = "Compression of produced batches" },
	{ .key = "max_in_flight", .type = TODOD_OPT_INT, .default_value = "1000",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(max_in_flight), .min = 1, .max = 1000000,
	  .description = "Consumed messages handed to subscribers at once, per partition" },
	{ .key = "topic.", .type = TODOD_OPT_PREFIX, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(topics),
	  .description = "Kafka name of a topic: topic.task-events = prod.task-events" },
	{ .key = "librdkafka.", .type = TODOD_OPT_PREFIX, .flags = TODOD_OPT_NO_RELOAD,
	  .offset = OPT(librdkafka),
	  .description = "Any librdkafka property for both clients, e.g. "
			 "librdkafka.socket.keepalive.enable = true "
			 "(librdkafka.producer.<property> or librdkafka.consumer.<property> for "
			 "one); wins over the options above, except enable.auto.offset.store and "
			 "log.queue" },
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "kafka-direct",
	.version = "1.0",
	.description = "Kafka as the event backbone, through librdkafka",
	.options = kafka_options,
	.conf_size = sizeof(struct kafka_conf),
	.validate = kafka_validate,
	.init = kafka_init,
	.start = kafka_start,
	.drain = kafka_drain,
	.destroy = kafka_destroy,
	.health = kafka_health,
};

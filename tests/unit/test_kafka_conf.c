/* test_kafka_conf.c - kafka-direct's options as librdkafka properties,
 * read back from the built configuration (no broker involved). */
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "tap.h"

#define PASSWORD "pw-Never-Shown-42"

static char *brokers[] = { "k1:9092", "k2:9093" };

/* The defaults the core would fill in from the option schema. */
static struct kafka_conf base_conf(void)
{
	return (struct kafka_conf){
		.brokers = { 2, brokers },
		.group_id = "todod",
		.security_protocol = KAFKA_PLAINTEXT,
		.sasl_mechanism = KAFKA_SASL_SCRAM_512,
		.create_topics = true,
		.topic_partitions = 6,
		.topic_replication = 1,
		.max_attempts = 5,
		.retry_backoff_ms = 1000,
		.linger_ms = 5,
		.batch_size = 1048576,
		.compression = 0,
		.max_in_flight = 1000,
	};
}

/* The value of `property` in `rk`, in a static buffer ("" if unknown). */
static const char *get(rd_kafka_conf_t *rk, const char *property)
{
	static char value[512];
	size_t size = sizeof value;
	if (rd_kafka_conf_get(rk, property, value, &size) != RD_KAFKA_CONF_OK)
		value[0] = '\0';
	return value;
}

static void test_plaintext_producer(void)
{
	struct kafka_conf c = base_conf();
	struct todod_err err = { "" };
	rd_kafka_conf_t *rk = kafka_conf_build(&c, KAFKA_PRODUCER, "node-1", &err);
	if (!ok(rk != NULL, "plaintext producer builds")) {
		printf("# %s\n", err.text);
		return;
	}
	is_str(get(rk, "bootstrap.servers"), "k1:9092,k2:9093", "brokers joined with commas");
	is_str(get(rk, "client.id"), "node-1", "client id");
	is_str(get(rk, "security.protocol"), "plaintext", "security protocol");
	ok(strcmp(get(rk, "sasl.username"), "") == 0, "no SASL user without SASL");
	is_str(get(rk, "enable.idempotence"), "true", "idempotent");
	is_str(get(rk, "acks"), "-1", "acks=all");
	is_str(get(rk, "linger.ms"), "5", "linger");
	is_str(get(rk, "batch.size"), "1048576", "batch size");
	is_str(get(rk, "compression.codec"), "none", "compression");
	is_str(get(rk, "partitioner"), "fnv1a_random", "Sarama-compatible partitioner");
	is_str(get(rk, "statistics.interval.ms"), "1000", "statistics every second");
	is_str(get(rk, "socket.nagle.disable"), "true", "no Nagle, whatever the library's default");
	is_str(get(rk, "log.queue"), "true", "logs through the queue");
	ok(strcmp(get(rk, "group.id"), "todod") != 0, "no group on the producer");
	is_str(get(rk, "allow.auto.create.topics"), "false",
	       "topics created by the plugin, not by a racing publish");
	rd_kafka_conf_destroy(rk);
}

static void test_consumer(void)
{
	struct kafka_conf c = base_conf();
	c.group_id = "workers";
	struct todod_err err = { "" };
	rd_kafka_conf_t *rk = kafka_conf_build(&c, KAFKA_CONSUMER, "node-1", &err);
	if (!ok(rk != NULL, "consumer builds")) {
		printf("# %s\n", err.text);
		return;
	}
	is_str(get(rk, "group.id"), "workers", "group id");
	is_str(get(rk, "enable.auto.commit"), "true", "auto commit of stored offsets");
	is_str(get(rk, "enable.auto.offset.store"), "false", "offsets stored by hand");
	/* librdkafka reads it back under its older name. */
	const char *reset = get(rk, "auto.offset.reset");
	ok(strcmp(reset, "earliest") == 0 || strcmp(reset, "smallest") == 0,
	   "new groups start at the beginning: %s", reset);
	is_str(get(rk, "enable.partition.eof"), "false", "no EOF events");
	is_str(get(rk, "statistics.interval.ms"), "1000", "consumer statistics");
	is_str(get(rk, "socket.nagle.disable"), "true", "no Nagle on the consumer either");
	rd_kafka_conf_destroy(rk);
}

static void test_security(void)
{
	static const struct {
		int protocol, mechanism;
		const char *protocol_name, *mechanism_name;
	} cases[] = {
		{ KAFKA_SASL_PLAINTEXT, KAFKA_SASL_PLAIN, "sasl_plaintext", "PLAIN" },
		{ KAFKA_SASL_PLAINTEXT, KAFKA_SASL_SCRAM_256, "sasl_plaintext", "SCRAM-SHA-256" },
		{ KAFKA_SASL_SSL, KAFKA_SASL_SCRAM_512, "sasl_ssl", "SCRAM-SHA-512" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct kafka_conf c = base_conf();
		c.security_protocol = cases[i].protocol;
		c.sasl_mechanism = cases[i].mechanism;
		c.username = "alice";
		c.password = PASSWORD;
		struct todod_err err = { "" };
		rd_kafka_conf_t *rk = kafka_conf_build(&c, KAFKA_CONSUMER, "x", &err);
		if (!ok(rk != NULL, "%s/%s builds", cases[i].protocol_name, cases[i].mechanism_name)) {
			printf("# %s\n", err.text);
			continue;
		}
		is_str(get(rk, "security.protocol"), cases[i].protocol_name, "protocol %s",
		       cases[i].protocol_name);
		is_str(get(rk, "sasl.mechanisms"), cases[i].mechanism_name, "mechanism %s",
		       cases[i].mechanism_name);
		is_str(get(rk, "sasl.username"), "alice", "user name");
		is_str(get(rk, "sasl.password"), PASSWORD, "password handed to librdkafka");
		rd_kafka_conf_destroy(rk);
	}

	struct kafka_conf c = base_conf();
	c.security_protocol = KAFKA_SSL;
	c.ssl_ca = "/etc/ssl/certs/ca-certificates.crt";
	struct todod_err err = { "" };
	rd_kafka_conf_t *rk = kafka_conf_build(&c, KAFKA_PRODUCER, "x", &err);
	if (ok(rk != NULL, "ssl builds")) {
		is_str(get(rk, "security.protocol"), "ssl", "protocol ssl");
		is_str(get(rk, "ssl.ca.location"), c.ssl_ca, "CA file");
		rd_kafka_conf_destroy(rk);
	} else {
		printf("# %s\n", err.text);
	}
}

static void test_passthrough_wins(void)
{
	char *items[] = { "linger.ms=50", "client.id=from-passthrough", "socket.keepalive.enable=true",
			  "compression.codec=lz4" };
	struct kafka_conf c = base_conf();
	c.librdkafka = (struct todod_list){ 4, items };
	struct todod_err err = { "" };
	rd_kafka_conf_t *rk = kafka_conf_build(&c, KAFKA_PRODUCER, "node-1", &err);
	if (!ok(rk != NULL, "pass-through builds")) {
		printf("# %s\n", err.text);
		return;
	}
	is_str(get(rk, "linger.ms"), "50", "pass-through linger.ms wins over linger");
	is_str(get(rk, "client.id"), "from-passthrough", "pass-through client.id wins");
	is_str(get(rk, "compression.codec"), "lz4", "pass-through compression wins");
	is_str(get(rk, "socket.keepalive.enable"), "true", "other property set");
	rd_kafka_conf_destroy(rk);

	/* An unscoped property goes to both handles; a scoped one to its
	 * role only, named as written when refused. */
	char *scoped[] = { "fetch.wait.max.ms=20", "consumer.session.timeout.ms=7000",
			   "producer.linger.ms=9" };
	c.librdkafka = (struct todod_list){ 3, scoped };
	rk = kafka_conf_build(&c, KAFKA_PRODUCER, "node-1", &err);
	if (ok(rk != NULL, "scoped pass-through builds the producer (%s)", err.text)) {
		is_str(get(rk, "linger.ms"), "9", "producer.<property> reaches the producer");
		is_str(get(rk, "session.timeout.ms"), "45000", "consumer.<property> does not");
		rd_kafka_conf_destroy(rk);
	}
	rk = kafka_conf_build(&c, KAFKA_CONSUMER, "node-1", &err);
	if (ok(rk != NULL, "scoped pass-through builds the consumer (%s)", err.text)) {
		is_str(get(rk, "session.timeout.ms"), "7000", "consumer.<property> reaches the consumer");
		is_str(get(rk, "fetch.wait.max.ms"), "20", "an unscoped one reaches it too");
		rd_kafka_conf_destroy(rk);
	}
	char *managed[] = { "consumer.enable.auto.offset.store=true" };
	c.librdkafka = (struct todod_list){ 1, managed };
	ok(kafka_conf_build(&c, KAFKA_CONSUMER, "x", &err) == NULL &&
		   strstr(err.text, "set by kafka-direct itself"),
	   "a property the guarantees rest on is refused, scoped or not: %s", err.text);
	char *bad_scoped[] = { "consumer.no.such.property=1" };
	c.librdkafka = (struct todod_list){ 1, bad_scoped };
	ok(kafka_conf_build(&c, KAFKA_CONSUMER, "x", &err) == NULL &&
		   strncmp(err.text, "librdkafka.consumer.no.such.property: ", 38) == 0,
	   "a refused scoped property is named as written: %s", err.text);
}

static void test_bad_passthrough(void)
{
	char *items[] = { "linger.ms=50", "no.such.property=1" };
	struct kafka_conf c = base_conf();
	c.security_protocol = KAFKA_SASL_PLAINTEXT;
	c.username = "alice";
	c.password = PASSWORD;
	c.librdkafka = (struct todod_list){ 2, items };
	struct todod_err err = { "" };
	ok(kafka_conf_build(&c, KAFKA_CONSUMER, "x", &err) == NULL, "unknown property refused");
	ok(strncmp(err.text, "librdkafka.no.such.property: ", 29) == 0,
	   "error names the pass-through key: %s", err.text);
	ok(strstr(err.text, "No such configuration property") != NULL,
	   "error carries librdkafka's reason");
	ok(!strstr(err.text, PASSWORD), "password not in the error");

	char *bad_value[] = { "enable.idempotence=maybe" };
	c.librdkafka = (struct todod_list){ 1, bad_value };
	err.text[0] = '\0';
	ok(kafka_conf_build(&c, KAFKA_PRODUCER, "x", &err) == NULL, "bad value refused");
	ok(strncmp(err.text, "librdkafka.enable.idempotence: ", 31) == 0, "names it: %s",
	   err.text);

	/* A secret given through the pass-through stays out of the message
	 * even when librdkafka refuses the property. */
	char *secret[] = { "sasl.password.typo=" PASSWORD };
	c.librdkafka = (struct todod_list){ 1, secret };
	err.text[0] = '\0';
	ok(kafka_conf_build(&c, KAFKA_PRODUCER, "x", &err) == NULL, "misspelt secret refused");
	ok(strstr(err.text, "librdkafka.sasl.password.typo") && !strstr(err.text, PASSWORD),
	   "named without its value: %s", err.text);
}

int main(void)
{
	test_plaintext_producer();
	test_consumer();
	test_security();
	test_passthrough_wins();
	test_bad_passthrough();
	return tap_done();
}

/* kafka_conf.c - the plugin's options as a librdkafka configuration.
 *
 * One function builds the configuration of either client handle: first
 * what both share (brokers, identity, security), then what the role
 * needs for the plugin's guarantees (idempotent acks=all producing;
 * offsets stored only after handling), then the operator's
 * `librdkafka.<property>` pass-through, last, so that it wins.
 *
 * librdkafka checks every property when it is set, without any I/O, so
 * this also serves `todod -t`: a misspelt pass-through property fails
 * there with librdkafka's own explanation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

const char *const kafka_compressions[] = { "none", "gzip", "snappy", "lz4", "zstd", NULL };

/* Indexed by enum kafka_security and enum kafka_sasl: the option values,
 * which are also librdkafka's names. */
const char *const kafka_security_protocols[] = { "plaintext", "ssl", "sasl_plaintext",
						 "sasl_ssl", NULL };
const char *const kafka_sasl_mechanisms[] = { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL };

bool kafka_uses_sasl(const struct kafka_conf *c)
{
	return c->security_protocol == KAFKA_SASL_PLAINTEXT ||
	       c->security_protocol == KAFKA_SASL_SSL;
}

bool kafka_uses_tls(const struct kafka_conf *c)
{
	return c->security_protocol == KAFKA_SSL || c->security_protocol == KAFKA_SASL_SSL;
}

/* Pass-through properties whose value must never reach a message. */
static bool is_sensitive(const char *property)
{
	static const char *const words[] = { "password", "secret", "key.pem", "oauthbearer.config",
					     "jaas", NULL };
	for (const char *const *w = words; *w; w++)
		if (strstr(property, *w))
			return true;
	return false;
}

/* Copies `text` into `out`, with every occurrence of `secret` hidden. */
static void redact(char *out, size_t size, const char *text, const char *secret)
{
	size_t secret_len = secret ? strlen(secret) : 0;
	size_t used = 0;
	while (*text && used + 1 < size) {
		if (secret_len && strncmp(text, secret, secret_len) == 0) {
			used += (size_t)snprintf(out + used, size - used, "(hidden)");
			if (used >= size)
				return;
			text += secret_len;
		} else {
			out[used++] = *text++;
		}
	}
	out[used < size ? used : size - 1] = '\0';
}

/* Sets one property; on failure names it as `label` (the option or the
 * pass-through key the operator wrote) with librdkafka's reason. */
static int set(rd_kafka_conf_t *rk_conf, const char *label, const char *property,
	       const char *value, bool secret, struct todod_err *err)
{
	char why[512];
	if (rd_kafka_conf_set(rk_conf, property, value, why, sizeof why) == RD_KAFKA_CONF_OK)
		return 0;
	char shown[512];
	redact(shown, sizeof shown, why, secret ? value : NULL);
	return todod_err_set(err, "%s: %s", label, shown);
}

static int set_int(rd_kafka_conf_t *rk_conf, const char *label, const char *property,
		   int64_t value, struct todod_err *err)
{
	char text[32];
	snprintf(text, sizeof text, "%lld", (long long)value);
	return set(rk_conf, label, property, text, false, err);
}

static int set_common(rd_kafka_conf_t *rk, const struct kafka_conf *c, const char *client_id,
		      struct todod_err *err)
{
	/* bootstrap.servers takes a comma-separated list. */
	size_t len = 1;
	for (size_t i = 0; i < c->brokers.n; i++)
		len += strlen(c->brokers.items[i]) + 1;
	char *servers = todod_xcalloc(1, len);
	for (size_t i = 0; i < c->brokers.n; i++) {
		if (i)
			strcat(servers, ",");
		strcat(servers, c->brokers.items[i]);
	}
	int rc = set(rk, "brokers", "bootstrap.servers", servers, false, err);
	free(servers);
	if (rc != 0 || set(rk, "client_id", "client.id", client_id, false, err) != 0 ||
	    set(rk, "security_protocol", "security.protocol",
		kafka_security_protocols[c->security_protocol], false, err) != 0)
		return -1;
	if (kafka_uses_sasl(c) &&
	    (set(rk, "sasl_mechanism", "sasl.mechanisms", kafka_sasl_mechanisms[c->sasl_mechanism],
		 false, err) != 0 ||
	     (c->username && set(rk, "username", "sasl.username", c->username, false, err) != 0) ||
	     (c->password && set(rk, "password", "sasl.password", c->password, true, err) != 0)))
		return -1;
	if (c->ssl_ca && set(rk, "ssl_ca", "ssl.ca.location", c->ssl_ca, false, err) != 0)
		return -1;
	/* Requests are small and several are in flight at once: with Nagle's
	 * algorithm the kernel holds each one until the previous is
	 * acknowledged.  librdkafka turns it off by default only since 2.10;
	 * the distributions' older ones need it said. */
	if (set(rk, "kafka-direct", "socket.nagle.disable", "true", false, err) != 0)
		return -1;
	/* Statistics drive readiness, the lag gauges and the producer's
	 * per-stage times; logs are served from the loop like every other
	 * event. */
	if (set(rk, "kafka-direct", "statistics.interval.ms", "1000", false, err) != 0 ||
	    set(rk, "kafka-direct", "log.queue", "true", false, err) != 0)
		return -1;
	return 0;
}

static int set_producer(rd_kafka_conf_t *rk, const struct kafka_conf *c, struct todod_err *err)
{
	if (set(rk, "kafka-direct", "enable.idempotence", "true", false, err) != 0 ||
	    set(rk, "kafka-direct", "acks", "all", false, err) != 0 ||
	    set_int(rk, "linger", "linger.ms", c->linger_ms, err) != 0 ||
	    set_int(rk, "batch_size", "batch.size", c->batch_size, err) != 0 ||
	    set(rk, "compression", "compression.codec", kafka_compressions[c->compression], false,
		err) != 0)
		return -1;
	/* Dapr's Kafka component (Sarama's hash partitioner) puts a key on the
	 * same partition as this does, so the events of one task stay in
	 * order while a fleet moves between the two transports. */
	if (set(rk, "kafka-direct", "partitioner", "fnv1a_random", false, err) != 0)
		return -1;
	/* Topics are created at start with the configured partitions; a
	 * publish racing that request must not have the broker create one
	 * with its defaults first. */
	if (c->create_topics &&
	    set(rk, "create_topics", "allow.auto.create.topics", "false", false, err) != 0)
		return -1;
	rd_kafka_conf_set_events(rk, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_STATS |
					     RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_CREATETOPICS_RESULT);
	return 0;
}

/* Offsets are stored by the consumer only once a message is settled and
 * committed in the background from there: at-least-once, never ahead. */
static int set_consumer(rd_kafka_conf_t *rk, const struct kafka_conf *c, struct todod_err *err)
{
	if (set(rk, "group_id", "group.id", c->group_id, false, err) != 0 ||
	    set(rk, "kafka-direct", "enable.auto.commit", "true", false, err) != 0 ||
	    set(rk, "kafka-direct", "enable.auto.offset.store", "false", false, err) != 0 ||
	    set(rk, "kafka-direct", "auto.offset.reset", "earliest", false, err) != 0 ||
	    set(rk, "kafka-direct", "enable.partition.eof", "false", false, err) != 0)
		return -1;
	/* librdkafka's 45 s default holds a shutdown while the broker is away
	 * (the final commit waits for the session), and leaves the partitions
	 * of a killed replica idle that long. */
	if (set(rk, "kafka-direct", "session.timeout.ms", "10000", false, err) != 0)
		return -1;
	rd_kafka_conf_set_events(rk, RD_KAFKA_EVENT_FETCH | RD_KAFKA_EVENT_REBALANCE |
					     RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_STATS |
					     RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_OFFSET_COMMIT);
	return 0;
}

/* Properties whose value the plugin's guarantees rest on. */
static bool is_managed(const char *property)
{
	return strcmp(property, "enable.auto.offset.store") == 0 || /* stored once settled */
	       strcmp(property, "log.queue") == 0;                  /* logs served from the loop */
}

/* `librdkafka.producer.<property>` and `librdkafka.consumer.<property>`
 * reach one handle only, so a consumer setting does not make the producer
 * warn about it on every start. */
static const char *for_role(const char *item, enum kafka_role role)
{
	static const char *const scopes[] = { [KAFKA_PRODUCER] = "producer.",
					      [KAFKA_CONSUMER] = "consumer." };
	for (size_t r = 0; r < sizeof scopes / sizeof *scopes; r++) {
		size_t n = strlen(scopes[r]);
		if (strncmp(item, scopes[r], n) == 0)
			return r == role ? item + n : NULL;
	}
	return item;
}

static int set_passthrough(rd_kafka_conf_t *rk, const struct kafka_conf *c, enum kafka_role role,
			   struct todod_err *err)
{
	for (size_t i = 0; i < c->librdkafka.n; i++) {
		const char *item = for_role(c->librdkafka.items[i], role);
		if (!item)
			continue;
		const char *eq = strchr(item, '=');
		size_t name_len = eq ? (size_t)(eq - item) : strlen(item);
		char property[256], label[300];
		if (name_len >= sizeof property)
			return todod_err_set(err, "librdkafka.%.40s...: property name too long", item);
		memcpy(property, item, name_len);
		property[name_len] = '\0';
		/* The key as the operator wrote it, scope included. */
		snprintf(label, sizeof label, "librdkafka.%.*s",
			 (int)(item - c->librdkafka.items[i] + name_len), c->librdkafka.items[i]);
		if (is_managed(property))
			return todod_err_set(err, "%s: set by kafka-direct itself and cannot be changed",
					     label);
		if (set(rk, label, property, eq ? eq + 1 : "", is_sensitive(property), err) != 0)
			return -1;
	}
	return 0;
}

rd_kafka_conf_t *kafka_conf_build(const struct kafka_conf *c, enum kafka_role role,
				  const char *client_id, struct todod_err *err)
{
	rd_kafka_conf_t *rk = rd_kafka_conf_new();
	if (!rk) {
		todod_err_set(err, "out of memory");
		return NULL;
	}
	if (set_common(rk, c, client_id, err) != 0 ||
	    (role == KAFKA_PRODUCER ? set_producer(rk, c, err) : set_consumer(rk, c, err)) != 0 ||
	    set_passthrough(rk, c, role, err) != 0) {
		rd_kafka_conf_destroy(rk);
		return NULL;
	}
	return rk;
}

/* kafka_plugin.c - the kafka-direct plugin: options, lifecycle, readiness.
 *
 * Loading this plugin makes Kafka the event backbone: it provides the
 * "transport" service, whose publish() the core's outbox relay calls and
 * whose subscribe() collects the topics the loaded consumer plugins need.
 * Two librdkafka handles do the work, a producer (kafka_produce.c) and,
 * when anything is subscribed, a group consumer (kafka_consume.c).
 *
 * Readiness is the producer's view of the cluster: statistics say when a
 * broker is up, error events say when all are down or the login failed.
 * A lost connection becomes an outage only when no broker is back after a
 * short grace (brokers close idle connections); an outage is logged once
 * when it starts and once when it ends, and what librdkafka says in
 * between goes to the debug level, so a broker that is away for an hour
 * does not fill the log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

/* librdkafka's own log lines, outside an announced outage: at most this
 * many per window, then one line saying how many were left out. */
#define LOG_BURST 20
#define LOG_WINDOW_MS 60000

/* A broker closes a connection that was idle for connections.max.idle.ms
 * and librdkafka then reports "all brokers down" until it reconnects,
 * which takes a moment.  Only a loss of connection that lasts this long
 * is an outage. */
#define OUTAGE_GRACE_MS 5000

/* Kafka's limit is 249; "-dlq" must still fit. */
#define TOPIC_NAME_MAX (249 - 4)

static const char *const security_choices[] = { "plaintext", "ssl", "sasl_plaintext", "sasl_ssl",
						 NULL };
static const char *const sasl_choices[] = { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL };
#define SASL_DEFAULT KAFKA_SASL_SCRAM_512

/* What was last said about the connection, so each change is said once. */
enum outage { OUTAGE_NONE, OUTAGE_DOWN, OUTAGE_REFUSED };

struct kafka_plugin {
	struct kafka k; /* first: the parts get &plugin->k and come back here */
	struct todod_transport transport;
	enum outage said;
	char consumer_failure[600]; /* the consumer could not start: why */

	todod_drained_cb drained;
	struct todod_ctx *drain_ctx;

	int64_t log_window_ms;
	int log_lines, log_left_out;
	/* The last connection failure of one broker: the reason behind
	 * "all brokers are down", which librdkafka reports separately. */
	char last_failure[256];
	/* Connection lost: an outage once OUTAGE_GRACE_MS passed without a
	 * broker coming back up. */
	struct todod_timer *outage_check;
	char outage_reason[480];
};

static struct kafka_plugin *plugin_of(struct kafka *k)
{
	return (struct kafka_plugin *)k;
}

static bool uses_sasl(const struct kafka_conf *c)
{
	return c->security_protocol == KAFKA_SASL_PLAINTEXT ||
	       c->security_protocol == KAFKA_SASL_SSL;
}

static bool uses_tls(const struct kafka_conf *c)
{
	return c->security_protocol == KAFKA_SSL || c->security_protocol == KAFKA_SASL_SSL;
}

/* ---- topics -------------------------------------------------------------- */

/* The value of a "name=value" item whose name is `name`, or NULL. */
static const char *mapping_of(const struct todod_list *items, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < items->n; i++)
		if (strncmp(items->items[i], name, len) == 0 && items->items[i][len] == '=')
			return items->items[i] + len + 1;
	return NULL;
}

const char *kafka_topic_physical(const struct kafka *k, const char *logical)
{
	const char *physical = mapping_of(&k->conf->topics, logical);
	return physical ? physical : logical;
}

/* Only subscribed topics are ever consumed, so the logical name is one
 * the core asked for. */
const char *kafka_topic_logical(const struct kafka *k, const char *physical)
{
	for (size_t i = 0; i < k->n_wanted; i++)
		if (strcmp(kafka_topic_physical(k, k->wanted[i]), physical) == 0)
			return k->wanted[i];
	return physical;
}

static bool valid_topic_name(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > TOPIC_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       len;
}

/* ---- readiness and logging ----------------------------------------------- */

static void log_librdkafka(struct kafka *k, enum todod_log_level level, const char *fmt, ...)
	TODOD_PRINTF(3, 4);
static void log_librdkafka(struct kafka *k, enum todod_log_level level, const char *fmt, ...)
{
	struct kafka_plugin *kp = plugin_of(k);
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);

	/* The outage was announced: the details are for debugging it. */
	if (kp->said != OUTAGE_NONE)
		level = TODOD_LOG_DEBUG;
	if (level == TODOD_LOG_DEBUG) {
		k->api->log(k->ctx, level, "%s", text);
		return;
	}
	int64_t now = k->api->now_ms();
	if (now - kp->log_window_ms >= LOG_WINDOW_MS) {
		if (kp->log_left_out)
			k->api->log(k->ctx, TODOD_LOG_WARN,
				    "%d more librdkafka message(s) left out of the log", kp->log_left_out);
		kp->log_window_ms = now;
		kp->log_lines = kp->log_left_out = 0;
	}
	if (kp->log_lines >= LOG_BURST) {
		kp->log_left_out++;
		return;
	}
	kp->log_lines++;
	k->api->log(k->ctx, level, "%s", text);
}

static void on_outage_check(void *arg)
{
	struct kafka_plugin *kp = arg;
	struct kafka *k = &kp->k;
	k->broker_up = false;
	if (kp->said != OUTAGE_NONE)
		return;
	snprintf(k->why, sizeof k->why, "brokers unreachable: %s", kp->outage_reason);
	k->api->log(k->ctx, TODOD_LOG_WARN, "%s; events wait in the outbox", k->why);
	kp->said = OUTAGE_DOWN;
}

/* No broker is connected now: an outage unless one is back within the
 * grace period (set_broker_up() calls it off). */
static void suspect_outage(struct kafka *k, const char *fmt, ...) TODOD_PRINTF(2, 3);
static void suspect_outage(struct kafka *k, const char *fmt, ...)
{
	struct kafka_plugin *kp = plugin_of(k);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(kp->outage_reason, sizeof kp->outage_reason, fmt, ap);
	va_end(ap);
	if (kp->said == OUTAGE_NONE && !kp->outage_check)
		k->api->timer_add(k->ctx, &kp->outage_check, OUTAGE_GRACE_MS, 0, on_outage_check, kp);
}

/* The broker answered and turned us away (login, certificate): only the
 * operator can fix that, so it is said at once, without the grace an
 * outage gets, and once. */
static void refused(struct kafka *k, const char *what, const char *who, const char *text)
{
	struct kafka_plugin *kp = plugin_of(k);
	k->broker_up = false;
	snprintf(k->why, sizeof k->why, "%s: %s", what, text);
	if (kp->said != OUTAGE_REFUSED)
		k->api->log(k->ctx, TODOD_LOG_ERROR, "%s (%s): %s; events wait in the outbox", what,
			    who, text);
	kp->said = OUTAGE_REFUSED;
}

void kafka_note_error(struct kafka *k, rd_kafka_resp_err_t code, const char *text, bool fatal)
{
	char who[300];
	struct kafka_plugin *kp = plugin_of(k);
	const struct kafka_conf *c = k->conf;
	if (fatal) {
		if (k->fatal)
			return;
		k->fatal = true;
		snprintf(k->why, sizeof k->why, "fatal librdkafka error: %s (%s); restart todod", text,
			 rd_kafka_err2name(code));
		k->api->log(k->ctx, TODOD_LOG_ERROR, "%s", k->why);
		return;
	}
	switch (code) {
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__RESOLVE:
		/* One connection: either another broker carries on, or "all
		 * brokers down" follows and is reported with this reason. */
		snprintf(kp->last_failure, sizeof kp->last_failure, "%s", text);
		k->api->log(k->ctx, TODOD_LOG_DEBUG, "%s: %s", rd_kafka_err2name(code), text);
		return;
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		/* A failed login also leaves no broker connected; keep the reason
		 * that tells the operator what to fix. */
		if (kp->said != OUTAGE_REFUSED)
			suspect_outage(k, "%s%s%s", text, kp->last_failure[0] ? "; " : "",
				       kp->last_failure);
		break;
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
		snprintf(who, sizeof who, "SASL %s as user \"%s\"", sasl_choices[c->sasl_mechanism],
			 c->username ? c->username : "");
		refused(k, "authentication failed", who, text);
		break;
	case RD_KAFKA_RESP_ERR__SSL:
		snprintf(who, sizeof who, "brokers' certificates checked against %s",
			 c->ssl_ca ? c->ssl_ca : "the system's CA certificates (no ssl_ca)");
		refused(k, "TLS handshake failed", who, text);
		break;
	default:
		log_librdkafka(k, TODOD_LOG_WARN, "%s: %s", rd_kafka_err2name(code), text);
		break;
	}
}

static void set_broker_up(struct kafka *k, bool up, const char *state)
{
	struct kafka_plugin *kp = plugin_of(k);
	bool was_up = k->broker_up;
	if (!up) {
		/* An error event's reason, when there was one, says more. */
		if (k->broker_up && !kp->outage_check)
			suspect_outage(k, "no broker connected (%s)", state);
		return;
	}
	k->api->timer_del(&kp->outage_check);
	if (kp->said != OUTAGE_NONE)
		k->api->log(k->ctx, TODOD_LOG_INFO, "brokers reachable again");
	kp->said = OUTAGE_NONE;
	kp->last_failure[0] = '\0';
	k->broker_up = true;
	if (!k->fatal)
		k->why[0] = '\0';
	if (!was_up)
		kafka_topics_brokers_up(k);
}

static const char *string_at(json_object *obj, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(obj, key, &v) ? json_object_get_string(v) : NULL;
}

static int64_t int_at(json_object *obj, const char *key, int64_t otherwise)
{
	json_object *v;
	return json_object_object_get_ex(obj, key, &v) ? json_object_get_int64(v) : otherwise;
}

/* Producer statistics: is any broker of the cluster (not a bootstrap
 * address, whose nodeid is -1) connected? */
static void note_producer_stats(struct kafka *k, json_object *root)
{
	json_object *brokers;
	const char *state = "no broker known";
	bool up = false;
	if (json_object_object_get_ex(root, "brokers", &brokers)) {
		json_object_object_foreach(brokers, name, broker) {
			(void)name;
			const char *s = string_at(broker, "state");
			if (s)
				state = s;
			if (int_at(broker, "nodeid", -1) >= 0 && s && strcmp(s, "UP") == 0)
				up = true;
		}
	}
	set_broker_up(k, up, state);
}

static void note_consumer_lag(struct kafka *k, json_object *root)
{
	json_object *topics;
	if (!json_object_object_get_ex(root, "topics", &topics))
		return;
	json_object_object_foreach(topics, topic, t) {
		json_object *partitions;
		if (!json_object_object_get_ex(t, "partitions", &partitions))
			continue;
		json_object_object_foreach(partitions, key, p) {
			(void)key;
			int64_t partition = int_at(p, "partition", -1);
			int64_t lag = int_at(p, "consumer_lag", -1);
			if (partition < 0 || lag < 0)
				continue;
			char labels[320];
			snprintf(labels, sizeof labels, "topic=\"%s\",partition=\"%lld\"", topic,
				 (long long)partition);
			k->api->metric_set(k->api->metric(k->ctx, TODOD_METRIC_GAUGE,
							  "todod_kafka_consumer_lag",
							  "Messages in the partition not yet consumed "
							  "by this instance's group",
							  labels),
					   (double)lag);
		}
	}
}

void kafka_note_stats(struct kafka *k, const char *json)
{
	json_object *root = json ? json_tokener_parse(json) : NULL;
	if (!root)
		return;
	const char *type = string_at(root, "type");
	if (type && strcmp(type, "producer") == 0)
		note_producer_stats(k, root);
	else if (type && strcmp(type, "consumer") == 0)
		note_consumer_lag(k, root);
	json_object_put(root);
}

/* librdkafka uses syslog levels. */
static enum todod_log_level level_of(int syslog_level)
{
	if (syslog_level <= 3)
		return TODOD_LOG_ERROR;
	if (syslog_level == 4)
		return TODOD_LOG_WARN;
	if (syslog_level <= 6)
		return TODOD_LOG_INFO;
	return TODOD_LOG_DEBUG;
}

void kafka_note_log(struct kafka *k, rd_kafka_event_t *ev)
{
	const char *facility = NULL, *text = NULL;
	int level = 7;
	if (rd_kafka_event_log(ev, &facility, &text, &level) != 0 || !text)
		return;
	/* FAIL lines repeat what the error events say (kafka_note_error). */
	enum todod_log_level mapped = facility && strcmp(facility, "FAIL") == 0 ? TODOD_LOG_DEBUG
										 : level_of(level);
	log_librdkafka(k, mapped, "librdkafka %s: %s", facility ? facility : "-", text);
}

/* ---- the transport service ----------------------------------------------- */

static int transport_subscribe(void *self, const char *topic, struct todod_err *err)
{
	struct kafka *k = self;
	for (size_t i = 0; i < k->n_wanted; i++)
		if (strcmp(k->wanted[i], topic) == 0)
			return 0;
	char **wanted = realloc(k->wanted, (k->n_wanted + 1) * sizeof *wanted);
	if (!wanted)
		return todod_err_set(err, "out of memory");
	k->wanted = wanted;
	if (!(wanted[k->n_wanted] = strdup(topic)))
		return todod_err_set(err, "out of memory");
	k->n_wanted++;
	return 0;
}

static int kafka_health(void *state, struct todod_err *why)
{
	struct kafka_plugin *kp = state;
	struct kafka *k = &kp->k;
	if (k->fatal || !k->broker_up)
		return todod_err_set(why, "%s", k->why[0] ? k->why : "no broker connection yet");
	if (kp->consumer_failure[0])
		return todod_err_set(why, "%s", kp->consumer_failure);
	return 0;
}

static int transport_ready(void *self, struct todod_err *why)
{
	return kafka_health(plugin_of(self), why);
}

/* ---- options ------------------------------------------------------------- */

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
	const char *protocol = security_choices[c->security_protocol];
	if (uses_sasl(c)) {
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
	if (c->ssl_ca && !uses_tls(c))
		return todod_err_set(err, "ssl_ca: only used with security_protocol ssl or sasl_ssl, "
				     "not %s", security_choices[c->security_protocol]);
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
	struct kafka_plugin *kp = calloc(1, sizeof *kp);
	if (!kp)
		return todod_err_set(err, "out of memory");
	struct kafka *k = &kp->k;
	const struct kafka_conf *c = conf;
	k->api = api;
	k->ctx = ctx;
	k->conf = c;
	snprintf(k->client_id, sizeof k->client_id, "%s", c->client_id ? c->client_id : api->instance_id());
	snprintf(k->why, sizeof k->why, "no broker connection yet");
	k->produce_latency = api->metric(ctx, TODOD_METRIC_HISTOGRAM,
					 "todod_kafka_produce_latency_seconds",
					 "From handing an event to librdkafka to its delivery report", "");
	k->delivery_failures = api->metric(ctx, TODOD_METRIC_COUNTER,
					   "todod_kafka_delivery_failures_total",
					   "Events the brokers did not acknowledge (the outbox sends "
					   "them again)", "");
	kp->transport = (struct todod_transport){
		.struct_size = sizeof kp->transport,
		.name = "kafka-direct",
		.publish = kafka_publish,
		.subscribe = transport_subscribe,
		.ready = transport_ready,
		.self = k,
	};
	if (api->service_provide(ctx, "transport", "kafka-direct", &kp->transport, err) != 0) {
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
	struct kafka_plugin *kp = plugin_of(k);
	struct todod_err err = { "" };
	if (start_consumer(k, &err) != 0) {
		snprintf(kp->consumer_failure, sizeof kp->consumer_failure,
			 "cannot start the consumer: %s", err.text);
		k->api->log(k->ctx, TODOD_LOG_ERROR, "%s", kp->consumer_failure);
	}
}

static int kafka_start(void *state, struct todod_err *err)
{
	struct kafka_plugin *kp = state;
	struct kafka *k = &kp->k;
	if (kafka_producer_start(k, err) != 0)
		return -1;
	if (!k->conf->create_topics)
		return start_consumer(k, err);
	return kafka_topics_start(k, on_topics_answered, err);
}

static void producer_drained(struct kafka *k)
{
	struct kafka_plugin *kp = plugin_of(k);
	todod_drained_cb done = kp->drained;
	kp->drained = NULL;
	done(kp->drain_ctx);
}

/* The consumer first: settling its messages may still produce dead
 * letters, which the producer then flushes. */
static void consumer_drained(struct kafka *k)
{
	kafka_producer_drain(k, producer_drained);
}

static void kafka_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct kafka_plugin *kp = state;
	struct kafka *k = &kp->k;
	k->draining = true;
	kp->drained = done;
	kp->drain_ctx = ctx;
	if (k->consumer)
		kafka_consumer_drain(k, consumer_drained);
	else
		consumer_drained(k);
}

static void kafka_destroy(void *state)
{
	struct kafka_plugin *kp = state;
	struct kafka *k = &kp->k;
	k->api->timer_del(&kp->outage_check);
	kafka_topics_free(k);
	if (k->consumer)
		kafka_consumer_free(k);
	kafka_producer_free(k);
	for (size_t i = 0; i < k->n_wanted; i++)
		free(k->wanted[i]);
	free(k->wanted);
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
	  .choices = security_choices,
	  .description = "How to talk to the brokers: TLS, SASL login, both or neither" },
	{ .key = "sasl_mechanism", .type = TODOD_OPT_ENUM, .default_value = "SCRAM-SHA-512",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OPT(sasl_mechanism), .choices = sasl_choices,
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
	{ .key = "linger", .type = TODOD_OPT_DURATION, .default_value = "5ms",
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

/* kafka_state.c - what the kafka-direct parts share: the instance's
 * state, the topic map, and readiness.
 *
 * Readiness is the producer's view of the cluster: statistics say when a
 * broker is up, error events say when all are down or the login failed.
 * A lost connection becomes an outage only when no broker is back after a
 * short grace (brokers close idle connections); an outage is logged once
 * when it starts and once when it ends, and what librdkafka says in
 * between goes to the debug level, so a broker that is away for an hour
 * does not fill the log.
 *
 * Nothing here calls a part above it: news for kafka_topics.c goes
 * through the hooks in struct kafka. */
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

/* What was last said about the connection, so each change is said once. */
enum outage { OUTAGE_NONE, OUTAGE_DOWN, OUTAGE_REFUSED };

/* The parts see `k`; the rest is readiness bookkeeping of this file. */
struct kafka_state {
	struct kafka k; /* first: the parts get &state->k and come back here */
	enum outage said;
	char consumer_failure[600]; /* the consumer could not start: why */

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

static struct kafka_state *state_of(struct kafka *k)
{
	return (struct kafka_state *)k;
}

/* ---- lifecycle ----------------------------------------------------------- */

struct kafka *kafka_new(const struct todod_api *api, struct todod_ctx *ctx,
			const struct kafka_conf *conf)
{
	struct kafka_state *ks = todod_xcalloc(1, sizeof *ks);
	struct kafka *k = &ks->k;
	k->api = api;
	k->ctx = ctx;
	k->conf = conf;
	snprintf(k->client_id, sizeof k->client_id, "%s",
		 conf->client_id ? conf->client_id : api->instance_id());
	snprintf(k->why, sizeof k->why, "no broker connection yet");
	k->produce_latency = api->metric(ctx, TODOD_METRIC_HISTOGRAM,
					 "todod_kafka_produce_latency_seconds",
					 "From handing an event to librdkafka to its delivery report", "");
	k->delivery_failures = api->metric(ctx, TODOD_METRIC_COUNTER,
					   "todod_kafka_delivery_failures_total",
					   "Events the brokers did not acknowledge (the outbox sends "
					   "them again)", "");
	return k;
}

void kafka_free(struct kafka *k)
{
	struct kafka_state *ks = state_of(k);
	k->api->timer_del(&ks->outage_check);
	for (size_t i = 0; i < k->n_wanted; i++)
		free(k->wanted[i]);
	free(k->wanted);
	free(ks);
}

/* ---- topics -------------------------------------------------------------- */

void kafka_topic_want(struct kafka *k, const char *logical)
{
	for (size_t i = 0; i < k->n_wanted; i++)
		if (strcmp(k->wanted[i], logical) == 0)
			return;
	k->wanted = todod_xrealloc(k->wanted, (k->n_wanted + 1) * sizeof *k->wanted);
	k->wanted[k->n_wanted++] = todod_xstrdup(logical);
}

const char *kafka_topic_physical(const struct kafka *k, const char *logical)
{
	const char *physical = todod_prefixed_value(&k->conf->topics, logical);
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

/* ---- readiness and logging ----------------------------------------------- */

static void log_librdkafka(struct kafka *k, enum todod_log_level level, const char *fmt, ...)
	TODOD_PRINTF(3, 4);
static void log_librdkafka(struct kafka *k, enum todod_log_level level, const char *fmt, ...)
{
	struct kafka_state *ks = state_of(k);
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);

	/* The outage was announced: the details are for debugging it. */
	if (ks->said != OUTAGE_NONE)
		level = TODOD_LOG_DEBUG;
	if (level == TODOD_LOG_DEBUG) {
		k->api->log(k->ctx, level, "%s", text);
		return;
	}
	int64_t now = k->api->now_ms();
	if (now - ks->log_window_ms >= LOG_WINDOW_MS) {
		if (ks->log_left_out)
			k->api->log(k->ctx, TODOD_LOG_WARN,
				    "%d more librdkafka message(s) left out of the log", ks->log_left_out);
		ks->log_window_ms = now;
		ks->log_lines = ks->log_left_out = 0;
	}
	if (ks->log_lines >= LOG_BURST) {
		ks->log_left_out++;
		return;
	}
	ks->log_lines++;
	k->api->log(k->ctx, level, "%s", text);
}

static void on_outage_check(void *arg)
{
	struct kafka_state *ks = arg;
	struct kafka *k = &ks->k;
	k->broker_up = false;
	if (ks->said != OUTAGE_NONE)
		return;
	snprintf(k->why, sizeof k->why, "brokers unreachable: %s", ks->outage_reason);
	k->api->log(k->ctx, TODOD_LOG_WARN, "%s; events wait in the outbox", k->why);
	ks->said = OUTAGE_DOWN;
}

/* No broker is connected now: an outage unless one is back within the
 * grace period (set_broker_up() calls it off). */
static void suspect_outage(struct kafka *k, const char *fmt, ...) TODOD_PRINTF(2, 3);
static void suspect_outage(struct kafka *k, const char *fmt, ...)
{
	struct kafka_state *ks = state_of(k);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ks->outage_reason, sizeof ks->outage_reason, fmt, ap);
	va_end(ap);
	if (ks->said == OUTAGE_NONE && !ks->outage_check)
		k->api->timer_add(k->ctx, &ks->outage_check, OUTAGE_GRACE_MS, 0, on_outage_check, ks);
}

/* The broker answered and turned us away (login, certificate): only the
 * operator can fix that, so it is said at once, without the grace an
 * outage gets, and once. */
static void refused(struct kafka *k, const char *what, const char *who, const char *text)
{
	struct kafka_state *ks = state_of(k);
	k->broker_up = false;
	snprintf(k->why, sizeof k->why, "%s: %s", what, text);
	if (ks->said != OUTAGE_REFUSED)
		k->api->log(k->ctx, TODOD_LOG_ERROR, "%s (%s): %s; events wait in the outbox", what,
			    who, text);
	ks->said = OUTAGE_REFUSED;
}

void kafka_note_error(struct kafka *k, rd_kafka_resp_err_t code, const char *text, bool fatal)
{
	char who[300];
	struct kafka_state *ks = state_of(k);
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
		snprintf(ks->last_failure, sizeof ks->last_failure, "%s", text);
		k->api->log(k->ctx, TODOD_LOG_DEBUG, "%s: %s", rd_kafka_err2name(code), text);
		return;
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		/* A failed login also leaves no broker connected; keep the reason
		 * that tells the operator what to fix. */
		if (ks->said != OUTAGE_REFUSED)
			suspect_outage(k, "%s%s%s", text, ks->last_failure[0] ? "; " : "",
				       ks->last_failure);
		break;
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
		snprintf(who, sizeof who, "SASL %s as user \"%s\"",
			 kafka_sasl_mechanisms[c->sasl_mechanism], c->username ? c->username : "");
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

/* librdkafka refuses a message for a topic it found missing (local
 * code), or fails it once the brokers confirm it (broker code).  Without
 * create_topics nobody listens: the operator creates the topics, and the
 * delivery failures say what is missing. */
void kafka_note_produce_error(struct kafka *k, const char *topic, rd_kafka_resp_err_t err)
{
	if ((err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
	     err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) && k->on_topic_missing)
		k->on_topic_missing(k, topic);
}

static void set_broker_up(struct kafka *k, bool up, const char *state)
{
	struct kafka_state *ks = state_of(k);
	bool was_up = k->broker_up;
	if (!up) {
		/* An error event's reason, when there was one, says more. */
		if (k->broker_up && !ks->outage_check)
			suspect_outage(k, "no broker connected (%s)", state);
		return;
	}
	k->api->timer_del(&ks->outage_check);
	if (ks->said != OUTAGE_NONE)
		k->api->log(k->ctx, TODOD_LOG_INFO, "brokers reachable again");
	ks->said = OUTAGE_NONE;
	ks->last_failure[0] = '\0';
	k->broker_up = true;
	if (!k->fatal)
		k->why[0] = '\0';
	if (!was_up && k->on_brokers_up)
		k->on_brokers_up(k);
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

/* Where a message's time goes on its way to one broker, from librdkafka's
 * windowed statistics (microseconds, over the last statistics interval):
 * waiting in the partition queue for a batch (int_latency, linger
 * included), the request waiting to be written (outbuf_latency), and the
 * broker's answer (rtt).  A window without requests keeps the last
 * figures. */
static void note_broker_latency(struct kafka *k, int64_t nodeid, json_object *broker)
{
	static const char *const stages[][2] = { { "int_latency", "queue" },
						 { "outbuf_latency", "send" },
						 { "rtt", "broker" } };
	static const char *const quantiles[][2] = { { "p50", "0.5" }, { "p95", "0.95" },
						    { "p99", "0.99" } };
	for (size_t s = 0; s < sizeof stages / sizeof *stages; s++) {
		json_object *window;
		if (!json_object_object_get_ex(broker, stages[s][0], &window) ||
		    int_at(window, "cnt", 0) <= 0)
			continue;
		for (size_t q = 0; q < sizeof quantiles / sizeof *quantiles; q++) {
			char labels[128];
			snprintf(labels, sizeof labels,
				 "broker=\"%lld\",stage=\"%s\",quantile=\"%s\"", (long long)nodeid,
				 stages[s][1], quantiles[q][1]);
			k->api->metric_set(k->api->metric(k->ctx, TODOD_METRIC_GAUGE,
							  "todod_kafka_producer_stage_seconds",
							  "Producer time per stage (queue, send, "
							  "broker) over librdkafka's last statistics "
							  "interval",
							  labels),
					   (double)int_at(window, quantiles[q][0], 0) / 1e6);
		}
	}
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
			int64_t nodeid = int_at(broker, "nodeid", -1);
			if (s)
				state = s;
			if (nodeid >= 0 && s && strcmp(s, "UP") == 0)
				up = true;
			if (nodeid >= 0)
				note_broker_latency(k, nodeid, broker);
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

void kafka_note_consumer_failure(struct kafka *k, const char *reason)
{
	struct kafka_state *ks = state_of(k);
	snprintf(ks->consumer_failure, sizeof ks->consumer_failure, "cannot start the consumer: %s",
		 reason);
	k->api->log(k->ctx, TODOD_LOG_ERROR, "%s", ks->consumer_failure);
}

int kafka_ready(const struct kafka *k, struct todod_err *why)
{
	const struct kafka_state *ks = (const struct kafka_state *)k;
	if (k->fatal || !k->broker_up)
		return todod_err_set(why, "%s", k->why[0] ? k->why : "no broker connection yet");
	if (ks->consumer_failure[0])
		return todod_err_set(why, "%s", ks->consumer_failure);
	return 0;
}

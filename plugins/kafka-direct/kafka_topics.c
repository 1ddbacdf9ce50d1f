/* kafka_topics.c - the topics todod uses, created at start and again
 * whenever they turn out to be missing (create_topics = yes).
 *
 * One CreateTopics request can fail for reasons that pass: a broker that
 * starts later than the request's timeout, a controller not elected yet.
 * Giving up would leave every event of a missing topic in the outbox
 * forever ("Unknown topic or partition"), so the request is made again
 * when the brokers become reachable after a failure, and when a produce
 * says a topic does not exist (it was deleted, or never created).
 *
 * Never more than one request at a time, and after each answer a quiet
 * period: RETRY_MIN_MS doubling up to RETRY_MAX_MS while requests keep
 * failing, SETTLE_MS after a success.  A failure is logged when its
 * reason changes, not at every try, and a missing topic once per loss. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_produce.h"
#include "kafka_topics.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
/* librdkafka refreshes its view of a topic it believes missing about
 * once a second; until then it still refuses messages for a topic that
 * was just created, which is no reason to create it again. */
#define SETTLE_MS 10000

/* The topics the core publishes to, consumed here or not. */
static const char *const core_topics[] = { "task-events", "task-recurrence", "task-reminders" };

struct kafka_topics {
	bool creating;              /* a request is in flight */
	bool missing;               /* not created yet, or a produce said one is gone */
	bool answered;              /* the first request was answered */
	int64_t backoff_ms;         /* quiet period after the next failure */
	struct todod_timer *quiet;  /* set after an answer: no request until it fires */
	char said[512];             /* the failure last logged */
	void (*first_answer)(struct kafka *k);
};

static void add_unique(const char **names, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(names[i], name) == 0)
			return;
	names[(*n)++] = name;
}

static void on_answer(enum todod_result result, const char *reason, void *arg);

/* Every topic the core publishes to and the subscribers consume, by
 * their physical names (not their -dlq topics); free() the array. */
static const char **all_topics(const struct kafka *k, size_t *n)
{
	size_t n_core = sizeof core_topics / sizeof *core_topics;
	const char **names = todod_xcalloc(n_core + k->n_wanted, sizeof *names);
	*n = 0;
	for (size_t i = 0; i < n_core; i++)
		add_unique(names, n, kafka_topic_physical(k, core_topics[i]));
	for (size_t i = 0; i < k->n_wanted; i++)
		add_unique(names, n, kafka_topic_physical(k, k->wanted[i]));
	return names;
}

void kafka_topics_look_up(struct kafka *k)
{
	size_t n;
	const char **names = all_topics(k, &n);
	kafka_producer_look_up(k, names, n);
	free(names);
}

/* Each with its -dlq (kafka_create_topics adds those). */
static void request_creation(struct kafka *k)
{
	size_t n;
	const char **names = all_topics(k, &n);
	k->topics->creating = true;
	kafka_create_topics(k, names, n, on_answer, k);
	free(names);
}

/* Asks again if the topics may be missing and nothing holds it back:
 * with no broker reachable the request would only wait for one. */
static void create_if_missing(struct kafka *k)
{
	struct kafka_topics *t = k->topics;
	if (!t || !t->missing || t->creating || t->quiet || !k->broker_up || k->draining)
		return;
	k->api->log(k->ctx, TODOD_LOG_DEBUG, "creating the topics again");
	request_creation(k);
}

static void on_quiet_over(void *arg)
{
	create_if_missing(arg);
}

static void note_failure(struct kafka *k, const char *reason)
{
	struct kafka_topics *t = k->topics;
	if (strcmp(t->said, reason) == 0) {
		k->api->log(k->ctx, TODOD_LOG_DEBUG, "cannot create topics: %s", reason);
		return;
	}
	snprintf(t->said, sizeof t->said, "%s", reason);
	k->api->log(k->ctx, TODOD_LOG_WARN, "cannot create topics: %s; trying again once a broker "
		    "is reachable, events wait in the outbox", reason);
}

static void on_answer(enum todod_result result, const char *reason, void *arg)
{
	struct kafka *k = arg;
	struct kafka_topics *t = k->topics;
	int64_t quiet_ms;
	t->creating = false;
	if (result == TODOD_OK) {
		kafka_topics_look_up(k);
		t->missing = false;
		t->said[0] = '\0';
		t->backoff_ms = RETRY_MIN_MS;
		quiet_ms = SETTLE_MS;
	} else {
		t->missing = true;
		note_failure(k, reason ? reason : "no reason given");
		quiet_ms = t->backoff_ms;
		t->backoff_ms = t->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : t->backoff_ms * 2;
	}
	k->api->timer_add(k->ctx, &t->quiet, quiet_ms, 0, on_quiet_over, k);
	if (!t->answered) {
		t->answered = true;
		t->first_answer(k);
	}
}

static void on_brokers_up(struct kafka *k)
{
	create_if_missing(k);
}

/* A produce to `topic` (physical name) failed: the topic does not exist. */
static void on_topic_missing(struct kafka *k, const char *topic)
{
	struct kafka_topics *t = k->topics;
	/* A draining todod creates nothing. */
	if (t->creating || k->draining)
		return;
	if (!t->missing) {
		/* Just created: librdkafka has not caught up yet. */
		if (t->quiet)
			return;
		t->missing = true;
		k->api->log(k->ctx, TODOD_LOG_WARN,
			    "topic %s does not exist: creating the topics again", topic);
	}
	create_if_missing(k);
}

int kafka_topics_start(struct kafka *k, void (*first_answer)(struct kafka *k),
		       struct todod_err *err)
{
	struct kafka_topics *t = todod_xcalloc(1, sizeof *t);
	t->missing = true;
	t->backoff_ms = RETRY_MIN_MS;
	t->first_answer = first_answer;
	k->topics = t;
	k->on_brokers_up = on_brokers_up;
	k->on_topic_missing = on_topic_missing;
	/* The first request goes out even with no broker yet: it waits for
	 * one, up to its timeout. */
	request_creation(k);
	return 0;
}

void kafka_topics_free(struct kafka *k)
{
	if (!k->topics)
		return;
	k->api->timer_del(&k->topics->quiet);
	free(k->topics);
	k->topics = NULL;
	k->on_brokers_up = NULL;
	k->on_topic_missing = NULL;
}

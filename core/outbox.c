/* outbox.c - the relay from the outbox table to the transport.
 *
 * One batch at a time: claim (which also takes or renews the relay lease),
 * encode each row as a CloudEvent, publish, and once every event of the
 * batch has an answer, mark the acknowledged ones sent.  Events that share
 * a key (a task) are published one after the other, and the first failure
 * stops the rest of that key's chain, so a task's events never overtake
 * each other.  Failures back off exponentially; a broker or sidecar
 * outage delays events and never loses them. */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bus.h"
#include "clock.h"
#include "cloudevent.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define DEPTH_EVERY_MS 5000

enum item_state { ITEM_WAITING, ITEM_SENDING, ITEM_ACKED, ITEM_FAILED, ITEM_SKIPPED };

struct item {
	struct outbox_relay *relay;
	int64_t id;
	char *key;
	char *raw;
	size_t raw_len;
	char *topic;
	char *event_id;
	int64_t created_ms;
	enum item_state state;
};

struct outbox_relay {
	struct event_base *base;
	struct store *store;
	struct bus *bus;
	const struct todod_transport *transport;
	struct outbox_conf conf;
	char *owner;
	char *source;

	struct event *wake;       /* next claim */
	struct event *depth_timer;
	struct event *renew;      /* keeps the lease while a batch waits for answers */
	bool running, busy, kicked, stopping, closed;
	int64_t backoff_ms;
	bool complained;          /* the outage is logged once, not per retry */

	struct item *items;
	size_t n_items, unanswered;

	void (*drained)(void *arg);
	void *drained_arg;

	double pending_rows, oldest_age_s;
	int64_t last_cleanup_ms;
	struct metric *published, *failed, *latency;
};

static void claim(struct outbox_relay *r);
static void release_lease(struct outbox_relay *r);
static void renew_lease(evutil_socket_t fd, short what, void *arg);

static void schedule(struct outbox_relay *r, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	event_add(r->wake, &tv);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) { claim(arg); }

/* A drain hands a ready transport everything committed so far (until
 * the drain's deadline), so other instances see it without waiting for
 * this one to come back.  In process there is nobody else to hand it to,
 * and a transport that is down would only hold the drain until its
 * deadline: the rest waits in the outbox for the next start. */
static bool flushes_at_drain(const struct outbox_relay *r)
{
	struct todod_err why;
	/* service_provide() refused any transport without ready(). */
	return r->transport && r->transport->ready(r->transport->self, &why) == 0;
}

static void free_items(struct outbox_relay *r)
{
	for (size_t i = 0; i < r->n_items; i++) {
		free(r->items[i].key);
		free(r->items[i].raw);
		free(r->items[i].topic);
		free(r->items[i].event_id);
	}
	free(r->items);
	r->items = NULL;
	r->n_items = r->unanswered = 0;
}

static void batch_over(struct outbox_relay *r, bool failed)
{
	event_del(r->renew);
	free_items(r);
	r->busy = false;
	if (r->stopping) {
		if (failed || !flushes_at_drain(r))
			release_lease(r);
		else
			claim(r);
		return;
	}
	if (failed) {
		r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (r->backoff_ms > BACKOFF_MAX_MS)
			r->backoff_ms = BACKOFF_MAX_MS;
		schedule(r, r->backoff_ms);
	} else {
		if (r->complained)
			log_info("outbox: events flow again");
		r->complained = false;
		r->backoff_ms = 0;
		/* A full batch suggests more are waiting. */
		schedule(r, 0);
	}
}

static void complain(struct outbox_relay *r, const char *what, const char *why)
{
	if (!r->complained)
		log_warn("outbox: %s: %s; events wait in the outbox and are retried", what, why);
	r->complained = true;
}

static void marked_sent(PGresult *res, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (r->closed)
		return;
	if (error)
		complain(r, "could not mark events sent (they will be sent again)", error);
	bool failed = error != NULL;
	for (size_t i = 0; i < r->n_items && !failed; i++)
		failed = r->items[i].state != ITEM_ACKED;
	batch_over(r, failed);
}

static void settle_batch(struct outbox_relay *r)
{
	/* "{1,2,3}": one statement whatever the batch size. */
	size_t cap = 3 + r->n_items * 21, len = 0, acked = 0;
	char *ids = todod_xmalloc(cap);
	ids[len++] = '{';
	for (size_t i = 0; i < r->n_items; i++) {
		if (r->items[i].state != ITEM_ACKED)
			continue;
		len += (size_t)snprintf(ids + len, cap - len, "%s%lld", acked ? "," : "",
					(long long)r->items[i].id);
		acked++;
	}
	ids[len++] = '}';
	ids[len] = '\0';
	if (acked == 0) {
		free(ids);
		batch_over(r, true);
		return;
	}
	store_outbox_sent(r->store, ids, marked_sent, r);
	free(ids);
}

static void publish_item(struct item *it);

/* The next event of the same key, waiting behind `it`. */
static struct item *next_of_key(struct outbox_relay *r, const struct item *it)
{
	for (struct item *n = (struct item *)it + 1; n < r->items + r->n_items; n++)
		if (n->state == ITEM_WAITING && strcmp(n->key, it->key) == 0)
			return n;
	return NULL;
}

static void published(enum todod_result result, const char *reason, void *arg)
{
	struct item *it = arg;
	struct outbox_relay *r = it->relay;
	if (r->closed)
		return;
	struct item *next = next_of_key(r, it);
	r->unanswered--;
	if (result == TODOD_OK) {
		it->state = ITEM_ACKED;
		metric_add(r->published, 1);
		metric_observe(r->latency, (double)(clock_wall_ms() - it->created_ms) / 1000.0);
	} else if (result == TODOD_DROP) {
		/* Cannot ever be delivered (e.g. not a valid event): keep it out
		 * of the way rather than blocking its key forever. */
		log_error("outbox: event %s on %s dropped by the transport: %s", it->event_id,
			  it->topic, reason ? reason : "no reason given");
		it->state = ITEM_ACKED;
		metric_add(r->failed, 1);
	} else {
		it->state = ITEM_FAILED;
		metric_add(r->failed, 1);
		complain(r, "transport did not acknowledge", reason ? reason : "no reason given");
		/* Keep the key's order: what follows waits for the next batch. */
		for (struct item *n = next; n; n = next_of_key(r, n)) {
			n->state = ITEM_SKIPPED;
			r->unanswered--;
		}
		next = NULL;
	}
	if (next && r->stopping && !flushes_at_drain(r)) {
		for (struct item *n = next; n; n = next_of_key(r, n)) {
			n->state = ITEM_SKIPPED;
			r->unanswered--;
		}
		next = NULL;
	}
	/* Decide before chaining: a chained publish may complete at once and
	 * settle the batch itself. */
	if (next)
		publish_item(next);
	else if (r->unanswered == 0)
		settle_batch(r);
}

/* The in-process transport: the local bus answered for the event. */
static void dispatched(enum todod_result result, const char *reason, int attempts, void *arg)
{
	published(result, reason, arg);
}

static void publish_item(struct item *it)
{
	struct outbox_relay *r = it->relay;
	it->state = ITEM_SENDING;
	if (!r->transport) {
		struct todod_inbound msg = { .struct_size = sizeof msg, .topic = it->topic, .key = it->key, .raw = it->raw,
					     .len = it->raw_len, .done = dispatched, .arg = it };
		bus_dispatch(r->bus, &msg, NULL);
		return;
	}
	struct ce_event ce;
	struct todod_err err = { "" };
	if (ce_parse(it->raw, it->raw_len, (size_t)-1, it->topic, it->key, &ce, &err) != 0) {
		published(TODOD_DROP, err.text, it);
		return;
	}
	if (r->transport->publish(r->transport->self, &ce.ev, published, it) != 0)
		published(TODOD_RETRY, "transport refused the event", it);
	ce_event_free(&ce);
}

/* The commit time the store wrote, or now when it cannot be read. */
static int64_t created_ms_of(const char *rfc3339)
{
	int64_t ms;
	return rfc3339_parse_ms(rfc3339, &ms) == 0 ? ms : clock_wall_ms();
}

static bool load_item(struct outbox_relay *r, PGresult *res, int row, struct item *it)
{
	/* Columns as store_outbox_claim documents them. */
	json_object *data = json_tokener_parse(PQgetvalue(res, row, 7));
	struct todod_event ev = {
		.id = PQgetvalue(res, row, 1),
		.source = r->source,
		.topic = PQgetvalue(res, row, 2),
		.type = PQgetvalue(res, row, 3),
		.subject = PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4),
		.key = PQgetvalue(res, row, 5),
		.time = PQgetvalue(res, row, 6),
		.traceparent = PQgetisnull(res, row, 8) ? NULL : PQgetvalue(res, row, 8),
		.data = data,
	};
	it->relay = r;
	it->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	it->raw = ce_encode(&ev, &it->raw_len);
	it->key = todod_xstrdup(ev.key);
	it->topic = todod_xstrdup(ev.topic);
	it->event_id = todod_xstrdup(ev.id);
	it->created_ms = created_ms_of(ev.time);
	it->state = ITEM_WAITING;
	json_object_put(data);
	return it->raw != NULL;
}

static void claimed(PGresult *res, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (r->closed)
		return;
	if (error) {
		complain(r, "cannot claim events", error);
		batch_over(r, true);
		return;
	}
	int rows = PQntuples(res);
	if (rows == 0) {
		r->busy = false;
		r->backoff_ms = 0;
		if (r->stopping)
			release_lease(r);
		else if (r->kicked)
			schedule(r, 0);
		else
			schedule(r, r->conf.poll_interval_ms);
		r->kicked = false;
		return;
	}
	r->items = todod_xcalloc((size_t)rows, sizeof *r->items);
	r->n_items = (size_t)rows;
	for (int i = 0; i < rows; i++) {
		if (!load_item(r, res, i, &r->items[i])) {
			log_error("outbox: cannot encode event id %s; it stays in the outbox",
				  PQgetvalue(res, i, 1));
			r->items[i].state = ITEM_SKIPPED;
		}
	}
	r->unanswered = 0;
	for (size_t i = 0; i < r->n_items; i++)
		if (r->items[i].state == ITEM_WAITING)
			r->unanswered++;
	if (r->unanswered == 0) {
		batch_over(r, true);
		return;
	}
	/* A transport that waits for a broker can hold a batch longer than the
	 * lease; another replica must not take over the same events then. */
	struct timeval tv = { .tv_sec = r->conf.lease_ms / 3000,
			      .tv_usec = (r->conf.lease_ms / 3 % 1000) * 1000 };
	event_add(r->renew, &tv);
	/* Start the first event of every key; the rest follow in order. */
	size_t n = r->n_items;
	for (size_t i = 0; i < n && r->items; i++) {
		struct item *it = &r->items[i];
		if (it->state != ITEM_WAITING)
			continue;
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = strcmp(r->items[j].key, it->key) != 0;
		if (first)
			publish_item(it);
	}
}

static void lease_renewed(PGresult *res, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (!r->closed && error)
		log_debug("outbox: could not renew the relay lease: %s", error);
}

/* A claim of no rows only takes or renews the lease. */
static void renew_lease(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	store_outbox_claim(r->store, r->owner, (int)r->conf.lease_ms, 0, lease_renewed, r);
}

static void cleaned(PGresult *res, const char *error, void *arg)
{
	if (error)
		log_debug("outbox: cleanup failed: %s", error);
}

static void claim(struct outbox_relay *r)
{
	if (r->busy || r->closed)
		return;
	r->busy = true;
	r->kicked = false;
	int64_t now = clock_wall_ms();
	if (r->conf.retention_ms > 0 && now - r->last_cleanup_ms > 60000) {
		r->last_cleanup_ms = now;
		store_outbox_cleanup(r->store, r->conf.retention_ms, cleaned, r);
	}
	store_outbox_claim(r->store, r->owner, (int)r->conf.lease_ms, r->conf.batch, claimed, r);
}

/* ---- depth gauges ------------------------------------------------------------ */

static void depth_read(PGresult *res, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (error || PQntuples(res) != 1)
		return;
	r->pending_rows = strtod(PQgetvalue(res, 0, 0), NULL);
	r->oldest_age_s = strtod(PQgetvalue(res, 0, 1), NULL);
}

static void depth_tick(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	store_outbox_depth(r->store, depth_read, r);
}

static double gauge_pending(void *arg) { return ((struct outbox_relay *)arg)->pending_rows; }
static double gauge_age(void *arg) { return ((struct outbox_relay *)arg)->oldest_age_s; }

/* ---- life cycle ------------------------------------------------------------ */

struct outbox_relay *outbox_relay_new(struct event_base *base, struct store *store,
				      struct bus *bus, const char *instance,
				      const struct outbox_conf *conf)
{
	struct outbox_relay *r = todod_xcalloc(1, sizeof *r);
	r->base = base;
	r->store = store;
	r->bus = bus;
	r->conf = *conf;
	char buf[256];
	snprintf(buf, sizeof buf, "%s-%ld", instance, (long)getpid());
	r->owner = todod_xstrdup(buf);
	snprintf(buf, sizeof buf, "/todod/%s", instance);
	r->source = todod_xstrdup(buf);
	r->wake = evtimer_new(base, wake_cb, r);
	r->depth_timer = event_new(base, -1, EV_PERSIST, depth_tick, r);
	r->renew = event_new(base, -1, EV_PERSIST, renew_lease, r);
	if (!r->wake || !r->depth_timer || !r->renew) {
		outbox_relay_free(r);
		return NULL;
	}
	r->published = metrics_counter("todod_outbox_published_total",
				       "Events acknowledged by the transport", "");
	r->failed = metrics_counter("todod_outbox_publish_failures_total",
				    "Events the transport did not acknowledge (retried)", "");
	r->latency = metrics_histogram("todod_outbox_publish_latency_seconds",
				       "From commit to acknowledgement", "");
	metrics_gauge_fn("todod_outbox_pending", "Events not yet acknowledged", "", gauge_pending, r);
	metrics_gauge_fn("todod_outbox_oldest_age_seconds", "Age of the oldest unacknowledged event",
			 "", gauge_age, r);
	return r;
}

void outbox_relay_set_conf(struct outbox_relay *r, const struct outbox_conf *conf) { r->conf = *conf; }

void outbox_relay_set_transport(struct outbox_relay *r, const struct todod_transport *t)
{
	r->transport = t;
}

void outbox_relay_start(struct outbox_relay *r)
{
	r->running = true;
	struct timeval tv = { .tv_sec = DEPTH_EVERY_MS / 1000, .tv_usec = 0 };
	event_add(r->depth_timer, &tv);
	depth_tick(-1, 0, r);
	schedule(r, 0);
}

void outbox_relay_kick(struct outbox_relay *r)
{
	if (!r->running || r->stopping)
		return;
	if (r->busy) {
		r->kicked = true;
		return;
	}
	/* Not waiting out a backoff: a new commit is no reason to hammer a
	 * transport that is down. */
	if (r->backoff_ms == 0)
		schedule(r, 0);
}

static void lease_released(PGresult *res, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (r->closed)
		return;
	void (*cb)(void *) = r->drained;
	r->drained = NULL;
	if (cb)
		cb(r->drained_arg);
}

/* Let another replica take over at once instead of after the lease. */
static void release_lease(struct outbox_relay *r)
{
	store_outbox_release(r->store, r->owner, lease_released, r);
}

void outbox_relay_drain(struct outbox_relay *r, void (*done)(void *arg), void *arg)
{
	r->stopping = true;
	event_del(r->wake);
	event_del(r->depth_timer);
	r->drained = done;
	r->drained_arg = arg;
	if (r->busy)
		return;
	if (flushes_at_drain(r) && r->backoff_ms == 0)
		claim(r);
	else
		release_lease(r);
}

void outbox_relay_close(struct outbox_relay *r)
{
	r->closed = r->stopping = true;
	event_del(r->wake);
	event_del(r->depth_timer);
	event_del(r->renew);
}

void outbox_relay_free(struct outbox_relay *r)
{
	if (!r)
		return;
	metrics_gauge_fn_remove(r);
	if (r->wake)
		event_free(r->wake);
	if (r->depth_timer)
		event_free(r->depth_timer);
	if (r->renew)
		event_free(r->renew);
	free_items(r);
	free(r->owner);
	free(r->source);
	free(r);
}

/* outbox.c - the relay from the outbox table to the transport.
 *
 * One batch at a time: claim (which also takes or renews the relay lease),
 * encode each row as a CloudEvent, hand the event with its encoding to
 * the transport (or the local bus), and once every event of the
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
	struct outbox_row *row;   /* its event, with source and raw set here */
	char *raw;                /* the encoding row->ev.raw points to */
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

	struct outbox_row *rows;  /* the batch as claimed */
	struct item *items;       /* one per row */
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
	for (size_t i = 0; r->items && i < r->n_items; i++)
		free(r->items[i].raw);
	store_outbox_rows_free(r->rows, r->n_items);
	free(r->items);
	r->rows = NULL;
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

static void marked_sent(const char *error, void *arg)
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
	size_t acked = 0;
	int64_t *ids = malloc(r->n_items * sizeof *ids);
	if (!ids) {
		batch_over(r, true);
		return;
	}
	for (size_t i = 0; i < r->n_items; i++)
		if (r->items[i].state == ITEM_ACKED)
			ids[acked++] = r->items[i].row->id;
	if (acked == 0) {
		free(ids);
		batch_over(r, true);
		return;
	}
	store_outbox_sent(r->store, ids, acked, marked_sent, r);
	free(ids);
}

static void publish_item(struct item *it);

/* The next event of the same key, waiting behind `it`. */
static struct item *next_of_key(struct outbox_relay *r, const struct item *it)
{
	for (struct item *n = (struct item *)it + 1; n < r->items + r->n_items; n++)
		if (n->state == ITEM_WAITING && strcmp(n->row->ev.key, it->row->ev.key) == 0)
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
		metric_observe(r->latency, (double)(clock_wall_ms() - it->row->created_ms) / 1000.0);
	} else if (result == TODOD_DROP) {
		/* Cannot ever be delivered (e.g. not a valid event): keep it out
		 * of the way rather than blocking its key forever. */
		log_error("outbox: event %s on %s dropped by the transport: %s", it->row->ev.id,
			  it->row->ev.topic, reason ? reason : "no reason given");
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
		const struct bus_sender relay = { .owner = r,
						  .dead_letters = BUS_DEAD_LETTERS_STORED };
		bus_dispatch_event(r->bus, &it->row->ev, dispatched, it, &relay);
		return;
	}
	if (r->transport->publish(r->transport->self, &it->row->ev, published, it) != 0)
		published(TODOD_RETRY, "transport refused the event", it);
}

/* The row's event as it goes out: this instance's source, and its
 * CloudEvents encoding alongside. */
static bool load_item(struct outbox_relay *r, struct outbox_row *row, struct item *it)
{
	struct todod_event *ev = &row->ev;
	ev->source = r->source;
	it->relay = r;
	it->row = row;
	it->raw = ce_encode(ev, &ev->raw_len);
	ev->raw = it->raw;
	it->state = ITEM_WAITING;
	return it->raw != NULL;
}

static void claimed(struct outbox_row *rows, size_t n_rows, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (r->closed) {
		store_outbox_rows_free(rows, n_rows);
		return;
	}
	if (error) {
		complain(r, "cannot claim events", error);
		batch_over(r, true);
		return;
	}
	if (n_rows == 0) {
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
	r->rows = rows;
	r->n_items = n_rows;
	r->items = calloc(n_rows, sizeof *r->items);
	if (!r->items) {
		batch_over(r, true);
		return;
	}
	for (size_t i = 0; i < n_rows; i++) {
		if (!load_item(r, &rows[i], &r->items[i])) {
			log_error("outbox: cannot encode event id %s; it stays in the outbox",
				  rows[i].ev.id);
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
			first = strcmp(r->items[j].row->ev.key, it->row->ev.key) != 0;
		if (first)
			publish_item(it);
	}
}

static void lease_renewed(const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (!r->closed && error)
		log_debug("outbox: could not renew the relay lease: %s", error);
}

static void renew_lease(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	store_outbox_renew(r->store, r->owner, (int)r->conf.lease_ms, lease_renewed, r);
}

static void cleaned(const char *error, void *arg)
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

static void depth_read(const struct outbox_depth *depth, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (error)
		return;
	r->pending_rows = (double)depth->pending;
	r->oldest_age_s = depth->oldest_age_s;
}

static void depth_tick(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	store_outbox_depth(r->store, depth_read, r);
}

static double gauge_pending(void *arg) { return ((struct outbox_relay *)arg)->pending_rows; }
static double gauge_age(void *arg) { return ((struct outbox_relay *)arg)->oldest_age_s; }

/* ---- life cycle ------------------------------------------------------------ */

/* Something was committed locally: look now rather than at the next
 * poll.  The store calls this after every transaction that may have
 * written outbox rows. */
static void kick(void *arg)
{
	struct outbox_relay *r = arg;
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

struct outbox_relay *outbox_relay_new(struct event_base *base, struct store *store,
				      struct bus *bus, const char *instance,
				      const struct outbox_conf *conf)
{
	struct outbox_relay *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->base = base;
	r->store = store;
	r->bus = bus;
	r->conf = *conf;
	char buf[256];
	snprintf(buf, sizeof buf, "%s-%ld", instance, (long)getpid());
	r->owner = strdup(buf);
	snprintf(buf, sizeof buf, "/todod/%s", instance);
	r->source = strdup(buf);
	r->wake = evtimer_new(base, wake_cb, r);
	r->depth_timer = event_new(base, -1, EV_PERSIST, depth_tick, r);
	r->renew = event_new(base, -1, EV_PERSIST, renew_lease, r);
	if (!r->owner || !r->source || !r->wake || !r->depth_timer || !r->renew) {
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
	store_on_events_committed(store, kick, r);
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

static void lease_released(const char *error, void *arg)
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
	store_on_events_committed(r->store, NULL, NULL);
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

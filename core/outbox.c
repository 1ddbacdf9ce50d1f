/* outbox.c - the relay from the outbox table to the transport.
 *
 * The relay keeps up to `outbox_batch` events out at once and claims more
 * while they are out: every claim also marks the events acknowledged since
 * the previous one sent, and leaves out the events still with the
 * transport.  So an event committed while others wait for their
 * acknowledgement goes out after one round trip to the database, not
 * after the slowest of a batch.  Acknowledged events wait for a claim
 * that fetches (the next commit's, or the next poll's) instead of taking
 * one of their own, at most MARK_WITHIN_MS: each carries its
 * acknowledgement time, so the wait changes no sent_at, and a steady
 * stream of events costs one claim per event, not two.
 *
 * Events that share a key (a task) are published one after the other: an
 * event claimed while an earlier one of its key is out waits behind it.
 * An event the transport did not acknowledge is published again after its
 * own backoff, and what waits behind it keeps waiting, so a task's events
 * never overtake each other and an outage delays events without losing
 * them. */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
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
/* How long acknowledged events may wait to be marked sent.  Should todod
 * die meanwhile, they are published again (consumers' inboxes drop the
 * copies), so the wait is kept short. */
#define MARK_WITHIN_MS 100

enum item_state {
	ITEM_WAITING, /* behind an earlier event of its key */
	ITEM_SENDING, /* with the transport */
	ITEM_RESTING, /* not acknowledged: published again after its backoff */
	ITEM_ACKED,   /* acknowledged: to be marked sent by the next claim */
	ITEM_MARKING, /* in the claim that marks it sent */
};

struct item {
	TAILQ_ENTRY(item) link;   /* the relay's items, in claim (commit) order */
	struct outbox_relay *relay;
	struct outbox_row row;    /* its event, with source and raw set here */
	char *raw;                /* the encoding row.ev.raw points to */
	enum item_state state;
	struct item *behind;      /* the next event of its key, waiting for this one */
	int64_t backoff_ms, retry_at_ms;
	int64_t acked_us;         /* wall clock, when ACKED: what its sent_at says */
};

TAILQ_HEAD(item_list, item);

struct outbox_relay {
	struct event_base *base;
	struct store *store;
	struct bus *bus;
	const struct todod_transport *transport;
	struct outbox_conf conf;
	char *owner;
	char *source;

	struct event *wake;       /* the next poll, or the end of a claim's backoff */
	struct event *retry;      /* the earliest resting event's next attempt */
	struct event *depth_timer;
	struct event *renew;      /* keeps the lease while events are out */
	struct event *mark;       /* acknowledged events waited MARK_WITHIN_MS */
	bool running, stopping, closed;
	bool claiming;            /* a claim is with the database */
	int claim_limit;          /* the rows that claim asked for */
	bool wanted;              /* new rows may be waiting: a commit, a poll, a full claim */
	bool mark_due;            /* `mark` fired: claim to mark, with rows or not */
	bool claim_resting;       /* the last claim failed: wait for `wake` */
	bool releasing;           /* drained: the lease is being handed over */
	int64_t claim_backoff_ms;
	bool complained;          /* an outage is logged once, not per retry */

	struct item_list items;
	size_t unanswered;        /* WAITING, SENDING and RESTING items */
	size_t acked;             /* ACKED items */

	void (*drained)(void *arg);
	void *drained_arg;

	double pending_rows, oldest_age_s;
	int64_t last_cleanup_ms;
	struct metric *published, *failed, *latency, *claims;
};

static void pump(struct outbox_relay *r);
static void publish_item(struct item *it);

static void arm(struct event *ev, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	event_add(ev, &tv);
}

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

static void complain(struct outbox_relay *r, const char *what, const char *why)
{
	if (!r->complained)
		log_warn("outbox: %s: %s; events wait in the outbox and are retried", what, why);
	r->complained = true;
}

static void recovered(struct outbox_relay *r)
{
	if (r->complained)
		log_info("outbox: events flow again");
	r->complained = false;
}

/* ---- items ------------------------------------------------------------------ */

static void item_free(struct outbox_relay *r, struct item *it)
{
	TAILQ_REMOVE(&r->items, it, link);
	store_outbox_row_clear(&it->row);
	free(it->raw);
	free(it);
}

/* Give `it` and what waits behind it back to the outbox, unsent: a later
 * claim (of this or another replica) takes them again, in order. */
static void release_chain(struct outbox_relay *r, struct item *it)
{
	while (it) {
		struct item *behind = it->behind;
		r->unanswered--;
		item_free(r, it);
		it = behind;
	}
}

/* Release every chain that `waits` says waits, looking again from the
 * start after each (a chain may hold the item after it). */
static void release_where(struct outbox_relay *r, struct item *(*waits)(struct item *it))
{
	struct item *it = TAILQ_FIRST(&r->items);
	while (it) {
		struct item *chain = waits(it);
		if (chain) {
			release_chain(r, chain);
			it = TAILQ_FIRST(&r->items);
		} else {
			it = TAILQ_NEXT(it, link);
		}
	}
}

/* Not acknowledged: it and what waits behind it. */
static struct item *resting_chain(struct item *it)
{
	return it->state == ITEM_RESTING ? it : NULL;
}

/* What waits behind an event with the transport. */
static struct item *waiting_chain(struct item *it)
{
	struct item *behind = it->state == ITEM_SENDING ? it->behind : NULL;
	it->behind = behind ? NULL : it->behind;
	return behind;
}

static bool is_out(const struct item *it)
{
	return it->state == ITEM_WAITING || it->state == ITEM_SENDING || it->state == ITEM_RESTING;
}

/* The last event of `key` still out (not yet acknowledged), if any. */
static struct item *last_out_of_key(struct outbox_relay *r, const char *key)
{
	struct item *it;
	TAILQ_FOREACH_REVERSE(it, &r->items, item_list, link)
		if (is_out(it) && strcmp(it->row.ev.key, key) == 0)
			return it;
	return NULL;
}

static void arm_retry(struct outbox_relay *r)
{
	int64_t soonest = 0;
	struct item *it;
	TAILQ_FOREACH(it, &r->items, link)
		if (it->state == ITEM_RESTING && (!soonest || it->retry_at_ms < soonest))
			soonest = it->retry_at_ms;
	event_del(r->retry);
	if (soonest) {
		int64_t wait = soonest - clock_mono_ms();
		arm(r->retry, wait > 0 ? wait : 0);
	}
}

static void retry_due(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	int64_t now = clock_mono_ms();
	struct item *it;
	/* Publishing may answer at once (in process) and change the list, so
	 * look again from the start after each one. */
	for (bool again = true; again;) {
		again = false;
		TAILQ_FOREACH(it, &r->items, link)
			if (it->state == ITEM_RESTING && it->retry_at_ms <= now) {
				publish_item(it);
				again = true;
				break;
			}
	}
	arm_retry(r);
}

/* ---- publishing ------------------------------------------------------------- */

/* Answered for good (delivered, or dropped as undeliverable): the next
 * claim marks it sent as of now. */
static void acknowledge(struct outbox_relay *r, struct item *it)
{
	it->state = ITEM_ACKED;
	it->acked_us = clock_wall_us();
	r->unanswered--;
	r->acked++;
}

static void published(enum todod_result result, const char *reason, void *arg)
{
	struct item *it = arg;
	struct outbox_relay *r = it->relay;
	if (r->closed)
		return;
	if (result == TODOD_OK || result == TODOD_DROP) {
		if (result == TODOD_OK) {
			metric_add(r->published, 1);
			metric_observe(r->latency,
				       (double)(clock_wall_ms() - it->row.created_ms) / 1000.0);
			recovered(r);
		} else {
			/* Cannot ever be delivered (e.g. not a valid event): keep it
			 * out of the way rather than blocking its key forever. */
			log_error("outbox: event %s on %s dropped by the transport: %s",
				  it->row.ev.id, it->row.ev.topic, reason ? reason : "no reason given");
			metric_add(r->failed, 1);
		}
		acknowledge(r, it);
		struct item *behind = it->behind;
		it->behind = NULL;
		if (behind && r->stopping && !flushes_at_drain(r))
			release_chain(r, behind);
		else if (behind)
			publish_item(behind);
	} else {
		metric_add(r->failed, 1);
		complain(r, "transport did not acknowledge", reason ? reason : "no reason given");
		if (r->stopping) {
			release_chain(r, it);
		} else {
			it->state = ITEM_RESTING;
			it->backoff_ms = it->backoff_ms ? it->backoff_ms * 2 : BACKOFF_MIN_MS;
			if (it->backoff_ms > BACKOFF_MAX_MS)
				it->backoff_ms = BACKOFF_MAX_MS;
			it->retry_at_ms = clock_mono_ms() + it->backoff_ms;
			arm_retry(r);
		}
	}
	pump(r);
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
		bus_dispatch_event(r->bus, &it->row.ev, dispatched, it, &relay);
		return;
	}
	if (r->transport->publish(r->transport->self, &it->row.ev, published, it) != 0)
		published(TODOD_RETRY, "transport refused the event", it);
}

/* ---- claiming --------------------------------------------------------------- */

/* Queue a claimed row: encoded, and behind the last event of its key
 * still out.  NULL when it can go out at once. */
static struct item *add_item(struct outbox_relay *r, struct outbox_row *row, bool *ready)
{
	struct item *it = todod_xcalloc(1, sizeof *it);
	it->relay = r;
	it->row = *row;
	it->row.ev.source = r->source;
	it->raw = ce_encode(&it->row.ev, &it->row.ev.raw_len);
	it->row.ev.raw = it->raw;
	struct item *ahead = last_out_of_key(r, row->ev.key);
	TAILQ_INSERT_TAIL(&r->items, it, link);
	r->unanswered++;
	if (!it->raw) {
		/* Data that is not an object: no transport could carry it, and
		 * claiming it again would only stop its key for good. */
		log_error("outbox: event %s on %s cannot be encoded as a CloudEvent; marked sent "
			  "without publishing", row->ev.id, row->ev.topic);
		metric_add(r->failed, 1);
		acknowledge(r, it);
		*ready = false;
		return it;
	}
	it->state = ITEM_WAITING;
	if (ahead)
		ahead->behind = it;
	*ready = ahead == NULL;
	return it;
}

/* The claim that marked them sent succeeded. */
static void forget_marked(struct outbox_relay *r)
{
	struct item *it = TAILQ_FIRST(&r->items);
	while (it) {
		struct item *next = TAILQ_NEXT(it, link);
		if (it->state == ITEM_MARKING)
			item_free(r, it);
		it = next;
	}
}

static void claim_failed(struct outbox_relay *r)
{
	if (r->stopping) {
		/* No time to wait for the database: what was not marked sent
		 * goes out again after the restart, and the consumers' inboxes
		 * keep it from taking effect twice. */
		forget_marked(r);
		r->wanted = false;
		pump(r);
		return;
	}
	struct item *it;
	TAILQ_FOREACH(it, &r->items, link)
		if (it->state == ITEM_MARKING) {
			it->state = ITEM_ACKED;
			r->acked++;
		}
	r->claim_backoff_ms = r->claim_backoff_ms ? r->claim_backoff_ms * 2 : BACKOFF_MIN_MS;
	if (r->claim_backoff_ms > BACKOFF_MAX_MS)
		r->claim_backoff_ms = BACKOFF_MAX_MS;
	r->claim_resting = true;
	arm(r->wake, r->claim_backoff_ms);
}

static void claimed(struct outbox_row *rows, size_t n_rows, const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (r->closed) {
		for (size_t i = 0; i < n_rows; i++)
			store_outbox_row_clear(&rows[i]);
		return;
	}
	r->claiming = false;
	if (error) {
		complain(r, "cannot claim events", error);
		claim_failed(r);
		return;
	}
	r->claim_backoff_ms = 0;
	forget_marked(r);
	/* A full claim leaves more behind it: claim again as soon as there is
	 * room, not at the next poll. */
	if (r->claim_limit > 0 && n_rows >= (size_t)r->claim_limit)
		r->wanted = true;
	/* Queue every row first, then start the ones not waiting behind
	 * another: a publish answered at once must find its successors. */
	struct item **ready = n_rows ? todod_xcalloc(n_rows, sizeof *ready) : NULL;
	size_t n_ready = 0;
	for (size_t i = 0; i < n_rows; i++) {
		bool now;
		struct item *added = add_item(r, &rows[i], &now);
		if (now)
			ready[n_ready++] = added;
	}
	for (size_t i = 0; i < n_ready; i++)
		publish_item(ready[i]);
	free(ready);
	if (!TAILQ_EMPTY(&r->items) && !event_pending(r->renew, EV_TIMEOUT, NULL))
		arm(r->renew, r->conf.lease_ms / 3);
	pump(r);
}

static void cleaned(const char *error, void *arg)
{
	if (error)
		log_debug("outbox: cleanup failed: %s", error);
}

static void claim(struct outbox_relay *r, int limit)
{
	int64_t now = clock_wall_ms();
	if (r->conf.retention_ms > 0 && now - r->last_cleanup_ms > 60000) {
		r->last_cleanup_ms = now;
		store_outbox_cleanup(r->store, r->conf.retention_ms, cleaned, r);
	}
	size_t n_out = r->unanswered + r->acked, n_sent = 0, n_in_flight = 0;
	int64_t *ids = n_out ? todod_xmalloc(n_out * sizeof *ids) : NULL;
	int64_t *sent_us = r->acked ? todod_xmalloc(r->acked * sizeof *sent_us) : NULL;
	struct item *it;
	/* Sent ids fill the array from the front, the rest from the back. */
	TAILQ_FOREACH(it, &r->items, link) {
		if (it->state == ITEM_ACKED) {
			it->state = ITEM_MARKING;
			sent_us[n_sent] = it->acked_us;
			ids[n_sent++] = it->row.id;
		} else if (it->state != ITEM_MARKING) {
			ids[n_out - ++n_in_flight] = it->row.id;
		}
	}
	r->acked = 0;
	r->mark_due = false;
	event_del(r->mark);
	const struct outbox_claim c = {
		.owner = r->owner, .lease_ms = (int)r->conf.lease_ms, .limit = limit,
		.sent = ids, .sent_us = sent_us, .n_sent = n_sent,
		.in_flight = ids + n_out - n_in_flight, .n_in_flight = n_in_flight,
	};
	r->claiming = true;
	r->claim_limit = limit;
	r->wanted = false;
	metric_add(r->claims, 1);
	store_outbox_claim(r->store, &c, claimed, r);
	free(ids);
	free(sent_us);
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

/* Decide what the relay does next: claim now (for more events, or to
 * mark acknowledged ones sent), wait for a commit or the next poll, or,
 * draining, hand the lease over once nothing is left out. */
static void pump(struct outbox_relay *r)
{
	if (r->closed || r->claiming || r->claim_resting || !(r->running || r->stopping))
		return;
	size_t cap = (size_t)r->conf.batch;
	bool more = r->wanted && (!r->stopping || flushes_at_drain(r));
	int limit = more && r->unanswered < cap ? (int)(cap - r->unanswered) : 0;
	/* A drain marks at once (the lease goes next), and a batch's worth of
	 * marks is not kept waiting. */
	bool mark = r->acked > 0 && (r->mark_due || r->stopping || r->acked >= cap);
	if (limit > 0 || mark) {
		claim(r, limit);
		return;
	}
	if (r->acked > 0 && !event_pending(r->mark, EV_TIMEOUT, NULL))
		arm(r->mark, MARK_WITHIN_MS);
	if (TAILQ_EMPTY(&r->items))
		event_del(r->renew);
	if (!r->stopping) {
		if (!r->wanted && !event_pending(r->wake, EV_TIMEOUT, NULL))
			arm(r->wake, r->conf.poll_interval_ms);
		return;
	}
	if (r->unanswered == 0 && r->drained && !r->releasing) {
		/* Let another replica take over at once instead of after the
		 * lease. */
		r->releasing = true;
		event_del(r->renew);
		store_outbox_release(r->store, r->owner, lease_released, r);
	}
}

static void mark_cb(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	r->mark_due = true;
	pump(r);
}

/* The poll interval passed, or a failed claim's backoff. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	r->claim_resting = false;
	r->wanted = true;
	pump(r);
}

static void lease_renewed(const char *error, void *arg)
{
	struct outbox_relay *r = arg;
	if (!r->closed && error)
		log_debug("outbox: could not renew the relay lease: %s", error);
}

/* A transport that waits for a broker can hold events longer than the
 * lease; another replica must not take over the same events then. */
static void renew_lease(evutil_socket_t fd, short what, void *arg)
{
	struct outbox_relay *r = arg;
	store_outbox_renew(r->store, r->owner, (int)r->conf.lease_ms, lease_renewed, r);
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
 * written outbox rows.  A failed claim's backoff holds (a new commit is
 * no reason to hammer a database that is down); a claim with the
 * database is followed by another. */
static void kick(void *arg)
{
	struct outbox_relay *r = arg;
	if (!r->running || r->stopping)
		return;
	r->wanted = true;
	pump(r);
}

struct outbox_relay *outbox_relay_new(struct event_base *base, struct store *store,
				      struct bus *bus, const char *instance,
				      const struct outbox_conf *conf)
{
	struct outbox_relay *r = todod_xcalloc(1, sizeof *r);
	r->base = base;
	r->store = store;
	r->bus = bus;
	r->conf = *conf;
	TAILQ_INIT(&r->items);
	char buf[256];
	snprintf(buf, sizeof buf, "%s-%ld", instance, (long)getpid());
	r->owner = todod_xstrdup(buf);
	snprintf(buf, sizeof buf, "/todod/%s", instance);
	r->source = todod_xstrdup(buf);
	r->wake = evtimer_new(base, wake_cb, r);
	r->retry = evtimer_new(base, retry_due, r);
	r->depth_timer = event_new(base, -1, EV_PERSIST, depth_tick, r);
	r->renew = event_new(base, -1, EV_PERSIST, renew_lease, r);
	r->mark = evtimer_new(base, mark_cb, r);
	if (!r->wake || !r->retry || !r->depth_timer || !r->renew || !r->mark) {
		outbox_relay_free(r);
		return NULL;
	}
	r->published = metrics_counter("todod_outbox_published_total",
				       "Events acknowledged by the transport", "");
	r->failed = metrics_counter("todod_outbox_publish_failures_total",
				    "Events the transport did not acknowledge (retried)", "");
	r->latency = metrics_histogram("todod_outbox_publish_latency_seconds",
				       "From commit to acknowledgement", "");
	r->claims = metrics_counter("todod_outbox_claims_total",
				    "Relay statements that fetch events or mark them sent", "");
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
	arm(r->depth_timer, DEPTH_EVERY_MS);
	depth_tick(-1, 0, r);
	r->wanted = true;
	pump(r);
}

void outbox_relay_drain(struct outbox_relay *r, void (*done)(void *arg), void *arg)
{
	r->stopping = true;
	r->running = false;
	event_del(r->wake);
	event_del(r->depth_timer);
	r->drained = done;
	r->drained_arg = arg;
	/* What waits out a backoff stays in the outbox for the next start. */
	release_where(r, resting_chain);
	event_del(r->retry);
	bool flush = flushes_at_drain(r) && !r->claim_resting;
	r->claim_resting = false;
	r->wanted = flush;
	if (!flush)
		release_where(r, waiting_chain);
	pump(r);
}

void outbox_relay_close(struct outbox_relay *r)
{
	r->closed = r->stopping = true;
	event_del(r->wake);
	event_del(r->retry);
	event_del(r->depth_timer);
	event_del(r->renew);
	event_del(r->mark);
}

void outbox_relay_free(struct outbox_relay *r)
{
	if (!r)
		return;
	metrics_gauge_fn_remove(r);
	store_on_events_committed(r->store, NULL, NULL);
	if (r->wake)
		event_free(r->wake);
	if (r->retry)
		event_free(r->retry);
	if (r->depth_timer)
		event_free(r->depth_timer);
	if (r->renew)
		event_free(r->renew);
	if (r->mark)
		event_free(r->mark);
	while (!TAILQ_EMPTY(&r->items))
		item_free(r, TAILQ_FIRST(&r->items));
	free(r->owner);
	free(r->source);
	free(r);
}

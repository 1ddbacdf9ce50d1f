/* bus.c - delivering events to local subscribers, once each.
 *
 * One dispatch per event; one delivery per subscriber of its topic.  A
 * delivery walks: inbox check -> handler -> answer -> (inbox record |
 * retry timer | dead letter) -> finished.  The dispatch reports back to
 * whoever handed us the event (the relay, or a transport's consumer) when
 * every delivery has finished, so an offset or an outbox row is only
 * acknowledged once its effects are durable. */
#include "bus.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "cloudevent.h"
#include "inbox_db.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define RETRY_BACKOFF_CAP_MS 30000

struct subscriber {
	LIST_ENTRY(subscriber) link;
	void *owner;
	char *topic;
	char *consumer;
	todod_event_handler handler;
	void *arg;
};

struct dispatch {
	struct bus *bus;
	const struct todod_event *ev; /* &parsed.ev, or the sender's */
	struct ce_event parsed;       /* a wire message, parsed here */
	int pending;           /* deliveries not finished yet */
	bool unrecorded;       /* an outcome could not be written: redeliver */
	int max_attempts;
	struct bus_sender from;
	char *dead_reason;     /* the first subscriber's reason for giving up */
	int dead_attempts;
	todod_inbound_cb done;
	void *done_arg;
};

struct todod_delivery {
	LIST_ENTRY(todod_delivery) link;
	struct dispatch *dsp;
	struct subscriber *sub;   /* NULL once its owner unsubscribed */
	char *consumer;
	int attempt;
	bool in_handler;          /* handed to the subscriber, no answer yet */
	char *reason;
	struct event *retry_timer;
};

/* Deliveries waiting for the same kind of inbox statement. */
struct batch {
	struct todod_delivery **v;
	size_t n, cap;
};

struct bus {
	struct event_base *base;
	struct store *store;
	struct bus_conf conf;
	LIST_HEAD(, subscriber) subs;
	LIST_HEAD(, todod_delivery) deliveries;
	const char **topics;
	size_t n_topics;
	/* Inbox checks and records wait for the end of the loop turn, so what
	 * the relay hands over together shares one driver call each. */
	struct batch to_check, to_record;
	struct event *flush;
	/* The driver in use: &db_inbox unless [core] inbox names a plugin's
	 * (owned by inbox_owner); NULL once that plugin is gone. */
	const struct todod_inbox_driver *inbox;
	const void *inbox_owner;
	struct todod_inbox_driver db_inbox;
	LIST_HEAD(, inbox_call) calls;
	/* Counted here, where every transport's messages pass, so one series
	 * tells of a publisher writing another format whatever carries it. */
	struct metric *invalid;
};

/* One inbox driver call in flight and the deliveries it answers. */
struct inbox_call {
	LIST_ENTRY(inbox_call) link;
	struct bus *bus;
	bool record;
	struct batch b;
};

static void flush_inbox(evutil_socket_t fd, short what, void *arg);
static void batch_add(struct bus *bus, struct batch *b, struct todod_delivery *d);

struct bus *bus_new(struct event_base *base, struct store *store, const struct bus_conf *conf)
{
	struct bus *bus = todod_xcalloc(1, sizeof *bus);
	bus->base = base;
	bus->store = store;
	bus->conf = *conf;
	bus->db_inbox = inbox_db_driver(store);
	bus->inbox = &bus->db_inbox;
	bus->topics = todod_xcalloc(1, sizeof *bus->topics);
	bus->invalid = metrics_counter("todod_bus_invalid_events_total",
				       "Messages consumed from a transport that were no valid "
				       "CloudEvent (or too large) and went back to it as DROP",
				       "");
	bus->flush = event_new(base, -1, 0, flush_inbox, bus);
	if (!bus->flush) {
		free(bus->topics);
		free(bus);
		return NULL;
	}
	return bus;
}

void bus_set_conf(struct bus *bus, const struct bus_conf *conf) { bus->conf = *conf; }

void bus_set_inbox(struct bus *bus, const struct todod_inbox_driver *driver,
		   const void *owner)
{
	bus->inbox = driver;
	bus->inbox_owner = owner;
}

static void count(const char *consumer, const char *result)
{
	char labels[256];
	snprintf(labels, sizeof labels, "consumer=\"%s\",result=\"%s\"", consumer, result);
	metric_add(metrics_counter("todod_bus_deliveries_total",
				   "Event deliveries to local subscribers by outcome", labels), 1);
}

/* ---- subscriptions --------------------------------------------------------- */

static void rebuild_topics(struct bus *bus)
{
	size_t n = 0;
	struct subscriber *s;
	LIST_FOREACH(s, &bus->subs, link)
		n++;
	const char **topics = todod_xcalloc(n + 1, sizeof *topics);
	size_t k = 0;
	LIST_FOREACH(s, &bus->subs, link) {
		bool seen = false;
		for (size_t i = 0; i < k && !seen; i++)
			seen = strcmp(topics[i], s->topic) == 0;
		if (!seen)
			topics[k++] = s->topic;
	}
	free(bus->topics);
	bus->topics = topics;
	bus->n_topics = k;
}

static void subscriber_free(struct subscriber *s)
{
	LIST_REMOVE(s, link);
	free(s->topic);
	free(s->consumer);
	free(s);
}

int bus_subscribe(struct bus *bus, void *owner, const char *topic, const char *consumer,
		  todod_event_handler handler, void *arg, struct todod_err *err)
{
	if (!topic || !*topic || !consumer || !*consumer || !handler)
		return todod_err_set(err, "bus_subscribe: topic, consumer and handler are required");
	struct subscriber *s;
	LIST_FOREACH(s, &bus->subs, link)
		if (strcmp(s->topic, topic) == 0 && strcmp(s->consumer, consumer) == 0)
			return todod_err_set(err, "consumer '%s' is already subscribed to '%s'",
					     consumer, topic);
	s = todod_xcalloc(1, sizeof *s);
	s->topic = todod_xstrdup(topic);
	s->consumer = todod_xstrdup(consumer);
	s->owner = owner;
	s->handler = handler;
	s->arg = arg;
	LIST_INSERT_HEAD(&bus->subs, s, link);
	rebuild_topics(bus);
	return 0;
}

const char *const *bus_topics(struct bus *bus) { return bus->topics; }

/* ---- deliveries ------------------------------------------------------------ */

static void dispatch_free(struct dispatch *dsp)
{
	ce_event_free(&dsp->parsed);
	free(dsp->dead_reason);
	free(dsp);
}

/* Reports the dispatch's outcome to whoever handed the event over and
 * frees it.  A failed inbox write outranks a dead letter: redelivery
 * repeats the whole thing, and the inbox keeps what already succeeded. */
static void dispatch_settle(struct dispatch *dsp)
{
	todod_inbound_cb done = dsp->done;
	void *arg = dsp->done_arg;
	int attempts = dsp->dead_attempts;
	if (!done) {
		/* The transport was unloaded: nobody left to tell. */
		dispatch_free(dsp);
		return;
	}
	char reason[600] = "";
	enum todod_result result = TODOD_OK;
	if (dsp->unrecorded) {
		result = TODOD_RETRY;
		snprintf(reason, sizeof reason, "an outcome could not be recorded");
	} else if (dsp->dead_reason) {
		result = TODOD_DROP;
		snprintf(reason, sizeof reason, "%s", dsp->dead_reason);
	}
	dispatch_free(dsp);
	done(result, result == TODOD_OK ? NULL : reason, attempts, arg);
}

static void delivery_finish(struct todod_delivery *d)
{
	struct dispatch *dsp = d->dsp;
	LIST_REMOVE(d, link);
	if (d->retry_timer)
		event_free(d->retry_timer);
	free(d->consumer);
	free(d->reason);
	free(d);
	if (--dsp->pending == 0)
		dispatch_settle(dsp);
}

static void outcome_recorded(const char *error, void *arg)
{
	struct todod_delivery *d = arg;
	struct bus *bus = d->dsp->bus;
	if (error) {
		log_warn("event %s for '%s': could not record the outcome (%s); it will be redelivered",
			 d->dsp->ev->id, d->consumer, error);
		d->dsp->unrecorded = true;
	} else if (bus->inbox != &bus->db_inbox) {
		/* The dead letter's row settled it in the database inbox; the
		 * driver in use must learn it too, or a redelivery tries again. */
		batch_add(bus, &bus->to_record, d);
		return;
	}
	delivery_finish(d);
}

static void dead_letter(struct todod_delivery *d, const char *reason)
{
	struct dispatch *dsp = d->dsp;
	log_warn("event %s (%s) dead-lettered for '%s' after %d attempt%s: %s", dsp->ev->id,
		 dsp->ev->type, d->consumer, d->attempt, d->attempt == 1 ? "" : "s", reason);
	count(d->consumer, "dead_letter");
	if (dsp->from.dead_letters == BUS_DEAD_LETTERS_RETURNED) {
		if (!dsp->dead_reason)
			dsp->dead_reason = todod_xstrdup(reason);
		if (d->attempt > dsp->dead_attempts)
			dsp->dead_attempts = d->attempt;
		delivery_finish(d);
		return;
	}
	store_dead_letter(dsp->bus->store, d->consumer, dsp->ev->topic ? dsp->ev->topic : "",
			  dsp->ev->id, dsp->ev->raw, reason, d->attempt, outcome_recorded, d);
}

static void deliver(struct todod_delivery *d)
{
	if (!d->sub) {
		/* The subscriber left (unloaded) before it could take the event:
		 * leave it undelivered so the next run sees it again. */
		d->dsp->unrecorded = true;
		delivery_finish(d);
		return;
	}
	d->attempt++;
	d->in_handler = true;
	d->sub->handler(d->dsp->ev, d, d->sub->arg);
}

static void retry_due(evutil_socket_t fd, short what, void *arg)
{
	deliver(arg);
}

static int64_t backoff_ms(const struct bus *bus, int attempt)
{
	int64_t ms = bus->conf.retry_backoff_ms;
	for (int i = 1; i < attempt && ms < RETRY_BACKOFF_CAP_MS; i++)
		ms *= 2;
	return ms < RETRY_BACKOFF_CAP_MS ? ms : RETRY_BACKOFF_CAP_MS;
}

void bus_answer(struct todod_delivery *d, enum todod_result result, const char *reason)
{
	if (!d->in_handler) {
		log_error("'%s' answered event %s twice; the second answer is ignored", d->consumer,
			  d->dsp->ev->id);
		return;
	}
	d->in_handler = false;
	struct bus *bus = d->dsp->bus;
	switch (result) {
	case TODOD_OK:
		count(d->consumer, "ok");
		batch_add(bus, &bus->to_record, d);
		return;
	case TODOD_RETRY:
		count(d->consumer, "retry");
		free(d->reason);
		d->reason = todod_xstrdup(reason ? reason : "no reason given");
		if (d->attempt < d->dsp->max_attempts) {
			if (!d->retry_timer)
				d->retry_timer = evtimer_new(bus->base, retry_due, d);
			struct timeval tv;
			int64_t ms = backoff_ms(bus, d->attempt);
			tv.tv_sec = ms / 1000;
			tv.tv_usec = (ms % 1000) * 1000;
			evtimer_add(d->retry_timer, &tv);
			return;
		}
		char why[600];
		snprintf(why, sizeof why, "gave up after %d attempts: %s", d->attempt,
			 d->reason ? d->reason : "no reason given");
		dead_letter(d, why);
		return;
	case TODOD_DROP:
	default:
		count(d->consumer, "drop");
		dead_letter(d, reason ? reason : "dropped by the consumer");
		return;
	}
}

static void batch_add(struct bus *bus, struct batch *b, struct todod_delivery *d)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 64;
		b->v = todod_xrealloc(b->v, b->cap * sizeof *b->v);
	}
	b->v[b->n++] = d;
	event_active(bus->flush, EV_TIMEOUT, 0);
}

static struct inbox_call *call_new(struct bus *bus, struct batch *todo, bool record)
{
	struct inbox_call *call = todod_xcalloc(1, sizeof *call);
	call->b.v = todod_xmalloc(todo->n * sizeof *call->b.v);
	call->bus = bus;
	call->record = record;
	memcpy(call->b.v, todo->v, todo->n * sizeof *todo->v);
	call->b.n = call->b.cap = todo->n;
	LIST_INSERT_HEAD(&bus->calls, call, link);
	return call;
}

static void call_free(struct inbox_call *call)
{
	LIST_REMOVE(call, link);
	free(call->b.v);
	free(call);
}

/* The deliveries of a failed inbox call stay unacknowledged, so they come
 * again. */
static void fail_all(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		b->v[i]->dsp->unrecorded = true;
		delivery_finish(b->v[i]);
	}
}

static void inbox_answered(const bool *found, size_t n, const char *error, void *arg)
{
	struct inbox_call *call = arg;
	struct batch *b = &call->b;
	if (!error && n != b->n)
		error = "the driver answered a different number of keys";
	if (error) {
		log_warn("inbox: could not %s %zu event%s (%s); they will be redelivered",
			 call->record ? "record" : "check", b->n, b->n == 1 ? "" : "s", error);
		fail_all(b);
	} else {
		for (size_t i = 0; i < b->n; i++) {
			struct todod_delivery *d = b->v[i];
			if (call->record) {
				delivery_finish(d);
			} else if (found[i]) {
				count(d->consumer, "duplicate");
				delivery_finish(d);
			} else {
				deliver(d);
			}
		}
	}
	call_free(call);
}

/* Hands what waits in `todo` to the driver as one call. */
static void flush_batch(struct bus *bus, struct batch *todo, bool record)
{
	if (todo->n == 0)
		return;
	struct todod_err err = { "" };
	if (!bus->inbox) {
		log_warn("inbox: the inbox driver's plugin is gone; the events will be redelivered");
		fail_all(todo);
		todo->n = 0;
		return;
	}
	struct inbox_call *call = call_new(bus, todo, record);
	struct todod_inbox_key *keys = todod_xmalloc(todo->n * sizeof *keys);
	todo->n = 0;
	for (size_t i = 0; i < call->b.n; i++)
		keys[i] = (struct todod_inbox_key){ .consumer = call->b.v[i]->consumer,
						    .event_id = call->b.v[i]->dsp->ev->id };
	int rc = (record ? bus->inbox->record : bus->inbox->seen)(bus->inbox->self, keys,
								  call->b.n, inbox_answered,
								  call, &err);
	free(keys);
	if (rc != 0)
		inbox_answered(NULL, 0, err.text[0] ? err.text : "the driver refused", call);
}

static void flush_inbox(evutil_socket_t fd, short what, void *arg)
{
	struct bus *bus = arg;
	flush_batch(bus, &bus->to_check, false);
	flush_batch(bus, &bus->to_record, true);
}

/* One delivery per subscriber of the event's topic. */
static void dispatch_start(struct bus *bus, struct dispatch *dsp, todod_inbound_cb done,
			   void *arg, int max_attempts, const struct bus_sender *from)
{
	dsp->bus = bus;
	dsp->done = done;
	dsp->done_arg = arg;
	dsp->max_attempts = max_attempts > 0 ? max_attempts : bus->conf.max_attempts;
	dsp->from = *from;
	/* Count first, start after: a delivery that finishes at once must not
	 * see the count reach zero while others are still to be created. */
	dsp->pending = 1;
	struct subscriber *s;
	LIST_FOREACH(s, &bus->subs, link) {
		if (strcmp(s->topic, dsp->ev->topic) != 0)
			continue;
		struct todod_delivery *d = todod_xcalloc(1, sizeof *d);
		d->consumer = todod_xstrdup(s->consumer);
		d->dsp = dsp;
		d->sub = s;
		LIST_INSERT_HEAD(&bus->deliveries, d, link);
		dsp->pending++;
		batch_add(bus, &bus->to_check, d);
	}
	/* Drop the guard count; with no subscriber this completes now. */
	if (--dsp->pending == 0)
		dispatch_settle(dsp);
}

void bus_dispatch(struct bus *bus, const struct todod_inbound *msg,
		  const struct bus_sender *from)
{
	struct dispatch *dsp = todod_xcalloc(1, sizeof *dsp);
	struct todod_err err = { "" };
	if (ce_parse(msg->raw, msg->len, bus->conf.max_event_size, msg->topic, msg->key,
		     &dsp->parsed, &err) != 0) {
		free(dsp);
		metric_add(bus->invalid, 1);
		msg->done(TODOD_DROP, err.text, 0, msg->arg);
		return;
	}
	dsp->ev = &dsp->parsed.ev;
	dispatch_start(bus, dsp, msg->done, msg->arg, msg->max_attempts, from);
}

void bus_dispatch_event(struct bus *bus, const struct todod_event *ev, todod_inbound_cb done,
			void *arg, const struct bus_sender *from)
{
	/* The limit a wire message meets in ce_parse, so the in-process
	 * transport carries what a broker would. */
	struct todod_err err = { "" };
	if (ce_size_check(ev->raw_len, bus->conf.max_event_size, &err) != 0) {
		done(TODOD_DROP, err.text, 0, arg);
		return;
	}
	struct dispatch *dsp = todod_xcalloc(1, sizeof *dsp);
	dsp->ev = ev;
	dispatch_start(bus, dsp, done, arg, 0, from);
}

void bus_unsubscribe_owner(struct bus *bus, void *owner)
{
	if (owner && bus->inbox_owner == owner) {
		/* The driver answers nothing after its plugin's destroy(): settle
		 * what it still had, and keep the rest unacknowledged. */
		bus->inbox = NULL;
		bus->inbox_owner = NULL;
		while (!LIST_EMPTY(&bus->calls))
			inbox_answered(NULL, 0, "the inbox driver's plugin is gone",
				       LIST_FIRST(&bus->calls));
	}
	for (struct todod_delivery *d = LIST_FIRST(&bus->deliveries), *next; d; d = next) {
		next = LIST_NEXT(d, link);
		if (d->dsp->from.owner == owner)
			d->dsp->done = NULL;
		if (!d->sub || d->sub->owner != owner)
			continue;
		d->sub = NULL;
		/* Waiting for an answer that will never come, or for a retry that
		 * must not call into the departed plugin: settle it now. */
		if (d->in_handler || (d->retry_timer && evtimer_pending(d->retry_timer, NULL))) {
			d->dsp->unrecorded = true;
			delivery_finish(d);
		}
	}
	for (struct subscriber *s = LIST_FIRST(&bus->subs), *next; s; s = next) {
		next = LIST_NEXT(s, link);
		if (s->owner == owner)
			subscriber_free(s);
	}
	rebuild_topics(bus);
}

const char *bus_delivery_consumer(struct todod_delivery *d) { return d->consumer; }
const char *bus_delivery_event_id(struct todod_delivery *d) { return d->dsp->ev->id; }
int bus_delivery_attempt(struct todod_delivery *d) { return d->attempt; }

int bus_in_flight(const struct bus *bus)
{
	int n = 0;
	const struct todod_delivery *d;
	LIST_FOREACH(d, &bus->deliveries, link)
		n++;
	return n;
}

void bus_free(struct bus *bus)
{
	if (!bus)
		return;
	while (!LIST_EMPTY(&bus->subs))
		subscriber_free(LIST_FIRST(&bus->subs));
	/* Deliveries left at exit were never acknowledged; the outbox or the
	 * broker still has them.  (The database is closed by now, so none is
	 * waiting on an inbox statement, and a plugin's driver was settled when
	 * its plugin was unloaded.) */
	bus->to_check.n = bus->to_record.n = 0;
	struct todod_delivery *d;
	while ((d = LIST_FIRST(&bus->deliveries))) {
		d->sub = NULL;
		d->dsp->unrecorded = true;
		delivery_finish(d);
	}
	/* Their deliveries were just settled above. */
	while (!LIST_EMPTY(&bus->calls))
		call_free(LIST_FIRST(&bus->calls));
	free(bus->to_check.v);
	free(bus->to_record.v);
	event_free(bus->flush);
	free(bus->topics);
	free(bus);
}

/* bus.h - local subscribers, their inboxes and dead letters.
 *
 * Whatever carried an event here (the in-process transport, i.e. the
 * outbox relay itself, or a transport plugin's consumer), each subscriber
 * of its topic gets it once: an event id already in the subscriber's inbox
 * is skipped; OK records it; RETRY redelivers with capped exponential
 * backoff; DROP, or too many attempts, dead-letters it with the reason. */
#ifndef TODOD_BUS_H
#define TODOD_BUS_H

#include "todod-plugin.h"

struct event_base;
struct store;

struct bus_conf {
	int max_attempts;
	int64_t retry_backoff_ms;
	size_t max_event_size;
};

struct bus *bus_new(struct event_base *base, struct store *store, const struct bus_conf *conf);
void bus_free(struct bus *bus);
void bus_set_conf(struct bus *bus, const struct bus_conf *conf);
/* Use a plugin's inbox driver instead of the database's; `owner` is the
 * plugin (its ctx), whose unsubscribe settles the driver's open calls. */
void bus_set_inbox(struct bus *bus, const struct todod_inbox_driver *driver,
		   const void *owner);

int bus_subscribe(struct bus *bus, void *owner, const char *topic, const char *consumer,
		  todod_event_handler handler, void *arg, struct todod_err *err);
void bus_unsubscribe_owner(struct bus *bus, void *owner);
/* Topics with at least one subscriber, NULL-terminated; valid until the
 * next subscribe. */
const char *const *bus_topics(struct bus *bus);

/* Who handed an event over, and so where the dead letters of the
 * subscribers that give up on it go. */
enum bus_dead_letters {
	/* Into the database (and the consumer's inbox), the dispatch ending
	 * OK: the relay's events have no broker to dead-letter on. */
	BUS_DEAD_LETTERS_STORED,
	/* Back to the sender: the dispatch ends in DROP with the first
	 * reason, and the transport dead-letters on its broker. */
	BUS_DEAD_LETTERS_RETURNED,
};

struct bus_sender {
	/* The transport plugin's ctx, or the relay: bus_unsubscribe_owner()
	 * of it silences `done` for what is still in flight. */
	const void *owner;
	enum bus_dead_letters dead_letters;
};

/* Deliver one wire-format event to the local subscribers of its topic.
 * `msg->done` fires once: OK when every subscriber finished (handled,
 * already handled, or given up on with the dead letter kept as `from`
 * says), RETRY when an outcome could not be recorded, DROP with the
 * reason when the message is not a valid CloudEvent or, for dead letters
 * returned to the sender, when a subscriber gave up on it. */
void bus_dispatch(struct bus *bus, const struct todod_inbound *msg,
		  const struct bus_sender *from);
/* The same for an event its sender already holds parsed, `raw` included
 * (the relay's own): `ev` is borrowed until `done` fires. */
void bus_dispatch_event(struct bus *bus, const struct todod_event *ev, todod_inbound_cb done,
			void *arg, const struct bus_sender *from);

void bus_answer(struct todod_delivery *d, enum todod_result result, const char *reason);
const char *bus_delivery_consumer(struct todod_delivery *d);
const char *bus_delivery_event_id(struct todod_delivery *d);
int bus_delivery_attempt(struct todod_delivery *d);

/* Deliveries still waiting for an answer or a retry, for drain. */
int bus_in_flight(const struct bus *bus);

#endif

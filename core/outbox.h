/* outbox.h - the relay: claims committed events in order, hands them to
 * the transport (or to the local bus when none is loaded) and marks them
 * sent only once acknowledged. */
#ifndef TODOD_OUTBOX_H
#define TODOD_OUTBOX_H

#include "todod-plugin.h"

struct event_base;
struct store;
struct bus;

struct outbox_conf {
	int batch;
	int64_t poll_interval_ms;
	int64_t retention_ms;
	int64_t lease_ms;
};

struct outbox_relay *outbox_relay_new(struct event_base *base, struct store *store,
				      struct bus *bus, const char *instance,
				      const struct outbox_conf *conf);
void outbox_relay_set_conf(struct outbox_relay *r, const struct outbox_conf *conf);
/* NULL: the in-process transport (the local bus). */
void outbox_relay_set_transport(struct outbox_relay *r, const struct todod_transport *t);
/* From now on events are claimed: at once whenever the store commits
 * some, and every poll interval for those of other replicas. */
void outbox_relay_start(struct outbox_relay *r);
/* Stop claiming; `done` fires when the batch in flight is settled. */
void outbox_relay_drain(struct outbox_relay *r, void (*done)(void *arg), void *arg);
/* Exit: from now on answers and results are ignored and nothing new is
 * sent (what was not marked sent is sent again after the restart). */
void outbox_relay_close(struct outbox_relay *r);
void outbox_relay_free(struct outbox_relay *r);

#endif

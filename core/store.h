/* store.h - every SQL statement of todod lives behind this header.
 *
 * Task, category and tag operations are dispatched by name (the same
 * names plugins use through todod_api.store_call) to PL/pgSQL functions
 * created by the migrations, so each change and its outbox events commit
 * in one statement and one round trip.  Errors the functions raise carry
 * a stable code, the field and a sentence; they arrive here as
 * todod_store_error. */
#ifndef TODOD_STORE_H
#define TODOD_STORE_H

#include "db.h"
#include "todod-plugin.h"

struct store;

struct store *store_new(struct event_base *base, struct db_pool *pool);
void store_free(struct store *st);
/* How many categories and tags one user may have; enforced by the SQL of
 * every operation that may create one (QUOTA_EXCEEDED).  Until this is
 * called there is no quota. */
void store_set_label_quotas(struct store *st, int64_t max_categories, int64_t max_tags);
struct db_pool *store_pool(struct store *st);

/* See todod_api.store_call. */
int store_call(struct store *st, const char *op, int64_t user_id, json_object *args,
	       const char *once_consumer, const char *once_event_id,
	       todod_store_cb cb, void *arg, struct todod_err *err);
/* NULL-terminated list of operation names, for docs and tests. */
const char *const *store_ops(void);

/* ---- events (outbox, inbox, dead letters); rows as text ---- */

/* Take or renew the relay lease for `owner` (one relay at a time keeps
 * per-task order across replicas) and return up to `limit` unsent events
 * in commit order: id, event_id, topic, type, subject, key, time, data,
 * traceparent.  No rows when another owner holds the lease. */
void store_outbox_claim(struct store *st, const char *owner, int lease_ms, int limit,
			db_cb cb, void *arg);
/* Mark events sent; `ids_array` is a PostgreSQL array literal "{1,2,3}". */
void store_outbox_sent(struct store *st, const char *ids_array, db_cb cb, void *arg);
void store_outbox_release(struct store *st, const char *owner, db_cb cb, void *arg);
/* Append one event in its own transaction (bus_publish); data is JSON text. */
void store_outbox_append(struct store *st, const char *topic, const char *type,
			 const char *subject, const char *key, const char *data_json,
			 db_cb cb, void *arg);
/* Delete events sent more than `retention_ms` ago. */
void store_outbox_cleanup(struct store *st, int64_t retention_ms, db_cb cb, void *arg);
/* Row count and age in seconds of the oldest unsent event. */
void store_outbox_depth(struct store *st, db_cb cb, void *arg);

/* Inbox statements take many events at once (the bus coalesces what one
 * loop turn asks for).  Arrays are PostgreSQL text[] literals made by
 * store_text_array().
 * Keys are pairs (consumers[i], event_ids[i]); answers are rows of one
 * 1-based position into them.
 * Which keys were handled?  The position of each that was. */
void store_inbox_seen(struct store *st, const char *consumers, const char *event_ids,
		      db_cb cb, void *arg);
/* Record the keys as handled; the position of each newly inserted. */
void store_inbox_record(struct store *st, const char *consumers, const char *event_ids,
			db_cb cb, void *arg);
/* {"a","b\"c"}: a malloc'd text[] literal of `n` strings. */
char *store_text_array(const char *const *items, size_t n);
void store_dead_letter(struct store *st, const char *consumer, const char *topic,
		       const char *event_id, const char *raw, const char *reason,
		       int attempts, db_cb cb, void *arg);

#endif

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

#include <stdbool.h>

#include "todod-plugin.h"

/* No libpq here: the callers of the store see typed values only. */
struct db_pool;
struct event_base;
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
/* See todod_api.store_call_text. */
int store_call_text(struct store *st, const char *op, int64_t user_id, json_object *args,
		    const char *once_consumer, const char *once_event_id,
		    todod_store_text_cb cb, void *arg, struct todod_err *err);
/* NULL-terminated list of operation names, for docs and tests. */
const char *const *store_ops(void);

/* ---- events (outbox, inbox, dead letters) ----
 * Answers arrive typed: no caller reads a column of a result. */

/* `hook` runs after every transaction that may have written outbox rows
 * commits (an append, or any operation not known to write none), before
 * that statement's caller is answered, so the relay hears of new events
 * without each caller having to pass it on.  One hook; NULL removes it. */
void store_on_events_committed(struct store *st, void (*hook)(void *arg), void *arg);
/* For the store's own files: a statement that wrote outbox rows has
 * committed. */
void store_events_committed(struct store *st);

/* `error` is NULL on success, else a one-line reason. */
typedef void (*store_done_cb)(const char *error, void *arg);

/* One unsent event as the outbox holds it.  `ev` has no source and no
 * raw encoding (the relay knows its instance); its strings and data
 * belong to the row. */
struct outbox_row {
	int64_t id;          /* the outbox row, what outbox_claim.sent names */
	int64_t created_ms;  /* commit time, ev.time as a number */
	struct todod_event ev;
	char *strings;       /* the block ev's strings point into */
};
/* The array is the store's and freed when the callback returns; what each
 * row holds is the callee's, to release with store_outbox_row_clear()
 * (copy the struct to keep it).  NULL and 0 on error. */
typedef void (*store_outbox_rows_cb)(struct outbox_row *rows, size_t n, const char *error,
				     void *arg);
void store_outbox_row_clear(struct outbox_row *row);

struct outbox_claim {
	const char *owner;
	int lease_ms;
	int limit;
	const int64_t *sent;       /* acknowledged: marked sent first, lease or not */
	const int64_t *sent_us;    /* when each was acknowledged, wall-clock µs; NULL: now */
	size_t n_sent;
	const int64_t *in_flight;  /* still being published: never returned */
	size_t n_in_flight;
};
/* Mark `sent`, take or renew the relay lease for `owner` (one relay at a
 * time keeps per-task order across replicas) and return up to `limit`
 * unsent events in commit order, leaving out `in_flight`.  No rows when
 * another owner holds the lease. */
void store_outbox_claim(struct store *st, const struct outbox_claim *claim,
			store_outbox_rows_cb cb, void *arg);
/* Only take or renew the lease. */
void store_outbox_renew(struct store *st, const char *owner, int lease_ms,
			store_done_cb cb, void *arg);
void store_outbox_release(struct store *st, const char *owner, store_done_cb cb, void *arg);
/* Append one event in its own transaction (bus_publish); data is JSON text. */
void store_outbox_append(struct store *st, const char *topic, const char *type,
			 const char *subject, const char *key, const char *data_json,
			 store_done_cb cb, void *arg);
/* Delete events sent more than `retention_ms` ago. */
void store_outbox_cleanup(struct store *st, int64_t retention_ms, store_done_cb cb, void *arg);

struct outbox_depth {
	int64_t pending;      /* unsent events */
	double oldest_age_s;  /* age of the oldest of them, 0 when none */
};
typedef void (*store_outbox_depth_cb)(const struct outbox_depth *depth, const char *error,
				      void *arg);
void store_outbox_depth(struct store *st, store_outbox_depth_cb cb, void *arg);

/* The database inbox, many keys per statement (the bus coalesces what
 * one loop turn asks for); `done` gets found[i] for keys[i].
 * Which keys were handled already? */
void store_inbox_seen(struct store *st, const struct todod_inbox_key *keys, size_t n,
		      todod_inbox_cb done, void *arg);
/* Record the keys as handled; found[i] when keys[i] was there before. */
void store_inbox_record(struct store *st, const struct todod_inbox_key *keys, size_t n,
			todod_inbox_cb done, void *arg);
/* Keep the event `raw` a consumer gave up on, and settle it in that
 * consumer's inbox, in one transaction. */
void store_dead_letter(struct store *st, const char *consumer, const char *topic,
		       const char *event_id, const char *raw, const char *reason,
		       int attempts, store_done_cb cb, void *arg);

#endif

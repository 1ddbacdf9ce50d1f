/* dapr_state.c - the inbox driver "dapr-state": the inbox in a Dapr state
 * store ([core] inbox = dapr-state, option statestore).
 *
 * An entry is the key "todod-inbox:<consumer>:<event id>" ('||' is
 * reserved by daprd for its app-id prefix), kept for inbox_ttl.
 *
 *   seen    one bulk get (POST /v1.0/state/<store>/bulk): a key with data
 *           was handled.
 *   record  first write wins.  daprd's save with concurrency first-write
 *           and no ETag inserts a key that is missing and fails for one
 *           that exists (state.postgresql v2: HTTP 500 "no item was
 *           updated", not a 409).  So the whole batch goes first as one
 *           transaction (the common case: every key is new, one call); if
 *           that fails, key by key: a save that works recorded the key, a
 *           save that fails for a key that is there (a bulk get says so)
 *           met an earlier record, anything else is the error.  Two
 *           replicas recording one key at once: one save wins, the other
 *           finds it.
 *
 * The calls are serialised per batch (the bus sends one batch per loop
 * turn), so a fallback never opens a connection per key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

#define KEY_PREFIX "todod-inbox:"

enum step { STEP_SEEN, STEP_TRANSACTION, STEP_SAVE, STEP_CHECK };

struct inbox_call {
	struct dapr *d;
	char **keys;
	size_t n;
	bool *found;
	enum step step;
	size_t at;                 /* STEP_SAVE/CHECK: the key being recorded */
	char failure[600];         /* STEP_CHECK: why its save failed */
	todod_inbox_cb done;
	void *arg;
};

static void call_free(void *arg)
{
	struct inbox_call *c = arg;
	for (size_t i = 0; i < c->n; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->found);
	free(c);
}

static void finish(struct inbox_call *c, const char *error)
{
	todod_inbox_cb done = c->done;
	void *arg = c->arg;
	size_t n = c->n;
	bool *found = c->found;
	c->found = NULL;
	call_free(c);
	done(error ? NULL : found, n, error, arg);
	free(found);
}

static void fail(struct inbox_call *c, const char *what, const char *text)
{
	char error[800];
	snprintf(error, sizeof error, "state store %s: %s: %s", c->d->conf->statestore, what, text);
	finish(c, error);
}

static json_object *entry_value(const struct dapr *d)
{
	json_object *value = json_object_new_object();
	json_object_object_add(value, "at_ms", json_object_new_int64(d->api->now_ms()));
	return value;
}

/* {"key":..., "value":..., "options":{"concurrency":"first-write"},
 *  "metadata":{"ttlInSeconds":...}}: the store deletes what expired. */
static json_object *first_write(const struct dapr *d, const char *key)
{
	json_object *item = json_object_new_object();
	json_object *options = json_object_new_object();
	json_object_object_add(options, "concurrency", json_object_new_string("first-write"));
	json_object_object_add(item, "key", json_object_new_string(key));
	json_object_object_add(item, "value", entry_value(d));
	json_object_object_add(item, "options", options);
	if (d->conf->inbox_ttl_ms > 0) {
		char ttl[32];
		json_object *metadata = json_object_new_object();
		snprintf(ttl, sizeof ttl, "%lld", (long long)((d->conf->inbox_ttl_ms + 999) / 1000));
		json_object_object_add(metadata, "ttlInSeconds", json_object_new_string(ttl));
		json_object_object_add(item, "metadata", metadata);
	}
	return item;
}

static void on_answer(const struct todod_transfer_result *res, void *arg);

/* POSTs `body` to /v1.0/state/<store><suffix>; the answer goes to the
 * step the call is at. */
static int post(struct inbox_call *c, const char *suffix, json_object *body,
		struct todod_err *err)
{
	char path[512] = "/v1.0/state/";
	if (!dapr_escape(path, sizeof path, c->d->conf->statestore) ||
	    !dapr_append(path, sizeof path, suffix)) {
		json_object_put(body);
		return todod_err_set(err, "statestore: the name is too long");
	}
	size_t len;
	const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	const struct dapr_request rq = { .method = "POST", .path = path,
					 .content_type = "application/json", .body = text,
					 .body_len = len };
	int rc = dapr_call(c->d, &rq, on_answer, c, call_free, err);
	json_object_put(body);
	return rc;
}

static int bulk_get(struct inbox_call *c, size_t first, size_t count, struct todod_err *err)
{
	json_object *keys = json_object_new_array();
	for (size_t i = first; i < first + count; i++)
		json_object_array_add(keys, json_object_new_string(c->keys[i]));
	json_object *body = json_object_new_object();
	json_object_object_add(body, "keys", keys);
	return post(c, "/bulk", body, err);
}

static int save_one(struct inbox_call *c, struct todod_err *err)
{
	json_object *body = json_object_new_array();
	json_object_array_add(body, first_write(c->d, c->keys[c->at]));
	return post(c, "", body, err);
}

static int transaction(struct inbox_call *c, struct todod_err *err)
{
	json_object *operations = json_object_new_array();
	for (size_t i = 0; i < c->n; i++) {
		json_object *op = json_object_new_object();
		json_object_object_add(op, "operation", json_object_new_string("upsert"));
		json_object_object_add(op, "request", first_write(c->d, c->keys[i]));
		json_object_array_add(operations, op);
	}
	json_object *body = json_object_new_object();
	json_object_object_add(body, "operations", operations);
	return post(c, "/transaction", body, err);
}

/* A bulk get's answer: [{"key":..., "data":..., "etag":...}, ...]; a
 * missing key has no data.  Marks found[first .. first+count). */
static int read_found(struct inbox_call *c, const struct todod_transfer_result *res,
		      size_t first, size_t count, char *error, size_t size)
{
	json_object *list = res->body ? json_tokener_parse(res->body) : NULL;
	if (!list || !json_object_is_type(list, json_type_array)) {
		snprintf(error, size, "the answer to the bulk get is not a JSON array");
		json_object_put(list);
		return -1;
	}
	int rc = 0;
	for (size_t r = 0; r < json_object_array_length(list) && rc == 0; r++) {
		json_object *item = json_object_array_get_idx(list, r), *v;
		const char *key = json_object_object_get_ex(item, "key", &v) ? json_object_get_string(v)
									     : NULL;
		if (json_object_object_get_ex(item, "error", &v) && *json_object_get_string(v)) {
			snprintf(error, size, "%s", json_object_get_string(v));
			rc = -1;
		}
		bool has_data = json_object_object_get_ex(item, "data", &v) && v;
		for (size_t i = first; key && i < first + count; i++)
			if (strcmp(c->keys[i], key) == 0)
				c->found[i] = has_data;
	}
	json_object_put(list);
	return rc;
}

static bool ok_status(const struct todod_transfer_result *res)
{
	return res->status >= 200 && res->status < 300;
}

/* The next key to save one by one, or the end. */
static void save_next(struct inbox_call *c)
{
	struct todod_err err = { "" };
	if (c->at == c->n) {
		finish(c, NULL);
		return;
	}
	c->step = STEP_SAVE;
	if (save_one(c, &err) != 0)
		fail(c, "save", err.text);
}

static void on_answer(const struct todod_transfer_result *res, void *arg)
{
	struct inbox_call *c = arg;
	struct todod_err err = { "" };
	char text[600];
	switch (c->step) {
	case STEP_SEEN:
		if (!ok_status(res)) {
			dapr_failure_text(res, text, sizeof text);
			fail(c, "bulk get", text);
		} else if (read_found(c, res, 0, c->n, text, sizeof text) != 0) {
			fail(c, "bulk get", text);
		} else {
			finish(c, NULL);
		}
		return;
	case STEP_TRANSACTION:
		if (ok_status(res)) {
			finish(c, NULL); /* every key was new: found stays false */
			return;
		}
		c->at = 0;
		save_next(c);
		return;
	case STEP_SAVE:
		if (ok_status(res)) {
			c->at++;
			save_next(c);
			return;
		}
		/* Failed: because the key is there, or for another reason? */
		dapr_failure_text(res, c->failure, sizeof c->failure);
		c->step = STEP_CHECK;
		if (bulk_get(c, c->at, 1, &err) != 0)
			fail(c, "bulk get", err.text);
		return;
	case STEP_CHECK:
		if (!ok_status(res) || read_found(c, res, c->at, 1, text, sizeof text) != 0 ||
		    !c->found[c->at]) {
			fail(c, "first-write save", c->failure);
			return;
		}
		c->at++;
		save_next(c);
		return;
	}
}

static struct inbox_call *call_new(struct dapr *d, const struct todod_inbox_key *keys, size_t n,
				   todod_inbox_cb done, void *arg)
{
	struct inbox_call *c = todod_xcalloc(1, sizeof *c);
	*c = (struct inbox_call){ .d = d, .n = n, .done = done, .arg = arg };
	c->keys = todod_xcalloc(n, sizeof *c->keys);
	c->found = todod_xcalloc(n, sizeof *c->found);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(KEY_PREFIX) + strlen(keys[i].consumer) + strlen(keys[i].event_id) + 2;
		c->keys[i] = todod_xmalloc(len);
		snprintf(c->keys[i], len, KEY_PREFIX "%s:%s", keys[i].consumer, keys[i].event_id);
	}
	return c;
}

static int inbox_seen(void *self, const struct todod_inbox_key *keys, size_t n,
		      todod_inbox_cb done, void *arg, struct todod_err *err)
{
	struct inbox_call *c = call_new(self, keys, n, done, arg);
	c->step = STEP_SEEN;
	if (bulk_get(c, 0, n, err) != 0) {
		call_free(c);
		return -1;
	}
	return 0;
}

static int inbox_record(void *self, const struct todod_inbox_key *keys, size_t n,
			todod_inbox_cb done, void *arg, struct todod_err *err)
{
	struct inbox_call *c = call_new(self, keys, n, done, arg);
	c->step = STEP_TRANSACTION;
	if (transaction(c, err) != 0) {
		call_free(c);
		return -1;
	}
	return 0;
}

int dapr_state_init(struct dapr *d, struct todod_err *err)
{
	d->inbox = (struct todod_inbox_driver){
		.struct_size = sizeof d->inbox,
		.name = "dapr-state",
		.seen = inbox_seen,
		.record = inbox_record,
		.self = d,
	};
	return d->api->service_provide(d->ctx, "inbox", d->inbox.name, &d->inbox, err);
}

/* store_events.c - the SQL of the event plumbing: outbox, relay lease,
 * inbox and dead letters (the tables of core/sql/001_events.sql).
 *
 * Every answer leaves here typed (rows as structs, counts as numbers,
 * data as json-c), so the relay and the bus never read a result's
 * columns. */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* ---- statements answered with an error or nothing ---- */

struct done_call {
	store_done_cb cb;
	void *arg;
	struct store *writes_events; /* the store to tell on success, or NULL */
};

static void done_answered(PGresult *res, const char *error, void *arg)
{
	struct done_call *call = arg;
	if (!error && call->writes_events)
		store_events_committed(call->writes_events);
	call->cb(error, call->arg);
	free(call);
}

static void query_done(struct store *st, bool writes_events, const char *sql, int nparams,
		       const char *const *params, store_done_cb cb, void *arg)
{
	struct done_call *call = todod_xcalloc(1, sizeof *call);
	*call = (struct done_call){ cb, arg, writes_events ? st : NULL };
	db_query(store_pool(st), sql, nparams, params, done_answered, call);
}

/* ---- the relay's claim ---- */

/* The columns of CLAIM_SQL, in order. */
enum claim_column {
	CLAIM_ID, CLAIM_EVENT_ID, CLAIM_TOPIC, CLAIM_TYPE, CLAIM_SUBJECT, CLAIM_KEY, CLAIM_TIME,
	CLAIM_CREATED_MS, CLAIM_DATA, CLAIM_TRACEPARENT,
};

/* Times leave the database already in the CloudEvents format. */
#define CLAIM_SQL                                                                            \
	"SELECT id, event_id, topic, type, subject, key,"                                    \
	" to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"      \
	" floor(extract(epoch FROM created_at) * 1000)::bigint,"                             \
	" data::text, traceparent"                                                           \
	" FROM todod_outbox_claim($1, $2::int, $3::int, $4::bigint[], $5::bigint[], $6::bigint[])"

/* "{1,2,3}": a bigint[] literal, so a statement takes any number of ids
 * (or times). */
static char *id_array(const int64_t *ids, size_t n)
{
	size_t cap = 3 + n * 21, len = 0;
	char *array = todod_xcalloc(1, cap);
	array[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(array + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
	array[len] = '}';
	return array;
}

static void claim_query(struct store *st, const struct outbox_claim *claim, db_cb cb, void *arg)
{
	char lease[24], lim[24];
	snprintf(lease, sizeof lease, "%d", claim->lease_ms);
	snprintf(lim, sizeof lim, "%d", claim->limit);
	char *sent = id_array(claim->sent, claim->n_sent);
	char *in_flight = id_array(claim->in_flight, claim->n_in_flight);
	char *sent_us = claim->sent_us ? id_array(claim->sent_us, claim->n_sent) : NULL;
	const char *params[] = { claim->owner, lease, lim, sent, in_flight, sent_us };
	db_query(store_pool(st), CLAIM_SQL, 6, params, cb, arg);
	free(sent);
	free(in_flight);
	free(sent_us);
}

/* Column `col` copied to *cursor; NULL when SQL NULL or, for an optional
 * attribute, empty (an encoding leaves both out alike). */
static const char *take_text(PGresult *res, int row, enum claim_column col, bool optional,
			     char **cursor)
{
	const char *value = PQgetvalue(res, row, col);
	if (PQgetisnull(res, row, col) || (optional && !*value))
		return NULL;
	size_t n = strlen(value) + 1;
	char *copy = memcpy(*cursor, value, n);
	*cursor += n;
	return copy;
}

static void row_load(PGresult *res, int r, struct outbox_row *row)
{
	static const enum claim_column texts[] = {
		CLAIM_EVENT_ID, CLAIM_TOPIC, CLAIM_TYPE, CLAIM_SUBJECT, CLAIM_KEY, CLAIM_TIME,
		CLAIM_TRACEPARENT,
	};
	size_t size = 0;
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
		size += (size_t)PQgetlength(res, r, texts[i]) + 1;
	char *cursor = row->strings = todod_xcalloc(1, size);
	row->id = strtoll(PQgetvalue(res, r, CLAIM_ID), NULL, 10);
	row->created_ms = strtoll(PQgetvalue(res, r, CLAIM_CREATED_MS), NULL, 10);
	row->ev = (struct todod_event){
		.id = take_text(res, r, CLAIM_EVENT_ID, false, &cursor),
		.topic = take_text(res, r, CLAIM_TOPIC, false, &cursor),
		.type = take_text(res, r, CLAIM_TYPE, false, &cursor),
		.subject = take_text(res, r, CLAIM_SUBJECT, true, &cursor),
		.key = take_text(res, r, CLAIM_KEY, false, &cursor),
		.time = take_text(res, r, CLAIM_TIME, false, &cursor),
		.traceparent = take_text(res, r, CLAIM_TRACEPARENT, true, &cursor),
		.data = json_tokener_parse(PQgetvalue(res, r, CLAIM_DATA)),
	};
}

struct rows_call {
	store_outbox_rows_cb cb;
	void *arg;
};

static void claim_answered(PGresult *res, const char *error, void *arg)
{
	struct rows_call *call = arg;
	size_t n = error ? 0 : (size_t)PQntuples(res);
	struct outbox_row *rows = n ? todod_xcalloc(n, sizeof *rows) : NULL;
	for (size_t i = 0; i < n; i++)
		row_load(res, (int)i, &rows[i]);
	call->cb(rows, n, error, call->arg);
	free(rows);
	free(call);
}

void store_outbox_row_clear(struct outbox_row *row)
{
	json_object_put(row->ev.data);
	free(row->strings);
	*row = (struct outbox_row){ 0 };
}

void store_outbox_claim(struct store *st, const struct outbox_claim *claim,
			store_outbox_rows_cb cb, void *arg)
{
	struct rows_call *call = todod_xcalloc(1, sizeof *call);
	*call = (struct rows_call){ cb, arg };
	claim_query(st, claim, claim_answered, call);
}

void store_outbox_renew(struct store *st, const char *owner, int lease_ms,
			store_done_cb cb, void *arg)
{
	struct done_call *call = todod_xcalloc(1, sizeof *call);
	*call = (struct done_call){ cb, arg, NULL };
	/* A claim of no rows only takes or renews the lease. */
	const struct outbox_claim lease_only = { .owner = owner, .lease_ms = lease_ms };
	claim_query(st, &lease_only, done_answered, call);
}

/* ---- the rest of the outbox ---- */

void store_outbox_release(struct store *st, const char *owner, store_done_cb cb, void *arg)
{
	const char *params[] = { owner };
	query_done(st, false,
		   "UPDATE outbox_lease SET owner = NULL, expires_at = '-infinity' WHERE owner = $1",
		   1, params, cb, arg);
}

void store_outbox_append(struct store *st, const char *topic, const char *type,
			 const char *subject, const char *key, const char *data_json,
			 store_done_cb cb, void *arg)
{
	const char *params[] = { topic, type, subject, key, data_json };
	query_done(st, true, "SELECT todod_emit($1, $2, $3, $4, $5::jsonb)", 5, params, cb, arg);
}

void store_outbox_cleanup(struct store *st, int64_t retention_ms, store_done_cb cb, void *arg)
{
	char ms[24];
	snprintf(ms, sizeof ms, "%" PRId64, retention_ms);
	const char *params[] = { ms };
	query_done(st, false,
		   "DELETE FROM outbox WHERE sent_at < clock_timestamp() - make_interval(secs => $1::bigint / 1000.0)",
		   1, params, cb, arg);
}

struct depth_call {
	store_outbox_depth_cb cb;
	void *arg;
};

static void depth_answered(PGresult *res, const char *error, void *arg)
{
	struct depth_call *call = arg;
	if (!error && PQntuples(res) != 1)
		error = "the depth query answered no row";
	struct outbox_depth depth = { 0 };
	if (!error) {
		depth.pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		depth.oldest_age_s = strtod(PQgetvalue(res, 0, 1), NULL);
	}
	call->cb(error ? NULL : &depth, error, call->arg);
	free(call);
}

void store_outbox_depth(struct store *st, store_outbox_depth_cb cb, void *arg)
{
	struct depth_call *call = todod_xcalloc(1, sizeof *call);
	*call = (struct depth_call){ cb, arg };
	db_query(store_pool(st),
		 "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)"
		 " FROM outbox WHERE sent_at IS NULL",
		 0, NULL, depth_answered, call);
}

/* ---- inbox ---- */

static const char *key_member(const struct todod_inbox_key *key, bool event_id)
{
	return event_id ? key->event_id : key->consumer;
}

/* {"a","b\"c"}: a text[] literal of one member of every key. */
static char *text_array(const struct todod_inbox_key *keys, size_t n, bool event_ids)
{
	size_t cap = 3;
	for (size_t i = 0; i < n; i++)
		cap += 2 * strlen(key_member(&keys[i], event_ids)) + 3;
	char *out = todod_xcalloc(1, cap), *o = out;
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *c = key_member(&keys[i], event_ids); *c; c++) {
			if (*c == '"' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

struct inbox_call {
	size_t n;
	todod_inbox_cb done;
	void *arg;
	bool record; /* a key not inserted was there already */
};

/* The statements answer rows of one 1-based position into the keys: the
 * ones found (seen) or newly inserted (record). */
static void inbox_answered(PGresult *res, const char *error, void *arg)
{
	struct inbox_call *call = arg;
	bool *found = error ? NULL : todod_xcalloc(call->n, sizeof *found);
	if (found) {
		for (size_t i = 0; i < call->n; i++)
			found[i] = call->record;
		for (int r = 0; r < PQntuples(res); r++) {
			size_t pos = strtoul(PQgetvalue(res, r, 0), NULL, 10);
			if (pos >= 1 && pos <= call->n)
				found[pos - 1] = !call->record;
		}
	}
	call->done(found, call->n, error, call->arg);
	free(found);
	free(call);
}

static void inbox_query(struct store *st, const char *sql, const struct todod_inbox_key *keys,
			size_t n, bool record, todod_inbox_cb done, void *arg)
{
	struct inbox_call *call = todod_xcalloc(1, sizeof *call);
	*call = (struct inbox_call){ .n = n, .done = done, .arg = arg, .record = record };
	char *consumers = text_array(keys, n, false), *ids = text_array(keys, n, true);
	const char *params[] = { consumers, ids };
	db_query(store_pool(st), sql, 2, params, inbox_answered, call);
	free(consumers);
	free(ids);
}

void store_inbox_seen(struct store *st, const struct todod_inbox_key *keys, size_t n,
		      todod_inbox_cb done, void *arg)
{
	inbox_query(st,
		    "SELECT k.pos FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
		    " AS k(consumer, event_id, pos)"
		    " WHERE EXISTS (SELECT 1 FROM inbox i"
		    " WHERE i.consumer = k.consumer AND i.event_id = k.event_id)",
		    keys, n, false, done, arg);
}

void store_inbox_record(struct store *st, const struct todod_inbox_key *keys, size_t n,
			todod_inbox_cb done, void *arg)
{
	/* The handler may have recorded some already, in the same transaction
	 * as its effect (a store call with a once-key).  A key twice in one
	 * batch counts as inserted by its first occurrence only. */
	inbox_query(st,
		    "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
		    " AS k(consumer, event_id, pos)),"
		    " ins AS (INSERT INTO inbox (consumer, event_id)"
		    " SELECT DISTINCT consumer, event_id FROM k ON CONFLICT DO NOTHING"
		    " RETURNING consumer, event_id)"
		    " SELECT min(k.pos) FROM k JOIN ins USING (consumer, event_id)"
		    " GROUP BY k.consumer, k.event_id",
		    keys, n, true, done, arg);
}

void store_dead_letter(struct store *st, const char *consumer, const char *topic,
		       const char *event_id, const char *raw, const char *reason,
		       int attempts, store_done_cb cb, void *arg)
{
	char n[16];
	snprintf(n, sizeof n, "%d", attempts);
	const char *params[] = { consumer, topic, event_id, raw, reason, n };
	/* Dead-lettering settles the event for this consumer, like handling
	 * it: both rows commit together. */
	query_done(st, false,
		   "WITH dl AS (INSERT INTO dead_letters (consumer, topic, event_id, event, reason, attempts)"
		   " VALUES ($1, $2, $3, $4, $5, $6::int) RETURNING consumer, event_id)"
		   " INSERT INTO inbox (consumer, event_id) SELECT consumer, event_id FROM dl"
		   " ON CONFLICT DO NOTHING",
		   6, params, cb, arg);
}

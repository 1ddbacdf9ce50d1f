/* store_events.c - the SQL of the event plumbing: outbox, relay lease,
 * inbox and dead letters (the tables of core/sql/001_events.sql). */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_outbox_claim(struct store *st, const char *owner, int lease_ms, int limit,
			db_cb cb, void *arg)
{
	char lease[24], lim[24];
	snprintf(lease, sizeof lease, "%d", lease_ms);
	snprintf(lim, sizeof lim, "%d", limit);
	const char *params[] = { owner, lease, lim };
	/* Times leave the database already in the CloudEvents format. */
	db_query(store_pool(st),
		 "SELECT id, event_id, topic, type, subject, key,"
		 " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		 " data::text, traceparent FROM todod_outbox_claim($1, $2::int, $3::int)",
		 3, params, cb, arg);
}

void store_outbox_sent(struct store *st, const char *ids_array, db_cb cb, void *arg)
{
	const char *params[] = { ids_array };
	db_query(store_pool(st),
		 "UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY($1::bigint[])",
		 1, params, cb, arg);
}

void store_outbox_release(struct store *st, const char *owner, db_cb cb, void *arg)
{
	const char *params[] = { owner };
	db_query(store_pool(st),
		 "UPDATE outbox_lease SET owner = NULL, expires_at = '-infinity' WHERE owner = $1",
		 1, params, cb, arg);
}

void store_outbox_append(struct store *st, const char *topic, const char *type,
			 const char *subject, const char *key, const char *data_json,
			 db_cb cb, void *arg)
{
	const char *params[] = { topic, type, subject, key, data_json };
	db_query(store_pool(st), "SELECT todod_emit($1, $2, $3, $4, $5::jsonb)", 5, params, cb, arg);
}

void store_outbox_cleanup(struct store *st, int64_t retention_ms, db_cb cb, void *arg)
{
	char ms[24];
	snprintf(ms, sizeof ms, "%lld", (long long)retention_ms);
	const char *params[] = { ms };
	db_query(store_pool(st),
		 "DELETE FROM outbox WHERE sent_at < clock_timestamp() - make_interval(secs => $1::bigint / 1000.0)",
		 1, params, cb, arg);
}

void store_outbox_depth(struct store *st, db_cb cb, void *arg)
{
	db_query(store_pool(st),
		 "SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)"
		 " FROM outbox WHERE sent_at IS NULL",
		 0, NULL, cb, arg);
}

void store_inbox_seen(struct store *st, const char *consumers, const char *event_ids,
		      db_cb cb, void *arg)
{
	const char *params[] = { consumers, event_ids };
	db_query(store_pool(st),
		 "SELECT k.pos FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
		 " AS k(consumer, event_id, pos)"
		 " WHERE EXISTS (SELECT 1 FROM inbox i"
		 " WHERE i.consumer = k.consumer AND i.event_id = k.event_id)",
		 2, params, cb, arg);
}

void store_inbox_record(struct store *st, const char *consumers, const char *event_ids,
			db_cb cb, void *arg)
{
	const char *params[] = { consumers, event_ids };
	/* The handler may have recorded some already, in the same transaction
	 * as its effect (a store call with a once-key).  A key twice in one
	 * batch counts as inserted by its first occurrence only. */
	db_query(store_pool(st),
		 "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
		 " AS k(consumer, event_id, pos)),"
		 " ins AS (INSERT INTO inbox (consumer, event_id)"
		 " SELECT DISTINCT consumer, event_id FROM k ON CONFLICT DO NOTHING"
		 " RETURNING consumer, event_id)"
		 " SELECT min(k.pos) FROM k JOIN ins USING (consumer, event_id)"
		 " GROUP BY k.consumer, k.event_id",
		 2, params, cb, arg);
}

char *store_text_array(const char *const *items, size_t n)
{
	size_t cap = 3;
	for (size_t i = 0; i < n; i++)
		cap += 2 * strlen(items[i]) + 3;
	char *out = todod_xmalloc(cap), *o = out;
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *c = items[i]; *c; c++) {
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

void store_dead_letter(struct store *st, const char *consumer, const char *topic,
		       const char *event_id, const char *raw, const char *reason,
		       int attempts, db_cb cb, void *arg)
{
	char n[16];
	snprintf(n, sizeof n, "%d", attempts);
	const char *params[] = { consumer, topic, event_id, raw, reason, n };
	/* Dead-lettering settles the event for this consumer, like handling
	 * it: both rows commit together. */
	db_query(store_pool(st),
		 "WITH dl AS (INSERT INTO dead_letters (consumer, topic, event_id, event, reason, attempts)"
		 " VALUES ($1, $2, $3, $4, $5, $6::int) RETURNING consumer, event_id)"
		 " INSERT INTO inbox (consumer, event_id) SELECT consumer, event_id FROM dl"
		 " ON CONFLICT DO NOTHING",
		 6, params, cb, arg);
}

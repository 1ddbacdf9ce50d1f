/* inbox_db.c - the database inbox, the default inbox driver.
 *
 * One statement per call: the bus already coalesced what a loop turn
 * asked for.  Keys go in as two parallel text[] arrays; answers come back
 * as the 1-based positions of the keys that were found. */
#include "inbox_db.h"

#include <stdlib.h>
#include <string.h>

#include "store.h"

struct inbox_db_call {
	size_t n;
	todod_inbox_cb done;
	void *arg;
	/* record: a key not inserted was there already */
	bool inverse;
};

static void answered(PGresult *res, const char *error, void *arg)
{
	struct inbox_db_call *call = arg;
	bool *found = error ? NULL : todod_xcalloc(call->n, sizeof *found);
	if (found) {
		for (size_t i = 0; i < call->n; i++)
			found[i] = call->inverse;
		for (int r = 0; r < PQntuples(res); r++) {
			size_t pos = strtoul(PQgetvalue(res, r, 0), NULL, 10);
			if (pos >= 1 && pos <= call->n)
				found[pos - 1] = !call->inverse;
		}
	}
	call->done(found, call->n, error, call->arg);
	free(found);
	free(call);
}

/* Both text[] literals of `keys`: consumers and event ids. */
static void arrays_of(const struct todod_inbox_key *keys, size_t n, char **consumers,
		      char **ids)
{
	const char **items = todod_xcalloc(n, sizeof *items);
	for (size_t i = 0; i < n; i++)
		items[i] = keys[i].consumer;
	*consumers = store_text_array(items, n);
	for (size_t i = 0; i < n; i++)
		items[i] = keys[i].event_id;
	*ids = store_text_array(items, n);
	free(items);
}

/* Never fails on the spot: the database's failures come through `done`. */
static int call_db(void *self, const struct todod_inbox_key *keys, size_t n, bool record,
		   todod_inbox_cb done, void *arg)
{
	struct inbox_db_call *call = todod_xmalloc(sizeof *call);
	char *consumers, *ids;
	arrays_of(keys, n, &consumers, &ids);
	*call = (struct inbox_db_call){ .n = n, .done = done, .arg = arg, .inverse = record };
	if (record)
		store_inbox_record(self, consumers, ids, answered, call);
	else
		store_inbox_seen(self, consumers, ids, answered, call);
	free(consumers);
	free(ids);
	return 0;
}

static int db_seen(void *self, const struct todod_inbox_key *keys, size_t n,
		   todod_inbox_cb done, void *arg, struct todod_err *err)
{
	(void)err;
	return call_db(self, keys, n, false, done, arg);
}

static int db_record(void *self, const struct todod_inbox_key *keys, size_t n,
		     todod_inbox_cb done, void *arg, struct todod_err *err)
{
	(void)err;
	return call_db(self, keys, n, true, done, arg);
}

struct todod_inbox_driver inbox_db_driver(struct store *store)
{
	return (struct todod_inbox_driver){
		.struct_size = sizeof(struct todod_inbox_driver),
		.name = INBOX_DB_NAME,
		.seen = db_seen,
		.record = db_record,
		.self = store,
	};
}

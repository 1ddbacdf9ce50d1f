/* inbox_db.c - the database inbox, the default inbox driver: the store's
 * inbox statements, one per call (the bus already coalesced what a loop
 * turn asked for). */
#include "inbox_db.h"

#include "store.h"

static int db_seen(void *self, const struct todod_inbox_key *keys, size_t n,
		   todod_inbox_cb done, void *arg, struct todod_err *err)
{
	store_inbox_seen(self, keys, n, done, arg);
	return 0;
}

static int db_record(void *self, const struct todod_inbox_key *keys, size_t n,
		     todod_inbox_cb done, void *arg, struct todod_err *err)
{
	store_inbox_record(self, keys, n, done, arg);
	return 0;
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

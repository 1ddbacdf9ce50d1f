/* inbox_db.h - the database inbox as an inbox driver (the default). */
#ifndef TODOD_INBOX_DB_H
#define TODOD_INBOX_DB_H

#include "todod-plugin.h"

struct store;

/* What [core] inbox names for this driver. */
#define INBOX_DB_NAME "database"

struct todod_inbox_driver inbox_db_driver(struct store *store);

#endif

/* migrate.h - numbered SQL migrations, embedded at build time from
 * core/sql/NNN_name.sql and applied in order, each in its own
 * transaction, under an advisory lock so replicas starting together do
 * not race. */
#ifndef TODOD_MIGRATE_H
#define TODOD_MIGRATE_H

#include <libpq-fe.h>

#include "todod-plugin.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[]; /* terminated by version 0 */

/* Blocking: for start-up and `todod migrate` only.  Returns the number
 * applied (0 when up to date), -1 with err.  A database newer than this
 * binary is an error. */
int migrate_apply(PGconn *conn, struct todod_err *err);

#endif

/* db.h - a small asynchronous PostgreSQL pool driven by the loop.
 *
 * Every connection is non-blocking libpq (PQconnectStart/PQconnectPoll,
 * pipeline mode, PQconsumeInput) watched by libevent.  Each connection has
 * several statements in flight, each its own transaction, prepared on the
 * connection the first time it sends them; the rest wait in a FIFO queue.
 * A lost connection is re-established with capped exponential backoff;
 * while no connection is up, queued and new statements fail at once with
 * a clear error instead of piling up. */
#ifndef TODOD_DB_H
#define TODOD_DB_H

#include <stdbool.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "todod-plugin.h"

struct db_pool;

/* `res` is borrowed for the duration of the callback (NULL when the
 * statement never reached the server).  `error` is NULL on success
 * (PGRES_TUPLES_OK / PGRES_COMMAND_OK); otherwise a one-line reason, and
 * `res`, when not NULL, carries the server's diagnostics (SQLSTATE,
 * message, detail, hint) for mapping. */
typedef void (*db_cb)(PGresult *res, const char *error, void *arg);

/* What [core] db_pool_size = 0 stands for: twice the processors online,
 * at least 4, at most 64.  A pipelined connection keeps its server
 * process busy on its own, so about one per processor uses a local
 * server fully; the second one each covers statements that wait (locks,
 * disk reads) and a slow statement holding up those behind it. */
int db_pool_size_for_machine(void);

/* The connection string comes with db_pool_start: it may be a secret
 * that a plugin resolves after the pool exists. */
struct db_pool *db_pool_new(struct event_base *base, int size, struct todod_err *err);
/* How long a statement may wait for a connection, and how long the
 * server may then take to answer it, before it fails as "database
 * unavailable" (default 5 s each).  A server that does not answer in time
 * is taken for gone: every connection is dropped and re-opened. */
void db_pool_set_timeout(struct db_pool *pool, int64_t ms);
/* Open connections to `conninfo` in the background; -1 with `err` for a
 * connection string libpq cannot parse.  Statements queued before wait
 * for it. */
int db_pool_start(struct db_pool *pool, const char *conninfo, struct todod_err *err);
void db_pool_free(struct db_pool *pool);

/* Queue one statement with text parameters (copied).  `cb` always fires,
 * later, never from inside db_query.  `sql` is one statement whose text
 * does not vary from call to call (values go in `params`): it is prepared
 * under a name on every connection that sends it. */
void db_query(struct db_pool *pool, const char *sql, int nparams,
	      const char *const *params, db_cb cb, void *arg);

/* At least one connection is up. */
bool db_pool_ready(struct db_pool *pool, struct todod_err *why);
/* Connections up, for /metrics. */
int db_pool_live(const struct db_pool *pool);
/* Statements queued or running, for drain. */
int db_pool_busy(const struct db_pool *pool);

/* For start-up and the CLI only (blocks): connect with a timeout. */
PGconn *db_connect_blocking(const char *conninfo, struct todod_err *err);

#endif

/* store_admin.h - the administrative SQL behind the CLI (`todod user`,
 * `todod dlq`) and first-run set-up.  These block: they run outside the
 * event loop, in a command or before the daemon's loop starts. */
#ifndef TODOD_STORE_ADMIN_H
#define TODOD_STORE_ADMIN_H

#include <stdio.h>

#include <libpq-fe.h>

#include "todod-plugin.h"

/* A new API token: "tdd_" + 43 base64url characters (256 random bits). */
int admin_new_token(char *buf, size_t size, struct todod_err *err);

/* Create a user; the token's SHA-256 is stored, never the token. */
int admin_user_add(PGconn *c, const char *name, const char *email, const char *tz,
		   const char *token, struct todod_err *err);
int admin_user_list(PGconn *c, FILE *out, struct todod_err *err);
int admin_user_set_token(PGconn *c, const char *name, const char *token, struct todod_err *err);
int admin_user_del(PGconn *c, const char *name, struct todod_err *err);
/* The id of the user called `name`. */
int admin_user_id(PGconn *c, const char *name, int64_t *id, struct todod_err *err);
/* First run: when the database has no user yet, create 'admin' (time
 * zone $TZ, else UTC) and print the MCP URL on `listen` and the new API
 * token to `out`, so a fresh install is usable at once.  A failed count
 * creates nobody and is not an error. */
int admin_first_user(PGconn *c, const char *listen, FILE *out, struct todod_err *err);

int admin_dlq_list(PGconn *c, FILE *out, struct todod_err *err);
/* Put dead-lettered event `id` (or all unreplayed ones when id <= 0) back
 * in the outbox for its consumer; prints how many. */
int admin_dlq_replay(PGconn *c, long long id, FILE *out, struct todod_err *err);

#endif

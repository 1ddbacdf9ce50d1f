/* mcp_session.h - MCP sessions of the Streamable HTTP transport.
 *
 * A session is created by a successful initialize and names the user it
 * acts for and the bearer token that proved it.  Ids are 128 random bits
 * from getrandom(); lookups are O(1) through a hash table; a session that
 * sees no request for the idle timeout is gone.  The table also keeps the
 * sessions in least-recently-used order, overall and per user, so expiry
 * and the caps on their number (all users', one user's) cost O(1) per
 * session. */
#ifndef TODOD_MCP_SESSION_H
#define TODOD_MCP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <todod-plugin.h>

#include "mcp_server.h"

#define MCP_SESSION_ID_LEN 32 /* hex digits */

struct session_owner;

struct mcp_session {
	char id[MCP_SESSION_ID_LEN + 1];
	struct mcp_peer peer;
	char *token; /* the bearer token bound at initialize ("" without auth); wiped on end */
	size_t token_len;
	int64_t last_used_ms; /* monotonic */
	struct mcp_session *chain;        /* next in the hash bucket */
	TAILQ_ENTRY(mcp_session) recency; /* all sessions, oldest use first */
	struct session_owner *owner;      /* the user's own sessions */
	TAILQ_ENTRY(mcp_session) user_recency; /* recency among them */
};

struct mcp_sessions;

struct mcp_sessions *mcp_sessions_new(const struct todod_api *api, struct todod_ctx *ctx,
				      int64_t idle_timeout_ms, size_t per_user_cap,
				      struct todod_err *err);
void mcp_sessions_free(struct mcp_sessions *set);
/* Re-arms the expiry sweep for a new timeout; -1 (old timeout kept) on failure. */
int mcp_sessions_set_timeout(struct mcp_sessions *set, int64_t idle_timeout_ms,
			     struct todod_err *err);

/* How many sessions one user may have; past it, a new one ends that user's
 * least recently used session (never another user's).  A lower cap takes
 * effect as the user opens sessions. */
void mcp_sessions_set_user_cap(struct mcp_sessions *set, size_t per_user_cap);
/* Ends every session: their users must initialize again. */
void mcp_sessions_end_all(struct mcp_sessions *set);

/* A new session for `user_id` bound to `token`; NULL (and `err`) when the
 * kernel has no randomness to give without blocking or memory is short. */
struct mcp_session *mcp_session_create(struct mcp_sessions *set, int64_t user_id,
				       const char *token, size_t token_len, struct todod_err *err);
/* The live session called `id`, marked as used now; NULL when unknown or expired. */
struct mcp_session *mcp_session_find(struct mcp_sessions *set, const char *id);
void mcp_session_end(struct mcp_sessions *set, struct mcp_session *s);
size_t mcp_sessions_count(const struct mcp_sessions *set);

/* Constant-time comparison: the time depends on the secret's length only. */
bool mcp_secret_equal(const char *secret, size_t secret_len, const char *given, size_t given_len);

#endif

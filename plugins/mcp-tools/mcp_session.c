/* mcp_session.c - MCP sessions: random ids, a hash table, idle expiry. */
#include "mcp_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Every authenticated client may create sessions; past this many the least
 * recently used one makes room, so memory stays bounded whatever clients
 * that never send DELETE do.  Each user has a smaller cap of their own
 * (max_sessions_per_user), so that no one user can fill the table. */
#define MAX_SESSIONS 65536
#define MIN_BUCKETS 64
/* Users with sessions, by id.  A fixed table: even with every one of
 * MAX_SESSIONS held by another user a chain averages 64 entries, walked
 * only at initialize and when a user's last session ends. */
#define OWNER_BUCKETS 1024

/* One user's sessions, so that one user cannot crowd out the others. */
struct session_owner {
	int64_t user_id;
	size_t count;
	TAILQ_HEAD(, mcp_session) sessions; /* by user_recency */
	struct session_owner *chain;
};

struct mcp_sessions {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	struct mcp_session **buckets;
	size_t n_buckets; /* a power of two */
	size_t count;
	TAILQ_HEAD(, mcp_session) sessions; /* by recency */
	struct session_owner *owners[OWNER_BUCKETS];
	size_t per_user_cap;
	int64_t timeout_ms;
	struct todod_timer *sweep;
	/* getrandom() is asked for a batch at a time, not once per session. */
	unsigned char entropy[256];
	size_t entropy_left;
};

bool mcp_secret_equal(const char *secret, size_t secret_len, const char *given, size_t given_len)
{
	volatile unsigned char diff = secret_len != given_len;
	for (size_t i = 0; i < secret_len; i++)
		diff |= (unsigned char)secret[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
	return diff == 0;
}

/* FNV-1a: the ids we store are random, so any spreading hash does. */
static size_t id_hash(const char *id)
{
	uint64_t h = 14695981039346656037ull;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return (size_t)h;
}

static struct mcp_session **bucket_of(struct mcp_sessions *set, const char *id)
{
	return &set->buckets[id_hash(id) & (set->n_buckets - 1)];
}

static void grow(struct mcp_sessions *set)
{
	size_t n = set->n_buckets * 2;
	struct mcp_session **buckets = todod_xcalloc(n, sizeof *buckets);
	for (size_t i = 0; i < set->n_buckets; i++) {
		for (struct mcp_session *s = set->buckets[i], *next; s; s = next) {
			next = s->chain;
			struct mcp_session **b = &buckets[id_hash(s->id) & (n - 1)];
			s->chain = *b;
			*b = s;
		}
	}
	free(set->buckets);
	set->buckets = buckets;
	set->n_buckets = n;
}

static struct session_owner **owner_bucket(struct mcp_sessions *set, int64_t user_id)
{
	return &set->owners[(uint64_t)user_id % OWNER_BUCKETS];
}

/* The user's entry, made when missing. */
static struct session_owner *owner_of(struct mcp_sessions *set, int64_t user_id)
{
	struct session_owner **b = owner_bucket(set, user_id);
	for (struct session_owner *o = *b; o; o = o->chain)
		if (o->user_id == user_id)
			return o;
	struct session_owner *o = todod_xcalloc(1, sizeof *o);
	o->user_id = user_id;
	TAILQ_INIT(&o->sessions);
	o->chain = *b;
	*b = o;
	return o;
}

/* A user without sessions is not remembered. */
static void owner_forget_if_empty(struct mcp_sessions *set, struct session_owner *o)
{
	if (o->count > 0)
		return;
	for (struct session_owner **p = owner_bucket(set, o->user_id); *p; p = &(*p)->chain) {
		if (*p == o) {
			*p = o->chain;
			break;
		}
	}
	free(o);
}

/* The session was just used: it becomes the newest of both lists. */
static void mark_used(struct mcp_sessions *set, struct mcp_session *s, int64_t now)
{
	s->last_used_ms = now;
	TAILQ_REMOVE(&set->sessions, s, recency);
	TAILQ_INSERT_TAIL(&set->sessions, s, recency);
	TAILQ_REMOVE(&s->owner->sessions, s, user_recency);
	TAILQ_INSERT_TAIL(&s->owner->sessions, s, user_recency);
}

/* Ends a session but keeps its user's entry, even when it is now empty. */
static void session_discard(struct mcp_sessions *set, struct mcp_session *s)
{
	for (struct mcp_session **p = bucket_of(set, s->id); *p; p = &(*p)->chain) {
		if (*p == s) {
			*p = s->chain;
			break;
		}
	}
	TAILQ_REMOVE(&set->sessions, s, recency);
	TAILQ_REMOVE(&s->owner->sessions, s, user_recency);
	s->owner->count--;
	set->count--;
	explicit_bzero(s->token, s->token_len);
	free(s->token);
	explicit_bzero(s->id, sizeof s->id);
	free(s);
}

void mcp_session_end(struct mcp_sessions *set, struct mcp_session *s)
{
	struct session_owner *o = s->owner;
	session_discard(set, s);
	owner_forget_if_empty(set, o);
}

static bool expired(const struct mcp_sessions *set, const struct mcp_session *s, int64_t now)
{
	return now - s->last_used_ms >= set->timeout_ms;
}

/* The oldest sessions come first, so the sweep stops at the first live one. */
static void sweep(void *arg)
{
	struct mcp_sessions *set = arg;
	int64_t now = set->api->mono_us() / 1000;
	struct mcp_session *oldest;
	while ((oldest = TAILQ_FIRST(&set->sessions)) && expired(set, oldest, now))
		mcp_session_end(set, oldest);
}

static int random_bytes(struct mcp_sessions *set, unsigned char *out, size_t n,
			struct todod_err *err)
{
	if (set->entropy_left < n) {
		/* GRND_NONBLOCK: only before the kernel's pool is first seeded
		 * would this block, and the loop must not. */
		ssize_t got = getrandom(set->entropy, sizeof set->entropy, GRND_NONBLOCK);
		if (got != (ssize_t)sizeof set->entropy)
			return todod_err_set(err, "no randomness for a session id: %s",
					     got < 0 ? strerror(errno) : "short read");
		set->entropy_left = sizeof set->entropy;
	}
	set->entropy_left -= n;
	memcpy(out, set->entropy + set->entropy_left, n);
	explicit_bzero(set->entropy + set->entropy_left, n);
	return 0;
}

struct mcp_session *mcp_session_create(struct mcp_sessions *set, int64_t user_id,
				       const char *token, size_t token_len, struct todod_err *err)
{
	unsigned char raw[MCP_SESSION_ID_LEN / 2];
	if (random_bytes(set, raw, sizeof raw, err) != 0)
		return NULL;
	struct session_owner *owner = owner_of(set, user_id);
	struct mcp_session *s = todod_xcalloc(1, sizeof *s);
	char *copy = todod_xmalloc(token_len + 1);
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof raw; i++) {
		s->id[2 * i] = hex[raw[i] >> 4];
		s->id[2 * i + 1] = hex[raw[i] & 15];
	}
	explicit_bzero(raw, sizeof raw);
	memcpy(copy, token, token_len);
	copy[token_len] = '\0';
	s->token = copy;
	s->token_len = token_len;
	s->peer.user_id = user_id;
	s->last_used_ms = set->api->mono_us() / 1000;

	/* A user past the cap makes room from their own sessions, so that
	 * only the table-wide cap, far beyond any one user's, can touch
	 * another user's session. */
	while (owner->count >= set->per_user_cap)
		session_discard(set, TAILQ_FIRST(&owner->sessions));
	if (set->count >= MAX_SESSIONS) {
		struct mcp_session *oldest = TAILQ_FIRST(&set->sessions);
		struct session_owner *victim = oldest->owner;
		session_discard(set, oldest);
		if (victim != owner)
			owner_forget_if_empty(set, victim);
	}
	if (set->count >= set->n_buckets)
		grow(set);
	struct mcp_session **b = bucket_of(set, s->id);
	s->chain = *b;
	*b = s;
	TAILQ_INSERT_TAIL(&set->sessions, s, recency);
	s->owner = owner;
	TAILQ_INSERT_TAIL(&owner->sessions, s, user_recency);
	owner->count++;
	set->count++;
	return s;
}

struct mcp_session *mcp_session_find(struct mcp_sessions *set, const char *id)
{
	if (strlen(id) != MCP_SESSION_ID_LEN)
		return NULL;
	for (struct mcp_session *s = *bucket_of(set, id); s; s = s->chain) {
		if (strcmp(s->id, id) != 0)
			continue;
		int64_t now = set->api->mono_us() / 1000;
		/* Exact expiry even between two sweeps. */
		if (expired(set, s, now)) {
			mcp_session_end(set, s);
			return NULL;
		}
		mark_used(set, s, now);
		return s;
	}
	return NULL;
}

void mcp_sessions_set_user_cap(struct mcp_sessions *set, size_t per_user_cap)
{
	set->per_user_cap = per_user_cap > 0 ? per_user_cap : 1;
}

void mcp_sessions_end_all(struct mcp_sessions *set)
{
	while (!TAILQ_EMPTY(&set->sessions))
		mcp_session_end(set, TAILQ_FIRST(&set->sessions));
}

size_t mcp_sessions_count(const struct mcp_sessions *set)
{
	return set->count;
}

/* Often enough that an expired session's memory does not linger long past
 * its timeout, rarely enough to cost nothing. */
static int64_t sweep_interval(int64_t timeout_ms)
{
	int64_t ms = timeout_ms / 8;
	return ms < 1000 ? 1000 : ms > 60000 ? 60000 : ms;
}

int mcp_sessions_set_timeout(struct mcp_sessions *set, int64_t idle_timeout_ms,
			     struct todod_err *err)
{
	/* Arming replaces the sweep timer already there. */
	if (set->api->timer_add(set->ctx, &set->sweep, sweep_interval(idle_timeout_ms),
				TODOD_TIMER_REPEAT, sweep, set) != 0)
		return todod_err_set(err, "cannot create the session expiry timer");
	set->timeout_ms = idle_timeout_ms;
	return 0;
}

struct mcp_sessions *mcp_sessions_new(const struct todod_api *api, struct todod_ctx *ctx,
				      int64_t idle_timeout_ms, size_t per_user_cap,
				      struct todod_err *err)
{
	struct mcp_sessions *set = todod_xcalloc(1, sizeof *set);
	set->buckets = todod_xcalloc(MIN_BUCKETS, sizeof *set->buckets);
	set->api = api;
	TAILQ_INIT(&set->sessions);
	set->ctx = ctx;
	set->n_buckets = MIN_BUCKETS;
	mcp_sessions_set_user_cap(set, per_user_cap);
	if (mcp_sessions_set_timeout(set, idle_timeout_ms, err) != 0) {
		free(set->buckets);
		free(set);
		return NULL;
	}
	return set;
}

/* The timer belongs to the plugin's context; the core removes it. */
void mcp_sessions_free(struct mcp_sessions *set)
{
	if (!set)
		return;
	mcp_sessions_end_all(set);
	explicit_bzero(set->entropy, sizeof set->entropy);
	free(set->buckets);
	free(set);
}

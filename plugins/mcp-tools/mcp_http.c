/* mcp_http.c - MCP's Streamable HTTP transport on one endpoint (/mcp).
 *
 * POST carries one JSON-RPC message and is answered with application/json
 * (a response) or 202 (a notification or response from the client); GET is
 * 405 because the server has nothing to say unprompted; DELETE ends a
 * session.  Every request is checked in this order: Origin, peer (auth =
 * none), credentials, Accept, body, session, protocol version.
 *
 * Authentication: the bearer token is resolved to a user at initialize
 * (through a 30-second cache, so a client that opens many sessions costs
 * one store call per 30 s) and bound to the session; later requests only
 * compare their token with the session's, in constant time.  So a revoked
 * token keeps working for the sessions it already opened until they end
 * or idle out, and for new sessions for at most the cache's 30 seconds.
 *
 * A bad token must cost little, or a flood of them starves everyone's tool
 * calls of database connections: a token not shaped like the ones `todod
 * user add` makes is refused without a lookup, and at most
 * TOKEN_LOOKUPS_AT_ONCE lookups run at a time, the next few waiting in
 * line and the rest refused with 503.  Bad tokens are not remembered: a
 * flood of random ones would only churn such a memory, and they never
 * enter the cache of good ones.
 *
 * A reload that changes how clients are authenticated (auth, or
 * default_user under auth = none) ends every session: each was opened
 * under the old rule and acts for the user that rule gave it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mcp_server.h"
#include "mcp_session.h"

#define TOKEN_CACHE_SLOTS 64
#define TOKEN_CACHE_TTL_MS 30000
/* Half the default pool of 4: tool calls keep the other connections. */
#define TOKEN_LOOKUPS_AT_ONCE 2
/* Each lookup takes well under a millisecond, so the last in line still
 * waits only a few milliseconds. */
#define TOKEN_LOOKUP_LINE 64
/* "tdd_" and 43 characters of base64url: 256 random bits (store_admin.c). */
#define TOKEN_PREFIX "tdd_"
#define TOKEN_LEN 47
#define BEARER_CHALLENGE "Bearer realm=\"todod\""

struct cached_token {
	char *token; /* NULL: free slot; wiped when dropped */
	size_t len;
	int64_t user_id;
	int64_t expires_ms;
};

/* One POST, GET or DELETE until it is answered. */
struct exchange {
	struct mcp_http *h;
	struct todod_http_req *req;
	struct mcp_session *announce; /* initialize: the session whose id the reply carries */
	json_object *msg;             /* an initialize waiting for its user */
	char *token;                  /* its bearer token (wiped) */
	size_t token_len;
	struct exchange *next_waiter; /* waiting for the default user or a lookup slot */
};

enum default_user_state { USER_UNKNOWN, USER_RESOLVING, USER_RESOLVED };

struct mcp_http {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	struct mcp_server *srv;
	const struct mcp_conf *conf;
	struct mcp_sessions *sessions;
	struct cached_token cache[TOKEN_CACHE_SLOTS];
	unsigned lookups; /* user lookups in flight */
	/* auth = token: initializes waiting for a lookup slot, oldest first */
	struct exchange *line_head, *line_tail;
	unsigned line_length;
	/* auth = none */
	enum default_user_state user_state;
	bool user_stale; /* the options changed while a lookup ran */
	int64_t default_user_id;
	struct exchange *waiters;
};

/* ---- replies ---------------------------------------------------------------------- */

static void exchange_free(struct exchange *x)
{
	json_object_put(x->msg);
	if (x->token) {
		explicit_bzero(x->token, x->token_len);
		free(x->token);
	}
	free(x);
}

/* The mcp_reply_fn of every HTTP exchange: answers and forgets it. */
static void reply_http(int status, const char *json, size_t len, void *arg)
{
	struct exchange *x = arg;
	const struct todod_api *api = x->h->api;
	if (x->announce && x->announce->peer.version)
		api->http_add_header(x->req, "Mcp-Session-Id", x->announce->id);
	if (json)
		api->http_reply(x->req, status, "application/json", json, len);
	else
		api->http_reply(x->req, status, NULL, NULL, 0);
	exchange_free(x);
}

static void refuse(struct exchange *x, int status, int code, const char *message)
{
	if (status == 401)
		x->h->api->http_add_header(x->req, "WWW-Authenticate", BEARER_CHALLENGE);
	mcp_reply_error(x->h->srv, status, code, message, reply_http, x);
}

/* ---- request checks --------------------------------------------------------------- */

/* "scheme://host:port" or "scheme://[v6]:port" names a port. */
static bool origin_has_port(const char *origin)
{
	const char *host = strstr(origin, "://");
	host = host ? host + 3 : origin;
	if (host[0] == '[')
		host = strchr(host, ']') ? strchr(host, ']') : host;
	return strchr(host, ':') != NULL;
}

/* An allow-list entry matches an Origin spelled the same (ignoring case)
 * and, when the entry names no port, the same origin with any port:
 * "http://localhost" admits "http://localhost:5173".  "*" admits all. */
static bool origin_matches(const char *entry, const char *origin)
{
	if (strcmp(entry, "*") == 0)
		return true;
	size_t n = strlen(entry);
	if (strncasecmp(entry, origin, n) != 0)
		return false;
	const char *port = origin + n;
	if (!*port)
		return true;
	if (origin_has_port(entry) || *port != ':' || !port[1])
		return false;
	return strspn(port + 1, "0123456789") == strlen(port + 1);
}

static bool origin_allowed(const struct mcp_conf *conf, const char *origin)
{
	if (!origin)
		return true; /* not a browser: DNS rebinding needs one */
	for (size_t i = 0; i < conf->allowed_origins.n; i++)
		if (origin_matches(conf->allowed_origins.items[i], origin))
			return true;
	return false;
}

/* `peer` is "ip:port" or "[v6]:port" (see http_peer). */
static bool peer_is_loopback(const char *peer)
{
	return strncmp(peer, "127.", 4) == 0 || strncmp(peer, "[::1]:", 6) == 0 ||
	       strncasecmp(peer, "[::ffff:127.", 12) == 0;
}

/* Tolerant: the spec wants both types listed, but clients and proxies
 * that send one of them or a wildcard exist, and JSON serves them all. */
static bool accept_ok(const char *accept)
{
	return !accept || strcasestr(accept, "application/json") ||
	       strcasestr(accept, "text/event-stream") || strstr(accept, "*/*") ||
	       strcasestr(accept, "application/*") || strcasestr(accept, "text/*");
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_token(const char *header, size_t *len)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	const char *t = header + 7;
	t += strspn(t, " ");
	size_t n = strcspn(t, " \t");
	if (n == 0 || t[n + strspn(t + n, " \t")] != '\0')
		return NULL;
	*len = n;
	return t;
}

static bool token_well_formed(const char *token, size_t len)
{
	static const char base64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const size_t prefix = strlen(TOKEN_PREFIX);
	return len == TOKEN_LEN && strncmp(token, TOKEN_PREFIX, prefix) == 0 &&
	       strspn(token + prefix, base64url) == len - prefix;
}

/* Origin, peer and credentials: what every method of the endpoint needs.
 * Returns false after refusing the exchange. */
static bool admit(struct exchange *x, const char **token, size_t *token_len)
{
	struct mcp_http *h = x->h;
	const struct todod_api *api = h->api;
	if (!origin_allowed(h->conf, api->http_header(x->req, "Origin"))) {
		refuse(x, 403, MCP_TRANSPORT_ERROR,
		       "Forbidden: this Origin is not in allowed_origins");
		return false;
	}
	*token = "";
	*token_len = 0;
	if (h->conf->auth == MCP_AUTH_NONE) {
		if (!peer_is_loopback(api->http_peer(x->req))) {
			refuse(x, 403, MCP_TRANSPORT_ERROR,
			       "Forbidden: with auth = none only loopback clients are served; "
			       "set auth = token to serve others");
			return false;
		}
		return true;
	}
	*token = bearer_token(api->http_header(x->req, "Authorization"), token_len);
	if (!*token) {
		refuse(x, 401, MCP_TRANSPORT_ERROR,
		       "Unauthorized: send Authorization: Bearer <token> (see `todod user add`)");
		return false;
	}
	/* Before the body is even parsed: the cheapest refusal there is. */
	if (!token_well_formed(*token, *token_len)) {
		refuse(x, 401, MCP_TRANSPORT_ERROR, "Unauthorized: the bearer token is not valid");
		return false;
	}
	return true;
}

/* The session a non-initialize request names, or NULL after refusing it. */
static struct mcp_session *session_of(struct exchange *x, const char *token, size_t token_len)
{
	struct mcp_http *h = x->h;
	const char *id = h->api->http_header(x->req, "Mcp-Session-Id");
	if (!id) {
		refuse(x, 400, MCP_TRANSPORT_ERROR,
		       "Bad Request: Mcp-Session-Id header is required; send initialize first");
		return NULL;
	}
	struct mcp_session *s = mcp_session_find(h->sessions, id);
	if (!s) {
		refuse(x, 404, MCP_SESSION_NOT_FOUND,
		       "Session not found: it ended or expired; send initialize again");
		return NULL;
	}
	if (h->conf->auth == MCP_AUTH_TOKEN &&
	    !mcp_secret_equal(s->token, s->token_len, token, token_len)) {
		refuse(x, 401, MCP_TRANSPORT_ERROR,
		       "Unauthorized: the token is not the one this session was opened with");
		return NULL;
	}
	return s;
}

/* ---- initialize: user, then session ----------------------------------------------- */

static void open_session(struct exchange *x, int64_t user_id)
{
	struct mcp_http *h = x->h;
	struct todod_err err = { "" };
	struct mcp_session *s = mcp_session_create(h->sessions, user_id, x->token ? x->token : "",
						   x->token_len, &err);
	if (!s) {
		h->api->log(h->ctx, TODOD_LOG_ERROR, "%s", err.text);
		refuse(x, 503, MCP_INTERNAL_ERROR, "Service unavailable: cannot open a session now");
		return;
	}
	json_object *msg = x->msg;
	x->msg = NULL;
	x->announce = s;
	mcp_handle(h->srv, &s->peer, msg, reply_http, x);
	/* initialize answers at once; without a version it failed. */
	if (!s->peer.version)
		mcp_session_end(h->sessions, s);
	json_object_put(msg);
}

static struct cached_token *cache_find(struct mcp_http *h, const char *token, size_t len)
{
	int64_t now = h->api->now_ms();
	struct cached_token *hit = NULL;
	/* Every slot is compared so the time says nothing about which matched. */
	for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++) {
		struct cached_token *c = &h->cache[i];
		if (c->token && mcp_secret_equal(c->token, c->len, token, len) &&
		    c->expires_ms > now)
			hit = c;
	}
	return hit;
}

static void cache_drop(struct cached_token *c)
{
	if (c->token) {
		explicit_bzero(c->token, c->len);
		free(c->token);
	}
	c->token = NULL;
}

static void cache_put(struct mcp_http *h, const char *token, size_t len, int64_t user_id)
{
	struct cached_token *slot = &h->cache[0];
	for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++) {
		struct cached_token *c = &h->cache[i];
		if (!c->token) {
			slot = c;
			break;
		}
		if (c->expires_ms < slot->expires_ms)
			slot = c;
	}
	cache_drop(slot);
	slot->token = todod_xmalloc(len);
	memcpy(slot->token, token, len);
	slot->len = len;
	slot->user_id = user_id;
	slot->expires_ms = h->api->now_ms() + TOKEN_CACHE_TTL_MS;
}

static int64_t user_id_of(json_object *user)
{
	json_object *id = NULL;
	if (!json_object_object_get_ex(user, "id", &id) || !json_object_is_type(id, json_type_int))
		return 0;
	return json_object_get_int64(id);
}

static void check_token(struct exchange *x);

/* A lookup slot is free: the oldest initialize in line takes it. */
static void serve_line(struct mcp_http *h)
{
	while (h->line_head && h->lookups < TOKEN_LOOKUPS_AT_ONCE) {
		struct exchange *x = h->line_head;
		h->line_head = x->next_waiter;
		if (!h->line_head)
			h->line_tail = NULL;
		h->line_length--;
		x->next_waiter = NULL;
		if (h->conf->auth == MCP_AUTH_TOKEN)
			check_token(x);
		else
			refuse(x, 503, MCP_INTERNAL_ERROR,
			       "Service unavailable: the options changed; send initialize again");
	}
}

static void token_resolved(json_object *res, const struct todod_store_error *err, void *arg)
{
	struct exchange *x = arg;
	struct mcp_http *h = x->h;
	h->lookups--;
	int64_t user_id = err ? 0 : user_id_of(res);
	if (h->conf->auth != MCP_AUTH_TOKEN) {
		/* A reload changed auth meanwhile: the token no longer decides. */
		refuse(x, 503, MCP_INTERNAL_ERROR,
		       "Service unavailable: the options changed; send initialize again");
	} else if (user_id > 0) {
		cache_put(h, x->token, x->token_len, user_id);
		open_session(x, user_id);
	} else if (!err || strcmp(err->code, "USER_NOT_FOUND") == 0 ||
		   strcmp(err->code, "FIELD_REQUIRED") == 0) {
		refuse(x, 401, MCP_TRANSPORT_ERROR, "Unauthorized: the bearer token is not valid");
	} else {
		h->api->log(h->ctx, TODOD_LOG_WARN, "token lookup failed: %s: %s", err->code,
			    err->text ? err->text : "");
		refuse(x, 503, MCP_INTERNAL_ERROR,
		       "Service unavailable: cannot check the token now; try again");
	}
	serve_line(h);
}

static void start_lookup(struct exchange *x)
{
	struct mcp_http *h = x->h;
	json_object *args = json_object_new_object();
	json_object_object_add(args, "token", json_object_new_string_len(x->token, (int)x->token_len));
	struct todod_err err = { "" };
	int rc = h->api->store_call(h->ctx, "user.by_token", 0, args, NULL, NULL, token_resolved, x,
				    &err);
	/* json-c does not wipe; the token lived in this object briefly. */
	json_object_put(args);
	if (rc != 0) {
		h->api->log(h->ctx, TODOD_LOG_ERROR, "token lookup: %s", err.text);
		refuse(x, 503, MCP_INTERNAL_ERROR, "Service unavailable: cannot check the token now");
		return;
	}
	h->lookups++;
}

/* The cache again, here too: the lookup of an earlier initialize in
 * line may have just put this very token there. */
static void check_token(struct exchange *x)
{
	struct cached_token *hit = cache_find(x->h, x->token, x->token_len);
	if (hit)
		open_session(x, hit->user_id);
	else
		start_lookup(x);
}

static void wait_in_line(struct exchange *x)
{
	struct mcp_http *h = x->h;
	if (h->line_length >= TOKEN_LOOKUP_LINE) {
		h->api->http_add_header(x->req, "Retry-After", "1");
		refuse(x, 503, MCP_INTERNAL_ERROR,
		       "Service unavailable: too many tokens are being checked; try again in a "
		       "second");
		return;
	}
	if (h->line_tail)
		h->line_tail->next_waiter = x;
	else
		h->line_head = x;
	h->line_tail = x;
	h->line_length++;
}

static void lookup_token(struct exchange *x)
{
	struct mcp_http *h = x->h;
	if (h->lookups < TOKEN_LOOKUPS_AT_ONCE || cache_find(h, x->token, x->token_len))
		check_token(x);
	else
		wait_in_line(x);
}

static void default_user_resolved(json_object *res, const struct todod_store_error *err,
				  void *arg);

/* Starts the lookup of default_user; -1 when the store cannot even try. */
static int resolve_default_user(struct mcp_http *h, struct todod_err *err)
{
	json_object *args = json_object_new_object();
	json_object_object_add(args, "name", json_object_new_string(h->conf->default_user));
	struct todod_err why = { "" };
	int rc = h->api->store_call(h->ctx, "user.by_name", 0, args, NULL, NULL,
				    default_user_resolved, h, &why);
	json_object_put(args);
	if (rc != 0)
		return todod_err_set(err, "auth = none: cannot look up default_user '%s': %s",
				     h->conf->default_user, why.text);
	h->lookups++;
	h->user_state = USER_RESOLVING;
	h->user_stale = false;
	return 0;
}

/* Answers every initialize that waited for the default user. */
static void release_waiters(struct mcp_http *h, const char *failure)
{
	struct exchange *x = h->waiters;
	h->waiters = NULL;
	while (x) {
		struct exchange *next = x->next_waiter;
		if (failure)
			refuse(x, 503, MCP_INTERNAL_ERROR, failure);
		else
			open_session(x, h->default_user_id);
		x = next;
	}
}

static void default_user_resolved(json_object *res, const struct todod_store_error *err,
				  void *arg)
{
	struct mcp_http *h = arg;
	h->lookups--;
	h->user_state = USER_UNKNOWN;
	struct todod_err why = { "" };
	if (h->user_stale) {
		if (h->conf->auth != MCP_AUTH_NONE) {
			release_waiters(h, "Service unavailable: the options changed; send "
					   "initialize again");
		} else if (resolve_default_user(h, &why) != 0) {
			h->api->log(h->ctx, TODOD_LOG_ERROR, "%s", why.text);
			release_waiters(h, "Service unavailable: default_user cannot be looked up");
		}
		return;
	}
	int64_t user_id = err ? 0 : user_id_of(res);
	if (user_id > 0) {
		h->user_state = USER_RESOLVED;
		h->default_user_id = user_id;
		release_waiters(h, NULL);
		return;
	}
	h->api->log(h->ctx, TODOD_LOG_ERROR, "auth = none: default_user '%s': %s",
		    h->conf->default_user, err ? err->text : "no user id in the answer");
	release_waiters(h, err && strcmp(err->code, "USER_NOT_FOUND") == 0
				   ? "Service unavailable: default_user does not exist"
				   : "Service unavailable: default_user cannot be looked up now");
}

static void begin_initialize(struct exchange *x, json_object *msg, const char *token,
			     size_t token_len)
{
	struct mcp_http *h = x->h;
	x->msg = msg;
	x->token = todod_xmalloc(token_len + 1);
	memcpy(x->token, token, token_len);
	x->token[token_len] = '\0';
	x->token_len = token_len;
	if (h->conf->auth == MCP_AUTH_TOKEN) {
		lookup_token(x);
		return;
	}
	if (h->user_state == USER_RESOLVED) {
		open_session(x, h->default_user_id);
		return;
	}
	x->next_waiter = h->waiters;
	h->waiters = x;
	struct todod_err err = { "" };
	if (h->user_state == USER_UNKNOWN && resolve_default_user(h, &err) != 0) {
		h->api->log(h->ctx, TODOD_LOG_ERROR, "%s", err.text);
		release_waiters(h, "Service unavailable: default_user cannot be looked up; "
				   "see the server log");
	}
}

/* ---- the endpoint ----------------------------------------------------------------- */

static void on_post(struct exchange *x, const char *token, size_t token_len)
{
	struct mcp_http *h = x->h;
	const struct todod_api *api = h->api;
	if (!accept_ok(api->http_header(x->req, "Accept"))) {
		refuse(x, 406, MCP_TRANSPORT_ERROR,
		       "Not Acceptable: accept application/json or text/event-stream");
		return;
	}
	size_t len = 0;
	const char *body = api->http_body(x->req, &len);
	json_object *msg = mcp_parse(h->srv, body ? body : "", body ? len : 0, reply_http, x);
	if (!msg)
		return;
	const char *method = mcp_request_method(msg);
	/* A stale session id next to an initialize is ignored: a client that
	 * lost its session must be able to start over. */
	if (method && strcmp(method, "initialize") == 0) {
		begin_initialize(x, msg, token, token_len);
		return;
	}
	struct mcp_session *s = session_of(x, token, token_len);
	if (s) {
		const char *version = api->http_header(x->req, "MCP-Protocol-Version");
		if (version && !mcp_version_find(version))
			refuse(x, 400, MCP_TRANSPORT_ERROR,
			       "Bad Request: unsupported MCP-Protocol-Version");
		else
			mcp_handle(h->srv, &s->peer, msg, reply_http, x);
	}
	json_object_put(msg);
}

static void on_endpoint(struct todod_http_req *req, void *arg)
{
	struct mcp_http *h = arg;
	struct exchange *x = todod_xcalloc(1, sizeof *x);
	x->h = h;
	x->req = req;
	const char *token;
	size_t token_len;
	switch (h->api->http_method(req)) {
	case TODOD_HTTP_POST:
		if (admit(x, &token, &token_len))
			on_post(x, token, token_len);
		break;
	case TODOD_HTTP_DELETE:
		if (admit(x, &token, &token_len)) {
			struct mcp_session *s = session_of(x, token, token_len);
			if (s) {
				mcp_session_end(h->sessions, s);
				reply_http(200, NULL, 0, x);
			}
		}
		break;
	default:
		h->api->http_add_header(req, "Allow", "POST, DELETE");
		refuse(x, 405, MCP_TRANSPORT_ERROR,
		       "Method Not Allowed: this server offers no GET event stream");
		break;
	}
}

/* No OAuth here: a clean 404 makes OAuth-probing clients give up at once
 * instead of misreading an HTML page or a 401. */
static void on_oauth_probe(struct todod_http_req *req, void *arg)
{
	struct mcp_http *h = arg;
	h->api->http_reply_error(req, 404, "NOT_FOUND",
				 "todod does not use OAuth: send Authorization: Bearer <token>");
}

struct mcp_http *mcp_http_new(const struct todod_api *api, struct todod_ctx *ctx,
			      struct mcp_server *srv, const struct mcp_conf *conf,
			      struct todod_err *err)
{
	struct mcp_http *h = todod_xmalloc(sizeof *h);
	*h = (struct mcp_http){ .api = api, .ctx = ctx, .srv = srv, .conf = conf };
	h->sessions = mcp_sessions_new(api, ctx, conf->session_timeout_ms,
				       (size_t)conf->max_sessions_per_user, err);
	if (!h->sessions ||
	    api->http_route(ctx, TODOD_HTTP_GET | TODOD_HTTP_POST | TODOD_HTTP_DELETE, conf->path,
			    on_endpoint, h, err) != 0 ||
	    api->http_route(ctx, TODOD_HTTP_GET, "/.well-known/oauth-protected-resource*",
			    on_oauth_probe, h, err) != 0 ||
	    api->http_route(ctx, TODOD_HTTP_GET, "/.well-known/oauth-authorization-server*",
			    on_oauth_probe, h, err) != 0) {
		mcp_http_free(h);
		return NULL;
	}
	return h;
}

int mcp_http_start(struct mcp_http *h, struct todod_err *err)
{
	if (h->conf->auth != MCP_AUTH_NONE)
		return 0;
	return resolve_default_user(h, err);
}

static bool same_text(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

int mcp_http_reconfigure(struct mcp_http *h, const struct mcp_conf *conf, struct todod_err *err)
{
	if (conf->session_timeout_ms != h->conf->session_timeout_ms &&
	    mcp_sessions_set_timeout(h->sessions, conf->session_timeout_ms, err) != 0)
		return -1;
	mcp_sessions_set_user_cap(h->sessions, (size_t)conf->max_sessions_per_user);
	bool auth_changed = conf->auth != h->conf->auth;
	bool user_changed = auth_changed || !same_text(conf->default_user, h->conf->default_user);
	h->conf = conf;
	if (auth_changed || (user_changed && conf->auth == MCP_AUTH_NONE)) {
		size_t ended = mcp_sessions_count(h->sessions);
		mcp_sessions_end_all(h->sessions);
		h->api->log(h->ctx, TODOD_LOG_INFO,
			    "reload: authentication changed; %zu MCP sessions ended (their clients "
			    "initialize again)", ended);
	}
	if (user_changed) {
		/* A lookup still running answers for the old name: redo it. */
		if (h->user_state == USER_RESOLVING)
			h->user_stale = true;
		else
			h->user_state = USER_UNKNOWN;
	}
	return 0;
}

bool mcp_http_busy(const struct mcp_http *h)
{
	return h->lookups > 0 || h->line_head;
}

void mcp_http_free(struct mcp_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++)
		cache_drop(&h->cache[i]);
	struct exchange *lists[] = { h->waiters, h->line_head };
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		while (lists[i]) {
			struct exchange *x = lists[i];
			lists[i] = x->next_waiter;
			exchange_free(x);
		}
	}
	mcp_sessions_free(h->sessions);
	free(h);
}

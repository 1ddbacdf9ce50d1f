/* mcp_server.h - MCP's JSON-RPC methods, independent of the transport.
 *
 * A transport (Streamable HTTP, stdio) parses each incoming line or body
 * with mcp_parse(), then hands the message to mcp_handle() together with
 * the peer it came from.  Every handled message is answered exactly once
 * through the transport's mcp_reply_fn, now or later (tools/call waits for
 * the store): with the response text, or with NULL when the message was a
 * notification or a response and gets no answer. */
#ifndef TODOD_MCP_SERVER_H
#define TODOD_MCP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <todod-plugin.h>

/* JSON-RPC and MCP error codes. */
#define MCP_PARSE_ERROR -32700
#define MCP_INVALID_REQUEST -32600
#define MCP_METHOD_NOT_FOUND -32601
#define MCP_INVALID_PARAMS -32602
#define MCP_INTERNAL_ERROR -32603
/* Implementation-defined (-32000..-32019): transport-level refusals. */
#define MCP_TRANSPORT_ERROR -32000
#define MCP_SESSION_NOT_FOUND -32001

/* The oldest protocol revision, assumed when a client does not say. */
#define MCP_VERSION_FALLBACK "2025-03-26"

/* What the protocol remembers about one client: an HTTP session or a
 * stdio connection. */
struct mcp_peer {
	int64_t user_id;
	const char *version; /* negotiated (static storage); NULL before initialize */
	int log_level;       /* index into the RFC 5424 names, debug = 0 */
	bool initialized;    /* notifications/initialized received */
};

/* `status` is the HTTP status the message deserves: 200 for a response,
 * 202 with json == NULL for no response, 400 when the message itself was
 * unusable.  `json` is valid for the duration of the call. */
typedef void (*mcp_reply_fn)(int status, const char *json, size_t len, void *arg);

struct mcp_server;

/* Parses and checks every tool's schemas once; fails with a message naming
 * the tool whose schema is not a JSON object. */
struct mcp_server *mcp_server_new(const struct todod_api *api, struct todod_ctx *ctx,
				  const char *server_version, struct todod_err *err);
void mcp_server_free(struct mcp_server *srv);

/* Parses one message strictly (mcp_json_read).  Returns it (the caller
 * puts it), or NULL after answering through `reply` with status 400 and
 * -32700 (not JSON: a syntax error, invalid UTF-8, NaN or Infinity) or
 * -32600 (valid JSON but no message: a batch, a bare value). */
json_object *mcp_parse(struct mcp_server *srv, const char *text, size_t len, mcp_reply_fn reply,
		       void *arg);

/* The message's method when it is a request (it has an id), else NULL. */
const char *mcp_request_method(json_object *msg);

/* Handles one parsed message for `peer`; `msg` is borrowed.  `peer` is only
 * read during the call: a tool call that finishes later needs nothing from
 * it, so a session may end while its calls run. */
void mcp_handle(struct mcp_server *srv, struct mcp_peer *peer, json_object *msg,
		mcp_reply_fn reply, void *arg);

/* A JSON-RPC error without an id, for transport-level refusals. */
void mcp_reply_error(struct mcp_server *srv, int status, int code, const char *message,
		     mcp_reply_fn reply, void *arg);

/* The supported revision spelled `text`, in static storage, or NULL. */
const char *mcp_version_find(const char *text);

/* Tool calls still running. */
unsigned mcp_inflight(const struct mcp_server *srv);

/* ---- the transports (mcp_http.c, mcp_stdio.c) and their options ---- */

enum mcp_auth { MCP_AUTH_TOKEN = 0, MCP_AUTH_NONE };

struct mcp_conf {
	int auth; /* enum mcp_auth */
	char *default_user;
	struct todod_list allowed_origins;
	int64_t session_timeout_ms;
	int64_t max_sessions_per_user;
	char *path;
};

struct mcp_http;

/* Registers the endpoint and the OAuth discovery routes. */
struct mcp_http *mcp_http_new(const struct todod_api *api, struct todod_ctx *ctx,
			      struct mcp_server *srv, const struct mcp_conf *conf,
			      struct todod_err *err);
/* With auth = none, looks the default user up ahead of the first client. */
int mcp_http_start(struct mcp_http *h, struct todod_err *err);
int mcp_http_reconfigure(struct mcp_http *h, const struct mcp_conf *conf, struct todod_err *err);
/* True while a user lookup is running. */
bool mcp_http_busy(const struct mcp_http *h);
void mcp_http_free(struct mcp_http *h);

struct mcp_stdio;

/* Provides service "stdio" (struct todod_stdio_service). */
struct mcp_stdio *mcp_stdio_new(const struct todod_api *api, struct todod_ctx *ctx,
				struct mcp_server *srv, struct todod_err *err);
/* True while replies wait to be written. */
bool mcp_stdio_busy(const struct mcp_stdio *st);
void mcp_stdio_free(struct mcp_stdio *st);

#endif

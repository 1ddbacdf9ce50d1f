/* http.h - the one inbound listener (evhttp): routes owned by plugin
 * contexts, limits, JSON errors, request metrics. */
#ifndef TODOD_HTTP_H
#define TODOD_HTTP_H

#include <event2/event.h>

#include "todod-plugin.h"

struct http_server;

struct http_limits {
	size_t max_header_size;  /* default 8 KiB */
	size_t max_body_size;    /* default 1 MiB */
	int request_timeout_s;   /* silence allowed; default 30 */
	int max_connections;     /* 0: derived from RLIMIT_NOFILE */
	int64_t header_timeout_ms; /* default 10 s, from a request's first byte */
	int64_t body_timeout_ms;   /* default 30 s, from the end of its headers */
};

/* `listen` is "host:port" or "[v6]:port"; binds immediately so a busy
 * port is a start-up error naming the address.  NULL: no listener, but
 * routes can still be registered (a process that serves stdio only). */
struct http_server *http_server_new(struct event_base *base, const char *listen,
				    const struct http_limits *limits, struct todod_err *err);
/* Stop accepting new connections (drain). */
void http_server_stop_accepting(struct http_server *srv);
void http_server_free(struct http_server *srv);
/* For a reload: new limits apply to new requests. */
void http_server_set_limits(struct http_server *srv, const struct http_limits *limits);
/* The port actually bound (useful with port 0 in tests). */
int http_server_port(const struct http_server *srv);

/* `owner` is the registering context (NULL for the core); routes are
 * removed per owner.  Exact path, or prefix when it ends in '*'.  A second
 * route for the same path is an error. */
int http_route_add(struct http_server *srv, void *owner, unsigned methods,
		   const char *path, todod_http_handler handler, void *arg,
		   struct todod_err *err);
void http_routes_remove_owner(struct http_server *srv, void *owner);

/* Request accessors and replies: the implementations behind todod_api. */
enum todod_http_method http_req_method(struct todod_http_req *req);
const char *http_req_path(struct todod_http_req *req);
const char *http_req_query(struct todod_http_req *req);
const char *http_req_header(struct todod_http_req *req, const char *name);
const void *http_req_body(struct todod_http_req *req, size_t *len);
const char *http_req_peer(struct todod_http_req *req);
void http_req_add_header(struct todod_http_req *req, const char *name, const char *value);
void http_reply(struct todod_http_req *req, int status, const char *content_type,
		const void *body, size_t len);
void http_reply_error(struct todod_http_req *req, int status, const char *code,
		      const char *message);

#endif

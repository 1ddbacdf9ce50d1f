/* http_conn.h - the listener and the connections of one HTTP server:
 * how many may be open, how long a client has to send its request, and
 * what happens when the process runs out of descriptors. */
#ifndef TODOD_HTTP_CONN_H
#define TODOD_HTTP_CONN_H

#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

#include "todod-plugin.h"

struct http_conns;
struct http_conn;

struct http_conn_limits {
	int max_connections;       /* 0: three quarters of RLIMIT_NOFILE */
	int64_t header_timeout_ms; /* first byte of a request to the end of its headers */
	int64_t body_timeout_ms;   /* end of the headers to the end of the body */
};

/* Tracks every connection `http` accepts from now on.  Also routes
 * libevent's own log lines (process-wide) through todod's logger. */
struct http_conns *http_conns_new(struct event_base *base, struct evhttp *http);
void http_conns_set_limits(struct http_conns *set, const struct http_conn_limits *limits);
int http_conns_max(const struct http_conns *set);
/* Serves `fd` (listening, non-blocking): the socket is owned from now on. */
int http_conns_listen(struct http_conns *set, int fd, struct todod_err *err);
void http_conns_stop_accepting(struct http_conns *set);
/* After evhttp_free(): frees what the connections' close callbacks did not. */
void http_conns_free(struct http_conns *set);

/* The connection a complete request arrived on (NULL if unknown): its
 * deadline stops, since the handler has its own, and a close orphans
 * `req` (http_req_orphan) rather than freeing it under the handler. */
struct http_conn *http_conn_request_taken(struct http_conns *set, struct evhttp_request *evreq,
					  struct todod_http_req *req);
/* The handler answered: the next request's deadline starts at its first
 * byte, or now if it is already waiting. */
void http_conn_request_answered(struct http_conn *conn);

/* In http.c: the connection of `req` is being freed under its handler. */
void http_req_orphan(struct todod_http_req *req);

#endif

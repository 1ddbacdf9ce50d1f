/* http_conn.c - every connection the HTTP server accepts, from accept to
 * close: the count behind max_connections, the request deadlines, and the
 * listener's behaviour when the process runs out of descriptors.
 *
 * libevent 2.1 has no hook on a connection before its first request, so
 * a connection is met twice.  evhttp_set_bevcb() has us create its
 * bufferevent: it is counted there, and an event activated there runs
 * once evhttp has wrapped that bufferevent in its evhttp_connection (which
 * evhttp makes the bufferevent's callback argument, in every release).
 * From then on the connection's close callback says when the descriptor
 * goes, so the count is exact; a connection past max_connections is
 * closed at that point, before it is read.
 *
 * libevent's timeout (request_timeout) counts silence only: a client that
 * sends a byte every few seconds never meets it.  So a timer starts at a
 * request's first byte and closes the connection if the header block is
 * not complete within header_timeout, or the body within body_timeout of
 * the end of the headers.  The bytes are watched as they arrive (a
 * callback on the connection's input buffer runs before evhttp parses
 * them).  The timer stops when the request reaches its handler, which
 * has deadlines of its own, and restarts with the next request.
 *
 * Out of descriptors (EMFILE, ENFILE), the listening socket stays readable
 * while its backlog holds connections, so accepting again at once would
 * spin.  The listener rests for ACCEPT_PAUSE_MS instead (as nginx does),
 * and the pauses are logged once per LOG_INTERVAL_S at most. */
#include "http_conn.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define ACCEPT_PAUSE_MS 250
#define LOG_INTERVAL_S 10
#define CONN_BUCKETS 1024
#define MIN_AUTO_CONNECTIONS 16

#define OPEN_METRIC "todod_http_connections"
#define CLOSED_METRIC "todod_http_connections_closed_total"
#define CLOSED_HELP "HTTP connections todod closed on its own, by reason"
#define PAUSES_METRIC "todod_http_accept_pauses_total"

enum phase {
	PHASE_IDLE,    /* no request begun: only request_timeout applies */
	PHASE_HEADERS, /* header_timeout runs */
	PHASE_BODY,    /* body_timeout runs */
	PHASE_HANDLER, /* a handler holds the request */
};

struct http_conn {
	struct http_conn *next;          /* in its hash bucket */
	struct http_conns *set;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until adopted */
	struct evbuffer_cb_entry *watch; /* on the input buffer */
	struct event *timer;             /* adoption, then the deadline */
	struct todod_http_req *req;      /* in a handler's hands */
	enum phase phase;
	unsigned line_bytes;             /* of the header line being received */
	bool over_limit;                 /* past max_connections when accepted */
};

/* Refusals of one kind: the first is logged, then one line per interval. */
struct refusals {
	struct metric *counter;
	int64_t logged_at;
	unsigned long unlogged;
};

struct http_conns {
	struct http_conns *next_set;     /* every set, for on_accept_error */
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *resume;            /* ends an accept pause */
	struct http_conn *buckets[CONN_BUCKETS];
	int open;
	int max_connections;
	struct timeval header_timeout, body_timeout;
	struct refusals full, accept_failed, header_late, body_late;
};

static struct http_conns *all_sets;

/* ---- libevent's own messages ------------------------------------------------------ */

static void on_libevent_log(int severity, const char *msg)
{
	enum todod_log_level level = severity >= EVENT_LOG_ERR    ? TODOD_LOG_ERROR
				     : severity == EVENT_LOG_WARN ? TODOD_LOG_WARN
				     : severity == EVENT_LOG_MSG  ? TODOD_LOG_INFO
								  : TODOD_LOG_DEBUG;
	log_msg(level, "libevent", "%s", msg);
}

/* ---- rate-limited refusal lines ----------------------------------------------------- */

/* Counts one refusal; true when a line is due, with the refusals it
 * stands for in *count. */
static bool refusal_due(struct refusals *r, unsigned long *count)
{
	int64_t now_s = clock_mono_ms() / 1000;
	metric_add(r->counter, 1);
	r->unlogged++;
	if (r->logged_at && now_s - r->logged_at < LOG_INTERVAL_S)
		return false;
	r->logged_at = now_s ? now_s : 1;
	*count = r->unlogged;
	r->unlogged = 0;
	return true;
}

/* ---- the connection table -------------------------------------------------------------- */

static struct http_conn **bucket_of(struct http_conns *set, const struct bufferevent *bev)
{
	return &set->buckets[((uintptr_t)bev >> 4) % CONN_BUCKETS];
}

static struct http_conn *conn_find(struct http_conns *set, const struct bufferevent *bev)
{
	for (struct http_conn *c = *bucket_of(set, bev); c; c = c->next)
		if (c->bev == bev)
			return c;
	return NULL;
}

static void conn_forget(struct http_conn *conn)
{
	struct http_conn **pp = bucket_of(conn->set, conn->bev);
	while (*pp != conn)
		pp = &(*pp)->next;
	*pp = conn->next;
	conn->set->open--;
	event_free(conn->timer);
	free(conn);
}

/* ---- deadlines ------------------------------------------------------------------------ */

static void arm(struct http_conn *conn, enum phase phase, const struct timeval *timeout)
{
	conn->phase = phase;
	evtimer_add(conn->timer, timeout);
}

/* Looks for the empty line that ends the header block in `len` bytes of
 * `buf` from `offset`; starts the body's deadline there. */
static void scan_headers(struct http_conn *conn, struct evbuffer *buf, size_t offset, size_t len)
{
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(buf, &pos, offset, EVBUFFER_PTR_SET) < 0)
		return;
	char chunk[256];
	while (len) {
		ev_ssize_t n = evbuffer_copyout_from(buf, &pos, chunk,
						     len < sizeof chunk ? len : sizeof chunk);
		if (n <= 0)
			return;
		for (ev_ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n' && conn->line_bytes == 0) {
				arm(conn, PHASE_BODY, &conn->set->body_timeout);
				return;
			}
			if (chunk[i] == '\n')
				conn->line_bytes = 0;
			else if (chunk[i] != '\r')
				conn->line_bytes++;
		}
		len -= (size_t)n;
		evbuffer_ptr_set(buf, &pos, (size_t)n, EVBUFFER_PTR_ADD);
	}
}

static void request_begins(struct http_conn *conn)
{
	conn->line_bytes = 1; /* the request line is under way */
	arm(conn, PHASE_HEADERS, &conn->set->header_timeout);
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn *conn = arg;
	if (!info->n_added || !conn->evcon)
		return;
	if (conn->phase == PHASE_IDLE)
		request_begins(conn);
	if (conn->phase == PHASE_HEADERS)
		scan_headers(conn, buf, evbuffer_get_length(buf) - info->n_added, info->n_added);
}

static long ms_of(const struct timeval *tv)
{
	return (long)tv->tv_sec * 1000 + (long)tv->tv_usec / 1000;
}

/* A client's slowness, so info, and one line per interval in a flood. */
static void deadline_passed(struct http_conn *conn)
{
	struct http_conns *set = conn->set;
	unsigned long n;
	if (refusal_due(conn->phase == PHASE_HEADERS ? &set->header_late : &set->body_late, &n)) {
		char *addr = NULL;
		ev_uint16_t port = 0;
		evhttp_connection_get_peer(conn->evcon, &addr, &port);
		log_info("http: closed %lu connection%s whose request did not arrive in time "
			 "(header_timeout %ld ms, body_timeout %ld ms), the last from %s:%u in its "
			 "%s (this message repeats at most every %d s)",
			 n, n == 1 ? "" : "s", ms_of(&set->header_timeout), ms_of(&set->body_timeout),
			 addr ? addr : "?", (unsigned)port,
			 conn->phase == PHASE_HEADERS ? "headers" : "body", LOG_INTERVAL_S);
	}
	evhttp_connection_free(conn->evcon); /* on_close frees conn */
}

/* ---- a connection's life ---------------------------------------------------------------- */

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *conn = arg;
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	if (conn->req)
		http_req_orphan(conn->req);
	evbuffer_remove_cb_entry(bufferevent_get_input(conn->bev), conn->watch);
	conn_forget(conn);
}

static void refuse_over_limit(struct http_conn *conn)
{
	struct http_conns *set = conn->set;
	unsigned long n;
	if (refusal_due(&set->full, &n))
		log_warn("http: max_connections (%d) reached: %lu new connection%s closed at once "
			 "(this message repeats at most every %d s)",
			 set->max_connections, n, n == 1 ? "" : "s", LOG_INTERVAL_S);
	evhttp_connection_free(conn->evcon); /* on_close frees conn */
}

/* Runs right after evhttp set the connection up around our bufferevent,
 * whose callback argument is now the evhttp_connection. */
static void adopt(struct http_conn *conn)
{
	bufferevent_data_cb readcb, writecb;
	bufferevent_event_cb eventcb;
	void *evcon;
	bufferevent_getcb(conn->bev, &readcb, &writecb, &eventcb, &evcon);
	/* No callbacks: evhttp gave up on it (out of memory), and ours was the
	 * last reference. */
	bool gone = !readcb;
	bufferevent_decref(conn->bev);
	if (gone) {
		conn_forget(conn);
		return;
	}
	conn->evcon = evcon;
	evhttp_connection_set_closecb(conn->evcon, on_close, conn);
	if (conn->over_limit)
		refuse_over_limit(conn);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *conn = arg;
	if (!conn->evcon)
		adopt(conn);
	else if (conn->phase == PHASE_HEADERS || conn->phase == PHASE_BODY)
		deadline_passed(conn);
}

static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
	struct http_conns *set = arg;
	struct http_conn *conn = todod_xcalloc(1, sizeof *conn);
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev || !(conn->timer = evtimer_new(base, on_timer, conn)) ||
	    !(conn->watch = evbuffer_add_cb(bufferevent_get_input(bev), on_input, conn))) {
		/* libevent failed: evhttp makes its own bufferevent, untracked. */
		if (conn->timer)
			event_free(conn->timer);
		free(conn);
		if (bev)
			bufferevent_free(bev);
		return NULL;
	}
	conn->set = set;
	conn->bev = bev;
	/* Held until adopt(): evhttp may free the connection before. */
	bufferevent_incref(bev);
	struct http_conn **bucket = bucket_of(set, bev);
	conn->next = *bucket;
	*bucket = conn;
	conn->over_limit = ++set->open > set->max_connections;
	event_active(conn->timer, EV_TIMEOUT, 1);
	return bev;
}

struct http_conn *http_conn_request_taken(struct http_conns *set, struct evhttp_request *evreq,
					  struct todod_http_req *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	struct http_conn *conn = evcon ? conn_find(set, evhttp_connection_get_bufferevent(evcon))
				       : NULL;
	if (!conn)
		return NULL;
	evtimer_del(conn->timer);
	conn->phase = PHASE_HANDLER;
	conn->req = req;
	return conn;
}

void http_conn_request_answered(struct http_conn *conn)
{
	conn->req = NULL;
	conn->phase = PHASE_IDLE;
	/* A pipelined request already waiting: its time runs from now. */
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	size_t waiting = evbuffer_get_length(in);
	if (waiting) {
		request_begins(conn);
		scan_headers(conn, in, 0, waiting);
	}
}

/* ---- the listener ----------------------------------------------------------------------- */

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_conns *set = arg;
	if (set->bound)
		evconnlistener_enable(evhttp_bound_socket_get_listener(set->bound));
}

static void on_accept_error(struct evconnlistener *listener, void *arg)
{
	int err = errno;
	struct http_conns *set = all_sets;
	while (set && !(set->bound && evhttp_bound_socket_get_listener(set->bound) == listener))
		set = set->next_set;
	if (!set)
		return;
	evconnlistener_disable(listener);
	struct timeval pause = { 0, ACCEPT_PAUSE_MS * 1000 };
	evtimer_add(set->resume, &pause);
	unsigned long n;
	if (refusal_due(&set->accept_failed, &n))
		log_warn("http: cannot accept connections: %s%s; not accepting for %d ms "
			 "(%lu time%s; this message repeats at most every %d s)",
			 strerror(err),
			 err == EMFILE || err == ENFILE ? " (raise LimitNOFILE= or lower max_connections)"
							: "",
			 ACCEPT_PAUSE_MS, n, n == 1 ? "" : "s", LOG_INTERVAL_S);
}

int http_conns_listen(struct http_conns *set, int fd, struct todod_err *err)
{
	struct evconnlistener *listener =
		evconnlistener_new(set->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (!listener) {
		close(fd);
		return todod_err_set(err, "http: cannot listen (out of memory)");
	}
	evconnlistener_set_error_cb(listener, on_accept_error);
	if (!(set->bound = evhttp_bind_listener(set->http, listener))) {
		evconnlistener_free(listener);
		return todod_err_set(err, "http: cannot listen (out of memory)");
	}
	return 0;
}

void http_conns_stop_accepting(struct http_conns *set)
{
	if (set->bound) {
		evhttp_del_accept_socket(set->http, set->bound);
		set->bound = NULL;
	}
	evtimer_del(set->resume);
}

/* ---- the set ------------------------------------------------------------------------- */

/* Leaves a quarter of the descriptors to the database pool, plugins and
 * outbound requests. */
static int auto_max_connections(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (rlim_t)INT_MAX)
		return INT_MAX / 4 * 3;
	int n = (int)(rl.rlim_cur / 4 * 3);
	return n > MIN_AUTO_CONNECTIONS ? n : MIN_AUTO_CONNECTIONS;
}

static struct timeval timeval_of_ms(int64_t ms)
{
	return (struct timeval){ .tv_sec = (time_t)(ms / 1000),
				 .tv_usec = (suseconds_t)(ms % 1000 * 1000) };
}

void http_conns_set_limits(struct http_conns *set, const struct http_conn_limits *limits)
{
	set->max_connections = limits->max_connections > 0 ? limits->max_connections
							   : auto_max_connections();
	set->header_timeout = timeval_of_ms(limits->header_timeout_ms);
	set->body_timeout = timeval_of_ms(limits->body_timeout_ms);
}

static double open_connections(void *arg)
{
	const struct http_conns *set = arg;
	return set->open;
}

static void register_metrics(struct http_conns *set)
{
	metrics_gauge_fn(OPEN_METRIC, "HTTP connections open now", "", open_connections, set);
	set->full.counter = metrics_counter(CLOSED_METRIC, CLOSED_HELP, "reason=\"max_connections\"");
	set->header_late.counter = metrics_counter(CLOSED_METRIC, CLOSED_HELP,
						   "reason=\"header_timeout\"");
	set->body_late.counter = metrics_counter(CLOSED_METRIC, CLOSED_HELP,
						 "reason=\"body_timeout\"");
	set->accept_failed.counter = metrics_counter(
		PAUSES_METRIC, "Times the listener rested because accept() failed (EMFILE...)", "");
}

int http_conns_max(const struct http_conns *set)
{
	return set->max_connections;
}

struct http_conns *http_conns_new(struct event_base *base, struct evhttp *http)
{
	struct http_conns *set = todod_xcalloc(1, sizeof *set);
	if (!(set->resume = evtimer_new(base, on_resume, set))) {
		free(set);
		return NULL;
	}
	set->base = base;
	set->http = http;
	set->next_set = all_sets;
	all_sets = set;
	evhttp_set_bevcb(http, on_new_connection, set);
	register_metrics(set);
	/* Otherwise libevent writes to stderr by itself, unformatted and
	 * without todod's level filter (one line per failed accept). */
	event_set_log_callback(on_libevent_log);
	return set;
}

void http_conns_free(struct http_conns *set)
{
	if (!set)
		return;
	/* Connections evhttp freed before they were adopted. */
	for (size_t i = 0; i < CONN_BUCKETS; i++) {
		while (set->buckets[i]) {
			struct http_conn *conn = set->buckets[i];
			if (!conn->evcon)
				bufferevent_decref(conn->bev);
			conn_forget(conn);
		}
	}
	struct http_conns **pp = &all_sets;
	while (*pp != set)
		pp = &(*pp)->next_set;
	*pp = set->next_set;
	metrics_gauge_fn_remove(set);
	event_free(set->resume);
	free(set);
}

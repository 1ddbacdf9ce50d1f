/* http.c - the one inbound listener: evhttp with routes, limits, JSON
 * errors and request metrics.
 *
 * What libevent 2.1 answers by itself, before a request reaches us (its
 * HTML error page, Connection: close): a malformed request line or header
 * block, and a header block over max_header_size, get 400; a body over
 * a hard ceiling (max_body_size + max(max_body_size, 8 MiB)) gets 413 (read
 * and discarded first, "lingering close", so the client does see the
 * answer); a body between max_body_size and that ceiling gets our JSON 413;
 * methods outside the allowed set (TRACE,
 * CONNECT) get 501.  A JSON body for those would need a hook on requests
 * before their body is read (evhttp_set_newreqcb), which only libevent 2.2
 * has.  We answer 400, and close, a request whose framing a proxy in front
 * could read differently (two Content-Length headers, Transfer-Encoding
 * beside Content-Length) or HTTP/1.1 without Host (framing_problem).  A client silent for request_timeout_s, or whose request is not
 * complete within header_timeout and body_timeout (http_conn.c), is
 * disconnected without an answer (libevent sends no 408).
 *
 * A request in a handler's hands is tracked by a todod_http_req.  libevent
 * frees its evhttp_request with the connection, which only happens then
 * when the server itself is freed (while a handler works libevent neither
 * reads nor writes that connection); the connection's close callback
 * claims the request first (http_req_orphan), so an orphaned
 * todod_http_req stays usable and its eventual http_reply() only frees
 * it. */
#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* the request's HTTP version */
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "http_conn.h"
#include "log.h"
#include "metrics.h"

#define DEFAULT_MAX_HEADER_SIZE (8u * 1024)
#define DEFAULT_MAX_BODY_SIZE (1024u * 1024)
#define DEFAULT_REQUEST_TIMEOUT_S 30
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_BODY_TIMEOUT_MS 30000
#define MAX_ROUTE_LEN 512
#define ROUTE_BUCKETS 64  /* exact routes; a daemon has tens */
#define COUNTER_CACHE 8   /* (method, status) pairs a route remembers */
#define POOL_MAX 256      /* spare request objects kept for reuse */

#define REQUESTS_METRIC "todod_http_requests_total"
#define REQUESTS_HELP "HTTP requests answered, by route pattern, method and status code"
#define DURATION_METRIC "todod_http_request_duration_seconds"
#define DURATION_HELP "Seconds from a complete HTTP request to its answer, by route pattern"

/* Bit i of enum todod_http_method is method_names[i]. */
static const char *const method_names[] = {
	"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH",
};
#define N_METHODS (sizeof method_names / sizeof method_names[0])
#define ALL_METHODS ((1u << N_METHODS) - 1)

struct counter_slot {
	struct metric *counter;
	int status;
	unsigned method;
};

struct http_route {
	struct http_route *next;   /* in its hash bucket, or the prefix list */
	void *owner;
	unsigned methods;
	todod_http_handler handler;
	void *arg;
	/* One for the route table, one per request in a handler's hands, so
	 * a route removed mid-request still labels that request's metrics. */
	int refs;
	bool is_prefix;
	size_t match_len;          /* bytes of `pattern` that must match */
	unsigned hash;             /* exact routes */
	char allow[64];            /* the Allow header of a 405 */
	struct metric *duration;
	struct counter_slot counters[COUNTER_CACHE];
	unsigned next_slot;
	char pattern[];
};

struct http_server {
	struct evhttp *http;
	struct http_conns *conns;
	int port;
	struct http_route *exact[ROUTE_BUCKETS];
	struct http_route *prefixes; /* longest first: the first match wins */
	struct http_route *unmatched;
	size_t max_body;             /* ours: a JSON 413 beyond it */
};

struct todod_http_req {
	struct evhttp_request *evreq;
	struct http_route *route;
	struct http_conn *conn;         /* NULL once orphaned */
	struct todod_http_req *next_free;
	int64_t started_ns;             /* monotonic, for the duration metric */
	enum todod_http_method method;
	bool orphaned;                  /* the connection is gone; evreq is ours */
	char peer[INET6_ADDRSTRLEN + 8];  /* "ip:port", filled when first asked */
};

/* Shared by every server: one loop thread, and requests outlive servers. */
static struct {
	struct todod_http_req *first;
	size_t n;
} pool;

/* ---- request objects --------------------------------------------------------- */

static struct todod_http_req *req_get(void)
{
	struct todod_http_req *req = pool.first;
	if (req) {
		pool.first = req->next_free;
		pool.n--;
	} else {
		req = todod_xmalloc(sizeof *req);
	}
	req->orphaned = false;
	req->conn = NULL;
	req->peer[0] = '\0';
	return req;
}

static void req_put(struct todod_http_req *req)
{
	if (req->orphaned || pool.n >= POOL_MAX) {
		free(req);
		return;
	}
	req->next_free = pool.first;
	pool.first = req;
	pool.n++;
}

static void pool_drain(void)
{
	while (pool.first) {
		struct todod_http_req *next = pool.first->next_free;
		free(pool.first);
		pool.first = next;
	}
	pool.n = 0;
}

/* ---- routes ------------------------------------------------------------------- */

static unsigned hash_path(const char *path, size_t len)
{
	unsigned h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)path[i]) * 16777619u;
	return h;
}

/* route="<pattern>" with the pattern escaped as a label value. */
static void route_labels(const struct http_route *r, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "route=\"");
	for (const char *p = r->pattern; *p && n + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			out[n++] = '\\';
		out[n++] = *p;
	}
	snprintf(out + n, size - n, "\"");
}

static struct http_route *route_new(const char *pattern, unsigned methods,
				    todod_http_handler handler, void *arg, void *owner)
{
	size_t len = strlen(pattern);
	struct http_route *r = todod_xcalloc(1, sizeof *r + len + 1);
	memcpy(r->pattern, pattern, len + 1);
	r->refs = 1;
	r->owner = owner;
	r->methods = methods;
	r->handler = handler;
	r->arg = arg;
	r->is_prefix = len && pattern[len - 1] == '*';
	r->match_len = r->is_prefix ? len - 1 : len;
	r->hash = hash_path(pattern, r->match_len);

	size_t n = 0;
	for (unsigned i = 0; i < N_METHODS; i++)
		if (methods & (1u << i))
			n += (size_t)snprintf(r->allow + n, sizeof r->allow - n, "%s%s",
					      n ? ", " : "", method_names[i]);

	char labels[2 * MAX_ROUTE_LEN + 16];
	route_labels(r, labels, sizeof labels);
	r->duration = metrics_histogram(DURATION_METRIC, DURATION_HELP, labels);
	return r;
}

static void route_unref(struct http_route *r)
{
	if (--r->refs == 0)
		free(r);
}

static struct http_route *route_find(const struct http_server *srv, const char *path)
{
	size_t len = strlen(path);
	unsigned h = hash_path(path, len);
	for (struct http_route *r = srv->exact[h % ROUTE_BUCKETS]; r; r = r->next)
		if (r->hash == h && r->match_len == len && memcmp(r->pattern, path, len) == 0)
			return r;
	for (struct http_route *r = srv->prefixes; r; r = r->next)
		if (r->match_len <= len && memcmp(r->pattern, path, r->match_len) == 0)
			return r;
	return NULL;
}

static bool route_exists(const struct http_server *srv, const char *pattern)
{
	const struct http_route *r = srv->prefixes;
	size_t len = strlen(pattern);
	if (!len || pattern[len - 1] != '*')
		r = srv->exact[hash_path(pattern, len) % ROUTE_BUCKETS];
	for (; r; r = r->next)
		if (strcmp(r->pattern, pattern) == 0)
			return true;
	return false;
}

static int route_check(const char *path, unsigned methods, todod_http_handler handler,
		       struct todod_err *err)
{
	if (!path || path[0] != '/')
		return todod_err_set(err, "http: route '%s' must start with '/'",
				     path ? path : "(null)");
	size_t len = strlen(path);
	if (len > MAX_ROUTE_LEN)
		return todod_err_set(err, "http: route '%.40s...' is longer than %d bytes", path,
				     MAX_ROUTE_LEN);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c <= ' ' || c == 0x7f || (c == '*' && i != len - 1))
			return todod_err_set(err,
					     "http: route '%s': no blanks or control characters, "
					     "and '*' only at the end",
					     path);
	}
	if (!methods || (methods & ~ALL_METHODS))
		return todod_err_set(err, "http: route %s: no valid method in mask 0x%x", path,
				     methods);
	if (!handler)
		return todod_err_set(err, "http: route %s: no handler", path);
	return 0;
}

int http_route_add(struct http_server *srv, void *owner, unsigned methods, const char *path,
		   todod_http_handler handler, void *arg, struct todod_err *err)
{
	if (route_check(path, methods, handler, err) < 0)
		return -1;
	if (route_exists(srv, path))
		return todod_err_set(err, "http: route %s is already registered", path);
	struct http_route *r = route_new(path, methods, handler, arg, owner);
	struct http_route **pp;
	if (r->is_prefix)
		for (pp = &srv->prefixes; *pp && (*pp)->match_len >= r->match_len;)
			pp = &(*pp)->next;
	else
		pp = &srv->exact[r->hash % ROUTE_BUCKETS];
	r->next = *pp;
	*pp = r;
	return 0;
}

/* Unlink (and unref) the routes of `owner` in one chain, or all of them. */
static void chain_remove(struct http_route **pp, void *owner, bool every)
{
	while (*pp) {
		struct http_route *r = *pp;
		if (every || r->owner == owner) {
			*pp = r->next;
			route_unref(r);
		} else {
			pp = &r->next;
		}
	}
}

static void routes_remove(struct http_server *srv, void *owner, bool every)
{
	for (size_t i = 0; i < ROUTE_BUCKETS; i++)
		chain_remove(&srv->exact[i], owner, every);
	chain_remove(&srv->prefixes, owner, every);
}

void http_routes_remove_owner(struct http_server *srv, void *owner)
{
	routes_remove(srv, owner, false);
}

/* ---- metrics ------------------------------------------------------------------- */

static unsigned method_index(enum todod_http_method method)
{
	return method ? (unsigned)ffs((int)method) - 1 : N_METHODS;
}

static const char *method_name(unsigned index)
{
	return index < N_METHODS ? method_names[index] : "OTHER";
}

/* The counter for (route, method, status), remembered in the route so the
 * common case costs no formatting and no lookup. */
static struct metric *route_counter(struct http_route *r, enum todod_http_method method,
				    int status)
{
	unsigned mi = method_index(method);
	for (size_t i = 0; i < COUNTER_CACHE; i++) {
		const struct counter_slot *s = &r->counters[i];
		if (s->counter && s->status == status && s->method == mi)
			return s->counter;
	}
	char labels[2 * MAX_ROUTE_LEN + 64];
	route_labels(r, labels, sizeof labels);
	size_t n = strlen(labels);
	snprintf(labels + n, sizeof labels - n, ",method=\"%s\",code=\"%d\"",
		 method_name(mi), status);

	struct counter_slot *s = &r->counters[r->next_slot++ % COUNTER_CACHE];
	s->counter = metrics_counter(REQUESTS_METRIC, REQUESTS_HELP, labels);
	s->status = status;
	s->method = mi;
	return s->counter;
}

static void record_metrics(const struct todod_http_req *req, int status)
{
	double secs = (double)(clock_mono_ns() - req->started_ns) / 1e9;
	metric_observe(req->route->duration, secs);
	metric_add(route_counter(req->route, req->method, status), 1);
}

/* ---- requests ------------------------------------------------------------------- */

static enum todod_http_method method_from_libevent(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return TODOD_HTTP_GET;
	case EVHTTP_REQ_POST: return TODOD_HTTP_POST;
	case EVHTTP_REQ_PUT: return TODOD_HTTP_PUT;
	case EVHTTP_REQ_DELETE: return TODOD_HTTP_DELETE;
	case EVHTTP_REQ_OPTIONS: return TODOD_HTTP_OPTIONS;
	case EVHTTP_REQ_HEAD: return TODOD_HTTP_HEAD;
	case EVHTTP_REQ_PATCH: return TODOD_HTTP_PATCH;
	default: return 0; /* TRACE, CONNECT: refused by libevent already */
	}
}

static void peer_fill(struct todod_http_req *req)
{
	char *addr = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(evhttp_request_get_connection(req->evreq), &addr, &port);
	const char *ip = addr ? addr : "?";
	snprintf(req->peer, sizeof req->peer, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip,
		 (unsigned)port);
}

void http_req_orphan(struct todod_http_req *req)
{
	if (!req->peer[0])
		peer_fill(req);
	evhttp_request_own(req->evreq);
	req->orphaned = true;
	req->conn = NULL;
}

/* How the end of the body is found must be beyond doubt: a proxy in front
 * that frames a request differently from libevent would see the rest of
 * the bytes as a second request (smuggling).  So, after RFC 9112: two
 * Content-Length headers (§6.3), Transfer-Encoding next to Content-Length
 * (§6.1: libevent would frame by the coding, a proxy perhaps by the
 * length) or twice, are refused, and so is a coding other than chunked,
 * which libevent does not decode and would frame by the length (501,
 * §6.1); §3.2: HTTP/1.1 needs exactly one Host.  libevent 2.1 already
 * answers a doubtful chunked request with its own 400; these checks keep
 * every such request refused whatever libevent todod is built with.
 * Sets *status. */
static const char *framing_problem(struct evhttp_request *evreq, int *status)
{
	int lengths = 0, codings = 0, hosts = 0;
	const char *coding = NULL;
	const struct evkeyvalq *headers = evhttp_request_get_input_headers(evreq);
	for (const struct evkeyval *h = headers->tqh_first; h; h = h->next.tqe_next) {
		lengths += strcasecmp(h->key, "Content-Length") == 0;
		hosts += strcasecmp(h->key, "Host") == 0;
		if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
			codings++;
			coding = h->value;
		}
	}
	*status = HTTP_BADREQUEST;
	if (lengths > 1)
		return "more than one Content-Length header";
	if (codings > 1)
		return "more than one Transfer-Encoding header";
	if (codings && lengths)
		return "both Transfer-Encoding and Content-Length";
	if (hosts > 1)
		return "more than one Host header";
	if (!hosts && (evreq->major > 1 || (evreq->major == 1 && evreq->minor >= 1)))
		return "an HTTP/1.1 request needs a Host header";
	if (coding && strcasecmp(coding, "chunked") != 0) {
		*status = HTTP_NOTIMPLEMENTED;
		return "the only Transfer-Encoding understood is chunked";
	}
	return NULL;
}

static void on_request(struct evhttp_request *evreq, void *arg)
{
	struct http_server *srv = arg;
	struct todod_http_req *req = req_get();
	req->started_ns = clock_mono_ns();
	req->evreq = evreq;
	req->method = method_from_libevent(evhttp_request_get_command(evreq));
	const char *path = http_req_path(req);
	struct http_route *route = route_find(srv, path);
	req->route = route ? route : srv->unmatched;
	req->route->refs++;
	req->conn = http_conn_request_taken(srv->conns, evreq, req);

	char message[128];
	int framing_status;
	const char *framing = framing_problem(evreq, &framing_status);
	if (framing) {
		/* Whatever follows on this connection cannot be trusted. */
		http_req_add_header(req, "Connection", "close");
		http_reply_error(req, framing_status,
				 framing_status == HTTP_BADREQUEST ? "BAD_REQUEST" : "NOT_IMPLEMENTED",
				 framing);
	} else if (!route) {
		snprintf(message, sizeof message, "no route for %.80s", path);
		http_reply_error(req, HTTP_NOTFOUND, "NOT_FOUND", message);
	} else if (evbuffer_get_length(evhttp_request_get_input_buffer(evreq)) > srv->max_body) {
		snprintf(message, sizeof message, "request body is larger than %zu bytes",
			 srv->max_body);
		http_reply_error(req, 413, "PAYLOAD_TOO_LARGE", message);
	} else if (!(route->methods & req->method)) {
		snprintf(message, sizeof message, "%s is not allowed here; allowed: %s",
			 method_name(method_index(req->method)), route->allow);
		http_req_add_header(req, "Allow", route->allow);
		http_reply_error(req, HTTP_BADMETHOD, "METHOD_NOT_ALLOWED", message);
	} else {
		route->handler(req, route->arg);
	}
}

enum todod_http_method http_req_method(struct todod_http_req *req)
{
	return req->method;
}

const char *http_req_path(struct todod_http_req *req)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req->evreq));
	return path && *path ? path : "/";
}

const char *http_req_query(struct todod_http_req *req)
{
	return evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req->evreq));
}

const char *http_req_header(struct todod_http_req *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req->evreq), name);
}

const void *http_req_body(struct todod_http_req *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req->evreq);
	size_t n = evbuffer_get_length(in);
	if (len)
		*len = n;
	return n ? evbuffer_pullup(in, -1) : (const void *)"";
}

const char *http_req_peer(struct todod_http_req *req)
{
	if (!req->peer[0])
		peer_fill(req);
	return req->peer;
}

void http_req_add_header(struct todod_http_req *req, const char *name, const char *value)
{
	/* libevent refuses CR or LF in a value, so no header can be injected. */
	if (evhttp_add_header(evhttp_request_get_output_headers(req->evreq), name, value) < 0)
		log_warn("http: header %s refused (CR or LF in its value)", name);
}

/* libevent writes a reply only once a later loop turn finds the socket
 * writable: an epoll_ctl to watch for writing, a turn, the write, an
 * epoll_ctl to stop watching.  A reply nearly always fits the socket's
 * buffer, so it is written here at once, and when all of it went, evhttp
 * hears so through the callback libevent itself calls when a write
 * drains the buffer (it finishes the request and starts reading the
 * next); under the epoll changelist the watch for writing, added and
 * dropped in the same turn, then never reaches the kernel.  What cannot
 * go now (a full buffer, an error) stays for libevent's usual path.  The
 * trigger holds a reference on the bufferevent, so evhttp may free the
 * connection inside it (Connection: close).  Writing to the descriptor
 * is right only because every connection's bufferevent is a plain socket
 * one (http_conn.c's on_new_connection): a TLS bufferevent would need its
 * own write path here. */
static void write_now(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	struct evbuffer *out = bev ? bufferevent_get_output(bev) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	if (fd < 0 || !evbuffer_get_length(out) || !(bufferevent_get_enabled(bev) & EV_WRITE))
		return;
	if (evbuffer_write(out, fd) <= 0 || evbuffer_get_length(out))
		return;
	bufferevent_trigger(bev, EV_WRITE, 0);
}

void http_reply(struct todod_http_req *req, int status, const char *content_type,
		const void *body, size_t len)
{
	struct evhttp_request *evreq = req->evreq;
	if (req->orphaned) {
		evhttp_request_free(evreq);
	} else {
		if (req->conn)
			http_conn_request_answered(req->conn);
		if (content_type)
			evhttp_add_header(evhttp_request_get_output_headers(evreq),
					  "Content-Type", content_type);
		if (len)
			evbuffer_add(evhttp_request_get_output_buffer(evreq), body, len);
		struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
		evhttp_send_reply(evreq, status, NULL, NULL);
		if (evcon)
			write_now(evcon);
	}
	record_metrics(req, status);
	route_unref(req->route);
	req_put(req);
}

void http_reply_error(struct todod_http_req *req, int status, const char *code,
		      const char *message)
{
	json_object *detail = json_object_new_object();
	json_object *doc = json_object_new_object();
	if (!detail || !doc) {
		json_object_put(detail);
		json_object_put(doc);
		static const char fallback[] = "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}";
		http_reply(req, status, "application/json", fallback, sizeof fallback - 1);
		return;
	}
	json_object_object_add(detail, "code", json_object_new_string(code ? code : "ERROR"));
	json_object_object_add(detail, "message", json_object_new_string(message ? message : ""));
	json_object_object_add(doc, "error", detail);
	size_t len = 0;
	const char *text = json_object_to_json_string_length(
		doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	http_reply(req, status, "application/json", text, len);
	json_object_put(doc);
}

/* ---- the server -------------------------------------------------------------------- */

/* "host:port", "[v6]:port", "*:port" or ":port"; returns a listening,
 * non-blocking socket or -1 with an error naming `listen_at`. */
static int open_listener(const char *listen_at, struct todod_err *err)
{
	char host[256];
	const char *port;
	const char *sep = listen_at[0] == '[' ? strchr(listen_at, ']') : strrchr(listen_at, ':');
	if (!sep || (listen_at[0] == '[' && sep[1] != ':'))
		return todod_err_set(err, "http: listen address '%s' is not host:port or [v6]:port",
				     listen_at);
	const char *host_start = listen_at[0] == '[' ? listen_at + 1 : listen_at;
	size_t host_len = (size_t)(sep - host_start);
	port = listen_at[0] == '[' ? sep + 2 : sep + 1;
	if (host_len >= sizeof host || !*port)
		return todod_err_set(err, "http: listen address '%s' is not host:port or [v6]:port",
				     listen_at);
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';

	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *ai;
	bool any = !host[0] || strcmp(host, "*") == 0;
	/* Start-up only, before the loop runs, so a blocking lookup is fine. */
	int rc = getaddrinfo(any ? NULL : host, port, &hints, &ai);
	if (rc != 0)
		return todod_err_set(err, "http: cannot resolve listen address %s: %s", listen_at,
				     gai_strerror(rc));

	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	int one = 1;
	const char *step = "socket";
	if (fd >= 0) {
		step = "bind";
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			step = "listen";
			if (listen(fd, 1024) == 0) {
				freeaddrinfo(ai);
				return fd;
			}
		}
	}
	int saved = errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return todod_err_set(err, "http: cannot %s %s: %s", step, listen_at, strerror(saved));
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

struct http_server *http_server_new(struct event_base *base, const char *listen_at,
				    const struct http_limits *limits, struct todod_err *err)
{
	struct http_server *srv = todod_xcalloc(1, sizeof *srv);
	srv->unmatched = route_new("unmatched", 0, NULL, NULL, NULL);
	if (!(srv->http = evhttp_new(base)) || !(srv->conns = http_conns_new(base, srv->http))) {
		todod_err_set(err, "http: libevent cannot set up the server");
		goto fail;
	}
	evhttp_set_gencb(srv->http, on_request, srv);
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
					      EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
					      EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
	evhttp_set_flags(srv->http, EVHTTP_SERVER_LINGERING_CLOSE);
	/* Used only when a handler sends a body without naming its type. */
	evhttp_set_default_content_type(srv->http, "application/octet-stream");
	http_server_set_limits(srv, limits);
	if (!listen_at)
		return srv; /* routes only: `todod mcp-stdio` serves no HTTP */

	int fd = open_listener(listen_at, err);
	if (fd < 0)
		goto fail;
	srv->port = bound_port(fd);
	if (http_conns_listen(srv->conns, fd, err) < 0)
		goto fail;
	log_info("http: listening on %s (port %d, max_connections %d)", listen_at, srv->port,
		 http_conns_max(srv->conns));
	return srv;

fail:
	http_server_free(srv);
	return NULL;
}

void http_server_set_limits(struct http_server *srv, const struct http_limits *limits)
{
	size_t headers = limits && limits->max_header_size ? limits->max_header_size
							   : DEFAULT_MAX_HEADER_SIZE;
	size_t body = limits && limits->max_body_size ? limits->max_body_size
						      : DEFAULT_MAX_BODY_SIZE;
	int timeout = limits && limits->request_timeout_s > 0 ? limits->request_timeout_s
							     : DEFAULT_REQUEST_TIMEOUT_S;
	/* libevent copies these into each connection as it is accepted. */
	evhttp_set_max_headers_size(srv->http, (ev_ssize_t)headers);
	/* libevent 2.1 can only refuse a body with its own HTML page, so it
	 * gets a hard ceiling well above ours, and bodies between the two
	 * get our JSON 413 in on_request(). */
	srv->max_body = body;
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)(body + (body > 8u << 20 ? body : 8u << 20)));
	evhttp_set_timeout(srv->http, timeout);
	struct http_conn_limits conn_limits = {
		.max_connections = limits ? limits->max_connections : 0,
		.header_timeout_ms = limits && limits->header_timeout_ms > 0
					     ? limits->header_timeout_ms
					     : DEFAULT_HEADER_TIMEOUT_MS,
		.body_timeout_ms = limits && limits->body_timeout_ms > 0 ? limits->body_timeout_ms
									 : DEFAULT_BODY_TIMEOUT_MS,
	};
	http_conns_set_limits(srv->conns, &conn_limits);
}

int http_server_port(const struct http_server *srv)
{
	return srv->port;
}

void http_server_stop_accepting(struct http_server *srv)
{
	http_conns_stop_accepting(srv->conns);
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	/* Frees every connection; requests still in a handler's hands are
	 * orphaned by http_req_orphan and freed by their http_reply(). */
	if (srv->http)
		evhttp_free(srv->http);
	http_conns_free(srv->conns);
	routes_remove(srv, NULL, true);
	if (srv->unmatched)
		route_unref(srv->unmatched);
	pool_drain();
	free(srv);
}

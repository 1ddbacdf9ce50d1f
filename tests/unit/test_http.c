/* test_http.c - the inbound server, the metrics text and the outbound
 * multi handle, all in one process on one loop: the server listens on
 * 127.0.0.1 (port 0), clients are raw sockets driven by the same loop
 * (so malformed requests can be sent) or curlm itself. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "curlm.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "tap.h"

static struct event_base *base;

/* ---- running the loop ----------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

/* Turn the loop until *flag is set or `ms` pass; a ticking timer keeps
 * EVLOOP_ONCE from sleeping past the deadline. */
static void run_until(const bool *flag, int ms)
{
	struct timeval tick = { 0, 10000 }, start, now;
	struct event *ticker = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(ticker, &tick);
	gettimeofday(&start, NULL);
	for (;;) {
		gettimeofday(&now, NULL);
		long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
		if ((flag && *flag) || elapsed >= ms)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(ticker);
}

/* ---- a raw client ------------------------------------------------------------------ */

struct exchange {
	struct evbuffer *in;
	bool done;
	bool hang_up_after_send; /* close as soon as the request is out */
};

static void on_client_read(struct bufferevent *bev, void *arg)
{
	struct exchange *ex = arg;
	evbuffer_add_buffer(ex->in, bufferevent_get_input(bev));
}

static void on_client_written(struct bufferevent *bev, void *arg)
{
	struct exchange *ex = arg;
	if (ex->hang_up_after_send)
		ex->done = true;
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct exchange *ex = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		ex->done = true;
}

/* Send `request` and return everything received until the server closes
 * (malloc'd, NUL-terminated); "" after a hang-up. */
static char *raw_request(int port, const char *request, size_t len, bool hang_up)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	struct exchange ex = { .in = evbuffer_new(), .hang_up_after_send = hang_up };
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, on_client_read, on_client_written, on_client_event, &ex);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof sin);
	bufferevent_write(bev, request, len);
	run_until(&ex.done, 5000);
	evbuffer_add_buffer(ex.in, bufferevent_get_input(bev));
	bufferevent_free(bev);

	size_t n = evbuffer_get_length(ex.in);
	char *text = malloc(n + 1);
	evbuffer_remove(ex.in, text, n);
	text[n] = '\0';
	evbuffer_free(ex.in);
	return text;
}

static char *get(int port, const char *method, const char *target)
{
	char request[512];
	int n = snprintf(request, sizeof request,
			 "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", method, target);
	return raw_request(port, request, (size_t)n, false);
}

static int status_of(const char *response)
{
	int status = 0;
	sscanf(response, "HTTP/1.%*d %d", &status);
	return status;
}

/* The value of header `name` in `response` (static buffer), or NULL. */
static const char *header_of(const char *response, const char *name)
{
	static char value[256];
	size_t nlen = strlen(name);
	const char *end = strstr(response, "\r\n\r\n");
	for (const char *line = strstr(response, "\r\n"); line && line < end;
	     line = strstr(line + 2, "\r\n")) {
		if (strncasecmp(line + 2, name, nlen) == 0 && line[2 + nlen] == ':') {
			const char *v = line + 3 + nlen;
			v += strspn(v, " ");
			size_t vlen = strcspn(v, "\r");
			snprintf(value, sizeof value, "%.*s", (int)vlen, v);
			return value;
		}
	}
	return NULL;
}

static const char *body_of(const char *response)
{
	const char *end = strstr(response, "\r\n\r\n");
	return end ? end + 4 : "";
}

/* The "code" of a JSON error body, or NULL if the body is not one. */
static char *error_code_of(const char *response)
{
	static char code[64];
	json_object *doc = json_tokener_parse(body_of(response)), *error, *c;
	const char *text = NULL;
	if (doc && json_object_object_get_ex(doc, "error", &error) &&
	    json_object_object_get_ex(error, "code", &c))
		text = json_object_get_string(c);
	snprintf(code, sizeof code, "%s", text ? text : "");
	json_object_put(doc);
	return text ? code : NULL;
}

/* ---- handlers -------------------------------------------------------------------- */

static void hello_handler(struct todod_http_req *req, void *arg)
{
	http_reply(req, 200, "text/plain", "hello", 5);
}

static void echo_handler(struct todod_http_req *req, void *arg)
{
	size_t len;
	const char *body = http_req_body(req, &len);
	char text[256];
	const char *query = http_req_query(req);
	const char *header = http_req_header(req, "x-test");
	int n = snprintf(text, sizeof text, "%s|%s|%s|%.*s", http_req_path(req),
			 query ? query : "-", header ? header : "-", (int)len, body);
	http_req_add_header(req, "X-Peer", http_req_peer(req));
	http_reply(req, 200, "text/plain", text, (size_t)n);
}

static void prefix_handler(struct todod_http_req *req, void *arg)
{
	char text[256];
	int n = snprintf(text, sizeof text, "%s:%s", (const char *)arg, http_req_path(req));
	http_reply(req, 200, "text/plain", text, (size_t)n);
}

static void metrics_handler(struct todod_http_req *req, void *arg)
{
	struct evbuffer *out = evbuffer_new();
	metrics_render(out);
	size_t n = evbuffer_get_length(out);
	http_reply(req, 200, "text/plain; version=0.0.4", evbuffer_pullup(out, -1), n);
	evbuffer_free(out);
}

/* Replies from a timer, the way a handler waiting on the database does. */
struct later {
	struct todod_http_req *req;
	struct event *timer;
	bool started, replied;
};

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;
	http_reply(l->req, 200, "text/plain", "late", 4);
	l->replied = true;
	event_free(l->timer);
}

static void later_handler(struct todod_http_req *req, void *arg)
{
	struct later *l = arg;
	struct timeval tv = { 0, 100000 };
	l->req = req;
	l->started = true;
	l->timer = evtimer_new(base, on_later, l);
	evtimer_add(l->timer, &tv);
}

/* ---- curlm callbacks ------------------------------------------------------------- */

struct outcome {
	bool done;
	int calls;
	long status;
	char error[256];
	char body[256];
};

static void on_transfer(const struct todod_transfer_result *res, void *arg)
{
	struct outcome *o = arg;
	o->done = true;
	o->calls++;
	o->status = res->status;
	snprintf(o->error, sizeof o->error, "%s", res->error ? res->error : "");
	snprintf(o->body, sizeof o->body, "%.*s", (int)res->body_len, res->body);
}

/* The first callback frees the multi handle it runs under. */
struct teardown {
	struct curlm *m;
	struct outcome first, second;
};

static void on_transfer_then_free(const struct todod_transfer_result *res, void *arg)
{
	struct teardown *td = arg;
	on_transfer(res, &td->first);
	curlm_free(td->m);
}

static void on_second_transfer(const struct todod_transfer_result *res, void *arg)
{
	struct teardown *td = arg;
	on_transfer(res, &td->second);
}

/* A port nobody listens on: bound once, then closed. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	bind(fd, (struct sockaddr *)&sin, sizeof sin);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

/* ---- the tests --------------------------------------------------------------------- */

static void test_routes(int port)
{
	char *r = get(port, "GET", "/hello");
	ok(status_of(r) == 200, "GET /hello is 200");
	is_str(body_of(r), "hello", "GET /hello body");
	is_str(header_of(r, "Content-Type"), "text/plain", "handler's content type");
	free(r);

	r = get(port, "GET", "/nope");
	ok(status_of(r) == 404, "unknown path is 404");
	is_str(header_of(r, "Content-Type"), "application/json", "404 is JSON");
	is_str(error_code_of(r), "NOT_FOUND", "404 error code");
	free(r);

	r = get(port, "POST", "/hello");
	ok(status_of(r) == 405, "wrong method is 405");
	is_str(header_of(r, "Allow"), "GET", "405 names the allowed methods");
	is_str(error_code_of(r), "METHOD_NOT_ALLOWED", "405 error code");
	free(r);

	r = get(port, "GET", "/api/tasks/7");
	is_str(body_of(r), "api:/api/tasks/7", "prefix route");
	free(r);
	r = get(port, "GET", "/api/v2/x");
	is_str(body_of(r), "v2:/api/v2/x", "the longest prefix wins");
	free(r);
	r = get(port, "GET", "/api");
	ok(status_of(r) == 404, "a prefix route does not match its prefix minus the slash");
	free(r);

	static const char post[] = "POST /echo?a=1 HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\n"
				   "Content-Length: 4\r\nConnection: close\r\n\r\nbody";
	r = raw_request(port, post, sizeof post - 1, false);
	is_str(body_of(r), "/echo|a=1|yes|body", "path, query, header and body reach the handler");
	ok(header_of(r, "X-Peer") && strncmp(header_of(r, "X-Peer"), "127.0.0.1:", 10) == 0,
	   "peer is ip:port (%s)", header_of(r, "X-Peer"));
	free(r);

	static const char two[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
				  "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	r = raw_request(port, two, sizeof two - 1, false);
	const char *second = strstr(r + 1, "HTTP/1.1 200");
	ok(status_of(r) == 200 && second, "two requests on one keep-alive connection");
	free(r);
}

static void test_limits(int port)
{
	/* max_body_size is 1024 here. */
	char big[4096];
	int n = snprintf(big, sizeof big,
			 "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n");
	memset(big + n, 'x', 3000);
	char *r = raw_request(port, big, (size_t)n + 3000, false);
	ok(status_of(r) == 413, "body over max_body_size is 413");
	ok(header_of(r, "Content-Type") && strstr(header_of(r, "Content-Type"), "application/json") &&
	   strstr(r, "\"PAYLOAD_TOO_LARGE\""), "with a JSON error body");
	free(r);

	static const char garbage[] = "THIS IS NOT HTTP\r\n\r\n";
	r = raw_request(port, garbage, sizeof garbage - 1, false);
	ok(status_of(r) == 400, "malformed request line is 400");
	free(r);

	/* max_header_size is 1024 here. */
	char fat[4096];
	n = snprintf(fat, sizeof fat, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
	memset(fat + n, 'y', 2000);
	n += 2000;
	n += snprintf(fat + n, sizeof fat - (size_t)n, "\r\n\r\n");
	r = raw_request(port, fat, (size_t)n, false);
	ok(status_of(r) == 400, "header block over max_header_size is 400 (libevent has no 431)");
	free(r);

	static const char trace[] = "TRACE / HTTP/1.1\r\nHost: t\r\n\r\n";
	r = raw_request(port, trace, sizeof trace - 1, false);
	ok(status_of(r) == 501, "a method todod does not serve is 501 (got %d)", status_of(r));
	free(r);

	/* request_timeout_s is 1 here: libevent hangs up without a 408. */
	static const char slow[] = "GET /hello HTTP/1.1\r\nHost: t\r\n";
	r = raw_request(port, slow, sizeof slow - 1, false);
	is_str(r, "", "an unfinished request is dropped without an answer after the timeout");
	free(r);
}

static void test_framing(int port)
{
	static const char two_lengths[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
					  "Content-Length: 38\r\n\r\nbody"
					  "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
	char *r = raw_request(port, two_lengths, sizeof two_lengths - 1, false);
	ok(status_of(r) == 400, "two Content-Length headers are 400 (got %d)", status_of(r));
	is_str(error_code_of(r), "BAD_REQUEST", "with a JSON error");
	ok(!strstr(r + 1, "HTTP/1.1 "), "and nothing after it runs as a second request");
	free(r);

	static const char no_host[] = "GET /hello HTTP/1.1\r\n\r\n";
	r = raw_request(port, no_host, sizeof no_host - 1, false);
	ok(status_of(r) == 400 && error_code_of(r), "HTTP/1.1 without Host is 400 (got %d)",
	   status_of(r));
	free(r);

	static const char two_hosts[] = "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
	r = raw_request(port, two_hosts, sizeof two_hosts - 1, false);
	ok(status_of(r) == 400, "two Host headers are 400 (got %d)", status_of(r));
	free(r);

	static const char old[] = "GET /hello HTTP/1.0\r\n\r\n";
	r = raw_request(port, old, sizeof old - 1, false);
	ok(status_of(r) == 200, "HTTP/1.0 without Host is served (got %d)", status_of(r));
	free(r);
}

/* A client that sends one byte every 200 ms and never finishes. */
struct trickle {
	const char *next;
	bool closed;
};

static void on_trickle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bufferevent *bev = arg;
	struct trickle *t;
	bufferevent_getcb(bev, NULL, NULL, NULL, (void **)&t);
	bufferevent_write(bev, *t->next ? t->next : "a", 1);
	if (*t->next)
		t->next++;
}

static void on_trickle_event(struct bufferevent *bev, short what, void *arg)
{
	struct trickle *t = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		t->closed = true;
}

/* Milliseconds until the server closes a connection fed `request` one
 * byte at a time (after `head`, sent at once); -1 if it is still open
 * after 5 s. */
static long trickle_ms(int port, const char *head, const char *request)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	struct trickle t = { .next = request };
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, NULL, NULL, on_trickle_event, &t);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof sin);
	bufferevent_write(bev, head, strlen(head));
	struct timeval every = { 0, 200000 }, start, end;
	struct event *tick = event_new(base, -1, EV_PERSIST, on_trickle_tick, bev);
	event_add(tick, &every);
	gettimeofday(&start, NULL);
	run_until(&t.closed, 5000);
	gettimeofday(&end, NULL);
	event_free(tick);
	bufferevent_free(bev);
	return t.closed ? (end.tv_sec - start.tv_sec) * 1000 + (end.tv_usec - start.tv_usec) / 1000
			: -1;
}

static void test_deadlines(int port)
{
	/* header_timeout and body_timeout are 1.5 s here, request_timeout 1 s:
	 * every byte comes well within the idle timeout. */
	long ms = trickle_ms(port, "G", "ET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ok(ms >= 1300 && ms < 3000, "header_timeout closes a trickling request (%ld ms)", ms);
	ms = trickle_ms(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n",
			"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	ok(ms >= 1300 && ms < 3000, "body_timeout closes a trickling body (%ld ms)", ms);

	char *r = get(port, "GET", "/slow");
	ok(status_of(r) == 200, "a handler's own time does not count against the deadlines");
	free(r);
}

static void test_max_connections(void)
{
	struct todod_err err;
	struct http_limits limits = { .max_connections = 2 };
	struct http_server *srv = http_server_new(base, "127.0.0.1:0", &limits, &err);
	http_route_add(srv, NULL, TODOD_HTTP_GET, "/hello", hello_handler, NULL, &err);
	int port = http_server_port(srv);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	int held[2];
	for (int i = 0; i < 2; i++) {
		held[i] = socket(AF_INET, SOCK_STREAM, 0);
		connect(held[i], (struct sockaddr *)&sin, sizeof sin);
	}
	char *r = get(port, "GET", "/hello");
	is_str(r, "", "a connection past max_connections is closed at once");
	free(r);

	close(held[0]);
	int status = 0;
	for (int i = 0; i < 50 && status != 200; i++) {
		r = get(port, "GET", "/hello");
		status = status_of(r);
		free(r);
	}
	ok(status == 200, "a closed connection makes room for the next one");
	close(held[1]);
	http_server_free(srv);
}

static void test_async(int port, struct later *slow, struct later *orphan)
{
	char *r = get(port, "GET", "/slow");
	ok(slow->replied && status_of(r) == 200, "a handler answering from a timer");
	is_str(body_of(r), "late", "asynchronous body");
	free(r);

	static const char req[] = "GET /orphan HTTP/1.1\r\nHost: t\r\n\r\n";
	r = raw_request(port, req, sizeof req - 1, true);
	free(r);
	run_until(&orphan->replied, 2000);
	ok(orphan->started && orphan->replied, "a reply after the client hung up goes nowhere");
}

static void test_metrics(int port)
{
	char *r = get(port, "GET", "/metrics");
	const char *body = body_of(r);
	ok(strstr(body, "# TYPE todod_http_requests_total counter\n") != NULL, "counter TYPE line");
	ok(strstr(body, "todod_http_requests_total{route=\"/hello\",method=\"GET\",code=\"200\"} 3\n"),
	   "GET /hello counted three times");
	ok(strstr(body, "todod_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"}"),
	   "unmatched 404 counted");
	ok(strstr(body, "todod_http_requests_total{route=\"/hello\",method=\"POST\",code=\"405\"} 1\n"),
	   "405 counted under its route");
	ok(strstr(body, "todod_http_request_duration_seconds_bucket{route=\"/slow\",le=\"2.5\"} 1\n") &&
		   strstr(body, "todod_http_request_duration_seconds_bucket{route=\"/slow\",le=\"0.05\"} 0\n"),
	   "the 100 ms reply lands above the 0.05 bucket");
	ok(strstr(body, "todod_http_request_duration_seconds_count{route=\"/hello\"} 4\n"),
	   "histogram count: every answered /hello request, 405 included");
	const char *help = strstr(body, "# HELP todod_http_requests_total");
	ok(help && !strstr(help + 1, "# HELP todod_http_requests_total"), "HELP once per family");
	free(r);
}

static double answer(void *arg)
{
	return *(double *)arg;
}

static void test_metrics_registry(void)
{
	static double value = 42;
	struct metric *c = metrics_counter("t_total", "A \\ test\nline", "a=\"1\"");
	ok(c == metrics_counter("t_total", "ignored", "a=\"1\""), "same name+labels, same handle");
	ok(metrics_gauge("t_total", "clash", "") == NULL, "a name keeps its type");
	metric_add(c, 1.5);
	metric_add(metrics_counter("t_total", NULL, ""), 1);
	metrics_gauge_fn("t_fn", "computed", "", answer, &value);
	struct metric *g = metrics_gauge("t_gauge", "set", "");
	metric_set(g, 0.1);
	struct metric *h = metrics_histogram("t_seconds", "lat", "");
	metric_observe(h, 0.0005);
	metric_observe(h, 20);

	struct evbuffer *out = evbuffer_new();
	metrics_render(out);
	evbuffer_add(out, "", 1);
	const char *text = (const char *)evbuffer_pullup(out, -1);
	ok(strstr(text, "# HELP t_total A \\\\ test\\nline\n# TYPE t_total counter\n"
			"t_total{a=\"1\"} 1.5\nt_total 1\n") != NULL,
	   "HELP escaped, series in registration order");
	ok(strstr(text, "t_fn 42\n") != NULL, "gauge_fn read at render");
	ok(strstr(text, "t_gauge 0.1\n") != NULL, "shortest float text");
	ok(strstr(text, "t_seconds_bucket{le=\"0.0005\"} 1\n") &&
		   strstr(text, "t_seconds_bucket{le=\"10\"} 1\n") &&
		   strstr(text, "t_seconds_bucket{le=\"+Inf\"} 2\n") &&
		   strstr(text, "t_seconds_sum 20.0005\nt_seconds_count 2\n"),
	   "histogram buckets are cumulative, +Inf holds everything");
	evbuffer_free(out);

	metrics_gauge_fn_remove(&value);
	out = evbuffer_new();
	metrics_render(out);
	evbuffer_add(out, "", 1);
	ok(strstr((const char *)evbuffer_pullup(out, -1), "t_fn") == NULL,
	   "gauge_fn_remove drops the series and its empty family");
	evbuffer_free(out);
}

static void test_curlm(int port)
{
	struct todod_err err = { "" };
	struct curlm *m = curlm_new(base, &err);
	ok(m != NULL, "curlm_new");

	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", port);
	struct todod_http_request rq = { .method = "GET", .url = url };
	struct outcome o = { 0 };
	ok(curlm_http(m, NULL, &rq, on_transfer, &o, &err) == 0, "curlm_http starts");
	ok(curlm_in_flight(m) == 1, "one transfer in flight");
	run_until(&o.done, 5000);
	ok(o.status == 200 && !o.error[0], "GET through curlm: status %ld, error '%s'", o.status,
	   o.error);
	is_str(o.body, "hello", "GET through curlm: body");
	ok(curlm_in_flight(m) == 0, "nothing in flight after completion");

	snprintf(url, sizeof url, "http://127.0.0.1:%d/echo?q=2", port);
	static const char *const headers[] = { "X-Test: h", "Content-Type: text/plain", NULL };
	struct todod_http_request post = { .method = "POST", .url = url, .headers = headers,
					   .body = "payload", .body_len = 7 };
	o = (struct outcome){ 0 };
	curlm_http(m, NULL, &post, on_transfer, &o, &err);
	run_until(&o.done, 5000);
	is_str(o.body, "/echo|q=2|h|payload", "POST with headers and body through curlm");

	snprintf(url, sizeof url, "http://127.0.0.1:%d/", closed_port());
	rq.url = url;
	o = (struct outcome){ 0 };
	curlm_http(m, NULL, &rq, on_transfer, &o, &err);
	run_until(&o.done, 5000);
	ok(o.done && o.status == 0 && o.error[0], "closed port: status 0, error '%s'", o.error);

	struct todod_http_request bad = { .method = "GET\r\nX", .url = url };
	ok(curlm_http(m, NULL, &bad, on_transfer, &o, &err) == -1, "a method with CRLF is refused");

	/* Cancelled by owner: the callback never fires. */
	int owner;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", port);
	rq.url = url;
	o = (struct outcome){ 0 };
	curlm_http(m, &owner, &rq, on_transfer, &o, &err);
	curlm_cancel_owner(m, &owner);
	ok(curlm_in_flight(m) == 0, "cancel_owner removes the transfer");
	run_until(NULL, 100);
	ok(o.calls == 0, "a cancelled transfer's callback does not fire");

	/* Freed with a transfer in flight: the callback fires, cancelled. */
	curlm_http(m, NULL, &rq, on_transfer, &o, &err);
	curlm_free(m);
	ok(o.calls == 1 && strcmp(o.error, "cancelled") == 0 && o.status == 0,
	   "curlm_free cancels in-flight transfers ('%s')", o.error);
}

static void test_curlm_free_in_callback(int port)
{
	struct todod_err err;
	struct teardown td = { .m = curlm_new(base, &err) };
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", port);
	struct todod_http_request quick = { .url = url };
	curlm_http(td.m, NULL, &quick, on_transfer_then_free, &td, &err);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
	struct todod_http_request slow = { .url = url };
	curlm_http(td.m, NULL, &slow, on_second_transfer, &td, &err);
	run_until(&td.second.done, 5000);
	ok(td.first.calls == 1 && td.first.status == 200, "first transfer done, then frees the multi");
	ok(td.second.calls == 1 && strcmp(td.second.error, "cancelled") == 0,
	   "curlm_free from a callback waits for it, then cancels the rest ('%s')", td.second.error);
	/* The server still holds /slow's request; let its timer answer it. */
	run_until(NULL, 200);
}

/* A request held by a handler while its server is freed: the later reply
 * must free it without touching the dead connection. */
static void test_reply_after_server_free(void)
{
	struct todod_err err;
	struct later hold = { 0 };
	struct http_server *srv = http_server_new(base, "127.0.0.1:0", NULL, &err);
	http_route_add(srv, NULL, TODOD_HTTP_GET, "/hold", later_handler, &hold, &err);
	static const char req[] = "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n";
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)http_server_port(srv)) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	connect(fd, (struct sockaddr *)&sin, sizeof sin);
	ok(write(fd, req, sizeof req - 1) == (ssize_t)sizeof req - 1, "request to /hold sent");
	run_until(&hold.started, 2000);
	ok(hold.started && !hold.replied, "handler holds the request");
	http_server_free(srv);
	run_until(&hold.replied, 2000);
	ok(hold.replied, "reply after the server was freed is discarded");
	close(fd);
}

static void test_listen_errors(int port)
{
	struct todod_err err = { "" };
	char busy[64];
	snprintf(busy, sizeof busy, "127.0.0.1:%d", port);
	ok(http_server_new(base, busy, NULL, &err) == NULL && strstr(err.text, busy) &&
		   strstr(err.text, "in use"),
	   "a busy port names the address: %s", err.text);
	ok(http_server_new(base, "localhost", NULL, &err) == NULL, "no port: %s", err.text);
	struct http_server *v6 = http_server_new(base, "[::1]:0", NULL, &err);
	ok(v6 && http_server_port(v6) > 0, "[::1]:0 binds (%s)", v6 ? "ok" : err.text);
	http_server_free(v6);
}

int main(void)
{
	log_set_level(TODOD_LOG_ERROR);
	base = event_base_new();
	struct todod_err err = { "" };
	struct http_limits limits = { .max_header_size = 1024, .max_body_size = 1024,
				      .request_timeout_s = 1, .header_timeout_ms = 1500,
				      .body_timeout_ms = 1500 };
	struct http_server *srv = http_server_new(base, "127.0.0.1:0", &limits, &err);
	ok(srv != NULL, "server on 127.0.0.1:0 (%s)", err.text);
	int port = http_server_port(srv);
	ok(port > 0, "bound port %d", port);

	static struct later slow, orphan;
	static char api[] = "api", v2[] = "v2";
	int owner;
	ok(http_route_add(srv, NULL, TODOD_HTTP_GET, "/hello", hello_handler, NULL, &err) == 0,
	   "route /hello");
	ok(http_route_add(srv, NULL, TODOD_HTTP_GET, "/hello", hello_handler, NULL, &err) == -1,
	   "duplicate route refused: %s", err.text);
	ok(http_route_add(srv, NULL, TODOD_HTTP_GET, "no-slash", hello_handler, NULL, &err) == -1,
	   "route without leading slash refused: %s", err.text);
	http_route_add(srv, NULL, TODOD_HTTP_POST, "/echo", echo_handler, NULL, &err);
	http_route_add(srv, NULL, TODOD_HTTP_GET, "/api/*", prefix_handler, api, &err);
	http_route_add(srv, NULL, TODOD_HTTP_GET, "/api/v2/*", prefix_handler, v2, &err);
	http_route_add(srv, NULL, TODOD_HTTP_GET, "/metrics", metrics_handler, NULL, &err);
	http_route_add(srv, NULL, TODOD_HTTP_GET, "/slow", later_handler, &slow, &err);
	http_route_add(srv, &owner, TODOD_HTTP_GET, "/orphan", later_handler, &orphan, &err);
	http_route_add(srv, &owner, TODOD_HTTP_GET, "/gone", hello_handler, NULL, &err);

	test_routes(port);
	test_limits(port);
	test_async(port, &slow, &orphan);
	test_metrics(port);
	test_framing(port);
	test_deadlines(port);

	http_routes_remove_owner(srv, &owner);
	char *r = get(port, "GET", "/gone");
	ok(status_of(r) == 404, "routes removed with their owner");
	free(r);

	test_curlm(port);
	test_curlm_free_in_callback(port);
	test_listen_errors(port);
	test_reply_after_server_free();
	test_max_connections();

	http_server_stop_accepting(srv);
	r = get(port, "GET", "/hello");
	is_str(r, "", "no answer once the server stopped accepting");
	free(r);

	http_server_free(srv);
	metrics_free_all();
	test_metrics_registry();
	metrics_free_all();
	event_base_free(base);
	return tap_done();
}

/* curlm.c - libcurl's multi-socket interface on the libevent loop.
 *
 * libcurl tells us which sockets to watch (socket callback) and when to
 * wake it (timer callback); the loop tells libcurl what became ready.  The
 * rules from CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION shape the code:
 *   - the callbacks never call back into libcurl (curl_multi_assign aside,
 *     which the documentation allows there);
 *   - a timeout of -1 deletes the timer, 0 means "as soon as possible";
 *   - curl_multi_remove_handle() may fire the socket callback with
 *     CURL_POLL_REMOVE before it returns, freeing a watch whose event may be
 *     the one running right now, so no event callback touches its watch
 *     after handing control to libcurl;
 *   - user callbacks run only from reap_finished(), outside any libcurl
 *     call, so they may start or cancel transfers, or even free the multi
 *     (that is deferred until they return). */
#include "curlm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <curl/curl.h>

#include "log.h"

#define DEFAULT_TIMEOUT_MS 30000
#define MAX_RESPONSE_BODY (16u * 1024 * 1024)
#define MAX_SMTP_REPLY 4096

struct sock_watch {
	LIST_ENTRY(sock_watch) link;
	struct event *ev;
};

struct transfer {
	LIST_ENTRY(transfer) link;
	struct curlm *m;
	CURL *easy;
	void *owner;
	todod_transfer_cb done;
	void *arg;
	struct curl_slist *list; /* HTTP headers or SMTP recipients */
	char *upload;            /* SMTP message, sent by on_upload_read */
	size_t upload_len, upload_off;
	char *body;              /* HTTP response body or last SMTP reply */
	size_t body_len, body_cap;
	bool body_too_large;
	bool reply_complete;     /* SMTP: the captured reply has its last line */
	char errbuf[CURL_ERROR_SIZE];
};

struct curlm {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	LIST_HEAD(, transfer) transfers;
	LIST_HEAD(, sock_watch) watches;
	int in_flight;
	int dispatching; /* user callbacks on the stack */
	bool closing;    /* curlm_free() was called */
};

static void destroy(struct curlm *m);

/* ---- socket and timer plumbing ------------------------------------------ */

static void watch_free(struct sock_watch *w)
{
	LIST_REMOVE(w, link);
	if (w->ev)
		event_free(w->ev);
	free(w);
}

static void reap_finished(struct curlm *m);

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
	struct curlm *m = arg;
	int action = (what & EV_READ ? CURL_CSELECT_IN : 0) |
		     (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(m->multi, fd, action, &running);
	reap_finished(m);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct curlm *m = arg;
	int running;
	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	reap_finished(m);
}

static int on_socket_change(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curlm *m = userp;
	struct sock_watch *w = socketp;

	if (what == CURL_POLL_REMOVE) {
		if (w)
			watch_free(w);
		return 0;
	}
	short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
		     (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (!w) {
		w = todod_xcalloc(1, sizeof *w);
		LIST_INSERT_HEAD(&m->watches, w, link);
		w->ev = event_new(m->base, fd, kind, on_socket_ready, m);
		if (!w->ev) {
			watch_free(w);
			return -1;
		}
		curl_multi_assign(m->multi, fd, w);
	} else {
		event_del(w->ev);
		event_assign(w->ev, m->base, fd, kind, on_socket_ready, m);
	}
	return event_add(w->ev, NULL) == 0 ? 0 : -1;
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
	struct curlm *m = userp;
	if (timeout_ms < 0) {
		evtimer_del(m->timer);
		return 0;
	}
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	return evtimer_add(m->timer, &tv) == 0 ? 0 : -1;
}

/* ---- transfers ------------------------------------------------------------ */

static void transfer_free(struct transfer *t)
{
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->list);
	free(t->upload);
	free(t->body);
	free(t);
}

/* Take `t` out of the multi handle and the in-flight list. */
static void transfer_detach(struct transfer *t)
{
	struct curlm *m = t->m;
	curl_multi_remove_handle(m->multi, t->easy);
	LIST_REMOVE(t, link);
	m->in_flight--;
}

/* Report the outcome and free `t`, which must already be detached. */
static void transfer_finish(struct transfer *t, long status, const char *error)
{
	struct curlm *m = t->m;
	struct todod_transfer_result res = {
		.status = status,
		.error = error,
		.body = t->body ? t->body : "",
		.body_len = t->body_len,
	};
	m->dispatching++;
	t->done(&res, t->arg);
	m->dispatching--;
	transfer_free(t);
}

static const char *transfer_error(const struct transfer *t, CURLcode rc)
{
	if (rc == CURLE_OK)
		return NULL;
	if (t->body_too_large)
		return "response body over 16 MiB";
	return t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
}

static void reap_finished(struct curlm *m)
{
	CURLMsg *msg;
	int left;
	while (!m->closing && (msg = curl_multi_info_read(m->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURLcode rc = msg->data.result;
		char *priv;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		struct transfer *t = (struct transfer *)priv;
		long status = 0;
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		transfer_detach(t);
		transfer_finish(t, status, transfer_error(t, rc));
	}
	if (m->closing && !m->dispatching)
		destroy(m);
}

/* Keep `len` more bytes in t->body, always NUL-terminated. */
static bool body_append(struct transfer *t, const char *data, size_t len, size_t limit)
{
	if (t->body_len + len > limit)
		return false;
	if (t->body_len + len + 1 > t->body_cap) {
		size_t cap = t->body_cap ? t->body_cap : 1024;
		while (cap < t->body_len + len + 1)
			cap *= 2;
		char *grown = todod_xrealloc(t->body, cap);
		t->body = grown;
		t->body_cap = cap;
	}
	memcpy(t->body + t->body_len, data, len);
	t->body_len += len;
	t->body[t->body_len] = '\0';
	return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	if (!body_append(t, data, size * n, MAX_RESPONSE_BODY)) {
		t->body_too_large = t->body_len + size * n > MAX_RESPONSE_BODY;
		return 0; /* libcurl fails the transfer with CURLE_WRITE_ERROR */
	}
	return size * n;
}

static size_t on_upload_read(char *buf, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	size_t chunk = t->upload_len - t->upload_off;
	if (chunk > size * n)
		chunk = size * n;
	memcpy(buf, t->upload + t->upload_off, chunk);
	t->upload_off += chunk;
	return chunk;
}

/* libcurl hands every SMTP reply line to the debug callback as HEADER_IN;
 * the last reply ("250 OK", or a multi-line "250-..."/"250 ...") is the
 * one a caller wants to see, kept as lines joined by '\n'.  Outgoing
 * lines (which carry AUTH data) are ignored and never stored. */
static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
	struct transfer *t = userp;
	if (type != CURLINFO_HEADER_IN)
		return 0;
	while (size && (data[size - 1] == '\n' || data[size - 1] == '\r'))
		size--;
	/* A failed transfer ends with QUIT; its "221 Bye" would hide the
	 * reply that made it fail. */
	if (size >= 3 && memcmp(data, "221", 3) == 0)
		return 0;
	if (t->reply_complete) {
		t->body_len = 0;
		if (t->body)
			t->body[0] = '\0';
		t->reply_complete = false;
	} else if (t->body_len) {
		body_append(t, "\n", 1, MAX_SMTP_REPLY);
	}
	body_append(t, data, size, MAX_SMTP_REPLY);
	/* "250-" continues a reply; "250 " (or a bare code) ends it. */
	t->reply_complete = size < 4 || data[3] != '-';
	return 0;
}

static struct transfer *transfer_new(struct curlm *m, void *owner, const char *url,
				     const char *protocols, int64_t timeout_ms,
				     todod_transfer_cb done, void *arg, struct todod_err *err)
{
	if (m->closing) {
		todod_err_set(err, "outbound: shutting down");
		return NULL;
	}
	if (!url || !*url) {
		todod_err_set(err, "outbound: no URL given");
		return NULL;
	}
	struct transfer *t = todod_xcalloc(1, sizeof *t);
	if (!(t->easy = curl_easy_init())) {
		free(t);
		todod_err_set(err, "outbound: libcurl cannot make a handle");
		return NULL;
	}
	t->m = m;
	t->owner = owner;
	t->done = done;
	t->arg = arg;
	if (curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (char *)t) != CURLE_OK ||
	    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK ||
	    curl_easy_setopt(t->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, protocols) != CURLE_OK ||
	    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS,
			     (long)(timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS)) != CURLE_OK) {
		transfer_free(t);
		todod_err_set(err, "outbound: cannot set up a transfer to %s", url);
		return NULL;
	}
	return t;
}

static int transfer_start(struct transfer *t, struct todod_err *err)
{
	struct curlm *m = t->m;
	CURLMcode rc = curl_multi_add_handle(m->multi, t->easy);
	if (rc != CURLM_OK) {
		todod_err_set(err, "outbound: %s", curl_multi_strerror(rc));
		transfer_free(t);
		return -1;
	}
	LIST_INSERT_HEAD(&m->transfers, t, link);
	m->in_flight++;
	return 0;
}

/* A method goes verbatim into the request line: letters only. */
static bool method_is_token(const char *method)
{
	return *method && method[strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")] == '\0';
}

static int http_setup(struct transfer *t, const struct todod_http_request *rq,
		      struct todod_err *err)
{
	const char *method = rq->method ? rq->method : "GET";
	if (!method_is_token(method))
		return todod_err_set(err, "outbound: bad HTTP method '%s'", method);

	for (const char *const *h = rq->headers; h && *h; h++)
		if (!(t->list = curl_slist_append(t->list, *h)))
			return todod_err_set(err, "outbound: out of memory");
	/* libcurl would otherwise wait up to a second for "100 Continue"
	 * before sending a larger body. */
	if (!(t->list = curl_slist_append(t->list, "Expect:")))
		return todod_err_set(err, "outbound: out of memory");

	bool posts = rq->body_len > 0 || strcmp(method, "POST") == 0;
	CURLcode rc = curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->list);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
	if (rc == CURLE_OK && posts)
		rc = curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				      (curl_off_t)rq->body_len);
	if (rc == CURLE_OK && posts)
		rc = curl_easy_setopt(t->easy, CURLOPT_COPYPOSTFIELDS,
				      rq->body_len ? (const char *)rq->body : "");
	/* libcurl picks POST when there is a body and GET otherwise; any other
	 * method is named explicitly. */
	if (rc == CURLE_OK && strcmp(method, "HEAD") == 0)
		rc = curl_easy_setopt(t->easy, CURLOPT_NOBODY, 1L);
	else if (rc == CURLE_OK && strcmp(method, posts ? "POST" : "GET") != 0)
		rc = curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, method);
	if (rc != CURLE_OK)
		return todod_err_set(err, "outbound: %s", curl_easy_strerror(rc));
	return 0;
}

int curlm_http(struct curlm *m, void *owner, const struct todod_http_request *rq,
	       todod_transfer_cb done, void *arg, struct todod_err *err)
{
	struct transfer *t = transfer_new(m, owner, rq->url, "http,https", rq->timeout_ms,
					  done, arg, err);
	if (!t)
		return -1;
	if (http_setup(t, rq, err) < 0) {
		transfer_free(t);
		return -1;
	}
	return transfer_start(t, err);
}

static int smtp_setup(struct transfer *t, const struct todod_smtp_message *msg,
		      struct todod_err *err)
{
	static const long use_ssl[] = {
		[TODOD_STARTTLS_NEVER] = CURLUSESSL_NONE,
		[TODOD_STARTTLS_OPTIONAL] = CURLUSESSL_TRY,
		[TODOD_STARTTLS_REQUIRED] = CURLUSESSL_ALL,
	};

	if (!msg->from)
		return todod_err_set(err, "smtp: no envelope sender");
	if (!msg->rcpt || !msg->rcpt[0])
		return todod_err_set(err, "smtp: no recipient");
	if (msg->starttls != TODOD_STARTTLS_NEVER && msg->starttls != TODOD_STARTTLS_OPTIONAL &&
	    msg->starttls != TODOD_STARTTLS_REQUIRED)
		return todod_err_set(err, "smtp: starttls is not a todod_starttls value: %d",
				     (int)msg->starttls);
	for (const char *const *r = msg->rcpt; *r; r++)
		if (!(t->list = curl_slist_append(t->list, *r)))
			return todod_err_set(err, "smtp: out of memory");
	/* One spare byte so an empty message still has a buffer to point at. */
	t->upload = todod_xmalloc(msg->data_len + 1);
	if (msg->data_len)
		memcpy(t->upload, msg->data, msg->data_len);
	t->upload_len = msg->data_len;

	CURLcode rc = curl_easy_setopt(t->easy, CURLOPT_MAIL_FROM, msg->from);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_MAIL_RCPT, t->list);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_UPLOAD, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_READFUNCTION, on_upload_read);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_READDATA, t);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_INFILESIZE_LARGE,
				      (curl_off_t)msg->data_len);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_USE_SSL, use_ssl[msg->starttls]);
	if (rc == CURLE_OK && msg->username)
		rc = curl_easy_setopt(t->easy, CURLOPT_USERNAME, msg->username);
	if (rc == CURLE_OK && msg->username && msg->password)
		rc = curl_easy_setopt(t->easy, CURLOPT_PASSWORD, msg->password);
	/* VERBOSE only routes the dialogue to on_debug; nothing is printed. */
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_DEBUGFUNCTION, on_debug);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_DEBUGDATA, t);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(t->easy, CURLOPT_VERBOSE, 1L);
	if (rc != CURLE_OK)
		return todod_err_set(err, "smtp: %s", curl_easy_strerror(rc));
	return 0;
}

int curlm_smtp(struct curlm *m, void *owner, const struct todod_smtp_message *msg,
	       todod_transfer_cb done, void *arg, struct todod_err *err)
{
	struct transfer *t = transfer_new(m, owner, msg->url, "smtp,smtps", msg->timeout_ms,
					  done, arg, err);
	if (!t)
		return -1;
	if (smtp_setup(t, msg, err) < 0) {
		transfer_free(t);
		return -1;
	}
	return transfer_start(t, err);
}

int curlm_in_flight(const struct curlm *m)
{
	return m->in_flight;
}

void curlm_cancel_owner(struct curlm *m, void *owner)
{
	for (struct transfer *t = LIST_FIRST(&m->transfers), *next; t; t = next) {
		next = LIST_NEXT(t, link);
		if (t->owner != owner)
			continue;
		transfer_detach(t);
		transfer_free(t);
	}
}

/* ---- life cycle ------------------------------------------------------------- */

struct curlm *curlm_new(struct event_base *base, struct todod_err *err)
{
	const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
	if (!(info->features & CURL_VERSION_ASYNCHDNS))
		log_warn("libcurl %s resolves names synchronously: every outbound request "
			 "to a host name can stall the loop; use IP addresses in URLs",
			 info->version);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		todod_err_set(err, "outbound: libcurl initialisation failed");
		return NULL;
	}
	struct curlm *m = todod_xcalloc(1, sizeof *m);
	m->base = base;
	m->multi = curl_multi_init();
	m->timer = evtimer_new(base, on_timeout, m);
	if (!m->multi || !m->timer) {
		if (m->multi)
			curl_multi_cleanup(m->multi);
		if (m->timer)
			event_free(m->timer);
		free(m);
		curl_global_cleanup();
		todod_err_set(err, "outbound: libcurl or libevent cannot set up");
		return NULL;
	}
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket_change);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	return m;
}

static void destroy(struct curlm *m)
{
	/* Counted as dispatching so a callback calling curlm_free() again
	 * does not start a second teardown. */
	m->dispatching++;
	struct transfer *t;
	while ((t = LIST_FIRST(&m->transfers))) {
		transfer_detach(t);
		transfer_finish(t, 0, "cancelled");
	}
	m->dispatching--;
	curl_multi_cleanup(m->multi);
	/* Sockets libcurl never reported as removed (its connection cache). */
	while (!LIST_EMPTY(&m->watches))
		watch_free(LIST_FIRST(&m->watches));
	event_free(m->timer);
	free(m);
	curl_global_cleanup();
}

void curlm_free(struct curlm *m)
{
	if (!m)
		return;
	m->closing = true;
	if (!m->dispatching)
		destroy(m);
}

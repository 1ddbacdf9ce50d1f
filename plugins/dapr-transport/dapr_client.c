/* dapr_client.c - every call to daprd, through the core's curl multi.
 *
 * One place adds what every call needs (the endpoint, dapr-api-token,
 * request_timeout: a sidecar whose scheduler is down answers job calls
 * never) and keeps the calls in flight, so a drain can wait for them and
 * destroy() can free what their callbacks would have freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

struct dapr_call {
	LIST_ENTRY(dapr_call) link;
	struct dapr *d;
	todod_transfer_cb done;
	void *arg;
	void (*forget)(void *arg);
};

static void call_done(const struct todod_transfer_result *res, void *arg)
{
	struct dapr_call *c = arg;
	struct dapr *d = c->d;
	LIST_REMOVE(c, link);
	todod_transfer_cb done = c->done;
	void *done_arg = c->arg;
	free(c);
	done(res, done_arg);
	dapr_settled(d);
}

int dapr_call(struct dapr *d, const struct dapr_request *rq, todod_transfer_cb done, void *arg,
	      void (*forget)(void *arg), struct todod_err *err)
{
	char url[4096], content_type[128], traceparent[128], token[1024];
	const char *headers[4];
	size_t n = 0;
	if ((size_t)snprintf(url, sizeof url, "%s%s", d->endpoint, rq->path) >= sizeof url)
		return todod_err_set(err, "the URL of %s %s is too long", rq->method, rq->path);
	if (rq->content_type) {
		snprintf(content_type, sizeof content_type, "Content-Type: %s", rq->content_type);
		headers[n++] = content_type;
	}
	if (rq->traceparent &&
	    (size_t)snprintf(traceparent, sizeof traceparent, "traceparent: %s", rq->traceparent) <
		    sizeof traceparent)
		headers[n++] = traceparent;
	/* Empty while the core still resolves it (a secret reference). */
	if (d->conf->api_token && *d->conf->api_token) {
		snprintf(token, sizeof token, "dapr-api-token: %s", d->conf->api_token);
		headers[n++] = token;
	}
	headers[n] = NULL;

	struct dapr_call *c = todod_xcalloc(1, sizeof *c);
	*c = (struct dapr_call){ .d = d, .done = done, .arg = arg, .forget = forget };
	const struct todod_http_request hr = {
		.struct_size = sizeof hr,
		.method = rq->method,
		.url = url,
		.headers = headers,
		.body = rq->body,
		.body_len = rq->body_len,
		.timeout_ms = d->conf->request_timeout_ms,
	};
	int rc = d->api->http_request(d->ctx, &hr, call_done, c, err);
	/* The core copied the headers; the token must not linger on the stack. */
	explicit_bzero(token, sizeof token);
	if (rc != 0) {
		free(c);
		return -1;
	}
	LIST_INSERT_HEAD(&d->calls, c, link);
	return 0;
}

int dapr_calls_in_flight(const struct dapr *d)
{
	int n = 0;
	const struct dapr_call *c;
	LIST_FOREACH(c, &d->calls, link)
		n++;
	return n;
}

/* The core cancelled the transfers with the context, without callbacks. */
void dapr_calls_forget(struct dapr *d)
{
	while (!LIST_EMPTY(&d->calls)) {
		struct dapr_call *c = LIST_FIRST(&d->calls);
		LIST_REMOVE(c, link);
		if (c->forget)
			c->forget(c->arg);
		free(c);
	}
}

/* dapr.h - the dapr-transport plugin's parts and what they share.
 *
 *   dapr_plugin.c   options, lifecycle, readiness (the sidecar's health),
 *                   the "transport" service
 *   dapr_client.c   every call to daprd: URL, token, timeout
 *   dapr_text.c     URL escaping, error texts, the token comparison
 *   dapr_publish.c  publishing through daprd's pub/sub API
 *   dapr_app.c      what daprd calls on todod's listener: the subscription
 *                   list, deliveries, job callbacks; the app token
 *   dapr_dlq.c      dead letters with the reason, published by todod
 *   dapr_jobs.c     reminder timing from Dapr Jobs (trigger reminders.due)
 *   dapr_job_queue.c  job changes on their way to the scheduler, kept and
 *                   tried again while it does not take them
 *   dapr_state.c    the inbox driver "dapr-state" over the state API
 *   dapr_secrets.c  the secret resolver "dapr" over the secrets API
 *
 * Everything runs on the loop thread.  Calls to daprd go through the
 * core's curl multi (api->http_request); Dapr's calls to us arrive on the
 * core's one listener (api->http_route). */
#ifndef TODOD_DAPR_H
#define TODOD_DAPR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <todod-plugin.h>

#define DAPR_TRIGGER "reminders.due"

struct dapr_conf {
	char *http_endpoint;
	char *pubsub;
	char *api_token;          /* secret: sent to daprd */
	char *app_token;          /* secret: daprd's calls must carry it */
	int64_t request_timeout_ms;
	bool jobs;
	char *statestore;
	int64_t inbox_ttl_ms;     /* 0: inbox entries are kept for ever */
	int64_t max_deliveries;   /* RETRY answers to one event before todod
				   * dead-letters it; 0: never (daprd does) */
	struct todod_list topics; /* "logical=physical" from topic.<logical> = <physical> */
};

struct dapr_call;
struct dapr_delivery;
struct dapr_deferred;
struct dapr_jobs;
struct dapr_lookup;
struct dapr_redelivery;

struct dapr {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	const struct dapr_conf *conf;
	char endpoint[512];       /* http_endpoint without a trailing '/' */

	/* Topics the core's subscribers need (logical names), collected by
	 * the transport's subscribe() before start. */
	char **wanted;
	size_t n_wanted;

	/* Readiness.  `sidecar_up` follows GET /v1.0/healthz/outbound (and
	 * calls that could not connect); `refusal` is set while daprd turns
	 * publishing down for a reason only the operator can fix. */
	bool sidecar_up;
	bool sidecar_seen;        /* it was up once: a loss is an outage */
	bool said_waiting;        /* "waiting for the sidecar" was logged */
	char why[1024];           /* why the sidecar is not up */
	char refusal[1024];       /* "" unless publishing is refused */
	char refused_topic[256];  /* ... to this topic: a publish there clears it */
	struct todod_timer *health_check;
	bool checking;            /* a health check is in flight */

	LIST_HEAD(, dapr_call) calls;          /* in flight to daprd */
	LIST_HEAD(, dapr_delivery) deliveries; /* daprd's, not answered yet */
	bool started;             /* start() ran: the subscriptions are known */
	STAILQ_HEAD(, dapr_deferred) deferred; /* daprd's calls before that */
	LIST_HEAD(, dapr_lookup) lookups;      /* secrets being resolved */
	struct dapr_redelivery *redeliveries;  /* events answered RETRY (dapr_dlq.c) */
	size_t n_redeliveries;
	struct dapr_jobs *jobs;   /* NULL with jobs = no */
	struct todod_transport transport;
	struct todod_inbox_driver inbox;
	struct todod_secret_resolver resolver;

	/* Calls refused for a wrong or missing app token: when that was last
	 * logged (mono µs, 0: never) and how many were not since. */
	int64_t refusals_logged_us;
	int64_t refusals_unlogged;

	bool draining;
	todod_drained_cb drained;
	struct todod_ctx *drain_ctx;

	struct todod_metric *publish_latency;  /* histogram: publish call to 204 */
	struct todod_metric *publish_failures; /* counter */
	struct todod_metric *deliveries_ok, *deliveries_retry, *deliveries_drop;
	struct todod_metric *job_calls;        /* counter: job callbacks served */
	struct todod_metric *job_failures;     /* counter: jobs daprd did not take */
};

/* Broker name of a logical topic (topic.<logical>); a name without a
 * mapping is its own.  Lives as long as the options. */
const char *dapr_topic_physical(const struct dapr *d, const char *logical);

/* ---- dapr_plugin.c ---- */
/* A call could not reach daprd (`reason`): the sidecar is down until the
 * next health check says otherwise. */
void dapr_sidecar_lost(struct dapr *d, const char *reason);
/* An in-flight call or delivery ended: a drain may be over. */
void dapr_settled(struct dapr *d);

/* ---- dapr_client.c ---- */
struct dapr_request {
	const char *method;
	const char *path;          /* "/v1.0/...", escaped, with its query */
	const char *content_type;  /* NULL without a body */
	const void *body;
	size_t body_len;
	const char *traceparent;   /* NULL: none */
};

/* One call to daprd with the api token and request_timeout.  `done` fires
 * once (not from inside this call); `forget(arg)`, when given, frees
 * `arg` for a call still open when the plugin is destroyed.  -1 with
 * `err` when the call could not be started. */
int dapr_call(struct dapr *d, const struct dapr_request *rq, todod_transfer_cb done, void *arg,
	      void (*forget)(void *arg), struct todod_err *err);
int dapr_calls_in_flight(const struct dapr *d);
void dapr_calls_forget(struct dapr *d);

/* ---- dapr_text.c ---- */
/* What went wrong with an answer that was not a success, for logs and
 * /readyz: "HTTP 404 ERR_PUBSUB_NOT_FOUND: pubsub nope is not found",
 * or the transfer's error ("no answer: Connection refused"). */
void dapr_failure_text(const struct todod_transfer_result *res, char *buf, size_t size);

/* Appends `s` to `buf` percent-encoded for a URL path segment or query
 * value (RFC 3986 unreserved characters stay).  false when it does not
 * fit. */
bool dapr_escape(char *buf, size_t size, const char *s);
/* Appends `s` as it is; false when it does not fit. */
bool dapr_append(char *buf, size_t size, const char *s);

/* Whether `given` is `secret`, in time that does not tell where they
 * differ. */
bool dapr_same_secret(const char *given, const char *secret);

/* The bytes of padded standard base64 `in` (NUL-terminated for
 * convenience, `*out_len` without it; free() them), or NULL when `in` is
 * not that. */
char *dapr_base64_decode(const char *in, size_t *out_len);

/* ---- dapr_publish.c ---- */
/* The transport's publish(): `done` fires once, OK on daprd's 204. */
int dapr_publish(void *self, const struct todod_event *ev, todod_publish_cb done, void *arg);

struct dapr_raw_publish {
	const char *topic;         /* physical */
	const char *key;           /* the partition key; NULL: none */
	const char *const *metadata; /* "name", "value", ..., NULL; NULL: none */
	const void *body;          /* sent as it is (rawPayload) */
	size_t len;
	const char *traceparent;   /* NULL: none */
};

/* POST /v1.0/publish/{pubsub}/{topic}?metadata.rawPayload=true&... with
 * `rp->body`: the one way todod publishes, events and dead letters. */
int dapr_publish_raw(struct dapr *d, const struct dapr_raw_publish *rp, todod_transfer_cb done,
		     void *arg, void (*forget)(void *arg), struct todod_err *err);

/* ---- dapr_app.c ---- */
int dapr_app_routes(struct dapr *d, struct todod_err *err);
/* Answers what is still open (RETRY) when the plugin is destroyed. */
void dapr_app_free(struct dapr *d);
/* Whether the request carries the app token (always, without one); else
 * answers 401 and returns false. */
bool dapr_app_authorized(struct dapr *d, struct todod_http_req *req);
/* Before start() daprd's calls wait (true: `handler` takes `req` later):
 * while the core resolves secrets the loop already runs, but the
 * subscription list, the app token and the database are not there yet. */
bool dapr_app_defer(struct dapr *d, struct todod_http_req *req, todod_http_handler handler,
		    void *arg);
/* start() ran: serve what waited. */
void dapr_app_started(struct dapr *d);

/* ---- dapr_dlq.c ---- */
/* A message daprd delivered, as the broker holds it. */
struct dapr_message {
	struct todod_http_req *req; /* daprd's call, not answered yet */
	const char *topic;         /* logical, lives as long as `wanted` */
	const char *key;           /* the message key daprd passed on; may be NULL */
	const char *body;          /* the broker's bytes */
	size_t len;
};

/* A delivery of `m` is to be answered RETRY: counts it (`*deliveries`)
 * and says whether it was the last one max_deliveries allows, which the
 * caller then dead-letters. */
bool dapr_redelivery_last(struct dapr *d, const struct dapr_message *m, int64_t *deliveries);
/* `m` was handled or dead-lettered: its count goes. */
void dapr_redelivery_settled(struct dapr *d, const struct dapr_message *m);
void dapr_redeliveries_free(struct dapr *d);

/* Publishes `m` to <topic>-dlq with `reason` and `attempts` as metadata;
 * `done(taken, arg)` fires once, not from inside this call.  -1 (logged)
 * when the call could not be started. */
int dapr_dead_letter(struct dapr *d, const struct dapr_message *m, const char *reason,
		     int attempts, void (*done)(bool taken, void *arg), void *arg);

/* ---- dapr_jobs.c ---- */
int dapr_jobs_init(struct dapr *d, struct todod_err *err);
void dapr_jobs_start(struct dapr *d);
/* The sidecar answers (again): register the periodic safety job. */
void dapr_jobs_sidecar_up(struct dapr *d);
void dapr_jobs_free(struct dapr *d);

/* ---- dapr_job_queue.c ---- */
struct dapr_job_queue;
struct dapr_job_queue *dapr_job_queue_new(struct dapr *d);
/* Job `name` is to be `body` (the job as JSON, copied; NULL: deleted).
 * `delivery` (may be NULL) is answered OK once daprd has taken it, or at
 * once when it has to wait for the scheduler. */
void dapr_job_put(struct dapr_job_queue *q, const char *name, const char *body,
		  struct todod_delivery *delivery);
/* The sidecar is back: try what waits now. */
void dapr_job_queue_kick(struct dapr_job_queue *q);
void dapr_job_queue_free(struct dapr_job_queue *q);

/* ---- dapr_state.c ---- */
/* Provides the inbox driver "dapr-state". */
int dapr_state_init(struct dapr *d, struct todod_err *err);

/* ---- dapr_secrets.c ---- */
/* Provides the secret resolver "dapr" (dapr:STORE/KEY). */
int dapr_secrets_init(struct dapr *d, struct todod_err *err);
/* Drops the lookups still open (the core forgets them). */
void dapr_secrets_free(struct dapr *d);

#endif

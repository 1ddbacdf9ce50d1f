/* dapr_job_queue.c - the jobs todod wants the Dapr scheduler to hold, on
 * their way to it.
 *
 * Each wanted change is one job: scheduled (POST /v1.0/jobs/<name>,
 * replacing one of that name) or deleted (DELETE).  While the scheduler
 * takes them they go at once, a few at a time, and the task event that
 * asked for one is answered when daprd has taken it.  When a call fails
 * (daprd holds job calls while its scheduler is down, request_timeout
 * ends them) the change waits here, the event is answered at once (the
 * reminders plugin's scan and the safety job stand in meanwhile), and one
 * waiting change is tried again with backoff until the scheduler answers;
 * then the rest follow.
 *
 * Only the latest change of a job matters: a change replaces the one of
 * the same name still waiting, and a failed call does not come back over
 * a newer change.  Calls of the same name are never in flight together,
 * so they reach the scheduler in the order they were made.  The table is
 * bounded: past JOBS_WAITING_MAX the oldest change is given up, said
 * once per outage (its reminder then fires from the scan or the safety
 * job, late but not lost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dapr.h"

#define JOBS_IN_FLIGHT_MAX 4
#define JOBS_WAITING_MAX 10000
#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 5000

struct job_change {
	TAILQ_ENTRY(job_change) link;
	struct dapr_job_queue *q;
	char name[64];
	char *body;                      /* the job as JSON; NULL: delete it */
	struct todod_delivery *delivery; /* answered once taken or set aside */
};

TAILQ_HEAD(job_changes, job_change);

struct dapr_job_queue {
	struct dapr *d;
	struct job_changes waiting;      /* oldest first, one per name */
	struct job_changes sending;      /* in flight to daprd */
	size_t n_waiting, n_sending;
	bool scheduler_down;             /* the last call failed */
	bool said_down;                  /* ... and that was logged */
	bool said_full;                  /* a change was given up this outage */
	int64_t backoff_ms;
	struct todod_timer *retry;
};

static void pump(struct dapr_job_queue *q);
static void send_change(struct job_change *c);

static struct job_change *find(struct job_changes *list, const char *name)
{
	struct job_change *c;
	TAILQ_FOREACH(c, list, link)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void answer_delivery(struct job_change *c)
{
	if (c->delivery)
		c->q->d->api->bus_answer(c->delivery, TODOD_OK, NULL);
	c->delivery = NULL;
}

static void change_free(struct job_change *c)
{
	free(c->body);
	free(c);
}

/* ---- the scheduler's state -------------------------------------------------- */

static void on_retry(void *arg)
{
	struct dapr_job_queue *q = arg;
	struct job_change *c = TAILQ_FIRST(&q->waiting);
	if (!c || q->d->draining) {
		q->scheduler_down = c != NULL;
		return;
	}
	/* One probe; the others follow once it is taken. */
	TAILQ_REMOVE(&q->waiting, c, link);
	q->n_waiting--;
	send_change(c);
}

static void retry_later(struct dapr_job_queue *q)
{
	struct dapr *d = q->d;
	if (q->retry || d->draining || q->n_sending > 0)
		return;
	q->backoff_ms = q->backoff_ms ? q->backoff_ms * 2 : RETRY_FIRST_MS;
	if (q->backoff_ms > RETRY_MAX_MS)
		q->backoff_ms = RETRY_MAX_MS;
	d->api->timer_add(d->ctx, &q->retry, q->backoff_ms, 0, on_retry, q);
}

static void scheduler_failed(struct dapr_job_queue *q, const char *job,
			     const struct todod_transfer_result *res)
{
	struct dapr *d = q->d;
	char text[600];
	dapr_failure_text(res, text, sizeof text);
	d->api->metric_add(d->job_failures, 1);
	q->scheduler_down = true;
	/* With the sidecar away that is said there. */
	if (q->said_down || (res->status == 0 && !d->sidecar_up))
		return;
	d->api->log(d->ctx, TODOD_LOG_WARN,
		    "daprd did not take job %s (%s): is the Dapr scheduler running? Jobs wait and "
		    "are tried again; reminders due meanwhile fire from the reminders plugin's "
		    "scan", job, text);
	q->said_down = true;
}

static void scheduler_answers(struct dapr_job_queue *q)
{
	if (q->said_down)
		q->d->api->log(q->d->ctx, TODOD_LOG_INFO, "daprd takes jobs again%s",
			       q->n_waiting ? "; the jobs that waited follow" : "");
	q->scheduler_down = q->said_down = q->said_full = false;
	q->backoff_ms = 0;
	q->d->api->timer_del(&q->retry);
}

/* ---- changes on their way ------------------------------------------------------ */

/* A job that is not there is as good as deleted: daprd says so with 404,
 * or with 500 "job not found" (pitfall 18). */
static bool taken(const struct job_change *c, const struct todod_transfer_result *res)
{
	if (res->status >= 200 && res->status < 300)
		return true;
	return !c->body && (res->status == 404 ||
			    (res->status == 500 && res->body &&
			     strstr(res->body, "not found") != NULL));
}

static void wait_again(struct job_change *c)
{
	struct dapr_job_queue *q = c->q;
	if (find(&q->waiting, c->name)) {
		change_free(c); /* a newer change of this job waits */
		return;
	}
	TAILQ_INSERT_HEAD(&q->waiting, c, link);
	q->n_waiting++;
}

static void on_answer(const struct todod_transfer_result *res, void *arg)
{
	struct job_change *c = arg;
	struct dapr_job_queue *q = c->q;
	TAILQ_REMOVE(&q->sending, c, link);
	q->n_sending--;
	answer_delivery(c);
	if (taken(c, res)) {
		q->d->api->log(q->d->ctx, TODOD_LOG_DEBUG, "job %s %s", c->name,
			       c->body ? "scheduled" : "deleted");
		change_free(c);
		scheduler_answers(q);
		pump(q);
		return;
	}
	scheduler_failed(q, c->name, res);
	wait_again(c);
	retry_later(q);
}

static void forget(void *arg)
{
	change_free(arg); /* the core forgot the delivery with the plugin */
}

static void send_change(struct job_change *c)
{
	struct dapr_job_queue *q = c->q;
	struct dapr *d = q->d;
	char path[256] = "/v1.0/jobs/";
	struct todod_err err = { "" };
	const struct dapr_request rq = {
		.method = c->body ? "POST" : "DELETE",
		.path = path,
		.content_type = c->body ? "application/json" : NULL,
		.body = c->body,
		.body_len = c->body ? strlen(c->body) : 0,
	};
	TAILQ_INSERT_TAIL(&q->sending, c, link);
	q->n_sending++;
	if (dapr_escape(path, sizeof path, c->name) &&
	    dapr_call(d, &rq, on_answer, c, forget, &err) == 0)
		return;
	d->api->log(d->ctx, TODOD_LOG_ERROR, "cannot %s job %s: %s",
		    c->body ? "schedule" : "delete", c->name, err.text[0] ? err.text : "name too long");
	TAILQ_REMOVE(&q->sending, c, link);
	q->n_sending--;
	answer_delivery(c);
	change_free(c);
}

/* Sends what waits while the scheduler takes jobs, a few at a time. */
static void pump(struct dapr_job_queue *q)
{
	struct job_change *c = TAILQ_FIRST(&q->waiting), *next;
	for (; c && !q->scheduler_down && !q->d->draining && q->n_sending < JOBS_IN_FLIGHT_MAX;
	     c = next) {
		next = TAILQ_NEXT(c, link);
		if (find(&q->sending, c->name))
			continue;
		TAILQ_REMOVE(&q->waiting, c, link);
		q->n_waiting--;
		send_change(c);
	}
}

static void give_up_oldest(struct dapr_job_queue *q)
{
	struct job_change *oldest = TAILQ_FIRST(&q->waiting);
	if (!q->said_full)
		q->d->api->log(q->d->ctx, TODOD_LOG_WARN, "%d job changes wait for the Dapr "
			       "scheduler; the oldest are given up (their reminders fire from the "
			       "scan or the safety job)", JOBS_WAITING_MAX);
	q->said_full = true;
	TAILQ_REMOVE(&q->waiting, oldest, link);
	q->n_waiting--;
	change_free(oldest);
}

void dapr_job_put(struct dapr_job_queue *q, const char *name, const char *body,
		  struct todod_delivery *delivery)
{
	struct job_change *c = find(&q->waiting, name);
	if (c) {
		free(c->body);
		c->body = body ? todod_xstrdup(body) : NULL;
		if (delivery)
			q->d->api->bus_answer(delivery, TODOD_OK, NULL);
		pump(q);
		return;
	}
	c = todod_xcalloc(1, sizeof *c);
	c->q = q;
	snprintf(c->name, sizeof c->name, "%s", name);
	c->body = body ? todod_xstrdup(body) : NULL;
	c->delivery = delivery;
	if (!q->scheduler_down && !q->d->draining && q->n_sending < JOBS_IN_FLIGHT_MAX &&
	    !find(&q->sending, name) && TAILQ_EMPTY(&q->waiting)) {
		send_change(c);
		return;
	}
	answer_delivery(c);
	if (q->n_waiting >= JOBS_WAITING_MAX)
		give_up_oldest(q);
	TAILQ_INSERT_TAIL(&q->waiting, c, link);
	q->n_waiting++;
	pump(q);
}

/* The sidecar is back: what waits is tried now, not after the backoff. */
void dapr_job_queue_kick(struct dapr_job_queue *q)
{
	if (!q->scheduler_down || q->n_sending > 0 || q->d->draining)
		return;
	q->backoff_ms = 0;
	q->d->api->timer_del(&q->retry);
	q->d->api->timer_add(q->d->ctx, &q->retry, 0, 0, on_retry, q);
}

struct dapr_job_queue *dapr_job_queue_new(struct dapr *d)
{
	struct dapr_job_queue *q = todod_xcalloc(1, sizeof *q);
	q->d = d;
	TAILQ_INIT(&q->waiting);
	TAILQ_INIT(&q->sending);
	return q;
}

/* The calls in flight were forgotten with the plugin's (dapr_calls_forget
 * freed them). */
void dapr_job_queue_free(struct dapr_job_queue *q)
{
	if (!q)
		return;
	q->d->api->timer_del(&q->retry);
	while (!TAILQ_EMPTY(&q->waiting)) {
		struct job_change *c = TAILQ_FIRST(&q->waiting);
		TAILQ_REMOVE(&q->waiting, c, link);
		change_free(c);
	}
	free(q);
}

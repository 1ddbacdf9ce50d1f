/* dapr_jobs.c - reminder timing from the Dapr scheduler (jobs = yes).
 *
 * Every replica would otherwise arm its own timer for every reminder.
 * Instead this plugin drives the reminders plugin's trigger
 * "reminders.due" (trigger_drive(): reminders then rests its wake-up
 * timer and keeps its slow scan) and times the reminders with Dapr Jobs,
 * which the scheduler fires once, on one replica of the app id:
 *
 *   - one one-shot job per reminder, "reminder-<task id>" at its
 *     remind_at, from the task events that carry a pending reminder (this
 *     plugin consumes task-events as "dapr-jobs", so one replica of the
 *     group schedules each); `overwrite` replaces the job when the
 *     reminder moves, and when an event comes again;
 *   - one periodic job, "reminders-safety" every minute, so a reminder
 *     whose job was lost still fires.
 *
 * Every callback, POST /job/<name>, fires the trigger.  The trigger
 * claims what is due in the database, atomically, so a job that fires
 * twice, on any replica, or for a reminder that moved, does no harm.
 *
 * Jobs must carry `data` (daprd never calls the app for a job without
 * it), and job calls get request_timeout: with the scheduler down daprd
 * holds them forever.  While job calls fail, reminder events are not held
 * up by them: they are answered at once and the reminders fall back to
 * the scan, late but never lost, until the safety job is taken again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

#define JOBS_CONSUMER "dapr-jobs"
#define JOBS_TOPIC "task-events"
#define JOB_ROUTE "/job/"
#define SAFETY_JOB "reminders-safety"
#define SAFETY_SCHEDULE "@every 1m"
/* How often a scheduler that does not take jobs is asked again. */
#define SCHEDULER_RETRY_MS 5000

struct dapr_jobs {
	struct dapr *d;
	bool driving;              /* the trigger's provider is loaded */
	bool scheduler_down;       /* the last job call failed */
	bool safety_in_flight;
	struct todod_timer *retry;
};

/* One reminder's job, from the event to daprd's answer. */
struct job_call {
	struct dapr_jobs *j;
	struct todod_delivery *delivery; /* answered once the job is taken */
	char name[64];
};

static void register_safety_job(struct dapr_jobs *j);

/* ---- the scheduler's state -------------------------------------------------- */

static void on_retry(void *arg)
{
	register_safety_job(arg);
}

static void scheduler_failed(struct dapr_jobs *j, const char *job,
			     const struct todod_transfer_result *res)
{
	struct dapr *d = j->d;
	char text[600];
	dapr_failure_text(res, text, sizeof text);
	d->api->metric_add(d->job_failures, 1);
	if (res->status == 0 && !d->sidecar_up)
		return; /* the sidecar is away: said there, and asked again when back */
	if (!j->scheduler_down)
		d->api->log(d->ctx, TODOD_LOG_WARN,
			    "daprd did not take job %s (%s): is the Dapr scheduler running? "
			    "Reminders fall back to the reminders plugin's scan until it does",
			    job, text);
	j->scheduler_down = true;
	if (!j->retry && !d->draining)
		d->api->timer_add(d->ctx, &j->retry, SCHEDULER_RETRY_MS, 0, on_retry, j);
}

static void scheduler_answers(struct dapr_jobs *j)
{
	if (j->scheduler_down)
		j->d->api->log(j->d->ctx, TODOD_LOG_INFO, "daprd takes jobs again");
	j->scheduler_down = false;
	j->d->api->timer_del(&j->retry);
}

/* POST /v1.0/jobs/<name> with `body`, replacing a job of that name. */
static int schedule_job(struct dapr_jobs *j, const char *name, json_object *body,
			todod_transfer_cb done, void *arg, void (*forget)(void *arg),
			struct todod_err *err)
{
	char path[256] = "/v1.0/jobs/";
	if (!dapr_escape(path, sizeof path, name))
		return todod_err_set(err, "job name %s is too long", name);
	json_object_object_add(body, "overwrite", json_object_new_boolean(1));
	size_t len;
	const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	const struct dapr_request rq = { .method = "POST", .path = path,
					 .content_type = "application/json", .body = text,
					 .body_len = len };
	return dapr_call(j->d, &rq, done, arg, forget, err);
}

static bool taken(const struct todod_transfer_result *res)
{
	return res->status >= 200 && res->status < 300;
}

/* ---- the safety job ----------------------------------------------------------- */

static void on_safety_answer(const struct todod_transfer_result *res, void *arg)
{
	struct dapr_jobs *j = arg;
	j->safety_in_flight = false;
	if (taken(res)) {
		scheduler_answers(j);
		j->d->api->log(j->d->ctx, TODOD_LOG_DEBUG, "job " SAFETY_JOB " (" SAFETY_SCHEDULE
			       ") is scheduled");
		return;
	}
	scheduler_failed(j, SAFETY_JOB, res);
}

static void register_safety_job(struct dapr_jobs *j)
{
	struct dapr *d = j->d;
	if (!j->driving || j->safety_in_flight || d->draining || !d->sidecar_up)
		return;
	json_object *body = json_object_new_object();
	json_object *data = json_object_new_object();
	json_object_object_add(data, "job", json_object_new_string(SAFETY_JOB));
	json_object_object_add(body, "schedule", json_object_new_string(SAFETY_SCHEDULE));
	json_object_object_add(body, "data", data);
	struct todod_err err = { "" };
	if (schedule_job(j, SAFETY_JOB, body, on_safety_answer, j, NULL, &err) == 0)
		j->safety_in_flight = true;
	else
		d->api->log(d->ctx, TODOD_LOG_ERROR, "cannot schedule job " SAFETY_JOB ": %s",
			    err.text);
	json_object_put(body);
}

void dapr_jobs_sidecar_up(struct dapr *d)
{
	if (d->jobs)
		register_safety_job(d->jobs);
}

/* ---- one job per reminder ------------------------------------------------------ */

static void job_call_forget(void *arg)
{
	free(arg);
}

static void on_reminder_answer(const struct todod_transfer_result *res, void *arg)
{
	struct job_call *jc = arg;
	struct dapr_jobs *j = jc->j;
	if (taken(res))
		scheduler_answers(j);
	else
		scheduler_failed(j, jc->name, res);
	/* Either way the event is done with: a reminder without its job
	 * fires from the scan. */
	j->d->api->bus_answer(jc->delivery, TODOD_OK, NULL);
	free(jc);
}

static const char *string_at(json_object *obj, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

/* A task event with a pending reminder gets the reminder's job; any
 * other event, and every event while the scheduler fails, is answered
 * at once. */
static void on_task_event(const struct todod_event *ev, struct todod_delivery *delivery,
			  void *arg)
{
	struct dapr_jobs *j = arg;
	struct dapr *d = j->d;
	json_object *task, *id;
	const char *state, *remind_at;
	if (!j->driving || j->scheduler_down || d->draining ||
	    !json_object_object_get_ex(ev->data, "task", &task) ||
	    !json_object_object_get_ex(task, "id", &id) ||
	    !json_object_is_type(id, json_type_int) || !(state = string_at(task, "reminder_state")) ||
	    strcmp(state, "pending") != 0 || !(remind_at = string_at(task, "remind_at"))) {
		d->api->bus_answer(delivery, TODOD_OK, NULL);
		return;
	}
	struct job_call *jc = todod_xcalloc(1, sizeof *jc);
	int64_t task_id = json_object_get_int64(id);
	*jc = (struct job_call){ .j = j, .delivery = delivery };
	snprintf(jc->name, sizeof jc->name, "reminder-%" PRId64, task_id);

	/* The snapshot's remind_at is RFC 3339 in UTC, what dueTime takes;
	 * one already past fires at once. */
	json_object *body = json_object_new_object();
	json_object *data = json_object_new_object();
	json_object_object_add(data, "task_id", json_object_new_int64(task_id));
	json_object_object_add(data, "remind_at", json_object_new_string(remind_at));
	json_object_object_add(body, "dueTime", json_object_new_string(remind_at));
	json_object_object_add(body, "data", data);
	struct todod_err err = { "" };
	int rc = schedule_job(j, jc->name, body, on_reminder_answer, jc, job_call_forget, &err);
	json_object_put(body);
	if (rc != 0) {
		d->api->log(d->ctx, TODOD_LOG_ERROR, "cannot schedule job %s: %s", jc->name,
			    err.text);
		free(jc);
		d->api->bus_answer(delivery, TODOD_OK, NULL);
	}
}

/* ---- the callback ------------------------------------------------------------ */

static void serve_job(struct todod_http_req *req, void *arg)
{
	struct dapr_jobs *j = arg;
	struct dapr *d = j->d;
	if (dapr_app_defer(d, req, serve_job, j) || !dapr_app_authorized(d, req))
		return;
	d->api->metric_add(d->job_calls, 1);
	const char *name = d->api->http_path(req) + strlen(JOB_ROUTE);
	const struct todod_trigger *t = d->api->trigger_get(d->ctx, DAPR_TRIGGER);
	if (!t) {
		/* Nothing to fire, and nothing daprd could retry into success. */
		d->api->log(d->ctx, TODOD_LOG_DEBUG, "job %s: no plugin provides trigger "
			    DAPR_TRIGGER, name);
		d->api->http_reply(req, 204, NULL, NULL, 0);
		return;
	}
	struct todod_err err = { "" };
	if (t->fire(t->self, &err) != 0) {
		/* The scheduler tries again as the job's failure policy says,
		 * perhaps on another replica. */
		d->api->log(d->ctx, TODOD_LOG_INFO, "job %s: trigger " DAPR_TRIGGER " refused: %s",
			    name, err.text);
		d->api->http_reply_error(req, 503, "TRIGGER_REFUSED", err.text);
		return;
	}
	d->api->log(d->ctx, TODOD_LOG_DEBUG, "job %s fired " DAPR_TRIGGER, name);
	d->api->http_reply(req, 204, NULL, NULL, 0);
}

/* ---- lifecycle ------------------------------------------------------------------ */

int dapr_jobs_init(struct dapr *d, struct todod_err *err)
{
	if (!d->conf->jobs)
		return 0;
	struct dapr_jobs *j = todod_xcalloc(1, sizeof *j);
	j->d = d;
	d->jobs = j;
	if (d->api->bus_subscribe(d->ctx, JOBS_TOPIC, JOBS_CONSUMER, on_task_event, j, err) != 0 ||
	    d->api->http_route(d->ctx, TODOD_HTTP_POST, JOB_ROUTE "*", serve_job, j, err) != 0)
		return -1; /* the caller frees d->jobs with the rest */
	return 0;
}

/* Every plugin's init() has run: the trigger's provider, if loaded, has
 * provided it. */
void dapr_jobs_start(struct dapr *d)
{
	struct dapr_jobs *j = d->jobs;
	if (!j)
		return;
	j->driving = d->api->trigger_drive(d->ctx, DAPR_TRIGGER) != NULL;
	if (!j->driving)
		d->api->log(d->ctx, TODOD_LOG_INFO, "jobs = yes, but no plugin provides trigger "
			    DAPR_TRIGGER " (load reminders): no reminder jobs");
}

void dapr_jobs_free(struct dapr *d)
{
	if (!d->jobs)
		return;
	d->api->timer_del(&d->jobs->retry);
	free(d->jobs);
	d->jobs = NULL;
}

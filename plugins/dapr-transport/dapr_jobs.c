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
 *     reminder moves, and when an event comes again.  The job is deleted
 *     when an event says the reminder is gone: the task deleted or
 *     completed, the reminder cleared or skipped;
 *   - one periodic job, "reminders-safety" every minute, so a reminder
 *     whose job was lost still fires.
 *
 * Every callback, POST /job/<name>, fires the trigger.  The trigger
 * claims what is due in the database, atomically, so a job that fires
 * twice, on any replica, or for a reminder that moved, does no harm.
 *
 * Jobs must carry `data` (daprd never calls the app for a job without
 * it).  The calls go through dapr_job_queue.c, which keeps what the
 * scheduler could not take and tries again until it does. */
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

struct dapr_jobs {
	struct dapr *d;
	bool driving;              /* the trigger's provider is loaded */
	struct dapr_job_queue *queue;
};

/* Hands `body` (the job, without its name) to the queue as job `name`,
 * replacing one of that name; `delivery` is answered once it is taken or
 * waits. */
static void schedule_job(struct dapr_jobs *j, const char *name, json_object *body,
			 struct todod_delivery *delivery)
{
	json_object_object_add(body, "overwrite", json_object_new_boolean(1));
	dapr_job_put(j->queue, name, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
		     delivery);
}

/* ---- the safety job ----------------------------------------------------------- */

static void register_safety_job(struct dapr_jobs *j)
{
	struct dapr *d = j->d;
	if (!j->driving || d->draining)
		return;
	json_object *body = json_object_new_object();
	json_object *data = json_object_new_object();
	json_object_object_add(data, "job", json_object_new_string(SAFETY_JOB));
	json_object_object_add(body, "schedule", json_object_new_string(SAFETY_SCHEDULE));
	json_object_object_add(body, "data", data);
	schedule_job(j, SAFETY_JOB, body, NULL);
	json_object_put(body);
}

void dapr_jobs_sidecar_up(struct dapr *d)
{
	if (!d->jobs)
		return;
	register_safety_job(d->jobs);
	dapr_job_queue_kick(d->jobs->queue);
}

/* ---- one job per reminder ------------------------------------------------------ */

static const char *string_at(json_object *obj, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static bool names_field(json_object *changed, const char *field)
{
	size_t n = json_object_is_type(changed, json_type_array) ? json_object_array_length(changed)
								  : 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(changed, i));
		if (name && strcmp(name, field) == 0)
			return true;
	}
	return false;
}

static bool is_type(const struct todod_event *ev, const char *type)
{
	return ev->type && strcmp(ev->type, type) == 0;
}

/* What a task event means for the task's job: schedule it (a pending
 * reminder), delete it (a pending reminder ended without firing: the task
 * deleted or completed, the reminder cleared or skipped), or nothing. */
enum job_change_kind { JOB_NONE, JOB_SCHEDULE, JOB_DELETE };

static enum job_change_kind job_change_of(const struct todod_event *ev, json_object *task)
{
	const char *state = string_at(task, "reminder_state");
	bool pending = state && strcmp(state, "pending") == 0;
	bool has_reminder = string_at(task, "remind_at") != NULL;
	if (is_type(ev, "todod.task.deleted"))
		return pending && has_reminder ? JOB_DELETE : JOB_NONE;
	if (pending && has_reminder)
		return JOB_SCHEDULE;
	if (is_type(ev, "todod.task.completed"))
		/* Completion turns a pending reminder into a skipped one. */
		return state && strcmp(state, "skipped") == 0 ? JOB_DELETE : JOB_NONE;
	json_object *changed;
	if (is_type(ev, "todod.task.updated") &&
	    json_object_object_get_ex(ev->data, "changed", &changed) &&
	    (names_field(changed, "remind_at") || names_field(changed, "reminder_state")) &&
	    !(state && strcmp(state, "fired") == 0))
		return JOB_DELETE;
	return JOB_NONE;
}

static void on_task_event(const struct todod_event *ev, struct todod_delivery *delivery,
			  void *arg)
{
	struct dapr_jobs *j = arg;
	json_object *task, *id;
	enum job_change_kind change = JOB_NONE;
	if (j->driving && !j->d->draining && json_object_object_get_ex(ev->data, "task", &task) &&
	    json_object_object_get_ex(task, "id", &id) && json_object_is_type(id, json_type_int))
		change = job_change_of(ev, task);
	if (change == JOB_NONE) {
		j->d->api->bus_answer(delivery, TODOD_OK, NULL);
		return;
	}
	int64_t task_id = json_object_get_int64(id);
	char name[64];
	snprintf(name, sizeof name, "reminder-%" PRId64, task_id);
	if (change == JOB_DELETE) {
		dapr_job_put(j->queue, name, NULL, delivery);
		return;
	}
	/* The snapshot's remind_at is RFC 3339 in UTC, what dueTime takes;
	 * one already past fires at once. */
	const char *remind_at = string_at(task, "remind_at");
	json_object *body = json_object_new_object();
	json_object *data = json_object_new_object();
	json_object_object_add(data, "task_id", json_object_new_int64(task_id));
	json_object_object_add(data, "remind_at", json_object_new_string(remind_at));
	json_object_object_add(body, "dueTime", json_object_new_string(remind_at));
	json_object_object_add(body, "data", data);
	schedule_job(j, name, body, delivery);
	json_object_put(body);
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
	j->queue = dapr_job_queue_new(d);
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
	dapr_job_queue_free(d->jobs->queue);
	free(d->jobs);
	d->jobs = NULL;
}

/* recurrence.c - the next task of a recurring series.
 *
 * Completions of tasks with a recurrence rule arrive on topic
 * "task-recurrence".  The successor is computed and written by the store
 * (operation "task.recur", which expands the rule in the core), with the
 * delivery's inbox key as once-key: the successor, its event and the
 * inbox row commit together, so a redelivered event makes no second task. */
#include <stdlib.h>
#include <string.h>

#include <todod-plugin.h>

struct recurrence {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	int in_flight;                 /* store calls not yet answered */
	todod_drained_cb drained;      /* set while shutting down */
};

/* One completion being turned into its successor. */
struct recur_job {
	struct recurrence *rc;
	struct todod_delivery *delivery;
	int64_t task_id;
};

static int64_t data_int(json_object *obj, const char *key)
{
	json_object *value;
	return obj && json_object_object_get_ex(obj, key, &value) ? json_object_get_int64(value) : 0;
}

static void on_recurred(json_object *res, const struct todod_store_error *err, void *arg)
{
	struct recur_job *job = arg;
	struct recurrence *rc = job->rc;
	const struct todod_api *api = rc->api;

	if (!err) {
		json_object *task, *reason;
		if (json_object_object_get_ex(res, "task", &task))
			api->log(rc->ctx, TODOD_LOG_INFO, "task %lld: next occurrence is task %lld",
				 (long long)job->task_id, (long long)data_int(task, "id"));
		else if (json_object_object_get_ex(res, "reason", &reason))
			api->log(rc->ctx, TODOD_LOG_INFO, "task %lld: no next occurrence (%s)",
				 (long long)job->task_id, json_object_get_string(reason));
		api->bus_answer(job->delivery, TODOD_OK, NULL);
	} else if (strcmp(err->code, "ALREADY_HANDLED") == 0) {
		api->log(rc->ctx, TODOD_LOG_DEBUG, "task %lld: completion already handled",
			 (long long)job->task_id);
		api->bus_answer(job->delivery, TODOD_OK, NULL);
	} else if (strcmp(err->code, "DATABASE_UNAVAILABLE") == 0) {
		api->bus_answer(job->delivery, TODOD_RETRY, err->text);
	} else {
		char reason[600];
		snprintf(reason, sizeof reason, "%s: %s", err->code, err->text);
		api->log(rc->ctx, TODOD_LOG_WARN, "task %lld: no next occurrence: %s",
			 (long long)job->task_id, reason);
		api->bus_answer(job->delivery, TODOD_DROP, reason);
	}
	free(job);
	if (--rc->in_flight == 0 && rc->drained)
		rc->drained(rc->ctx);
}

static void on_completed(const struct todod_event *ev, struct todod_delivery *d, void *arg)
{
	struct recurrence *rc = arg;
	const struct todod_api *api = rc->api;

	/* The topic carries completions only; anything else is not ours. */
	if (strcmp(ev->type, "todod.task.completed") != 0) {
		api->bus_answer(d, TODOD_OK, NULL);
		return;
	}
	json_object *task = NULL;
	json_object_object_get_ex(ev->data, "task", &task);
	int64_t user_id = data_int(ev->data, "user_id");
	int64_t task_id = data_int(task, "id");
	if (user_id <= 0 || task_id <= 0) {
		api->bus_answer(d, TODOD_DROP, "the event names no user_id and task id");
		return;
	}

	struct recur_job *job = todod_xmalloc(sizeof *job);
	*job = (struct recur_job){ rc, d, task_id };
	rc->in_flight++;
	json_object *args = json_object_new_object();
	json_object_object_add(args, "id", json_object_new_int64(task_id));
	struct todod_err err;
	if (api->store_call(rc->ctx, "task.recur", user_id, args, api->delivery_consumer(d),
			    api->delivery_event_id(d), on_recurred, job, &err) != 0) {
		api->bus_answer(d, TODOD_DROP, err.text);
		free(job);
		rc->in_flight--;
	}
	json_object_put(args);
}

static int recurrence_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
			   void **state, struct todod_err *err)
{
	struct recurrence *rc = todod_xcalloc(1, sizeof *rc);
	rc->api = api;
	rc->ctx = ctx;
	if (api->bus_subscribe(ctx, "task-recurrence", "recurrence", on_completed, rc, err) != 0) {
		free(rc);
		return -1;
	}
	*state = rc;
	return 0;
}

/* A store answer still on its way would reach freed state. */
static void recurrence_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct recurrence *rc = state;
	if (rc->in_flight == 0)
		done(ctx);
	else
		rc->drained = done;
}

static void recurrence_destroy(void *state) { free(state); }

static const struct todod_opt recurrence_options[] = {
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "recurrence",
	.version = "1.0",
	.description = "Creates the next task of a recurring series when one is completed",
	.options = recurrence_options,
	.init = recurrence_init,
	.drain = recurrence_drain,
	.destroy = recurrence_destroy,
};

/* reminders.c - fires each stored remind_at once, at its time.
 *
 * Two halves, kept apart on purpose:
 *   - "claim and emit" (reminders_check): the store op reminder.claim_due
 *     marks the due reminders fired and writes their todod.reminder.due
 *     events in one transaction, batch after batch until a short batch
 *     says nothing due is left.  The database makes this safe with any
 *     number of replicas, so every trigger may simply call it.
 *   - "when to check" (the triggers): a wall-clock timer armed for the
 *     earliest pending reminder, a periodic safety scan, task events
 *     (also other replicas' changes) that bring a reminder forward, and
 *     the service trigger "reminders.due" that another plugin (a Dapr Job
 *     callback, a scheduler) fires.  While such a plugin drives the
 *     trigger (trigger_drive()), its scheduler times the reminders and
 *     the wake-up timer rests, so replicas do not each poll; the scan
 *     stays as the safety net.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <todod-plugin.h>

/* A reminder that came due while a round ran is claimed by another round
 * at once.  One the database calls due although it was due before the
 * round began (its clock behind ours, or the row locked by a replica's
 * claim) is looked at again shortly, so that this can never spin. */
#define ALREADY_DUE_RETRY_MS 20

/* While driven, the wake-up timer is only armed this close to now: for a
 * reminder a job fired a moment too early for (the scheduler's clock is
 * not the database's), which would otherwise wait for the scan. */
#define DRIVEN_HORIZON_MS 1000

struct reminders_conf {
	int64_t scan_interval_ms;
	int64_t grace_ms;
	int64_t batch;
};

struct reminders {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	const struct reminders_conf *conf;

	struct todod_timer *scan;
	struct todod_timer *wake;  /* one-shot, for the earliest pending reminder */
	int64_t wake_at_ms;        /* when `wake` fires; meaningless without it */

	bool claiming;             /* a claim round is in flight: never two */
	bool check_again;          /* a trigger came during that round */
	int64_t hint_at_ms;        /* earliest remind_at hinted during that round; 0: none */
	int64_t round_fired, round_skipped;
	int64_t round_started_ms;
	const char *round_trigger; /* what started the round, for the log */

	bool unavailable;          /* the last claim found no database */
	char why[256];

	char driver[64];           /* who drives "reminders.due"; "" when nobody */
	bool stopping;             /* draining: no new rounds, no timers */
	todod_drained_cb drained;  /* set while a drain waits for the round */

	struct todod_trigger due;  /* service trigger "reminders.due" */

	struct todod_metric *fired, *skipped, *lateness;
};

static void reminders_check(struct reminders *r, const char *trigger);

/* ---- when to check ------------------------------------------------------- */

static void on_wake(void *arg)
{
	reminders_check(arg, "timer");
}

static void on_scan(void *arg)
{
	reminders_check(arg, "scan");
}

/* Points the wake-up timer at `at_ms`, replacing whatever it was set to. */
static void arm(struct reminders *r, int64_t at_ms)
{
	if (r->driver[0] && at_ms - r->api->now_ms() > DRIVEN_HORIZON_MS) {
		r->api->timer_del(&r->wake);
		return;
	}
	if (r->api->timer_at(r->ctx, &r->wake, at_ms, on_wake, r) != 0) {
		r->api->log(r->ctx, TODOD_LOG_ERROR,
			    "cannot arm the reminder timer; the scan every %" PRId64 " ms stands in",
			    r->conf->scan_interval_ms);
		return;
	}
	r->wake_at_ms = at_ms;
}

/* A reminder at `at_ms` exists: make sure the timer fires no later. */
static void arm_no_later_than(struct reminders *r, int64_t at_ms)
{
	if (r->claiming) {
		/* The round in flight may have read the tasks before this
		 * change; it re-arms when it ends and takes this into account. */
		if (r->hint_at_ms == 0 || at_ms < r->hint_at_ms)
			r->hint_at_ms = at_ms;
		return;
	}
	if (!r->wake || at_ms < r->wake_at_ms)
		arm(r, at_ms);
}

/* Task events are only a hint that the earliest reminder may have moved
 * forward; the claim itself reads the database.  So the answer is OK at
 * once, whatever the event says. */
static void on_task_event(const struct todod_event *ev, struct todod_delivery *d, void *arg)
{
	struct reminders *r = arg;
	json_object *task, *state, *remind_at;
	if (!r->stopping && json_object_object_get_ex(ev->data, "task", &task) &&
	    json_object_object_get_ex(task, "reminder_state", &state) &&
	    strcmp(json_object_get_string(state), "pending") == 0 &&
	    json_object_object_get_ex(task, "remind_at", &remind_at)) {
		const char *text = json_object_get_string(remind_at);
		int64_t at_ms;
		if (r->api->rfc3339_parse(text, &at_ms) == 0 && at_ms > 0)
			arm_no_later_than(r, at_ms);
	}
	r->api->bus_answer(d, TODOD_OK, NULL);
}

/* ---- claim and emit ------------------------------------------------------ */

static void claim_batch(struct reminders *r);

/* Ends a round: logs what it did and hands over to a drain waiting for
 * it.  Returns whether the plugin goes on (is not stopping). */
static bool end_round(struct reminders *r)
{
	r->claiming = false;
	if (r->round_fired || r->round_skipped)
		r->api->log(r->ctx, TODOD_LOG_INFO, "%s: %" PRId64 " reminder(s) fired",
			    r->round_trigger, r->round_fired);
	else
		r->api->log(r->ctx, TODOD_LOG_DEBUG, "%s: nothing due", r->round_trigger);
	if (r->round_skipped)
		r->api->log(r->ctx, TODOD_LOG_WARN,
			    "%s: %" PRId64 " reminder(s) skipped: due more than %" PRId64
			    " s ago (option grace)",
			    r->round_trigger, r->round_skipped, r->conf->grace_ms / 1000);
	if (r->drained) {
		todod_drained_cb done = r->drained;
		r->drained = NULL;
		done(r->ctx);
	}
	return !r->stopping;
}

/* A failed round leaves the timer as it was: what it was armed for is
 * still pending, and the scan retries without hammering a sick database. */
static void round_failed(struct reminders *r, const char *code, const char *text)
{
	snprintf(r->why, sizeof r->why, "claiming due reminders failed: %s", text);
	r->unavailable = strcmp(code, "DATABASE_UNAVAILABLE") == 0;
	r->api->log(r->ctx, TODOD_LOG_ERROR, "%s: %s (%s); the scan tries again",
		    r->round_trigger, r->why, code);
	r->check_again = false;
	if (end_round(r) && r->hint_at_ms)
		arm_no_later_than(r, r->hint_at_ms);
	r->hint_at_ms = 0;
}

/* A round took everything due: arm the timer for the earliest pending
 * reminder (`next_due_ms`, -1 for none) or for a hint that came during
 * the round, whichever is sooner. */
static void round_done(struct reminders *r, int64_t next_due_ms)
{
	int64_t hint = r->hint_at_ms;
	r->hint_at_ms = 0;
	if (!end_round(r))
		return;
	if (r->check_again) {
		r->check_again = false;
		reminders_check(r, "deferred trigger");
		if (hint)
			arm_no_later_than(r, hint);
		return;
	}

	int64_t now = r->api->now_ms();
	int64_t at_ms = next_due_ms;
	if (at_ms >= 0 && at_ms <= now) {
		if (at_ms > r->round_started_ms) {
			reminders_check(r, "came due during a round");
			return;
		}
		at_ms = now + ALREADY_DUE_RETRY_MS;
	}
	if (hint && (at_ms < 0 || hint < at_ms))
		at_ms = hint;
	if (at_ms < 0)
		r->api->timer_del(&r->wake); /* nothing pending: the scan alone watches */
	else
		arm(r, at_ms);
}

static void on_claimed(json_object *res, const struct todod_store_error *err, void *arg)
{
	struct reminders *r = arg;
	if (err) {
		round_failed(r, err->code, err->text);
		return;
	}
	r->unavailable = false;

	json_object *value;
	int64_t fired = json_object_object_get_ex(res, "fired", &value) ? json_object_get_int64(value) : 0;
	int64_t skipped = json_object_object_get_ex(res, "skipped", &value) ? json_object_get_int64(value) : 0;
	r->round_fired += fired;
	r->round_skipped += skipped;
	r->api->metric_add(r->fired, (double)fired);
	r->api->metric_add(r->skipped, (double)skipped);
	if (json_object_object_get_ex(res, "late_s", &value) &&
	    json_object_is_type(value, json_type_array))
		for (size_t i = 0; i < json_object_array_length(value); i++)
			r->api->metric_observe(r->lateness, json_object_get_double(
							 json_object_array_get_idx(value, i)));

	/* A full batch may have left more behind; a short one took all that
	 * was due and not being claimed by another replica. */
	if (fired + skipped >= r->conf->batch && !r->stopping) {
		claim_batch(r);
		return;
	}
	int64_t next_due_ms = -1;
	if (json_object_object_get_ex(res, "next_due", &value) &&
	    json_object_is_type(value, json_type_string)) {
		if (r->api->rfc3339_parse(json_object_get_string(value), &next_due_ms) != 0) {
			next_due_ms = -1;
			r->api->log(r->ctx, TODOD_LOG_ERROR, "the store gave an unreadable next_due \"%s\"",
				    json_object_get_string(value));
		}
	}
	round_done(r, next_due_ms);
}

static void claim_batch(struct reminders *r)
{
	json_object *args = json_object_new_object();
	json_object_object_add(args, "limit", json_object_new_int64(r->conf->batch));
	json_object_object_add(args, "grace_s", json_object_new_int64(r->conf->grace_ms / 1000));
	struct todod_err err;
	int rc = r->api->store_call(r->ctx, "reminder.claim_due", 0, args, NULL, NULL,
				    on_claimed, r, &err);
	json_object_put(args);
	if (rc != 0)
		round_failed(r, "STORE_REFUSED", err.text);
}

/* Claims and emits every due reminder, then re-arms the timer.  Any
 * trigger may call it at any time: a call during a round runs one more
 * round after it, since the round in flight may have looked too early. */
static void reminders_check(struct reminders *r, const char *trigger)
{
	if (r->stopping)
		return;
	if (r->claiming) {
		r->check_again = true;
		return;
	}
	r->claiming = true;
	r->round_trigger = trigger;
	r->round_started_ms = r->api->now_ms();
	r->round_fired = r->round_skipped = 0;
	claim_batch(r);
}

/* Trigger "reminders.due": another plugin (a scheduler, a Dapr Job) asks
 * for a round now.  reminders_check coalesces a fire during a round into
 * one more round after it, so any number of fires never run two rounds at
 * once. */
static int fire_due(void *self, struct todod_err *err)
{
	struct reminders *r = self;
	if (r->stopping)
		return todod_err_set(err, "reminders is shutting down");
	reminders_check(r, "trigger");
	return 0;
}

/* Another plugin drives "reminders.due" from now on (`driver`), or no
 * longer does (NULL): the wake-up timer rests, or takes over again with
 * a round that finds the earliest reminder. */
static void driven_by(void *self, const char *driver)
{
	struct reminders *r = self;
	if (driver) {
		snprintf(r->driver, sizeof r->driver, "%s", driver);
		r->api->log(r->ctx, TODOD_LOG_INFO,
			    "%s times the reminders now; the scan every %" PRId64 " ms stays as a "
			    "safety net", r->driver, r->conf->scan_interval_ms);
		r->api->timer_del(&r->wake);
		return;
	}
	if (!r->driver[0])
		return;
	r->api->log(r->ctx, TODOD_LOG_INFO, "%s is gone; timing the reminders here again",
		    r->driver);
	r->driver[0] = '\0';
	/* Not before start() nor once draining (the driver unloads at exit). */
	if (r->scan)
		reminders_check(r, "driver gone");
}

/* ---- lifecycle ----------------------------------------------------------- */

static int reminders_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
			  void **state, struct todod_err *err)
{
	struct reminders *r = todod_xcalloc(1, sizeof *r);
	r->api = api;
	r->ctx = ctx;
	r->conf = conf;
	r->due = (struct todod_trigger){ .struct_size = sizeof r->due, .name = "reminders.due",
					.fire = fire_due, .driven = driven_by, .self = r };
	/* Claims are counted by the replica that made them: summed over the
	 * fleet, each reminder counts once. */
	r->fired = api->metric(ctx, TODOD_METRIC_COUNTER, "todod_reminders_fired_total",
			       "Reminders claimed and sent as todod.reminder.due", "");
	r->skipped = api->metric(ctx, TODOD_METRIC_COUNTER, "todod_reminders_skipped_total",
				 "Reminders found later than grace and not sent", "");
	r->lateness = api->metric(ctx, TODOD_METRIC_HISTOGRAM, "todod_reminder_lateness_seconds",
				  "From a fired reminder's remind_at to its claim", "");
	if (api->bus_subscribe(ctx, "task-events", "reminders", on_task_event, r, err) != 0 ||
	    api->service_provide(ctx, "trigger", r->due.name, &r->due, err) != 0) {
		free(r);
		return -1;
	}
	*state = r;
	return 0;
}

static int start_scan(struct reminders *r, int64_t interval_ms)
{
	return r->api->timer_add(r->ctx, &r->scan, interval_ms, TODOD_TIMER_REPEAT, on_scan, r);
}

/* The first round also catches what came due while no todod ran. */
static int reminders_start(void *state, struct todod_err *err)
{
	struct reminders *r = state;
	if (start_scan(r, r->conf->scan_interval_ms) != 0)
		return todod_err_set(err, "cannot create the scan timer");
	reminders_check(r, "start-up");
	return 0;
}

static int reminders_reconfigure(void *state, const void *old_conf, const void *new_conf,
				 struct todod_err *err)
{
	struct reminders *r = state;
	const struct reminders_conf *next = new_conf;
	if (((const struct reminders_conf *)old_conf)->scan_interval_ms != next->scan_interval_ms) {
		/* On failure the old scan timer keeps running. */
		if (start_scan(r, next->scan_interval_ms) != 0)
			return todod_err_set(err, "cannot create a scan timer");
	}
	r->conf = next;
	return 0;
}

/* A claim commits or rolls back as a whole, but its answer should still
 * be logged, so a round in flight is waited for; nothing new starts. */
static void reminders_drain(void *state, struct todod_ctx *ctx, todod_drained_cb done)
{
	struct reminders *r = state;
	r->stopping = true;
	r->api->timer_del(&r->scan);
	r->api->timer_del(&r->wake);
	r->check_again = false;
	if (!r->claiming) {
		done(ctx);
		return;
	}
	r->drained = done;
}

static void reminders_destroy(void *state)
{
	free(state);
}

static int reminders_health(void *state, struct todod_err *why)
{
	struct reminders *r = state;
	if (r->unavailable)
		return todod_err_set(why, "%s", r->why);
	return 0;
}

static const struct todod_opt reminders_options[] = {
	{ .key = "scan_interval", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = offsetof(struct reminders_conf, scan_interval_ms), .min = 1000, .max = 86400000,
	  .description = "Time between two safety scans for due reminders (the timer normally "
			 "fires first)" },
	{ .key = "grace", .type = TODOD_OPT_DURATION, .default_value = "1h",
	  .offset = offsetof(struct reminders_conf, grace_ms), .min = 1000, .max = 366LL * 86400000,
	  .description = "A reminder found more than this late (e.g. after downtime) is marked "
			 "skipped, not sent" },
	{ .key = "batch", .type = TODOD_OPT_INT, .default_value = "100",
	  .offset = offsetof(struct reminders_conf, batch), .min = 1, .max = 10000,
	  .description = "Reminders claimed per database transaction" },
	{ .key = NULL },
};

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "reminders",
	.version = "1.0",
	.description = "Fires each reminder once, at its time, as a todod.reminder.due event",
	.options = reminders_options,
	.conf_size = sizeof(struct reminders_conf),
	.init = reminders_init,
	.start = reminders_start,
	.reconfigure = reminders_reconfigure,
	.drain = reminders_drain,
	.destroy = reminders_destroy,
	.health = reminders_health,
};

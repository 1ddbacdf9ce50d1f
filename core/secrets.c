/* secrets.c - SECRET values resolved by plugins.
 *
 * A batch is one configuration's references (start-up, or one SIGHUP).
 * Each reference whose scheme has a resolver becomes a call that waits
 * for the resolver's answer; the first failure, or the deadline, ends the
 * batch.  A resolver may still answer calls the batch gave up on (it
 * promised to answer exactly once), so calls outlive their batch: they
 * stay in the core's list, detached, until the answer comes or the core
 * is freed after the plugins are gone. */
#include "secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core.h"
#include "log.h"
#include "services.h"

struct secret_call {
	LIST_ENTRY(secret_call) link;    /* in secrets->calls */
	struct secret_batch *batch;      /* NULL once the batch gave up */
	struct cfg_secret_ref *ref;      /* NULL once the batch gave up */
};

struct secrets {
	struct core *core;
	LIST_HEAD(, secret_call) calls;
};

struct secret_batch {
	struct secrets *secrets;
	size_t waiting;                  /* calls not answered yet (+1 while asking) */
	struct event *finish;            /* runs `done`, always from the loop */
	struct event *deadline;
	int64_t timeout_ms;
	bool failed;
	char error[1024];
	secrets_done_cb done;
	void *arg;
};

struct secrets *secrets_new(struct core *core)
{
	struct secrets *s = todod_xcalloc(1, sizeof *s);
	s->core = core;
	LIST_INIT(&s->calls);
	return s;
}

static void call_free(struct secret_call *call)
{
	LIST_REMOVE(call, link);
	if (call->ref)
		cfg_secret_ref_free(call->ref);
	free(call);
}

void secrets_free(struct secrets *secrets)
{
	if (!secrets)
		return;
	while (!LIST_EMPTY(&secrets->calls))
		call_free(LIST_FIRST(&secrets->calls));
	free(secrets);
}

/* The resolver for `ref`'s scheme, or NULL when no plugin provides one. */
static const struct todod_secret_resolver *resolver_of(struct secrets *secrets,
						       const struct cfg_secret_ref *ref)
{
	char scheme[64];
	size_t len = cfg_secret_scheme_len(ref->text);
	if (len == 0 || len >= sizeof scheme)
		return NULL;
	memcpy(scheme, ref->text, len);
	scheme[len] = '\0';
	return services_get_named(secrets->core, "secrets", scheme);
}

static void set_field(struct cfg_secret_ref *ref, const char *value)
{
	free(*ref->field);
	*ref->field = todod_xstrdup(value);
}

/* What no resolver claims keeps its old meaning, a literal. */
static void settle_literals(struct secrets *secrets, struct cfg_secret_refs *refs)
{
	struct cfg_secret_refs kept = STAILQ_HEAD_INITIALIZER(kept);
	struct cfg_secret_ref *ref;
	while ((ref = STAILQ_FIRST(refs))) {
		STAILQ_REMOVE_HEAD(refs, link);
		if (resolver_of(secrets, ref)) {
			STAILQ_INSERT_TAIL(&kept, ref, link);
			continue;
		}
		free(*ref->field);
		*ref->field = ref->text;
		ref->text = NULL;
		cfg_secret_ref_free(ref);
	}
	STAILQ_CONCAT(refs, &kept);
}

/* ---- one batch ---- */

static void batch_free(struct secret_batch *batch)
{
	if (batch->finish)
		event_free(batch->finish);
	if (batch->deadline)
		event_free(batch->deadline);
	free(batch);
}

static void on_finish(evutil_socket_t fd, short what, void *arg)
{
	struct secret_batch *batch = arg;
	secrets_done_cb done = batch->done;
	void *done_arg = batch->arg;
	char error[sizeof batch->error];
	bool failed = batch->failed;
	memcpy(error, batch->error, sizeof error);
	batch_free(batch);
	done(failed ? error : NULL, done_arg);
}

/* Detach the calls still waiting: their answers, if any come, are
 * dropped. */
static void batch_abandon_calls(struct secret_batch *batch)
{
	struct secret_call *call, *next;
	for (call = LIST_FIRST(&batch->secrets->calls); call; call = next) {
		next = LIST_NEXT(call, link);
		if (call->batch != batch)
			continue;
		call->batch = NULL;
		cfg_secret_ref_free(call->ref);
		call->ref = NULL;
	}
	batch->waiting = 0;
}

/* The first failure ends the batch; `call` names the option. */
static void batch_fail(struct secret_batch *batch, const struct secret_call *call,
		       const char *reason)
{
	if (batch->failed)
		return;
	batch->failed = true;
	snprintf(batch->error, sizeof batch->error, "%s: %s: %s", call->ref->where.text, call->ref->text,
		 reason);
	batch_abandon_calls(batch);
	event_active(batch->finish, EV_TIMEOUT, 0);
}

static void on_answer(const char *value, const char *error, void *arg)
{
	struct secret_call *call = arg;
	struct secret_batch *batch = call->batch;
	if (!batch) {
		call_free(call);
		return;
	}
	if (!error && !value)
		error = "the resolver answered neither a value nor an error";
	if (error) {
		batch_fail(batch, call, error);
		call_free(call);
		return;
	}
	set_field(call->ref, value);
	log_debug("%s: resolved through its plugin", call->ref->where.text);
	call_free(call);
	if (--batch->waiting == 0)
		event_active(batch->finish, EV_TIMEOUT, 0);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct secret_batch *batch = arg;
	struct secret_call *call;
	char reason[128];
	snprintf(reason, sizeof reason, "no answer within %lldms ([core] secret_timeout)",
		 (long long)batch->timeout_ms);
	/* Calls are added at the head: the last of the batch's was asked
	 * first, and the message names it, as the file's order would. */
	struct secret_call *first = NULL;
	LIST_FOREACH(call, &batch->secrets->calls, link)
		if (call->batch == batch)
			first = call;
	if (first)
		batch_fail(batch, first, reason);
}

static void ask_resolver(struct secret_batch *batch, struct cfg_secret_ref *ref)
{
	const struct todod_secret_resolver *r = resolver_of(batch->secrets, ref);
	struct secret_call *call = todod_xcalloc(1, sizeof *call);
	call->batch = batch;
	call->ref = ref;
	LIST_INSERT_HEAD(&batch->secrets->calls, call, link);
	batch->waiting++;
	struct todod_err err = { "" };
	const char *rest = ref->text + cfg_secret_scheme_len(ref->text) + 1;
	/* The answer may come from inside resolve(): `call` is then gone. */
	if (r->resolve(r->self, rest, on_answer, call, &err) != 0) {
		batch_fail(batch, call, err.text[0] ? err.text : "the resolver refused");
		call_free(call);
	}
}

struct secret_batch *secrets_resolve(struct secrets *secrets, struct cfg_secret_refs *refs,
				     int64_t timeout_ms, secrets_done_cb done, void *arg)
{
	struct event_base *base = secrets->core->base;
	struct secret_batch *batch = todod_xcalloc(1, sizeof *batch);
	*batch = (struct secret_batch){ .secrets = secrets, .timeout_ms = timeout_ms,
					.done = done, .arg = arg };
	batch->finish = event_new(base, -1, 0, on_finish, batch);
	batch->deadline = evtimer_new(base, on_deadline, batch);
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	if (!batch->finish || !batch->deadline || evtimer_add(batch->deadline, &tv) != 0) {
		batch_free(batch);
		return NULL;
	}
	settle_literals(secrets, refs);
	/* The asking counts as one more wait, so that answers given from
	 * inside resolve() cannot end the batch before every call is made. */
	batch->waiting = 1;
	struct cfg_secret_ref *ref;
	while (!batch->failed && (ref = STAILQ_FIRST(refs))) {
		STAILQ_REMOVE_HEAD(refs, link);
		ask_resolver(batch, ref);
	}
	/* After a failure the rest is not asked for. */
	cfg_secret_refs_clear(refs);
	if (!batch->failed && --batch->waiting == 0)
		event_active(batch->finish, EV_TIMEOUT, 0);
	return batch;
}

void secrets_cancel(struct secret_batch *batch)
{
	batch_abandon_calls(batch);
	batch_free(batch);
}

/* ---- start-up ---- */

struct wait {
	bool done;
	struct todod_err *err;
};

static void wait_done(const char *error, void *arg)
{
	struct wait *w = arg;
	w->done = true;
	if (error)
		todod_err_set(w->err, "%s", error);
}

int secrets_resolve_now(struct secrets *secrets, struct cfg_secret_refs *refs,
			int64_t timeout_ms, struct todod_err *err)
{
	settle_literals(secrets, refs);
	if (STAILQ_EMPTY(refs))
		return 0;
	struct wait w = { .err = err };
	err->text[0] = '\0';
	struct secret_batch *batch = secrets_resolve(secrets, refs, timeout_ms, wait_done, &w);
	if (!batch)
		return todod_err_set(err, "cannot create the secret resolution events");
	/* The loop also answers HTTP: a resolver's sidecar may call todod
	 * back while it looks a secret up. */
	while (!w.done) {
		if (event_base_loop(secrets->core->base, EVLOOP_ONCE) < 0) {
			secrets_cancel(batch);
			return todod_err_set(err, "event loop failed while resolving secrets");
		}
	}
	return err->text[0] ? -1 : 0;
}

/* dapr_secrets.c - the secret resolver "dapr": any SECRET option (the SMTP
 * password, [core] database) may be "dapr:STORE/KEY", read from daprd's
 * secret store STORE with GET /v1.0/secrets/STORE/KEY, whose answer is
 * {"KEY":"value"}.
 *
 * The core resolves these after every plugin's init() and before any
 * start(), with the loop running, so this works without the rest of the
 * plugin: no health check has run yet.  daprd may still be starting (it
 * waits for todod's port, which is open by then): a lookup that finds
 * nobody listening asks again shortly, until the core's secret_timeout
 * gives up on it.  Any answer daprd gives is final.  Errors name the
 * store, the key and daprd's message, never a value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dapr.h"

#define LOOKUP_RETRY_MS 250

struct dapr_lookup {
	LIST_ENTRY(dapr_lookup) link;
	struct dapr *d;
	char *store, *key;
	todod_secret_cb done;
	void *arg;
	struct todod_timer *retry;
	char last_failure[300];   /* why the last try found nobody */
};

static void lookup_free(void *arg)
{
	struct dapr_lookup *l = arg;
	LIST_REMOVE(l, link);
	l->d->api->timer_del(&l->retry);
	free(l->store);
	free(l->key);
	free(l);
}

static int ask(struct dapr_lookup *l, struct todod_err *err);

static void on_retry(void *arg)
{
	struct dapr_lookup *l = arg;
	struct todod_err err = { "" };
	if (ask(l, &err) != 0) {
		char error[600];
		snprintf(error, sizeof error, "secret store %s, key %s: %s", l->store, l->key,
			 err.text);
		todod_secret_cb done = l->done;
		void *done_arg = l->arg;
		lookup_free(l);
		done(NULL, error, done_arg);
	}
}

/* The value is the member named KEY; a store that answers with one
 * member under another name (a nested key) gives that one. */
static const char *value_of(json_object *root, const char *key)
{
	json_object *v = NULL;
	if (!json_object_is_type(root, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(root, key, &v) && json_object_object_length(root) == 1) {
		json_object_object_foreach(root, name, only) {
			(void)name;
			v = only;
		}
	}
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void on_answer(const struct todod_transfer_result *res, void *arg)
{
	struct dapr_lookup *l = arg;
	struct dapr *d = l->d;
	char error[900] = "";
	if (res->status == 0) {
		/* daprd is not listening yet: the core's secret_timeout bounds
		 * this. */
		dapr_failure_text(res, l->last_failure, sizeof l->last_failure);
		if (d->api->timer_add(d->ctx, &l->retry, LOOKUP_RETRY_MS, 0, on_retry, l) == 0)
			return;
		snprintf(error, sizeof error, "secret store %s, key %s: %s", l->store, l->key,
			 l->last_failure);
	} else if (res->status == 200) {
		json_object *root = res->body ? json_tokener_parse(res->body) : NULL;
		const char *value = root ? value_of(root, l->key) : NULL;
		if (value) {
			todod_secret_cb done = l->done;
			void *done_arg = l->arg;
			lookup_free(l);
			done(value, NULL, done_arg);
			json_object_put(root);
			return;
		}
		json_object_put(root);
		snprintf(error, sizeof error, "secret store %s answered without a string for key %s",
			 l->store, l->key);
	} else if (res->status == 204) {
		snprintf(error, sizeof error, "secret store %s has no key %s", l->store, l->key);
	} else {
		char text[600];
		dapr_failure_text(res, text, sizeof text);
		snprintf(error, sizeof error, "secret store %s, key %s: %s", l->store, l->key, text);
	}
	todod_secret_cb done = l->done;
	void *done_arg = l->arg;
	lookup_free(l);
	done(NULL, error, done_arg);
}

static int ask(struct dapr_lookup *l, struct todod_err *err)
{
	char path[1024] = "/v1.0/secrets/";
	if (!dapr_escape(path, sizeof path, l->store) || !dapr_append(path, sizeof path, "/") ||
	    !dapr_escape(path, sizeof path, l->key))
		return todod_err_set(err, "the store and key are too long for a URL");
	const struct dapr_request rq = { .method = "GET", .path = path };
	return dapr_call(l->d, &rq, on_answer, l, lookup_free, err);
}

static int resolve(void *self, const char *ref, todod_secret_cb done, void *arg,
		   struct todod_err *err)
{
	struct dapr *d = self;
	const char *slash = strchr(ref, '/');
	if (!slash || slash == ref || !slash[1])
		return todod_err_set(err, "give dapr:STORE/KEY, the secret store's component name "
				     "and the key");
	struct dapr_lookup *l = todod_xcalloc(1, sizeof *l);
	l->store = todod_xstrndup(ref, (size_t)(slash - ref));
	l->key = todod_xstrdup(slash + 1);
	l->d = d;
	l->done = done;
	l->arg = arg;
	LIST_INSERT_HEAD(&d->lookups, l, link);
	if (ask(l, err) != 0) {
		lookup_free(l);
		return -1;
	}
	return 0;
}

int dapr_secrets_init(struct dapr *d, struct todod_err *err)
{
	d->resolver = (struct todod_secret_resolver){
		.struct_size = sizeof d->resolver,
		.scheme = "dapr",
		.resolve = resolve,
		.self = d,
	};
	return d->api->service_provide(d->ctx, "secrets", "dapr", &d->resolver, err);
}

void dapr_secrets_free(struct dapr *d)
{
	while (!LIST_EMPTY(&d->lookups))
		lookup_free(LIST_FIRST(&d->lookups));
}

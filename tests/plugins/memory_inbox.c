/*
 * memory_inbox.c - an inbox driver in memory, for the integration tests.
 *
 * It provides service "inbox" under the name "memory" and counts every
 * call it gets, so a test with `[core] inbox = memory` can see that the
 * bus asked it (and not the database) and that a redelivered event was
 * answered as a duplicate.  It also subscribes consumer "memory" to
 * task-events and counts how often each event reached it, the effect that
 * must not happen twice.  GET /memory-inbox answers the counts:
 *
 *   {"seen_calls":N,"seen_keys":N,"seen_found":N,
 *    "record_calls":N,"record_keys":N,"record_found":N,
 *    "handled":N,"handled_twice":N}
 *
 * Answers come at once, from inside seen()/record(), which the interface
 * allows; a driver with I/O answers later.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <todod-plugin.h>

#define MEMORY_CONSUMER "memory"
#define MEMORY_TOPIC "task-events"

/* A set of strings, searched linearly: the tests hold a few dozen. */
struct strset {
	char **v;
	size_t n, cap;
};

struct memory {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	struct todod_inbox_driver driver;
	struct strset inbox;   /* "consumer\nevent_id" of what was recorded */
	struct strset handled; /* event ids the subscriber got */
	long seen_calls, seen_keys, seen_found;
	long record_calls, record_keys, record_found;
	long handled_twice;
};

static bool strset_has(const struct strset *s, const char *item)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], item) == 0)
			return true;
	return false;
}

static int strset_add(struct strset *s, const char *item)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		char **v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	if (!(s->v[s->n] = strdup(item)))
		return -1;
	s->n++;
	return 0;
}

static void strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static void key_text(const struct todod_inbox_key *k, char *out, size_t size)
{
	snprintf(out, size, "%s\n%s", k->consumer, k->event_id);
}

/* Answers seen() and record() alike: `record` also adds what is new. */
static int lookup(struct memory *m, const struct todod_inbox_key *keys, size_t n, bool record,
		  todod_inbox_cb done, void *arg, struct todod_err *err)
{
	bool *found = calloc(n ? n : 1, sizeof *found);
	if (!found)
		return todod_err_set(err, "out of memory");
	long *calls = record ? &m->record_calls : &m->seen_calls;
	long *nkeys = record ? &m->record_keys : &m->seen_keys;
	long *nfound = record ? &m->record_found : &m->seen_found;
	const char *error = NULL;
	for (size_t i = 0; i < n && !error; i++) {
		char text[512];
		key_text(&keys[i], text, sizeof text);
		found[i] = strset_has(&m->inbox, text);
		if (record && !found[i] && strset_add(&m->inbox, text) != 0)
			error = "out of memory";
		*nfound += found[i];
	}
	++*calls;
	*nkeys += (long)n;
	done(error ? NULL : found, n, error, arg);
	free(found);
	return 0;
}

static int memory_seen(void *self, const struct todod_inbox_key *keys, size_t n,
		       todod_inbox_cb done, void *arg, struct todod_err *err)
{
	return lookup(self, keys, n, false, done, arg, err);
}

static int memory_record(void *self, const struct todod_inbox_key *keys, size_t n,
			 todod_inbox_cb done, void *arg, struct todod_err *err)
{
	return lookup(self, keys, n, true, done, arg, err);
}

static void on_task_event(const struct todod_event *ev, struct todod_delivery *d, void *arg)
{
	struct memory *m = arg;
	if (strset_has(&m->handled, ev->id))
		m->handled_twice++;
	else if (strset_add(&m->handled, ev->id) != 0) {
		m->api->bus_answer(d, TODOD_RETRY, "out of memory");
		return;
	}
	m->api->bus_answer(d, TODOD_OK, NULL);
}

static void handle_stats(struct todod_http_req *req, void *arg)
{
	struct memory *m = arg;
	char body[512];
	int len = snprintf(body, sizeof body,
			   "{\"seen_calls\":%ld,\"seen_keys\":%ld,\"seen_found\":%ld,"
			   "\"record_calls\":%ld,\"record_keys\":%ld,\"record_found\":%ld,"
			   "\"handled\":%zu,\"handled_twice\":%ld}",
			   m->seen_calls, m->seen_keys, m->seen_found, m->record_calls,
			   m->record_keys, m->record_found, m->handled.n, m->handled_twice);
	m->api->http_reply(req, 200, "application/json", body, (size_t)len);
}

static int memory_init(const struct todod_api *api, struct todod_ctx *ctx, const void *conf,
		       void **state, struct todod_err *err)
{
	(void)conf;
	struct memory *m = calloc(1, sizeof *m);
	if (!m)
		return todod_err_set(err, "out of memory");
	m->api = api;
	m->ctx = ctx;
	m->driver = (struct todod_inbox_driver){
		.struct_size = sizeof m->driver,
		.name = "memory",
		.seen = memory_seen,
		.record = memory_record,
		.self = m,
	};
	*state = m;
	if (api->service_provide(ctx, "inbox", "memory-inbox", &m->driver, err) != 0 ||
	    api->bus_subscribe(ctx, MEMORY_TOPIC, MEMORY_CONSUMER, on_task_event, m, err) != 0 ||
	    api->http_route(ctx, TODOD_HTTP_GET, "/memory-inbox", handle_stats, m, err) != 0) {
		free(m);
		*state = NULL;
		return -1;
	}
	return 0;
}

static void memory_destroy(void *state)
{
	struct memory *m = state;
	if (!m)
		return;
	strset_free(&m->inbox);
	strset_free(&m->handled);
	free(m);
}

TODOD_PLUGIN = {
	TODOD_PLUGIN_HEADER,
	.name = "memory_inbox",
	.version = "1.0",
	.description = "An inbox driver in memory that counts its calls (tests only)",
	.init = memory_init,
	.destroy = memory_destroy,
};

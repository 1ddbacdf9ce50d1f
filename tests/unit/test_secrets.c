/* test_secrets.c - SECRET values resolved by plugins: which resolvers
 * service_provide takes, and how a configuration's references are
 * settled: through a resolver answering at once or later, as literals
 * when no resolver claims their scheme, and the first error or the
 * deadline failing the whole batch with the option's place. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "api.h"
#include "config.h"
#include "core.h"
#include "log.h"
#include "secrets.h"
#include "tap.h"

static struct core core;

/* ---- resolvers, one per way of answering ---- */

enum way { AT_ONCE, LATER, REFUSE, ERROR_LATER, NEVER };

struct later {
	todod_secret_cb done;
	void *arg;
	char value[64];
	bool failed;
};

static void answer_later(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;
	l->done(l->failed ? NULL : l->value, l->failed ? "no such key in the store" : NULL, l->arg);
	free(l);
}

static int resolve(void *self, const char *ref, todod_secret_cb done, void *arg,
		   struct todod_err *err)
{
	enum way way = *(const enum way *)self;
	char value[64];
	snprintf(value, sizeof value, "value-of-%s", ref);
	if (way == REFUSE)
		return todod_err_set(err, "store offline");
	if (way == AT_ONCE) {
		done(value, NULL, arg);
		return 0;
	}
	if (way == NEVER)
		return 0;
	struct later *l = calloc(1, sizeof *l);
	*l = (struct later){ .done = done, .arg = arg, .failed = way == ERROR_LATER };
	snprintf(l->value, sizeof l->value, "%s", value);
	struct timeval tv = { 0, 10000 };
	event_base_once(core.base, -1, EV_TIMEOUT, answer_later, l, &tv);
	return 0;
}

static const enum way ways[] = { AT_ONCE, LATER, REFUSE, ERROR_LATER, NEVER };
static const char *const schemes[] = { "now", "later", "refuse", "bad", "never" };
static struct todod_secret_resolver resolvers[5];

static void test_provide(struct todod_ctx *ctx)
{
	struct todod_err err = { "" };
	struct todod_secret_resolver r = { .struct_size = sizeof r, .scheme = "vault" };
	ok(core_api.service_provide(ctx, "secrets", "vault", &r, &err) != 0 &&
		   strcmp(err.text, "secrets service has no 'resolve'") == 0,
	   "a resolver without resolve is refused: %s", err.text);
	r.resolve = resolve;
	ok(core_api.service_provide(ctx, "secrets", "other", &r, &err) != 0 &&
		   strstr(err.text, "has scheme 'vault'"),
	   "one provided under another name than its scheme is refused: %s", err.text);
	r.scheme = "env";
	ok(core_api.service_provide(ctx, "secrets", "env", &r, &err) != 0 &&
		   strstr(err.text, "other than env and file"),
	   "env is the core's: %s", err.text);
	r.scheme = "Vault";
	ok(core_api.service_provide(ctx, "secrets", "Vault", &r, &err) != 0,
	   "a scheme with a capital is refused");
	r.scheme = "vault";
	r.struct_size = offsetof(struct todod_secret_resolver, future);
	ok(core_api.service_provide(ctx, "secrets", "vault", &r, &err) != 0 &&
		   strstr(err.text, "secrets service struct_size is"),
	   "one smaller than the struct is refused");

	for (size_t i = 0; i < 5; i++) {
		resolvers[i] = (struct todod_secret_resolver){ .struct_size = sizeof resolvers[i],
							       .scheme = schemes[i],
							       .resolve = resolve,
							       .self = (void *)&ways[i] };
		ok(core_api.service_provide(ctx, "secrets", schemes[i], &resolvers[i], &err) == 0,
		   "resolver '%s' is taken (%s)", schemes[i], err.text);
	}
	ok(core_api.service_provide(ctx, "secrets", "now", &resolvers[0], &err) != 0 &&
		   strcmp(err.text, "secrets 'now' is already provided") == 0,
	   "a second resolver of one scheme is refused: %s", err.text);
}

/* ---- settling a configuration's references ---- */

struct conf {
	char *a, *b, *c, *d;
};

static const struct todod_opt schema[] = {
	{ .key = "a", .type = TODOD_OPT_SECRET, .offset = offsetof(struct conf, a) },
	{ .key = "b", .type = TODOD_OPT_SECRET, .offset = offsetof(struct conf, b) },
	{ .key = "c", .type = TODOD_OPT_SECRET, .offset = offsetof(struct conf, c) },
	{ .key = "d", .type = TODOD_OPT_SECRET, .offset = offsetof(struct conf, d) },
	{ .key = NULL },
};

/* Bind `text` ("[plugin.t]" and its keys) and resolve it at start-up's
 * way; the error, or "" on success. */
static const char *settle(const char *text, struct conf *conf, int64_t timeout_ms)
{
	static struct todod_err err;
	struct cfg_file *cf = NULL;
	struct cfg_secret_refs refs = STAILQ_HEAD_INITIALIZER(refs);
	memset(conf, 0, sizeof *conf);
	memset(&err, 0, sizeof err);
	if (cfg_parse_buffer("t.conf", text, strlen(text), &cf, &err) != 0 ||
	    cfg_bind_deferring(schema, cf, &cf->sections[0], conf, &refs, &err) != 0) {
		cfg_free(cf);
		return err.text;
	}
	int rc = secrets_resolve_now(core.secrets, &refs, timeout_ms, &err);
	ok(STAILQ_EMPTY(&refs), "every reference is taken off the list");
	cfg_secret_refs_clear(&refs);
	cfg_free(cf);
	return rc == 0 ? "" : err.text;
}

static void test_settle(void)
{
	struct conf conf;
	setenv("TODOD_TEST_SECRETS_ENV", "from-env", 1);
	is_str(settle("[plugin.t]\na = now:k1\nb = later:k2\nc = plain:k3\n"
		      "d = env:TODOD_TEST_SECRETS_ENV\n", &conf, 5000),
	       "", "a configuration resolves");
	is_str(conf.a, "value-of-k1", "through a resolver answering at once");
	is_str(conf.b, "value-of-k2", "through one answering later, from the loop");
	is_str(conf.c, "plain:k3", "a scheme no plugin provides is a literal");
	is_str(conf.d, "from-env", "env: as ever");
	cfg_conf_free(schema, &conf);

	is_str(settle("[plugin.t]\na = later:k1\nb = refuse:k2\n", &conf, 5000),
	       "t.conf:3: [plugin.t] key 'b': refuse:k2: store offline",
	       "a resolver that refuses at once fails the batch, naming the key");
	cfg_conf_free(schema, &conf);
	is_str(settle("[plugin.t]\na = now:k1\n\nb = bad:k2\n", &conf, 5000),
	       "t.conf:4: [plugin.t] key 'b': bad:k2: no such key in the store",
	       "so does an error that comes later");
	cfg_conf_free(schema, &conf);
	is_str(settle("[plugin.t]\na = now:k1\nb = never:k2\nc = never:k3\n", &conf, 50),
	       "t.conf:3: [plugin.t] key 'b': never:k2: no answer within 50ms "
	       "([core] secret_timeout)",
	       "and a resolver that does not answer in time, naming the first key waited for");
	cfg_conf_free(schema, &conf);
}

static int finished;

static void count_finished(const char *error, void *arg)
{
	finished++;
}

/* A reload given up on: the answer that still comes is dropped. */
static void test_cancel(void)
{
	static const char text[] = "[plugin.t]\na = later:k1\n";
	struct cfg_file *cf = NULL;
	struct cfg_secret_refs refs = STAILQ_HEAD_INITIALIZER(refs);
	struct conf conf = { 0 };
	struct todod_err err = { "" };
	ok(cfg_parse_buffer("t.conf", text, strlen(text), &cf, &err) == 0 &&
		   cfg_bind_deferring(schema, cf, &cf->sections[0], &conf, &refs, &err) == 0,
	   "binds");
	struct secret_batch *batch = secrets_resolve(core.secrets, &refs, 5000, count_finished, NULL);
	ok(batch != NULL && finished == 0, "done never fires from secrets_resolve itself");
	secrets_cancel(batch);
	cfg_conf_free(schema, &conf);
	struct timeval tv = { 0, 100000 };
	event_base_loopexit(core.base, &tv);
	event_base_dispatch(core.base);
	ok(finished == 0, "a cancelled batch never calls back, though its resolver answered");
	cfg_free(cf);
}

int main(void)
{
	log_set_level(TODOD_LOG_ERROR);
	core.base = event_base_new();
	core.secrets = secrets_new(&core);
	struct todod_ctx *ctx = ctx_new(&core, "resolvers");
	if (!ok(core.base && core.secrets && ctx, "core parts for the test"))
		return tap_done();
	test_provide(ctx);
	test_settle();
	test_cancel();
	ctx_release(ctx);
	/* The "never" resolver's call is still open: freed here. */
	secrets_free(core.secrets);
	event_base_free(core.base);
	return tap_done();
}

/* daemon.c - start-up, drain on SIGTERM, reload on SIGHUP, and
 * teardown.
 *
 * Start-up builds the core's parts, runs the plugins' init, resolves the
 * SECRET values that name a plugin's resolver (the loop runs for that,
 * nothing else has started), and only then touches the database, whose
 * connection string may be one of them.  Preparing the database is the
 * one place that may block (connecting, migrating, a private cluster's
 * initdb).  Everything after event_base_dispatch() is asynchronous. */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "bus.h"
#include "clock.h"
#include "cloudevent.h"
#include "config.h"
#include "core.h"
#include "core_routes.h"
#include "curlm.h"
#include "db.h"
#include "http.h"
#include "inbox_db.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "outbox.h"
#include "pgcluster.h"
#include "sdnotify.h"
#include "secrets.h"
#include "services.h"
#include "store.h"
#include "store_admin.h"
#include "todod-config.h"

#define DRAIN_POLL_MS 20

/* [core] of the file at `path`; with `refs`, SECRET values that may
 * name a plugin's resolver are kept there (cfg_bind_deferring). */
static int bind_core(const char *path, struct cfg_file **cf, struct core_conf *conf,
		     struct cfg_secret_refs *refs, struct todod_err *err)
{
	memset(conf, 0, sizeof *conf);
	if (cfg_parse_file(path, cf, err) != 0)
		return -1;
	const struct cfg_section *sec = cfg_section(*cf, "core");
	return refs ? cfg_bind_deferring(core_options, *cf, sec, conf, refs, err)
		    : cfg_bind(core_options, *cf, sec, conf, err);
}

int daemon_load_core_conf(const char *path, struct cfg_file **cf_r, struct core_conf *conf,
			  struct cfg_secret_refs *refs)
{
	struct todod_err err = { "" };
	struct cfg_file *cf = NULL;
	if (bind_core(path, &cf, conf, refs, &err) != 0) {
		fprintf(stderr, "todod: %s\n", err.text);
		cfg_free(cf);
		return EXIT_CONFIG;
	}
	*cf_r = cf;
	return 0;
}

static void core_conf_release(struct core_conf *conf)
{
	cfg_conf_free(core_options, conf);
	memset(conf, 0, sizeof *conf);
}

static struct http_limits limits_of(const struct core_conf *c)
{
	return (struct http_limits){
		.max_header_size = (size_t)c->max_header_size,
		.max_body_size = (size_t)c->max_body_size,
		.request_timeout_s = (int)((c->request_timeout + 999) / 1000),
		.max_connections = (int)c->max_connections,
		.header_timeout_ms = c->header_timeout,
		.body_timeout_ms = c->body_timeout,
	};
}

/* A request that waits on the database should still be answered within
 * request_timeout, so the statement deadline stays below it. */
static int64_t db_timeout_of(const struct core_conf *c)
{
	int64_t cap = c->request_timeout - 1000;
	if (cap < 500)
		cap = 500;
	return c->db_timeout < cap ? c->db_timeout : cap;
}

static struct bus_conf bus_conf_of(const struct core_conf *c)
{
	return (struct bus_conf){
		.max_attempts = (int)c->max_attempts,
		.retry_backoff_ms = c->retry_backoff,
		.max_event_size = CE_MAX_SIZE_DEFAULT,
	};
}

static struct outbox_conf outbox_conf_of(const struct core_conf *c)
{
	return (struct outbox_conf){
		.batch = (int)c->outbox_batch,
		.poll_interval_ms = c->outbox_poll_interval,
		.retention_ms = c->outbox_retention,
		.lease_ms = 10000,
	};
}

/* ---- drain ------------------------------------------------------------------ */

static void finish_loop(struct core *core)
{
	event_base_loopexit(core->base, NULL);
}

static bool drained(struct core *core)
{
	return core->drains_pending == 0 && bus_in_flight(core->bus) == 0 &&
	       curlm_in_flight(core->curlm) == 0;
}

static void drain_poll(evutil_socket_t fd, short what, void *arg)
{
	struct core *core = arg;
	if (drained(core)) {
		log_info("drained; exiting");
		finish_loop(core);
		return;
	}
	struct timeval tv = { 0, DRAIN_POLL_MS * 1000 };
	event_base_once(core->base, -1, EV_TIMEOUT, drain_poll, core, &tv);
}

static void drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct core *core = arg;
	log_warn("drain_timeout reached with %d part(s), %d deliveries and %d transfers still busy; "
		 "exiting anyway (unacknowledged events stay in the outbox)",
		 core->drains_pending, bus_in_flight(core->bus), curlm_in_flight(core->curlm));
	finish_loop(core);
}

static void part_drained(struct core *core)
{
	core->drains_pending--;
}

static void relay_drained(void *arg) { part_drained(arg); }

static void plugin_drained(struct todod_ctx *ctx)
{
	struct core *core = ctx_core(ctx);
	for (size_t i = 0; i < core->plugins.n; i++) {
		struct plugin *p = &core->plugins.v[i];
		if (p->ctx == ctx && p->draining) {
			p->draining = false;
			part_drained(core);
		}
	}
}

static void start_drain(struct core *core, const char *why)
{
	if (core->draining) {
		log_warn("%s again while draining: exiting now", why);
		finish_loop(core);
		return;
	}
	core->draining = true;
	sd_notify_state("STOPPING=1");
	log_info("%s: draining (at most %llds)", why, (long long)(core->conf.drain_timeout / 1000));
	http_server_stop_accepting(core->http);

	core->drains_pending = 1;
	outbox_relay_drain(core->relay, relay_drained, core);
	for (size_t i = 0; i < core->plugins.n; i++) {
		struct plugin *p = &core->plugins.v[i];
		if (!p->def->drain || !p->ctx)
			continue;
		p->draining = true;
		core->drains_pending++;
		p->def->drain(p->state, p->ctx, plugin_drained);
	}
	struct timeval tv = { .tv_sec = core->conf.drain_timeout / 1000,
			      .tv_usec = (core->conf.drain_timeout % 1000) * 1000 };
	core->drain_deadline = evtimer_new(core->base, drain_deadline, core);
	evtimer_add(core->drain_deadline, &tv);
	drain_poll(-1, 0, core);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	start_drain(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- reload ----------------------------------------------------------------- */

static bool plugin_set_changed(const struct core *core, const struct cfg_file *cf)
{
	size_t sections = 0;
	for (size_t i = 0; i < cf->n_sections; i++) {
		const char *name = cf->sections[i].name;
		if (strncmp(name, "plugin.", 7) != 0)
			continue;
		sections++;
		bool found = false;
		for (size_t j = 0; j < core->plugins.n && !found; j++)
			found = strcmp(core->plugins.v[j].name, name + 7) == 0;
		if (!found)
			return true;
	}
	return sections != core->plugins.n;
}

/* Hands the reloadable [core] values to the parts that read them. */
static void apply_reloadable(struct core *core)
{
	const struct core_conf *c = &core->conf;
	log_set_level((enum todod_log_level)c->log_level);
	db_pool_set_timeout(core->db, db_timeout_of(c));
	store_set_label_quotas(core->store, c->max_categories_per_user, c->max_tags_per_user);
	struct http_limits limits = limits_of(c);
	http_server_set_limits(core->http, &limits);
	struct bus_conf bc = bus_conf_of(c);
	bus_set_conf(core->bus, &bc);
	struct outbox_conf oc = outbox_conf_of(c);
	outbox_relay_set_conf(core->relay, &oc);
}

/* validate() once more for every plugin, now that the SECRET values its
 * first validate saw as "" are filled; `confs` NULL: the running ones. */
static int validate_resolved(struct core *core, const struct cfg_file *cf, void *const *confs,
			     struct todod_err *err)
{
	for (size_t i = 0; i < core->plugins.n; i++) {
		const struct plugin *p = &core->plugins.v[i];
		if (loader_validate(p, cf, confs ? confs[i] : p->conf, err) != 0)
			return -1;
	}
	return 0;
}

/* One SIGHUP's new configuration, kept while plugins resolve its
 * secrets; nothing of it is applied before all of it is known good. */
struct reload {
	struct core *core;
	struct cfg_file *cf;
	struct core_conf conf;
	void **confs;                  /* per plugin, in core->plugins order */
	struct cfg_secret_refs refs;
	struct secret_batch *batch;    /* while resolving */
};

static void reload_free(struct reload *r)
{
	struct core *core = r->core;
	if (r->batch)
		secrets_cancel(r->batch);
	cfg_secret_refs_clear(&r->refs);
	for (size_t i = 0; r->confs && i < core->plugins.n; i++) {
		if (r->confs[i]) {
			if (core->plugins.v[i].def->options)
				cfg_conf_free(core->plugins.v[i].def->options, r->confs[i]);
			free(r->confs[i]);
		}
	}
	free(r->confs);
	core_conf_release(&r->conf);
	cfg_free(r->cf);
	free(r);
}

static void reload_apply(struct reload *r)
{
	struct core *core = r->core;
	char keys[512];
	cfg_no_reload_changes(core_options, &core->conf, &r->conf, keys, sizeof keys);
	if (keys[0])
		log_warn("reload: [core] %s changed; that needs a restart and keeps its old value now", keys);
	for (size_t i = 0; i < core->plugins.n; i++) {
		struct plugin *p = &core->plugins.v[i];
		cfg_no_reload_changes(p->def->options, p->conf, r->confs[i], keys, sizeof keys);
		if (keys[0]) {
			log_warn("reload: [plugin.%s] %s changed; that needs a restart, so the plugin keeps "
				 "its running options", p->name, keys);
			continue;
		}
		if (!p->def->reconfigure) {
			/* It may hold pointers into its options: they stay. */
			bool changed = false;
			for (const struct todod_opt *o = p->def->options; o && o->key && !changed; o++)
				changed = !cfg_opt_equal(o, p->conf, r->confs[i]);
			if (changed)
				log_warn("reload: [plugin.%s] changed, but the plugin cannot take new options "
					 "while running; restart todod to apply them", p->name);
			continue;
		}
		struct todod_err rerr = { "" };
		if (p->def->reconfigure(p->state, p->conf, r->confs[i], &rerr) != 0) {
			log_error("reload: plugin '%s' refused its new options: %s", p->name, rerr.text);
			continue;
		}
		/* Swap: the plugin now reads the new conf; the old one is freed
		 * with the reload. */
		void *old = p->conf;
		p->conf = r->confs[i];
		r->confs[i] = old;
	}

	/* The NO_RELOAD keys keep their running values (warned about above);
	 * the replaced values go with the reload's conf. */
	cfg_take_reloadable(core_options, &core->conf, &r->conf);
	apply_reloadable(core);
	log_info("configuration reloaded");
}

static void reload_begin(struct core *core);

static void reload_end(struct reload *r)
{
	struct core *core = r->core;
	core->reload = NULL;
	reload_free(r);
	sd_notify_state("READY=1");
	if (core->reload_again) {
		core->reload_again = false;
		reload_begin(core);
	}
}

static void reload_fail(struct reload *r, const char *why)
{
	log_error("reload failed, keeping the running configuration: %s", why);
	reload_end(r);
}

static void reload_resolved(const char *error, void *arg)
{
	struct reload *r = arg;
	struct todod_err err = { "" };
	r->batch = NULL;
	if (error)
		reload_fail(r, error);
	else if (validate_resolved(r->core, r->cf, r->confs, &err) != 0)
		reload_fail(r, err.text);
	else {
		reload_apply(r);
		reload_end(r);
	}
}

static int reload_bind(struct reload *r, struct todod_err *err)
{
	struct core *core = r->core;
	if (bind_core(core->config_path, &r->cf, &r->conf, &r->refs, err) != 0)
		return -1;
	if (plugin_set_changed(core, r->cf))
		log_warn("reload: plugins were added or removed; that needs a restart and is ignored now");
	r->confs = todod_xcalloc(core->plugins.n, sizeof *r->confs);
	for (size_t i = 0; i < core->plugins.n; i++)
		if (loader_bind(&core->plugins.v[i], r->cf, &r->confs[i], &r->refs, err) != 0)
			return -1;
	return 0;
}

static void reload_begin(struct core *core)
{
	struct todod_err err = { "" };
	sd_notify_state("RELOADING=1");
	log_info("SIGHUP: reloading %s", core->config_path);
	struct reload *r = todod_xcalloc(1, sizeof *r);
	r->core = core;
	STAILQ_INIT(&r->refs);
	core->reload = r;
	/* Every value is bound and checked first; the plugins' resolvers
	 * then answer from the loop, and only a complete, valid
	 * configuration is applied. */
	if (reload_bind(r, &err) != 0) {
		reload_fail(r, err.text);
		return;
	}
	r->batch = secrets_resolve(core->secrets, &r->refs, r->conf.secret_timeout,
				   reload_resolved, r);
	if (!r->batch)
		reload_fail(r, "cannot create the secret resolution events");
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct core *core = arg;
	if (core->reload) {
		/* The file may have changed after the running reload read it. */
		if (!core->reload_again)
			log_info("SIGHUP while a reload waits for its secrets: one more reload follows it");
		core->reload_again = true;
		return;
	}
	reload_begin(core);
}

/* ---- start-up ---------------------------------------------------------------- */

static int prepare_database(struct core *core, char **conninfo, struct todod_err *err)
{
	bool created = false;
	if (core->conf.database && *core->conf.database) {
		*conninfo = todod_xstrdup(core->conf.database);
	} else {
		core->pgcluster = pgcluster_start(core->conf.state_dir, core->conf.pg_bindir, true,
						  conninfo, &created, err);
		if (!core->pgcluster)
			return -1;
	}
	PGconn *c = db_connect_blocking(*conninfo, err);
	if (!c)
		return -1;
	int applied = migrate_apply(c, err);
	if (applied < 0) {
		PQfinish(c);
		return -1;
	}
	if (applied > 0)
		log_info("database schema: %d migration%s applied", applied, applied == 1 ? "" : "s");

	/* A private cluster starts with one user, so the default
	 * configuration is usable at once. */
	FILE *out = core->stdio_user ? stderr : stdout; /* stdout is the protocol's */
	if (core->pgcluster && admin_first_user(c, core->conf.listen, out, err) != 0) {
		PQfinish(c);
		return -1;
	}
	if (core->stdio_user &&
	    admin_user_id(c, core->stdio_user, &core->stdio_user_id, err) != 0) {
		PQfinish(c);
		return -1;
	}
	PQfinish(c);
	return 0;
}

static void instance_name(struct core *core)
{
	if (core->conf.instance && *core->conf.instance)
		snprintf(core->instance, sizeof core->instance, "%s", core->conf.instance);
	else if (gethostname(core->instance, sizeof core->instance) != 0)
		snprintf(core->instance, sizeof core->instance, "todod");
	api_set_instance(core->instance);
}

static int connect_transport(struct core *core, struct todod_err *err)
{
	const char *name = NULL;
	const struct todod_transport *t = services_get(core, "transport", &name);
	if (!t) {
		log_info("events: in-process (no transport plugin loaded)");
		return 0;
	}
	if (t->struct_size < sizeof *t)
		return todod_err_set(err, "transport '%s' is too old for this todod", name);
	for (const char *const *topic = bus_topics(core->bus); *topic; topic++)
		if (t->subscribe && t->subscribe(t->self, *topic, err) != 0)
			return -1;
	outbox_relay_set_transport(core->relay, t);
	log_info("events: transport '%s'", name);
	return 0;
}

/* [core] inbox names the driver; one a plugin provides but the option
 * does not name stays unused, so a loaded plugin cannot move the inbox
 * behind the operator's back. */
static int choose_inbox(struct core *core, struct todod_err *err)
{
	const char *want = core->conf.inbox, *name = NULL;
	const void *owner = NULL;
	char loaded[256];
	const struct todod_inbox_driver *d =
		services_inbox_driver(core, want, &owner, &name, loaded, sizeof loaded);
	if (strcmp(want, INBOX_DB_NAME) == 0) {
		if (loaded[0])
			log_info("inbox: database ([core] inbox does not name '%s')", loaded);
		return 0;
	}
	if (!d)
		return todod_err_set(err, "%s: [core] inbox = %s: no loaded plugin provides an "
				     "inbox driver of that name%s%s", core->config_path, want,
				     loaded[0] ? "; loaded: " : "", loaded);
	bus_set_inbox(core->bus, d, owner);
	log_info("inbox: driver '%s' (service '%s')", d->name, name);
	return 0;
}

static void stdio_closed(void *arg)
{
	start_drain(arg, "end of input");
}

static int attach_stdio(struct core *core, struct todod_err *err)
{
	if (!core->stdio_user)
		return 0;
	const char *name = NULL;
	const struct todod_stdio_service *svc = services_get(core, "stdio", &name);
	if (!svc)
		return todod_err_set(err, "mcp-stdio: no loaded plugin serves stdio; add a "
					  "[plugin.mcp-tools] section to %s", core->config_path);
	if (svc->struct_size < sizeof *svc)
		return todod_err_set(err, "mcp-stdio: plugin '%s' is too old for this todod", name);
	return svc->attach(svc->self, STDIN_FILENO, STDOUT_FILENO, core->stdio_user_id, stdio_closed,
			   core, err);
}

/* After the plugins' init: the resolvers they provide answer for
 * [core] and every plugin's options, which are then checked again. */
static int resolve_secrets(struct core *core, struct cfg_secret_refs *refs, struct todod_err *err)
{
	if (STAILQ_EMPTY(refs))
		return 0;
	if (secrets_resolve_now(core->secrets, refs, core->conf.secret_timeout, err) != 0)
		return -1;
	return validate_resolved(core, core->cf, NULL, err);
}

static int open_database(struct core *core, struct todod_err *err)
{
	char *conninfo = NULL;
	int rc = prepare_database(core, &conninfo, err);
	if (rc == 0)
		rc = db_pool_start(core->db, conninfo, err);
	if (conninfo)
		explicit_bzero(conninfo, strlen(conninfo));
	free(conninfo);
	return rc;
}

/* With epoll, libevent's changelist folds the changes one loop turn makes
 * to an fd's interest into one epoll_ctl, where evhttp drops and re-adds
 * reading and writing around every request (4 calls a request without
 * it; see also http_reply's write).  libevent warns that the changelist misbehaves for
 * descriptors that share an open file with another one (dup(), fork())
 * and are closed while watched: the deferred EPOLL_CTL_DEL then fails
 * with EBADF and the kernel keeps reporting the shared file.  What the
 * loop watches never is such a descriptor: the listener's and libpq's
 * sockets and the kafka-direct pipe are CLOEXEC and never duplicated,
 * libcurl opens and closes its sockets itself, and the one fork
 * (pgcluster.c) runs before the loop and execs at once.  The exception
 * is `todod mcp-stdio`, whose stdin and stdout may be one socket; it
 * serves one client and keeps the plain backend. */
static struct event_base *new_event_base(bool stdio)
{
	struct event_config *cfg = stdio ? NULL : event_config_new();
	if (cfg)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	struct event_base *base = cfg ? event_base_new_with_config(cfg) : event_base_new();
	if (cfg)
		event_config_free(cfg);
	return base;
}

static int start_core(struct core *core, struct cfg_secret_refs *refs, struct todod_err *err)
{
	core->base = new_event_base(core->stdio_user != NULL);
	struct http_limits limits = limits_of(&core->conf);
	struct bus_conf bc = bus_conf_of(&core->conf);
	struct outbox_conf oc = outbox_conf_of(&core->conf);
	if (!core->base ||
	    !(core->http = http_server_new(core->base, core->stdio_user ? NULL : core->conf.listen,
					   &limits, err)) ||
	    !(core->curlm = curlm_new(core->base, err)) ||
	    !(core->db = db_pool_new(core->base, core->conf.db_pool_size ?
					   (int)core->conf.db_pool_size : db_pool_size_for_machine(),
					   err)) ||
	    !(core->store = store_new(core->base, core->db)) ||
	    !(core->bus = bus_new(core->base, core->store, &bc)) ||
	    !(core->relay = outbox_relay_new(core->base, core->store, core->bus, core->instance, &oc)) ||
	    !(core->secrets = secrets_new(core))) {
		if (!err->text[0])
			todod_err_set(err, "cannot set up the core (out of memory?)");
		return -1;
	}
	db_pool_set_timeout(core->db, db_timeout_of(&core->conf));
	store_set_label_quotas(core->store, core->conf.max_categories_per_user,
			       core->conf.max_tags_per_user);
	/* Resolvers are services, provided in init; the connection string
	 * may need one, so the database comes after them. */
	if (core_routes_add(core, err) != 0 || loader_init_all(&core->plugins, core, err) != 0 ||
	    resolve_secrets(core, refs, err) != 0 || open_database(core, err) != 0 ||
	    connect_transport(core, err) != 0 || choose_inbox(core, err) != 0 ||
	    loader_start_all(&core->plugins, err) != 0 ||
	    attach_stdio(core, err) != 0)
		return -1;

	core->sig_term = evsignal_new(core->base, SIGTERM, on_stop_signal, core);
	core->sig_int = evsignal_new(core->base, SIGINT, on_stop_signal, core);
	core->sig_hup = evsignal_new(core->base, SIGHUP, on_hup, core);
	if (!core->sig_term || !core->sig_int || !core->sig_hup || evsignal_add(core->sig_term, NULL) ||
	    evsignal_add(core->sig_int, NULL) || evsignal_add(core->sig_hup, NULL))
		return todod_err_set(err, "cannot install signal handlers");
	outbox_relay_start(core->relay);
	return 0;
}

/* Let inbox records and outbox acknowledgements that are already on their
 * way land, so a clean stop re-sends as little as possible.  Bounded: a
 * database that does not answer does not hold the exit up. */
#define FINAL_DB_WAIT_MS 2000

static void finish_database_work(struct core *core)
{
	int64_t deadline = clock_mono_ms() + FINAL_DB_WAIT_MS;
	struct timeval slice = { 0, 10000 };
	while (db_pool_busy(core->db) > 0 && clock_mono_ms() <= deadline) {
		event_base_loopexit(core->base, &slice);
		event_base_loop(core->base, EVLOOP_ONCE);
	}
}

static void stop_core(struct core *core)
{
	if (core->sig_term)
		event_free(core->sig_term);
	if (core->sig_int)
		event_free(core->sig_int);
	if (core->sig_hup)
		event_free(core->sig_hup);
	if (core->drain_deadline)
		event_free(core->drain_deadline);
	/* A reload's resolvers may still owe answers: they are dropped, and
	 * what the plugins never answered is forgotten once they are gone. */
	if (core->reload)
		reload_free(core->reload);
	loader_unload(&core->plugins);
	secrets_free(core->secrets);
	services_free(core);
	if (core->db && core->base)
		finish_database_work(core);
	/* Closing the pool answers the statements still queued, while the bus
	 * and the relay that wait for them are still there; the relay ignores
	 * answers from then on, so the bus can settle what is left. */
	if (core->relay)
		outbox_relay_close(core->relay);
	db_pool_free(core->db);
	bus_free(core->bus);
	outbox_relay_free(core->relay);
	store_free(core->store);
	if (core->http)
		http_server_free(core->http);
	if (core->curlm)
		curlm_free(core->curlm);
	metrics_free_all();
	if (core->base)
		event_base_free(core->base);
	pgcluster_stop(core->pgcluster);
	core_conf_release(&core->conf);
	cfg_free(core->cf);
	free(core->config_path);
}

int daemon_run(const char *path, const char *stdio_user)
{
	struct core core = { .exit_code = 0, .stdio_user = stdio_user };
	struct todod_err err = { "" };
	/* SECRET values that may name a plugin's resolver, until start-up
	 * resolves them. */
	struct cfg_secret_refs refs = STAILQ_HEAD_INITIALIZER(refs);
	int rc = daemon_load_core_conf(path, &core.cf, &core.conf, &refs);
	if (rc != 0)
		return rc;
	core.config_path = todod_xstrdup(path);
	log_set_level((enum todod_log_level)core.conf.log_level);
	if (loader_load(core.cf, core.conf.plugin_dir, &core.plugins, &refs, &err) != 0) {
		fprintf(stderr, "todod: %s\n", err.text);
		cfg_secret_refs_clear(&refs);
		stop_core(&core);
		return EXIT_CONFIG;
	}
	instance_name(&core);
	signal(SIGPIPE, SIG_IGN);
	rc = start_core(&core, &refs, &err);
	cfg_secret_refs_clear(&refs);
	if (rc != 0) {
		log_error("%s", err.text);
		stop_core(&core);
		return 1;
	}
	log_info("todod %s ready %s%s (instance %s, %zu plugin%s)", PACKAGE_VERSION,
		 stdio_user ? "on stdio for " : "on http://", stdio_user ? stdio_user : core.conf.listen,
		 core.instance, core.plugins.n, core.plugins.n == 1 ? "" : "s");
	sd_notify_state("READY=1");
	if (event_base_dispatch(core.base) < 0) {
		log_error("event loop failed");
		core.exit_code = 1;
	}
	stop_core(&core);
	return core.exit_code;
}

int daemon_check_config(const char *path)
{
	struct cfg_file *cf;
	struct core_conf conf;
	struct plugin_set set;
	struct todod_err err = { "" };
	int rc = daemon_load_core_conf(path, &cf, &conf, NULL);
	if (rc != 0)
		return rc;
	if (loader_load(cf, conf.plugin_dir, &set, NULL, &err) != 0) {
		fprintf(stderr, "todod: %s\n", err.text);
		core_conf_release(&conf);
		cfg_free(cf);
		return EXIT_CONFIG;
	}
	cfg_print(stdout, "core", core_options, &conf);
	for (size_t i = 0; i < set.n; i++) {
		char section[128];
		snprintf(section, sizeof section, "plugin.%s", set.v[i].name);
		cfg_print(stdout, section, set.v[i].def->options, set.v[i].conf);
	}
	fprintf(stderr, "todod: configuration %s is valid (%zu plugin%s)\n", path, set.n,
		set.n == 1 ? "" : "s");
	loader_unload(&set);
	core_conf_release(&conf);
	cfg_free(cf);
	return 0;
}

int daemon_help_plugin(const char *path, const char *name)
{
	struct cfg_file *cf = NULL;
	struct core_conf conf = { 0 };
	struct todod_err err = { "" };
	const char *dir = PLUGINDIR;
	/* The config only tells where plugins are; without one, the default. */
	if (path && access(path, R_OK) == 0) {
		int rc = daemon_load_core_conf(path, &cf, &conf, NULL);
		if (rc != 0)
			return rc;
		dir = conf.plugin_dir;
	}
	if (strcmp(name, "core") == 0) {
		printf("[core]\n");
		cfg_print_help(stdout, core_options);
	} else {
		struct plugin p;
		if (loader_open(dir, name, &p, &err) != 0) {
			fprintf(stderr, "todod: %s\n", err.text);
			core_conf_release(&conf);
			cfg_free(cf);
			return EXIT_CONFIG;
		}
		printf("[plugin.%s]  %s %s\n%s\n\n", name, name, p.def->version ? p.def->version : "",
		       p.def->description ? p.def->description : "");
		cfg_print_help(stdout, p.def->options);
		struct plugin_set one = { .v = todod_xmalloc(sizeof p), .n = 1 };
		one.v[0] = p;
		loader_unload(&one);
	}
	core_conf_release(&conf);
	cfg_free(cf);
	return 0;
}

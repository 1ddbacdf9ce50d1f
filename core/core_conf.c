/* core_conf.c - the schema of the [core] section. */
#include "core_conf.h"

#include "todod-config.h"

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

#define OFF(field) offsetof(struct core_conf, field)

const struct todod_opt core_options[] = {
	{ "listen", TODOD_OPT_STRING, "127.0.0.1:8080", TODOD_OPT_NO_RELOAD, OFF(listen), 0, 0, NULL,
	  "Address and port of the HTTP listener (host:port or [v6]:port)" },
	{ "database", TODOD_OPT_SECRET, "", TODOD_OPT_NO_RELOAD, OFF(database), 0, 0, NULL,
	  "libpq connection string or URI (may be env:NAME or file:/path); empty runs a private "
	  "PostgreSQL cluster under state_dir" },
	{ "plugin_dir", TODOD_OPT_STRING, PLUGINDIR, TODOD_OPT_NO_RELOAD, OFF(plugin_dir), 0, 0, NULL,
	  "Directory searched for NAME.so when [plugin.NAME] is present" },
	{ "log_level", TODOD_OPT_ENUM, "info", 0, OFF(log_level), 0, 0, log_levels,
	  "Least severe level logged" },
	{ "drain_timeout", TODOD_OPT_DURATION, "10s", 0, OFF(drain_timeout), 0, 3600000, NULL,
	  "On SIGTERM, how long in-flight work may take before todod exits anyway" },
	{ "state_dir", TODOD_OPT_STRING, LOCALSTATEDIR "/lib/todod", TODOD_OPT_NO_RELOAD, OFF(state_dir),
	  0, 0, NULL, "Where the private PostgreSQL cluster lives when database is empty" },
	{ "instance", TODOD_OPT_STRING, "", TODOD_OPT_NO_RELOAD, OFF(instance), 0, 0, NULL,
	  "Name of this instance in event sources (/todod/NAME); default: the host name" },
	{ "max_body_size", TODOD_OPT_SIZE, "1M", 0, OFF(max_body_size), 1024, 64 * 1024 * 1024, NULL,
	  "Largest request body accepted (413 beyond)" },
	{ "max_header_size", TODOD_OPT_SIZE, "8k", 0, OFF(max_header_size), 1024, 1024 * 1024, NULL,
	  "Largest request header block accepted" },
	{ "request_timeout", TODOD_OPT_DURATION, "30s", 0, OFF(request_timeout), 1000, 3600000, NULL,
	  "How long a connection may stay silent (idle keep-alive, or a stalled request), and the "
	  "time todod has to answer a request" },
	{ "header_timeout", TODOD_OPT_DURATION, "10s", 0, OFF(header_timeout), 100, 3600000, NULL,
	  "Time from a request's first byte to the end of its header block, however steadily the "
	  "bytes arrive; the connection is closed past it" },
	{ "body_timeout", TODOD_OPT_DURATION, "30s", 0, OFF(body_timeout), 100, 3600000, NULL,
	  "Time from the end of a request's header block to the end of its body; the connection "
	  "is closed past it" },
	{ "max_connections", TODOD_OPT_INT, "0", 0, OFF(max_connections), 0, 10000000, NULL,
	  "Open HTTP connections at most; one more is closed at once.  0: three quarters of the "
	  "descriptor limit (RLIMIT_NOFILE)" },
	{ "db_pool_size", TODOD_OPT_INT, "4", TODOD_OPT_NO_RELOAD, OFF(db_pool_size), 1, 64, NULL,
	  "PostgreSQL connections kept open" },
	{ "db_timeout", TODOD_OPT_DURATION, "5s", 0, OFF(db_timeout), 100, 3600000, NULL,
	  "How long a statement may take (waiting for a connection included) before the request "
	  "fails as DATABASE_UNAVAILABLE and the connections are re-opened; kept below "
	  "request_timeout" },
	{ "max_attempts", TODOD_OPT_INT, "5", 0, OFF(max_attempts), 1, 100, NULL,
	  "Deliveries of one event to one consumer before it is dead-lettered" },
	{ "retry_backoff", TODOD_OPT_DURATION, "500ms", 0, OFF(retry_backoff), 10, 600000, NULL,
	  "Wait before the first redelivery; doubles each time up to 30s" },
	{ "outbox_batch", TODOD_OPT_INT, "256", 0, OFF(outbox_batch), 1, 10000, NULL,
	  "Events the relay claims at once" },
	{ "outbox_poll_interval", TODOD_OPT_DURATION, "250ms", 0, OFF(outbox_poll_interval), 10, 60000, NULL,
	  "How often the relay looks for events committed by other replicas" },
	{ "outbox_retention", TODOD_OPT_DURATION, "1d", 0, OFF(outbox_retention), 0, 0, NULL,
	  "How long delivered events stay in the outbox table" },
	{ "pg_bindir", TODOD_OPT_STRING, PG_BINDIR, TODOD_OPT_NO_RELOAD, OFF(pg_bindir), 0, 0, NULL,
	  "Where initdb and pg_ctl are, for the private cluster" },
	/* Core, not a plugin's: the store enforces them for every caller, and
	 * task.create and task.update, open to every plugin, create tags. */
	{ "max_categories_per_user", TODOD_OPT_INT, "500", 0, OFF(max_categories_per_user), 1,
	  1000000, NULL,
	  "Categories one user may have; creating one more fails with QUOTA_EXCEEDED" },
	{ "max_tags_per_user", TODOD_OPT_INT, "1000", 0, OFF(max_tags_per_user), 1, 1000000, NULL,
	  "Tags one user may have, those that tasks create by name included; one more fails "
	  "with QUOTA_EXCEEDED" },
	{ NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL },
};

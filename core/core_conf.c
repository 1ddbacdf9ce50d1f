/* core_conf.c - the schema of the [core] section. */
#include "core_conf.h"

#include "todod-config.h"

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

#define OFF(field) offsetof(struct core_conf, field)

const struct todod_opt core_options[] = {
	{ .key = "listen", .type = TODOD_OPT_STRING, .default_value = "127.0.0.1:8080",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(listen),
	  .description = "Address and port of the HTTP listener (host:port or [v6]:port)" },
	{ .key = "database", .type = TODOD_OPT_SECRET, .default_value = "",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(database),
	  .description = "libpq connection string or URI (may be env:NAME, file:/path or a "
			 "plugin's SCHEME:REF); empty runs a private PostgreSQL cluster under "
			 "state_dir" },
	{ .key = "plugin_dir", .type = TODOD_OPT_STRING, .default_value = PLUGINDIR,
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(plugin_dir),
	  .description = "Directory searched for NAME.so when [plugin.NAME] is present" },
	{ .key = "log_level", .type = TODOD_OPT_ENUM, .default_value = "info",
	  .offset = OFF(log_level), .choices = log_levels,
	  .description = "Least severe level logged" },
	{ .key = "drain_timeout", .type = TODOD_OPT_DURATION, .default_value = "10s",
	  .offset = OFF(drain_timeout), .max = 3600000,
	  .description = "On SIGTERM, how long in-flight work may take before todod exits anyway" },
	{ .key = "state_dir", .type = TODOD_OPT_STRING, .default_value = LOCALSTATEDIR "/lib/todod",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(state_dir),
	  .description = "Where the private PostgreSQL cluster lives when database is empty" },
	{ .key = "instance", .type = TODOD_OPT_STRING, .default_value = "",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(instance),
	  .description = "Name of this instance in event sources (/todod/NAME); default: the "
			 "host name" },
	{ .key = "max_body_size", .type = TODOD_OPT_SIZE, .default_value = "1M",
	  .offset = OFF(max_body_size), .min = 1024, .max = 64 * 1024 * 1024,
	  .description = "Largest request body accepted (413 beyond)" },
	{ .key = "max_header_size", .type = TODOD_OPT_SIZE, .default_value = "8k",
	  .offset = OFF(max_header_size), .min = 1024, .max = 1024 * 1024,
	  .description = "Largest request header block accepted" },
	{ .key = "request_timeout", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = OFF(request_timeout), .min = 1000, .max = 3600000,
	  .description = "How long a connection may stay silent (idle keep-alive, or a stalled "
			 "request), and the time todod has to answer a request" },
	{ .key = "header_timeout", .type = TODOD_OPT_DURATION, .default_value = "10s",
	  .offset = OFF(header_timeout), .min = 100, .max = 3600000,
	  .description = "Time from a request's first byte to the end of its header block, "
			 "however steadily the bytes arrive; the connection is closed past it" },
	{ .key = "body_timeout", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = OFF(body_timeout), .min = 100, .max = 3600000,
	  .description = "Time from the end of a request's header block to the end of its body; "
			 "the connection is closed past it" },
	{ .key = "max_connections", .type = TODOD_OPT_INT, .default_value = "0",
	  .offset = OFF(max_connections), .max = 10000000,
	  .description = "Open HTTP connections at most; one more is closed at once.  0: three "
			 "quarters of the descriptor limit (RLIMIT_NOFILE)" },
	{ .key = "db_pool_size", .type = TODOD_OPT_INT, .default_value = "0",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(db_pool_size), .max = 64,
	  .description = "PostgreSQL connections kept open, each with up to 32 statements in "
			 "flight.  0: twice the processors online, at least 4" },
	{ .key = "db_timeout", .type = TODOD_OPT_DURATION, .default_value = "5s",
	  .offset = OFF(db_timeout), .min = 100, .max = 3600000,
	  .description = "How long a statement may take (waiting for a connection included) "
			 "before the request fails as DATABASE_UNAVAILABLE and the connections "
			 "are re-opened; kept below request_timeout" },
	{ .key = "max_attempts", .type = TODOD_OPT_INT, .default_value = "5",
	  .offset = OFF(max_attempts), .min = 1, .max = 100,
	  .description = "Deliveries of one event to one consumer before it is dead-lettered" },
	{ .key = "retry_backoff", .type = TODOD_OPT_DURATION, .default_value = "500ms",
	  .offset = OFF(retry_backoff), .min = 10, .max = 600000,
	  .description = "Wait before the first redelivery; doubles each time up to 30s" },
	{ .key = "outbox_batch", .type = TODOD_OPT_INT, .default_value = "256",
	  .offset = OFF(outbox_batch), .min = 1, .max = 10000,
	  .description = "Events the relay claims at once" },
	{ .key = "outbox_poll_interval", .type = TODOD_OPT_DURATION, .default_value = "250ms",
	  .offset = OFF(outbox_poll_interval), .min = 10, .max = 60000,
	  .description = "How often the relay looks for events committed by other replicas" },
	{ .key = "outbox_retention", .type = TODOD_OPT_DURATION, .default_value = "1d",
	  .offset = OFF(outbox_retention),
	  .description = "How long delivered events stay in the outbox table" },
	{ .key = "pg_bindir", .type = TODOD_OPT_STRING, .default_value = PG_BINDIR,
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(pg_bindir),
	  .description = "Where initdb and pg_ctl are, for the private cluster" },
	{ .key = "max_categories_per_user", .type = TODOD_OPT_INT, .default_value = "500",
	  .offset = OFF(max_categories_per_user), .min = 1, .max = 1000000,
	  .description = "Categories one user may have; creating one more fails with "
			 "QUOTA_EXCEEDED" },
	{ .key = "max_tags_per_user", .type = TODOD_OPT_INT, .default_value = "1000",
	  .offset = OFF(max_tags_per_user), .min = 1, .max = 1000000,
	  .description = "Tags one user may have, those that tasks create by name included; one "
			 "more fails with QUOTA_EXCEEDED" },
	{ .key = "inbox", .type = TODOD_OPT_STRING, .default_value = "database",
	  .flags = TODOD_OPT_NO_RELOAD, .offset = OFF(inbox),
	  .description = "Where consumers record the events they handled: \"database\", or the "
			 "name of the inbox driver a loaded plugin provides" },
	{ .key = "secret_timeout", .type = TODOD_OPT_DURATION, .default_value = "30s",
	  .offset = OFF(secret_timeout), .min = 100, .max = 3600000,
	  .description = "How long plugins' secret resolvers (SCHEME:REF values) may take, all "
			 "together, at start-up or on SIGHUP; past it start-up fails, or the "
			 "reload keeps the running configuration" },
	{ .key = NULL },
};

/* core_conf.h - the [core] section: the interface operators and scripts
 * rely on (listen, database, plugin_dir, log_level, drain_timeout) plus
 * the limits and tuning knobs of the core. */
#ifndef TODOD_CORE_CONF_H
#define TODOD_CORE_CONF_H

#include "todod-plugin.h"

struct core_conf {
	char *listen;
	char *database;         /* empty: a private cluster under state_dir */
	char *plugin_dir;
	int log_level;          /* enum todod_log_level */
	int64_t drain_timeout;  /* ms */
	char *state_dir;
	char *instance;         /* CloudEvents source suffix; default host name */
	int64_t max_body_size;
	int64_t max_header_size;
	int64_t request_timeout; /* ms of silence */
	int64_t header_timeout;  /* ms from a request's first byte to its header end */
	int64_t body_timeout;    /* ms from the header end to the body end */
	int64_t max_connections; /* 0: derived from RLIMIT_NOFILE */
	int64_t db_pool_size;
	int64_t db_timeout;      /* ms a statement may take, queueing included */
	int64_t max_attempts;    /* per event and consumer before dead-lettering */
	int64_t retry_backoff;   /* ms, first retry; doubles up to 30 s */
	int64_t outbox_batch;
	int64_t outbox_poll_interval; /* ms: how often other replicas' commits are looked for */
	int64_t outbox_retention;     /* ms sent events are kept */
	char *pg_bindir;         /* initdb/pg_ctl for the private cluster */
	int64_t max_categories_per_user;
	int64_t max_tags_per_user;
	char *inbox;             /* "database" or a plugin's inbox driver */
	int64_t secret_timeout;  /* ms plugins' resolvers have for all of a config's secrets */
};

extern const struct todod_opt core_options[];

#endif

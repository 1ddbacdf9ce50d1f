/* daemon.h - the running daemon: every core part hangs off one struct
 * core, created at start-up and freed at exit.  Plugins reach it only
 * through their context. */
#ifndef TODOD_DAEMON_H
#define TODOD_DAEMON_H

#include <stdbool.h>

#include <event2/event.h>

#include "config.h"
#include "core_conf.h"
#include "loader.h"

struct core {
	struct event_base *base;
	char *config_path;
	struct cfg_file *cf;
	struct core_conf conf;
	struct plugin_set plugins;
	char instance[128];

	struct http_server *http;
	struct curlm *curlm;
	struct db_pool *db;
	struct store *store;
	struct bus *bus;
	struct outbox_relay *relay;
	struct service *services;
	struct pgcluster *pgcluster;   /* when todod runs its own database */

	struct event *sig_term, *sig_int, *sig_hup, *drain_deadline;
	const char *stdio_user;        /* `todod mcp-stdio --user NAME` */
	int64_t stdio_user_id;
	int drains_pending;
	bool draining;
	int exit_code;
};

/* Run the daemon with the config at `path`; returns the process exit code
 * (0 clean stop, 78 configuration error, 1 otherwise).  With `stdio_user`
 * (`todod mcp-stdio --user NAME`) there is no HTTP listener: the plugin
 * providing service "stdio" serves that user on stdin/stdout, and the end
 * of stdin stops the process. */
int daemon_run(const char *path, const char *stdio_user);

/* `todod -t`: parse and validate everything, print the effective
 * configuration (secrets redacted), load every plugin without starting it. */
int daemon_check_config(const char *path);

/* `todod --help-plugin NAME`. */
int daemon_help_plugin(const char *path, const char *name);

/* Parse the file and bind [core]; shared by the daemon and the CLI.
 * Exit-code style return: 0, or 78 with the reason printed. */
int daemon_load_core_conf(const char *path, struct cfg_file **cf, struct core_conf *conf);

#define EXIT_CONFIG 78

#endif

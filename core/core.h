/* core.h - struct core: every core part hangs off it, created at start-up
 * and freed at exit.  Plugins reach it only through their context.
 *
 * It sits at the bottom of the include graph so that the parts that only
 * need the struct (the API table, the loader, the core routes) do not
 * depend on the daemon's start-up and reload code. */
#ifndef TODOD_CORE_H
#define TODOD_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core_conf.h"
#include "loader.h"

struct event;
struct event_base;
struct cfg_file;

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
	LIST_HEAD(, service) services;
	LIST_HEAD(, trigger_driver) trigger_drivers; /* who drives which trigger (services.c) */
	struct pgcluster *pgcluster;   /* when todod runs its own database */
	struct secrets *secrets;       /* lookups by plugins' secret resolvers */
	struct reload *reload;         /* a SIGHUP waiting for its secrets */
	bool reload_again;             /* one more SIGHUP came meanwhile */

	struct event *sig_term, *sig_int, *sig_hup, *drain_deadline;
	const char *stdio_user;        /* `todod mcp-stdio --user NAME` */
	int64_t stdio_user_id;
	int drains_pending;
	bool draining;
	int exit_code;
};

#endif

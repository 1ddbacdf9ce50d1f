/* pgcluster.h - a private PostgreSQL cluster for the default
 * configuration: when [core] database is empty, todod creates (initdb)
 * and starts a cluster under state_dir, reachable only over a unix
 * socket there, and stops it on exit. */
#ifndef TODOD_PGCLUSTER_H
#define TODOD_PGCLUSTER_H

#include <stdbool.h>

#include "todod-plugin.h"

struct pgcluster;

/* Blocking (start-up only).  `*conninfo` (malloc'd) connects to it;
 * `*created` tells whether initdb ran now.  With `adopt` (the daemon), a
 * cluster found running, e.g. left by a crash, is stopped at
 * pgcluster_stop too; without it (a CLI command next to a running daemon)
 * only one started here is. */
struct pgcluster *pgcluster_start(const char *state_dir, const char *bindir, bool adopt,
				  char **conninfo, bool *created, struct todod_err *err);
void pgcluster_stop(struct pgcluster *pc);

#endif

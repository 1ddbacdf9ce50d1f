/* core_routes.h - the routes the core itself serves: /healthz (alive),
 * /readyz (database, transport and plugins ready), /metrics (Prometheus
 * text), and the core's own gauges. */
#ifndef TODOD_CORE_ROUTES_H
#define TODOD_CORE_ROUTES_H

#include "todod-plugin.h"

struct core;

/* Registers the routes on core->http and the gauges with the metrics
 * registry; both read `core` until it is freed. */
int core_routes_add(struct core *core, struct todod_err *err);

#endif

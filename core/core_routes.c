/* core_routes.c - /healthz, /readyz and /metrics.
 *
 * /healthz only says the loop turns; /readyz asks every part a request
 * depends on, so a load balancer stops sending work to an instance that
 * cannot do it (and to one that is draining). */
#include "core_routes.h"

#include <event2/buffer.h>

#include "api.h"
#include "bus.h"
#include "core.h"
#include "db.h"
#include "http.h"
#include "metrics.h"

static void route_healthz(struct todod_http_req *req, void *arg)
{
	static const char body[] = "{\"status\":\"ok\"}";
	http_reply(req, 200, "application/json", body, sizeof body - 1);
}

static void route_readyz(struct todod_http_req *req, void *arg)
{
	struct core *core = arg;
	json_object *checks = json_object_new_object();
	bool ready = !core->draining;
	struct todod_err why = { "" };

	if (db_pool_ready(core->db, &why)) {
		json_object_object_add(checks, "database", json_object_new_string("ok"));
	} else {
		ready = false;
		json_object_object_add(checks, "database", json_object_new_string(why.text));
	}
	const char *tname = NULL;
	const struct todod_transport *t = services_get(core, "transport", &tname);
	if (!t) {
		json_object_object_add(checks, "transport", json_object_new_string("in-process"));
	} else if (t->ready(t->self, &why) != 0) {
		ready = false;
		json_object_object_add(checks, "transport", json_object_new_string(why.text));
	} else {
		json_object_object_add(checks, "transport", json_object_new_string("ok"));
	}
	for (size_t i = 0; i < core->plugins.n; i++) {
		struct plugin *p = &core->plugins.v[i];
		if (!p->def->health || !p->ctx)
			continue;
		why.text[0] = '\0';
		if (p->def->health(p->state, &why) != 0) {
			ready = false;
			json_object_object_add(checks, p->name, json_object_new_string(why.text));
		} else {
			json_object_object_add(checks, p->name, json_object_new_string("ok"));
		}
	}
	if (core->draining)
		json_object_object_add(checks, "shutdown", json_object_new_string("draining"));
	json_object *body = json_object_new_object();
	json_object_object_add(body, "ready", json_object_new_boolean(ready));
	json_object_object_add(body, "checks", checks);
	size_t len;
	const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	http_reply(req, ready ? 200 : 503, "application/json", text, len);
	json_object_put(body);
}

static void route_metrics(struct todod_http_req *req, void *arg)
{
	struct evbuffer *buf = evbuffer_new();
	if (!buf) {
		http_reply_error(req, 500, "INTERNAL_ERROR", "out of memory");
		return;
	}
	metrics_render(buf);
	size_t len = evbuffer_get_length(buf);
	http_reply(req, 200, "text/plain; version=0.0.4", evbuffer_pullup(buf, -1), len);
	evbuffer_free(buf);
}

static double gauge_db_busy(void *arg) { return db_pool_busy(((struct core *)arg)->db); }
static double gauge_db_live(void *arg) { return db_pool_live(((struct core *)arg)->db); }
static double gauge_bus_in_flight(void *arg) { return bus_in_flight(((struct core *)arg)->bus); }

int core_routes_add(struct core *core, struct todod_err *err)
{
	if (http_route_add(core->http, NULL, TODOD_HTTP_GET | TODOD_HTTP_HEAD, "/healthz",
			   route_healthz, core, err) != 0 ||
	    http_route_add(core->http, NULL, TODOD_HTTP_GET | TODOD_HTTP_HEAD, "/readyz",
			   route_readyz, core, err) != 0 ||
	    http_route_add(core->http, NULL, TODOD_HTTP_GET, "/metrics", route_metrics, core, err) != 0)
		return -1;
	metrics_gauge_fn("todod_db_statements_in_flight", "Statements queued or running", "",
			 gauge_db_busy, core);
	metrics_gauge_fn("todod_db_connections_up", "PostgreSQL connections of the pool that are up",
			 "", gauge_db_live, core);
	metrics_gauge_fn("todod_bus_deliveries_in_flight", "Deliveries awaiting an answer or a retry",
			 "", gauge_bus_in_flight, core);
	return 0;
}

"""The HTTP surface an operator and a load balancer see."""

import re

from harness import query, task_id, wait_until


def assert_json_error(resp, status):
    assert resp.status == status, resp
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    error = resp.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_healthz(probe_todod):
    resp = probe_todod.get("/healthz")
    assert resp.status == 200
    assert resp.json() == {"status": "ok"}


def test_readyz_reports_database_and_transport(probe_todod):
    # Healthy (what start() waits for) comes before ready: the pool may
    # still be connecting.
    probe_todod.wait_ready()
    resp = probe_todod.get("/readyz")
    assert resp.status == 200, resp
    body = resp.json()
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["transport"] == "in-process"


def test_unknown_path_is_a_json_404(probe_todod):
    assert_json_error(probe_todod.get("/no/such/thing"), 404)


def test_wrong_method_is_a_json_405(probe_todod):
    assert_json_error(probe_todod.get("/probe/tasks"), 405)


def test_body_over_max_body_size_is_a_json_413(probe_todod):
    # probe_todod runs with max_body_size = 4k.
    big = {"title": "x", "description": "d" * 8192}
    assert_json_error(probe_todod.post("/probe/tasks", big), 413)
    assert probe_todod.get("/healthz").status == 200


def test_malformed_json_is_a_json_400(probe_todod):
    resp = probe_todod.post("/probe/tasks", b'{"title": ', headers={"Content-Type": "application/json"})
    assert_json_error(resp, 400)


def test_store_error_names_the_field(probe_todod):
    error = assert_json_error(probe_todod.post("/probe/tasks", {"title": "t" * 300}), 400)
    assert error["code"] == "TITLE_TOO_LONG"
    assert error["field"] == "title"


def test_created_task_is_stored_and_its_event_delivered(probe_todod):
    resp = probe_todod.post("/probe/tasks", {"title": "buy milk", "priority": "high"})
    assert resp.status == 201, resp
    tid = task_id(resp.json())
    db = probe_todod.core["database"]
    assert query(db, "SELECT title, priority::text FROM tasks WHERE id = %s", tid) == \
        [("buy milk", "high")]
    wait_until(lambda: query(db, "SELECT description FROM tasks WHERE id = %s", tid)
               == [("seen by probe",)], 60, what="the probe to see the created event")
    wait_until(lambda: query(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == [(0,)],
               60, what="the outbox to drain")


def metric_values(text, name):
    """{labels: value} for every sample of metric `name`."""
    samples = {}
    for m in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", text, re.M):
        samples[m.group(1) or ""] = float(m.group(2))
    return samples


def test_metrics_exposes_the_counters(probe_todod):
    resp = probe_todod.post("/probe/tasks", {"title": "counted"})
    assert resp.status == 201, resp
    db = probe_todod.core["database"]
    wait_until(lambda: query(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == [(0,)],
               60, what="the outbox to drain")

    resp = probe_todod.get("/metrics")
    assert resp.status == 200
    assert resp.headers.get("Content-Type", "").startswith("text/plain")
    text = resp.text
    assert sum(metric_values(text, "todod_http_requests_total").values()) >= 1
    assert metric_values(text, "todod_outbox_pending"), "todod_outbox_pending missing"
    assert sum(metric_values(text, "todod_outbox_pending").values()) == 0
    assert sum(metric_values(text, "todod_outbox_claims_total").values()) >= 1
    deliveries = metric_values(text, "todod_bus_deliveries_total")
    assert deliveries and sum(deliveries.values()) >= 1, f"no deliveries counted:\n{text}"
    assert "# TYPE todod_http_requests_total counter" in text


def test_readyz_follows_the_database(todod_factory, own_pg):
    t = todod_factory(own_pg.uri("todod"), plugins={"probe": {"user_id": 1}})
    t.provision()
    t.start()
    t.wait_ready()

    own_pg.stop()
    resp = wait_until(lambda: (r := t.get("/readyz")).status == 503 and r, 60,
                      what="/readyz to report the database down")
    body = resp.json()
    assert body["ready"] is False
    assert body["checks"]["database"] != "ok" and body["checks"]["database"]
    assert t.get("/healthz").status == 200, "liveness must not depend on the database"

    own_pg.start()
    wait_until(lambda: t.get("/readyz").status == 200, 60,
               what="/readyz to recover after PostgreSQL came back")
    assert t.alive()

"""The Dapr test infrastructure on its own, without todod: the sidecar and
the scheduler built by contrib/build-dapr.sh, run on loopback with the
component files of contrib/dapr, against real Kafka, Redis and
PostgreSQL.  A small app in the test process stands where todod will.

If these fail, the dapr-transport tests cannot mean anything; if these
pass and those fail, the plugin is the place to look.
"""

import json
import os
import re
import time
import uuid

import pytest

from harness import wait_until
from harness.dapr import SubscriberApp, component_path, listening_sockets

pytestmark = pytest.mark.usefixtures("dapr_scheduler")


def unique(name):
    """A name of this run's own: a Kafka topic or an app id (whose consumer
    group the Kafka component uses) no other test has seen."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def cloudevent(topic, n, **extra):
    return {"specversion": "1.0", "id": f"{topic}-{n}", "source": "/todod/smoke",
            "type": "todod.task.created", "subject": f"task/{n}",
            "datacontenttype": "application/json", "data": {"n": n}, **extra}


def subscription(topic, route="/events", dlq=True):
    sub = {"pubsubname": "pubsub", "topic": topic, "route": route}
    if dlq:
        sub["deadLetterTopic"] = topic + "-dlq"
    return sub


def sidecar(daprd_factory, app, backend, kafka=None, redis=None, database=None, **options):
    d = daprd_factory(unique("smoke"), app.port, pubsub=backend, kafka=kafka, redis=redis,
                      database=database, **options)
    return d.start()


def backend_services(request, backend):
    """The broker the parametrised backend needs, as Daprd keywords."""
    if backend == "kafka":
        return {"kafka": request.getfixturevalue("kafka")}
    return {"redis": request.getfixturevalue("redis")}


# ---- the files load, and nothing listens beyond loopback ------------------------------

def test_the_shipped_components_load_and_listen_on_loopback_only(daprd_factory, dapr_scheduler,
                                                                redis, kafka, database):
    with SubscriberApp([subscription(unique("t"))]) as app:
        for backend in ("redis", "kafka"):
            d = sidecar(daprd_factory, app, backend, kafka=kafka, redis=redis, database=database,
                        scheduler=dapr_scheduler)
            assert d.components() == {
                "pubsub": f"pubsub.{backend}/v1",
                "statestore": "state.postgresql/v2",
                "secretstore": "secretstores.local.file/v1",
            }
            # Exactly the shipped files, linked, not copies.
            for name in os.listdir(d.resources):
                assert os.readlink(os.path.join(d.resources, name)) == component_path(name)
            assert "Loading Resiliency configuration: todod" in d.log()
            sockets = listening_sockets(d.pid)
            assert sockets, "ss shows no socket of daprd"
            assert all(addr.startswith("127.0.0.1:") for _, addr in sockets), sockets
            d.stop()
        # The scheduler's healthz ignores its listen address (dapr-build.md
        # pitfall 8); everything else it opens is loopback.
        others = [(proto, addr) for proto, addr in listening_sockets(dapr_scheduler.pid)
                  if not addr.endswith(f":{dapr_scheduler.healthz_port}")]
        assert others and all(addr.startswith("127.0.0.1:") for _, addr in others), others


def test_secrets_and_state_come_from_the_shipped_stores(daprd_factory, redis, database):
    with SubscriberApp() as app:
        d = sidecar(daprd_factory, app, "redis", redis=redis, database=database,
                    secrets={"todod-smtp-password": "s3cret with spaces"})
        got = d.get_secret("secretstore", "todod-smtp-password")
        assert got.status == 200 and got.json() == {"todod-smtp-password": "s3cret with spaces"}

        # First write wins with ETags: the state store is PostgreSQL v2.
        key = unique("inbox")
        saved = d.request("POST", "/v1.0/state/statestore",
                          body=[{"key": key, "value": {"seen": 1},
                                 "options": {"concurrency": "first-write"}}])
        assert saved.status == 204, saved
        first = d.get_state("statestore", key)
        assert first.status == 200 and first.json() == {"seen": 1}
        etag = first.headers["Etag"]
        stale = d.request("POST", "/v1.0/state/statestore",
                          body=[{"key": key, "value": {"seen": 2}, "etag": str(uuid.uuid4()),
                                 "options": {"concurrency": "first-write"}}])
        assert stale.status == 409, stale
        fresh = d.request("POST", "/v1.0/state/statestore",
                          body=[{"key": key, "value": {"seen": 2}, "etag": etag,
                                 "options": {"concurrency": "first-write"}}])
        assert fresh.status == 204, fresh
        assert d.get_state("statestore", key).json() == {"seen": 2}


def test_api_token_is_required_when_configured(daprd_factory, redis, database):
    with SubscriberApp() as app:
        d = sidecar(daprd_factory, app, "redis", redis=redis, database=database,
                    api_token="api-" + uuid.uuid4().hex)
        without = d.request("GET", "/v1.0/metadata", headers={"dapr-api-token": "wrong"})
        assert without.status == 401, without
        assert d.request("GET", "/v1.0/metadata").status == 200


# ---- pub/sub: delivery, retries per the Resiliency policy, dead letters ------------------

def max_retries():
    """maxRetries of the delivery retry policy in resiliency.yaml (the
    only maxRetries in it)."""
    with open(component_path("resiliency.yaml")) as f:
        [n] = re.findall(r"^\s*maxRetries:\s*(\d+)\s*$", f.read(), re.M)
    return int(n)


@pytest.mark.parametrize("backend", ["kafka", "redis"])
def test_publish_reaches_the_subscriber_with_trace_and_key(request, daprd_factory, database,
                                                          backend):
    services = backend_services(request, backend)
    topic = unique("events")
    with SubscriberApp([subscription(topic)]) as app:
        d = sidecar(daprd_factory, app, backend, database=database,
                    app_token="app-" + uuid.uuid4().hex, **services)
        sent = [cloudevent(topic, n) for n in range(20)]
        for ev in sent:
            resp = d.publish(topic, ev, metadata={"partitionKey": ev["subject"]})
            assert resp.status == 204, resp
        got = app.wait_for("/events", len(sent), timeout=60)
        bodies = [r.json() for r in got]
        assert sorted(b["id"] for b in bodies) == sorted(ev["id"] for ev in sent)
        for rec, body in zip(got, bodies):
            # Dapr keeps every attribute it was given and adds its own.
            original = next(ev for ev in sent if ev["id"] == body["id"])
            assert {k: body[k] for k in original} == original
            assert body["topic"] == topic and body["pubsubname"] == "pubsub"
            # config.yaml samples every request: a real trace context travels.
            version, trace_id, span_id, flags = rec.headers["traceparent"].split("-")
            assert trace_id != "0" * 32 and body["traceparent"].split("-")[1] == trace_id
            # APP_API_TOKEN: the sidecar proves itself to the app.
            assert rec.headers["dapr-api-token"] == d.app_token
            if backend == "kafka":
                assert rec.headers["__key"] == original["subject"]
                assert rec.headers["__topic"] == topic


@pytest.mark.parametrize("backend", ["kafka", "redis"])
def test_refused_delivery_is_retried_per_resiliency_and_drop_is_dead_lettered(
        request, daprd_factory, database, backend):
    """RETRY: redelivered as resiliency.yaml says (exponential from
    500 ms, where the Kafka component alone would wait 5 s between
    tries), until the app takes it; DROP: the dead-letter topic at once,
    and only it.  The message behind them on the same partition follows."""
    services = backend_services(request, backend)
    assert max_retries() >= 10, "resiliency.yaml must ride out an app restart"
    topic = unique("poison")
    refusals = 4

    def answer(rec):
        if rec.path != "/events":
            return 200, {"status": "SUCCESS"}
        body = rec.json()
        wanted = body["data"].get("answer", "SUCCESS")
        if wanted == "RETRY" and len(attempts_of(body["id"])) > refusals:
            wanted = "SUCCESS"
        return 200, {"status": wanted}

    subs = [subscription(topic), subscription(topic + "-dlq", route="/dead", dlq=False)]
    with SubscriberApp(subs, answer=answer) as app:
        def attempts_of(event_id):
            return [r.at for r in app.received("/events") if r.json()["id"] == event_id]

        d = sidecar(daprd_factory, app, backend, database=database, **services)
        key = {"partitionKey": "task/1"}
        for ev in (cloudevent(topic, 1, data={"answer": "RETRY"}),
                   cloudevent(topic, 2, data={"answer": "DROP"}),
                   cloudevent(topic, 3)):
            assert d.publish(topic, ev, metadata=key).status == 204
        wait_until(lambda: len(attempts_of(f"{topic}-1")) > refusals, 90,
                   what="the refused message taken at last")
        wait_until(lambda: attempts_of(f"{topic}-3"), 60, what="the message behind the others")
        [dead] = app.wait_for("/dead", 1, timeout=60)
        assert dead.json()["id"] == f"{topic}-2"
        tries = attempts_of(f"{topic}-1")
        assert len(tries) == refusals + 1, tries
        gaps = [b - a for a, b in zip(tries, tries[1:])]
        print(f"\n[dapr] {backend}: redelivery gaps {', '.join(f'{g:.2f}s' for g in gaps)}")
        assert gaps[0] < 2.0, gaps  # the policy's 500 ms, not the component's 5 s
        assert gaps[-1] > gaps[0], gaps  # and backing off
        assert len(attempts_of(f"{topic}-2")) == 1
        if backend == "kafka":
            # The dead letter is on the broker, as published; only it.
            [dlq] = request.getfixturevalue("kafka").read_topic(topic + "-dlq")
            assert json.loads(dlq.value)["id"] == f"{topic}-2"
        assert len(app.received("/dead")) == 1


# ---- jobs: a callback with the data, surviving restarts ----------------------------------

def test_job_calls_the_app_back_and_survives_restarts(daprd_factory, dapr_scheduler, redis,
                                                      database):
    with SubscriberApp() as app:
        d = sidecar(daprd_factory, app, "redis", redis=redis, database=database,
                    scheduler=dapr_scheduler, app_token="app-" + uuid.uuid4().hex)
        resp = d.schedule_job("smoke-now", {"dueTime": "1s", "data": {"task_id": 1}})
        assert resp.status == 204, resp
        [call] = app.wait_for("/job/smoke-now", 1, timeout=60)
        assert call.json() == {"task_id": 1}
        assert call.headers["dapr-api-token"] == d.app_token
        # A name in use is refused unless the job says overwrite.
        later = {"dueTime": "20s", "data": {"task_id": 2}}
        assert d.schedule_job("smoke-later", later).status == 204
        assert d.schedule_job("smoke-later", later).status == 409
        scheduled = time.time()
        assert d.schedule_job("smoke-later", {**later, "overwrite": True}).status == 204
        # The scheduler restarts, the sidecar crashes and comes back, before
        # the job is due; it still fires, once, and not early.  (After a
        # kill -9 of the scheduler a sidecar waits about 20 s for it: its
        # embedded etcd keeps the dead one's leases until they expire.)
        dapr_scheduler.restart()
        d.restart(crash=True)
        took = time.time() - scheduled
        print(f"\n[dapr] scheduler restart + daprd kill -9 and start: {took:.1f}s")
        assert took < 20, "the restarts took longer than the job's due time"
        assert d.get_job("smoke-later").status == 200
        [call] = app.wait_for("/job/smoke-later", 1, timeout=90)
        assert call.json() == {"task_id": 2}
        assert call.at >= scheduled + 19, call.at - scheduled
        # A one-shot job is gone once it fired: there is nothing left to
        # call the app a second time.
        wait_until(lambda: d.get_job("smoke-later").status != 200, 30,
                   what="the fired job to be removed")
        assert len(app.received("/job/smoke-later")) == 1

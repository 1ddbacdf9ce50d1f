"""The dapr-transport plugin on its own, against a real daprd.

todod runs with dapr-transport (and the recurrence plugin as a consumer
whose effect can be counted: one completion, one successor), its
sidecar on Redis Streams with the component files of contrib/dapr, the
inbox in the Dapr state store ([core] inbox = dapr-state), both tokens
set.  What a user checks:

  - an event todod publishes reaches another app's subscriber, as the
    bytes the outbox wrote (rawPayload), keyed by the task;
  - a delivery goes through the inbox: the completion makes one
    successor, and the same event delivered again is answered at once
    and makes none;
  - something that is not a CloudEvent is dropped with the reason in the
    log (a warning) and lands on the dead-letter topic;
  - a call to todod's Dapr routes without the app token is refused (401);
  - with the sidecar down, events wait in the outbox and /readyz names
    the sidecar; once it is back every event is delivered.
"""

import json
import time
import uuid

import pytest

from harness import query, scalar, wait_until
from harness.dapr import SubscriberApp

API_TOKEN = "api-" + uuid.uuid4().hex
APP_TOKEN = "app-" + uuid.uuid4().hex

pytestmark = pytest.mark.usefixtures("dapr_scheduler")


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


class Fleet:
    """One todod and its sidecar."""

    def __init__(self, todod, daprd, database):
        self.t = todod
        self.d = daprd
        self.db = database

    def call(self, fn, args):
        return scalar(self.db, f"SELECT {fn}(%s, %s::jsonb, NULL, NULL)", self.t.user_id,
                      json.dumps(args))

    def unsent(self):
        return scalar(self.db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")

    def wait_outbox_empty(self, timeout=60):
        wait_until(lambda: self.unsent() == 0, timeout, interval=0.1, what="the outbox drained")

    def successors(self, task_id):
        return scalar(self.db, "SELECT count(*) FROM tasks o JOIN tasks n ON n.series_id = "
                               "o.series_id AND n.occurrence = o.occurrence + 1 WHERE o.id = %s",
                      task_id)

    def deliveries(self, status):
        return self.t.metric("todod_dapr_deliveries_total", status=status) or 0


@pytest.fixture
def fleet(todod_factory, daprd_factory, dapr_scheduler, redis, database, monkeypatch):
    t = todod_factory(database, plugins={"recurrence": {}, "dapr-transport": {}},
                      core={"inbox": "dapr-state", "retry_backoff": "100ms"})
    d = daprd_factory(unique("todod"), t.port, scheduler=dapr_scheduler, pubsub="redis",
                      redis=redis, database=database, api_token=API_TOKEN, app_token=APP_TOKEN)
    t.plugins["dapr-transport"] = {"http_endpoint": d.endpoint, "api_token": "env:TEST_API_TOKEN",
                                   "app_token": APP_TOKEN, "request_timeout": "5s"}
    t.write_config()
    t.user_id, _ = t.provision("alice")
    monkeypatch.setenv("TEST_API_TOKEN", API_TOKEN)
    t.start()
    d.start()
    t.wait_ready()
    return Fleet(t, d, database)


def test_events_reach_subscribers_and_the_inbox_answers_duplicates(fleet, daprd_factory,
                                                                   dapr_scheduler, redis):
    f = fleet
    # Another app on the same pub/sub sees what todod publishes.
    with SubscriberApp([{"pubsubname": "pubsub", "topic": "task-recurrence",
                         "route": "/events"}]) as other:
        listener = daprd_factory(unique("listener"), other.port, scheduler=dapr_scheduler,
                                 pubsub="redis", redis=redis, database=f.db).start()
        subs = [s["topic"] for s in f.d.subscriptions()]
        assert "task-recurrence" in subs, subs
        first = f.call("todod_task_create", {"title": "water plants", "due_at":
                                              "2030-01-07T09:00:00Z", "rrule": "FREQ=DAILY"})["id"]
        f.call("todod_task_complete", {"id": first})
        f.wait_outbox_empty()
        wait_until(lambda: f.successors(first) == 1, 60, what="the successor")
        event_id = scalar(f.db, "SELECT event_id::text FROM outbox WHERE topic = "
                                "'task-recurrence' AND key = %s", str(first))
        [got] = other.wait_for("/events", 1)
        event = got.json()
        assert event["id"] == event_id and event["type"] == "todod.task.completed", event
        # As the outbox wrote it: daprd added none of its attributes.
        assert "pubsubname" not in event and "topic" not in event, event
        assert got.headers.get("rawpayload") == "true", got.headers
        assert got.headers.get("partitionkey") == str(first), got.headers
        listener.stop()

    # The same event once more: the inbox knows it, at once, no effect.
    ok_before = f.deliveries("SUCCESS")
    resp = f.d.publish("task-recurrence", got.body, metadata={"rawPayload": "true",
                                                              "partitionKey": str(first)})
    assert resp.status == 204, resp
    wait_until(lambda: f.deliveries("SUCCESS") > ok_before, 30, what="the duplicate answered")
    assert f.successors(first) == 1
    assert scalar(f.db, "SELECT count(*) FROM tasks") == 2
    key = f"todod-inbox:recurrence:{event_id}"
    assert scalar(f.db, "SELECT count(*) FROM state WHERE key LIKE %s", "%" + key) == 1

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
  - a call to todod's Dapr routes without the app token is refused (401),
    said in one warning however many come;
  - with the sidecar down, events wait in the outbox and /readyz names
    the sidecar; once it is back every event is delivered;
  - a publish daprd refuses (no such component) is said once, at error
    level, and on /readyz, and the events wait;
  - reminders are fired by Dapr Jobs, not by a timer of the reminders
    plugin, and fall back to its scan while the scheduler is down; a job
    that could not be scheduled then is scheduled once it is back, and a
    reminder that goes away takes its job with it;
  - on one Kafka, dapr-transport writes what kafka-direct writes (bytes,
    key, partition) and handles what kafka-direct wrote;
  - [core] database and app_token can come from Dapr's secret store.
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
def make_fleet(request, todod_factory, daprd_factory, dapr_scheduler, database, monkeypatch):
    """make(plugins=None, backend="redis", app_id=None, **dapr-transport
    options) -> a running Fleet: todod with dapr-transport and `plugins`
    (default: recurrence), its sidecar on Redis (or Kafka) with both
    tokens set (the api token reaches todod through the environment, as a
    secret reference)."""
    monkeypatch.setenv("TEST_API_TOKEN", API_TOKEN)

    def make(plugins=None, backend="redis", app_id=None, ready=True, **options):
        everything = dict(plugins if plugins is not None else {"recurrence": {}})
        t = todod_factory(database, plugins={**everything, "dapr-transport": {}},
                          core={"inbox": "dapr-state", "retry_backoff": "100ms"})
        broker = {backend: request.getfixturevalue(backend)}
        d = daprd_factory(app_id or unique("todod"), t.port, scheduler=dapr_scheduler,
                          pubsub=backend, database=database, api_token=API_TOKEN,
                          app_token=APP_TOKEN, **broker)
        t.plugins["dapr-transport"] = {"http_endpoint": d.endpoint,
                                       "api_token": "env:TEST_API_TOKEN",
                                       "app_token": APP_TOKEN, **options}
        t.write_config()
        t.user_id, _ = t.provision("alice")
        t.start()
        d.start()
        if ready:
            t.wait_ready()
        return Fleet(t, d, database)
    return make


@pytest.fixture
def fleet(make_fleet):
    return make_fleet()


def sarama_partition(key, partitions):
    """Sarama's hash partitioner (Dapr's Kafka component), which
    kafka-direct's librdkafka matches with partitioner fnv1a_random."""
    h = 0x811C9DC5
    for byte in key.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    signed = h - (1 << 32) if h & 0x80000000 else h
    return abs(signed) % partitions


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
    # Kept for inbox_ttl (7 days by default), then the store deletes it.
    assert scalar(f.db, "SELECT expires_at > now() + interval '6 days' FROM state "
                        "WHERE key LIKE %s", "%" + key)



def test_each_event_reaches_a_subscriber_once_through_daprd(make_fleet):
    """The memory_inbox test plugin counts what its task-events consumer
    got (its own driver stays unused beside dapr-state): every event once,
    and once more after the relay sent them all again."""
    f = make_fleet(plugins={"memory_inbox": {}})
    tasks = [f.call("todod_task_create", {"title": f"t{i}"})["id"] for i in range(10)]
    f.wait_outbox_empty()

    def stats():
        return f.t.get("/memory-inbox").json()
    wait_until(lambda: stats()["handled"] == len(tasks), 60, what="every event handled")
    handled = f.deliveries("SUCCESS")
    query(f.db, "UPDATE outbox SET sent_at = NULL")
    f.wait_outbox_empty()
    wait_until(lambda: f.deliveries("SUCCESS") >= handled + len(tasks), 60,
               what="the events delivered again, answered")
    assert stats()["handled"] == len(tasks) and stats()["handled_twice"] == 0, stats()
    assert stats()["seen_calls"] == 0, "the memory driver was not chosen"


def test_not_a_cloudevent_is_dropped_with_the_reason_and_dead_lettered(fleet, redis):
    f = fleet
    resp = f.d.publish("task-recurrence", b'{"task_id": 47, "note": "this is no event"}',
                       metadata={"rawPayload": "true"})
    assert resp.status == 204, resp
    wait_until(lambda: f.deliveries("DROP") == 1, 30, what="the delivery dropped")
    f.t.wait_log("delivery on task-recurrence goes to task-recurrence-dlq")
    line = [ln for ln in f.t.log().splitlines() if "goes to task-recurrence-dlq" in ln][0]
    assert " warn " in line and "specversion" in line, line
    # todod publishes what it was given to the dead-letter topic, the
    # reason with it.
    entries = wait_until(lambda: redis.stream("task-recurrence-dlq"), 30,
                         what="an entry on task-recurrence-dlq")
    [fields] = [fields for _, fields in entries if "this is no event" in json.dumps(fields)]
    assert "todod-dlq-reason" in json.dumps(fields) and "specversion" in json.dumps(fields), \
        fields
    assert " error " not in f.t.log()

    # daprd's own envelope (a CloudEvent published without rawPayload,
    # topic and pubsubname added) is read as well.
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/elsewhere",
             "type": "todod.task.updated", "subject": "task/1",
             "datacontenttype": "application/json", "data": {"task": {"id": 1}}}
    assert f.d.publish("task-events", event).status == 204
    wait_until(lambda: f.deliveries("SUCCESS") >= 1, 30, what="the enveloped event handled")
    assert scalar(f.db, "SELECT count(*) FROM state WHERE key LIKE %s",
                  f"%todod-inbox:dapr-jobs:{event['id']}") == 1
    assert f.deliveries("DROP") == 1


def test_calls_without_the_app_token_are_refused(fleet):
    f = fleet
    body = json.dumps({"specversion": "1.0", "id": "x", "source": "/s", "type": "t"}).encode()
    for headers in ({}, {"dapr-api-token": "wrong"}, {"dapr-api-token": APP_TOKEN + "x"}):
        for method, path in (("POST", "/dapr/events/task-recurrence"), ("POST", "/job/x"),
                             ("GET", "/dapr/subscribe")):
            resp = f.t.request(method, path, body=body if method == "POST" else None,
                               headers=headers)
            assert resp.status == 401, (method, path, headers, resp)
            assert resp.json()["error"]["code"] == "UNAUTHORIZED"
    resp = f.t.get("/dapr/subscribe", headers={"dapr-api-token": APP_TOKEN})
    assert resp.status == 200
    subs = {s["topic"]: s for s in resp.json()}
    assert subs["task-recurrence"] == {"pubsubname": "pubsub", "topic": "task-recurrence",
                                       "route": "/dapr/events/task-recurrence",
                                       "deadLetterTopic": "task-recurrence-dlq",
                                       "metadata": {"rawPayload": "true"}}, subs
    log = f.t.log()
    assert APP_TOKEN not in log and API_TOKEN not in log
    assert " error " not in log
    # A client's mistake, made nine times: one warning, not nine lines.
    refusals = [ln for ln in log.splitlines() if "dapr-api-token (option app_token" in ln]
    assert len(refusals) == 1, refusals
    assert " warn " in refusals[0] and "at most once a minute" in refusals[0], refusals


def test_events_wait_while_the_sidecar_is_down(fleet):
    f = fleet
    f.d.stop()
    checks = f.t.wait_ready(False, timeout=30)
    assert f"Dapr sidecar at {f.d.endpoint} unreachable" in checks["transport"], checks
    first = f.call("todod_task_create", {"title": "series", "due_at": "2030-01-07T09:00:00Z",
                                         "rrule": "FREQ=DAILY"})["id"]
    plain = [f.call("todod_task_create", {"title": f"t{i}"})["id"] for i in range(20)]
    f.call("todod_task_complete", {"id": first})
    time.sleep(1)  # the relay's backoff runs meanwhile
    assert f.unsent() == 23, "events wait in the outbox"
    assert not f.t.readiness()[0]
    assert f.successors(first) == 0

    f.d.start()
    f.t.wait_ready(timeout=60)
    f.wait_outbox_empty()
    wait_until(lambda: f.successors(first) == 1, 60, what="the successor")
    assert len(plain) == 20
    log = f.t.log()
    assert "events wait in the outbox" in log and "reachable again" in log
    assert f.successors(first) == 1


def test_reminders_are_timed_by_dapr_jobs(make_fleet):
    f = make_fleet(plugins={"reminders": {"scan_interval": "1h"}})
    f.t.wait_log("dapr-transport times the reminders now")
    due = time.time() + 4
    remind_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    task = f.call("todod_task_create", {"title": "call mum", "remind_at": remind_at})["id"]
    job = wait_until(lambda: (lambda r: r if r.status == 200 else None)(
        f.d.get_job(f"reminder-{task}")), 30, what="the reminder's job")
    assert job.json()["dueTime"] == remind_at, job.json()
    assert job.json()["data"]["value"] == {"task_id": task, "remind_at": remind_at}
    wait_until(lambda: scalar(f.db, "SELECT reminder_state FROM tasks WHERE id = %s", task)
               == "fired", 60, what="the reminder fired")
    fired_at = time.time()
    assert fired_at >= due - 1.5, "fired before its time"
    # The job's callback fired it, not a timer of the reminders plugin.
    assert "[reminders] trigger: 1 reminder(s) fired" in f.t.log(), f.t.log_tail(30)
    assert "[reminders] timer:" not in f.t.log()
    assert f.t.metric("todod_dapr_job_callbacks_total") >= 1
    safety = f.d.get_job("reminders-safety")
    assert safety.status == 200 and safety.json()["schedule"] == "@every 1m", safety


def test_kafka_direct_and_dapr_transport_share_the_wire(make_fleet, kafka):
    """Interop on one Kafka: what dapr-transport publishes is what
    kafka-direct writes (the CloudEvent's bytes, the task id as key, the
    same partition), and what kafka-direct wrote is handled through daprd,
    the inbox knowing it by its id."""
    prefix = unique("wire")
    topics = {f"topic.{logical}": f"{prefix}-{logical}"
              for logical in ("task-events", "task-recurrence", "task-reminders")}
    for physical in topics.values():
        kafka.create_topic(physical, partitions=4)
    f = make_fleet(backend="kafka", **topics)
    tasks = [f.call("todod_task_create", {"title": f"t{i}"})["id"] for i in range(8)]
    events = {row[0]: row[1] for row in query(
        f.db, "SELECT event_id::text, key FROM outbox WHERE topic = 'task-events'")}
    records = kafka.wait_records(f"{prefix}-task-events", lambda rs: len(rs) >= len(tasks),
                                 what="the created events on Kafka")
    for r in records:
        event = r.json()
        assert events.get(event["id"]) == r.key, (event, r.key)
        assert "pubsubname" not in event and "traceparent" not in event, event
        assert r.partition == sarama_partition(r.key, 4), (r.key, r.partition)
    assert len({r.partition for r in records}) > 1, "every task on one partition proves nothing"

    # As kafka-direct writes one: key, value, no headers.
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/todod/other",
             "type": "todod.task.updated", "subject": "task/9", "time": "2026-01-02T03:04:05Z",
             "datacontenttype": "application/json", "data": {"task": {"id": 9}}}
    kafka.produce(f"{prefix}-task-events", json.dumps(event), key="9")
    key = f"%todod-inbox:dapr-jobs:{event['id']}"
    wait_until(lambda: scalar(f.db, "SELECT count(*) FROM state WHERE key LIKE %s", key) == 1,
               60, what="kafka-direct's event handled through daprd")
    assert f.deliveries("DROP") == 0


def test_reminders_fall_back_to_the_scan_while_the_scheduler_is_down(make_fleet,
                                                                    dapr_scheduler):
    f = make_fleet(plugins={"reminders": {"scan_interval": "2s"}}, request_timeout="1s")
    dapr_scheduler.stop()

    def remind_in(seconds, title):
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        return f.call("todod_task_create", {"title": title, "remind_at": at})["id"]

    def fired(task):
        return scalar(f.db, "SELECT reminder_state FROM tasks WHERE id = %s", task) == "fired"

    first = remind_in(3, "during the outage")
    # daprd holds the job call; request_timeout ends it.
    f.t.wait_log("daprd did not take job reminder-%d" % first, timeout=30)
    wait_until(lambda: fired(first), 60, what="the reminder fired by the scan")
    # By the scan, or by the wake-up timer the scan arms for a reminder
    # due within the second; not by a job.
    log = f.t.log()
    assert "[reminders] scan: 1 reminder(s) fired" in log or \
        "[reminders] timer: 1 reminder(s) fired" in log, f.t.log_tail(20)
    assert "[reminders] trigger: 1 reminder(s) fired" not in log
    assert f.t.readiness()[0], "publishing does not need the scheduler"
    assert f.t.log().count("daprd did not take job") == 1, "said once"

    dapr_scheduler.start()
    f.t.wait_log("daprd takes jobs again", timeout=60)
    second = remind_in(3, "after the outage")
    wait_until(lambda: f.d.get_job(f"reminder-{second}").status == 200 or fired(second), 30,
               what="the new reminder's job")
    wait_until(lambda: fired(second), 60, what="the second reminder fired")



def job_gone(fleet, name):
    """GET on a job that is not there: 500 "job not found" from daprd
    1.18 (dapr-build.md, pitfall 18), 404 from a later one."""
    resp = fleet.d.get_job(name)
    return resp.status in (404, 500) and "not found" in resp.text


def test_a_reminder_that_goes_away_takes_its_job_with_it(make_fleet):
    f = make_fleet(plugins={"reminders": {"scan_interval": "1h"}})
    f.t.wait_log("dapr-transport times the reminders now")
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    tasks = {what: f.call("todod_task_create", {"title": what, "remind_at": later})["id"]
             for what in ("deleted", "completed", "cleared", "kept")}
    for task in tasks.values():
        wait_until(lambda: f.d.get_job(f"reminder-{task}").status == 200, 30,
                   what=f"job reminder-{task}")
    f.call("todod_task_delete", {"id": tasks["deleted"]})
    f.call("todod_task_complete", {"id": tasks["completed"]})
    f.call("todod_task_update", {"id": tasks["cleared"], "remind_at": None})
    for what in ("deleted", "completed", "cleared"):
        name = f"reminder-{tasks[what]}"
        wait_until(lambda: job_gone(f, name), 30, what=f"the job of the {what} task gone")
    f.wait_outbox_empty()
    assert f.d.get_job(f"reminder-{tasks['kept']}").status == 200
    assert " error " not in f.t.log()


def test_a_reminder_set_while_the_scheduler_is_down_gets_its_job_when_it_is_back(
        make_fleet, dapr_scheduler, smtp):
    """Without its job such a reminder would wait for the safety job
    (every SAFETY_PERIOD_S), the scan being an hour away here."""
    SAFETY_PERIOD_S = 60
    f = make_fleet(plugins={"reminders": {"scan_interval": "1h"},
                            "email": {"server": smtp.url, "from": "todod@example.org",
                                      "timeout": "5s"}},
                   request_timeout="1s")
    f.t.wait_log("dapr-transport times the reminders now")
    wait_until(lambda: f.d.get_job("reminders-safety").status == 200, 30, what="the safety job")
    dapr_scheduler.stop()
    due = time.time() + 25
    remind_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    task = f.call("todod_task_create", {"title": "set in the outage", "remind_at": remind_at})["id"]
    f.t.wait_log(f"daprd did not take job reminder-{task}", timeout=30)
    dapr_scheduler.start()
    f.t.wait_log("daprd takes jobs again", timeout=60)
    # In place before its time ...
    wait_until(lambda: f.d.get_job(f"reminder-{task}").status == 200, max(1, due - time.time()),
               what="the reminder's job, tried again")
    # ... and it, not the safety job, fires the reminder: the mail comes
    # well inside the safety job's period after remind_at.
    [msg] = smtp.wait_for(1, timeout=due + SAFETY_PERIOD_S / 2 - time.time())
    assert "set in the outage" in msg.body("plain")
    late = time.time() - due
    print(f"\n[dapr] reminder set while the scheduler was down mailed {late:.1f} s after "
          f"remind_at")
    f.t.wait_log(f"job reminder-{task} fired reminders.due")
    assert f.t.log().count("daprd did not take job") == 1, "said once"


def test_a_refused_publish_is_a_configuration_error_said_once(make_fleet):
    # daprd has no pub/sub component of that name: 404, which no retry mends.
    f = make_fleet(ready=False, pubsub="nope")
    for i in range(3):
        f.call("todod_task_create", {"title": f"t{i}"})
    checks = f.t.wait_ready(False, timeout=30)
    wait_until(lambda: "daprd refuses" in f.t.readiness()[1].get("transport", ""), 30,
               what="/readyz naming the refusal")
    reason = f.t.readiness()[1]["transport"]
    assert "daprd refuses to publish to nope/task-events" in reason, checks
    assert "HTTP 404 ERR_PUBSUB_NOT_FOUND" in reason and "nope" in reason, reason
    # The relay keeps trying with backoff; the log says it once.
    wait_until(lambda: f.t.metric("todod_dapr_publish_failures_total") >= 3, 30,
               what="publishes tried again")
    errors = [ln for ln in f.t.log().splitlines() if " error " in ln]
    assert len(errors) == 1 and "daprd refuses to publish" in errors[0], errors
    assert f.unsent() == 3, "the events wait in the outbox"
    assert API_TOKEN not in f.t.log()


def test_secrets_come_from_the_dapr_secret_store(todod_factory, daprd_factory, dapr_scheduler,
                                                redis, database):
    """[core] database and app_token as dapr:STORE/KEY: todod waits for its
    sidecar, which starts meanwhile (it waits for todod's port), reads
    both from the secret store, and works with them."""
    t = todod_factory(database, plugins={"recurrence": {}, "dapr-transport": {}},
                      core={"inbox": "dapr-state"})
    t.user_id, _ = t.provision("alice")  # the command-line tools read no dapr: references
    d = daprd_factory(unique("todod"), t.port, scheduler=dapr_scheduler, pubsub="redis",
                      redis=redis, database=database, app_token=APP_TOKEN,
                      secrets={"todod-dsn": database, "todod-app-token": APP_TOKEN})
    t.core["database"] = "dapr:secretstore/todod-dsn"
    t.plugins["dapr-transport"] = {"http_endpoint": d.endpoint,
                                   "app_token": "dapr:secretstore/todod-app-token"}
    t.write_config()
    t.start(wait=False)
    d.start()
    t.wait_healthy()
    t.wait_ready()
    f = Fleet(t, d, database)
    first = f.call("todod_task_create", {"title": "series", "due_at": "2030-01-07T09:00:00Z",
                                         "rrule": "FREQ=DAILY"})["id"]
    f.call("todod_task_complete", {"id": first})
    wait_until(lambda: f.successors(first) == 1, 60, what="the successor, through daprd")
    assert "task-recurrence" in [s["topic"] for s in d.subscriptions()]
    assert APP_TOKEN not in t.log()


def test_a_missing_dapr_secret_stops_the_start_naming_it(todod_factory, daprd_factory, redis,
                                                        database):
    t = todod_factory(database, plugins={"dapr-transport": {}})
    t.provision("alice")
    d = daprd_factory(unique("todod"), t.port, pubsub="redis", redis=redis, database=database,
                      secrets={"present": "x"})
    t.plugins["dapr-transport"] = {"http_endpoint": d.endpoint, "jobs": "no",
                                   "app_token": "dapr:secretstore/absent"}
    t.write_config()
    t.start(wait=False)
    d.start(wait=False)
    d.wait_healthy(path="/v1.0/healthz/outbound")
    assert t.proc.wait(60) != 0
    log = t.log()
    assert "key 'app_token': dapr:secretstore/absent: secret store secretstore, key absent: " \
           "HTTP 500 ERR_SECRET_GET" in log, t.log_tail(20)

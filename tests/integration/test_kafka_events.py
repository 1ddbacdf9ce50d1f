"""kafka-direct carries todod's events through a real Apache Kafka broker.

What a user would check: the CloudEvent an MCP change produced is on
task-events, keyed by the task id, byte for byte what the core encodes
from the outbox row (so a Dapr Kafka component carries the same bytes);
a reminder becomes one e-mail through task-reminders; completing a
recurring task makes its successor through task-recurrence.  With
kafka-direct loaded there is no in-process delivery, so every effect
below went through the broker.
"""

import json
import time
from datetime import datetime, timezone

from harness import mcp_sdk, query, scalar, wait_until
from harness.e2e import McpHttp
from harness.kafka import KafkaNames
from harness.mcp_sdk import call, ok, ref, task

INSTANCE = "kafka-e2e"
CORE = {"instance": INSTANCE, "retry_backoff": "100ms"}
RECIPIENT = "alice@example.com"


def start(kafka_todod, database, plugins, names=None):
    """A running, ready todod with mcp-tools and `plugins` (plus
    kafka-direct), and user alice; t.mcp_url, t.token, t.db are set."""
    t = kafka_todod(database, plugins={"mcp-tools": {"auth": "token"}, **plugins}, core=CORE,
                    names=names)
    t.user_id, t.token = t.provision("alice")
    t.mcp_url = t.url("/mcp")
    t.db = database
    t.start()
    t.wait_ready()
    return t


def sdk(t, steps):
    report = mcp_sdk.http_session(t.mcp_url, t.token, steps)
    return [ok(step) for step in report["steps"]]


def wire_bytes(db, event_id):
    """The structured CloudEvent the core encodes from an outbox row
    (core/cloudevent.c: attributes in this order, compact JSON, slashes
    not escaped, UTF-8 as is), which every transport must carry as is."""
    [(eid, typ, subject, at, data, traceparent)] = query(
        db, "SELECT event_id::text, type, subject,"
            " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
            " data::text, traceparent FROM outbox WHERE event_id = %s::uuid", event_id)
    envelope = {"specversion": "1.0", "id": eid, "source": f"/todod/{INSTANCE}", "type": typ,
                "subject": subject, "time": at, "datacontenttype": "application/json"}
    if traceparent:
        envelope["traceparent"] = traceparent
    envelope["data"] = json.loads(data)  # keeps jsonb's key order, as json-c does
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def of_type(records, typ, key):
    return [r for r in records if r.key == str(key) and r.json()["type"] == typ]


def test_add_task_puts_its_cloudevent_on_task_events(kafka, kafka_todod, database):
    # DESIGN's default topic names, under a group of this test's own.
    names = KafkaNames(prefix="", group=f"todod-defaults-{time.time_ns()}")
    t = start(kafka_todod, database, {}, names=names)
    [added] = sdk(t, [call("add_task", title="Pay rent — Grüße / 'now'", priority="high",
                           due_at="2030-01-15T09:00:00Z")])
    tid = task(added)["id"]

    records = kafka.wait_records("task-events", lambda rs: of_type(rs, "todod.task.created", tid),
                                 what=f"task {tid}'s created event on task-events")
    [record] = of_type(records, "todod.task.created", tid)
    assert record.key == str(tid)
    event = record.json()
    assert event["specversion"] == "1.0"
    assert event["type"] == "todod.task.created"
    assert event["source"] == f"/todod/{INSTANCE}"
    assert event["subject"] == f"task/{tid}"
    assert event["datacontenttype"] == "application/json"
    assert event["data"]["task"]["id"] == tid
    assert event["data"]["task"] == task(added)
    assert event["data"]["user_id"] == t.user_id
    datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ")

    [(event_id,)] = query(database, "SELECT event_id::text FROM outbox WHERE key = %s "
                                    "AND type = 'todod.task.created'", str(tid))
    assert event["id"] == event_id
    assert record.value == wire_bytes(database, event_id)
    # Marked sent only once the broker acknowledged it.
    wait_until(lambda: scalar(database, "SELECT sent_at IS NOT NULL FROM outbox "
                                        "WHERE event_id = %s::uuid", event_id),
               30, what="the outbox row marked sent")
    assert t.metric("todod_kafka_produce_latency_seconds_count") >= 1
    assert t.metric("todod_kafka_delivery_failures_total") == 0
    # librdkafka's next statistics split the producer's time by stage.
    rtt = wait_until(lambda: t.metric("todod_kafka_producer_stage_seconds", broker="1",
                                      stage="broker", quantile="0.95"),
                     30, what="the broker's round trip from librdkafka's statistics")
    assert rtt > 0


def test_reminder_is_mailed_once_through_task_reminders(kafka, kafka_names, kafka_todod,
                                                       database, smtp):
    t = start(kafka_todod, database, {
        "reminders": {"scan_interval": "1h"},
        "email": {"server": smtp.url, "from": "Todo Bot <todod@example.org>", "timeout": "5s"},
    })
    mcp = McpHttp(t, t.token)
    remind_at = datetime.fromtimestamp(int(time.time()) + 2, timezone.utc)
    added = mcp.call("add_task", title="Call the plumber",
                     remind_at=remind_at.strftime("%Y-%m-%dT%H:%M:%SZ"))["task"]

    [msg] = smtp.wait_for(1, timeout=60)
    assert msg.rcpt_tos == [RECIPIENT]
    assert "Call the plumber" in msg.body("plain")
    [due] = of_type(kafka.read_topic(kafka_names.topic("task-reminders")),
                    "todod.reminder.due", added["id"])
    assert due.json()["data"]["task"]["id"] == added["id"]
    assert msg.header("Message-ID") == f"<reminder-{due.json()['id']}@example.org>"

    # The consumer committed past it, and nothing else arrives.
    topic = kafka_names.topic("task-reminders")
    wait_until(lambda: kafka.group_offsets(kafka_names.group).get((topic, 0)) == (1, 1), 90,
               what=f"group {kafka_names.group} committed offset 1 on {topic}")
    wait_until(lambda: t.metric("todod_kafka_consumer_lag", topic=topic, partition=0) == 0, 30,
               what=f"todod_kafka_consumer_lag of {topic} [0] at 0")
    time.sleep(1)
    assert smtp.count() == 1
    assert scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'email'") == 1
    assert kafka.read_topic(kafka_names.dlq("task-reminders")) == []


def test_completed_recurring_task_gets_its_successor_through_task_recurrence(
        kafka, kafka_names, kafka_todod, database):
    t = start(kafka_todod, database, {"recurrence": {}})
    first, done = sdk(t, [
        call("add_task", "t", title="Water plants", due_at="2030-01-07T09:00:00Z",
             rrule="FREQ=WEEKLY"),
        call("complete_task", task_id=ref("t", "task", "id")),
    ])
    tid = task(first)["id"]
    assert task(done)["status"] == "completed"

    [completion] = kafka.wait_records(
        kafka_names.topic("task-recurrence"),
        lambda rs: of_type(rs, "todod.task.completed", tid),
        what="the completion on task-recurrence")
    successor = wait_until(lambda: query(database, "SELECT id FROM tasks WHERE series_id = %s "
                                                   "AND occurrence = 2", tid), 20,
                           what="the successor task")
    [(succ_id,)] = successor
    [listed] = sdk(t, [call("get_task", task_id=succ_id)])
    assert task(listed)["title"] == "Water plants"
    assert task(listed)["due_at"] == "2030-01-14T09:00:00Z"
    assert task(listed)["status"] == "pending"
    # Its own created event went out through Kafka too.
    kafka.wait_records(kafka_names.topic("task-events"),
                       lambda rs: of_type(rs, "todod.task.created", succ_id),
                       what="the successor's created event")
    assert scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'recurrence' "
                            "AND event_id = %s", completion.json()["id"]) == 1
    time.sleep(1)
    assert scalar(database, "SELECT count(*) FROM tasks WHERE series_id = %s", tid) == 2

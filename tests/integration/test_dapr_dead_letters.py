"""Story 3 of the original system, for real: simplified operations.

A message todod can never handle does not block its partition: it is
retried a bounded number of times and lands on the subscription's
dead-letter topic, <topic>-dlq (contrib/dapr's Resiliency policy bounds
daprd's own redelivery; without it the Kafka component retries forever).
todod publishes the dead letter itself, the message as it came with the
reason in the record headers kafka-direct's dead letters carry
(todod-dlq-reason, -attempts, -topic, -partition, -offset), so an
operator reads both alike; a `traceparent` the event was published with
travels with it, to the broker and to the dead letter.
"""

import json
import re
import time
import uuid

from harness import scalar, task_id, wait_until
from harness.dapr import start_with_sidecar

CORE = {"instance": "dapr-dlq", "retry_backoff": "100ms", "max_attempts": "3"}
RECIPIENT = "alice@example.com"
POISON = b"this is not JSON {\n"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def start(dapr_todod, database, plugins):
    t = dapr_todod(database, plugins=plugins, core=CORE)
    t.user_id, _ = t.provision("alice")
    t.db = database
    return start_with_sidecar(t)


def create_task(t, **args):
    return task_id(scalar(t.db, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)",
                          t.user_id, json.dumps({"title": "dlq test", **args})))


def emit_reminder(t, tid):
    """What the reminders plugin writes when it claims a reminder; returns
    the event id."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return scalar(t.db, "SELECT todod_emit('task-reminders', 'todod.reminder.due', 'task/' || %s,"
                        " %s::text, jsonb_build_object('user_id', %s::bigint,"
                        " 'task', todod_task_json(%s), 'remind_at', %s::text))::text",
                  tid, tid, t.user_id, tid, now)


def emit_traced_reminder(t, tid):
    """A reminder.due event for task `tid` in the outbox, as the reminders
    plugin writes it, from a change made under trace TRACEPARENT."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return scalar(t.db, "INSERT INTO outbox (topic, type, subject, key, data, traceparent)"
                        " VALUES ('task-reminders', 'todod.reminder.due', 'task/' || %s, %s::text,"
                        " jsonb_build_object('user_id', %s::bigint, 'task', todod_task_json(%s),"
                        " 'remind_at', %s::text), %s) RETURNING event_id::text",
                  tid, tid, t.user_id, tid, now, TRACEPARENT)


def test_poison_messages_are_dead_lettered_and_the_partition_flows_on(
        dapr_todod, kafka, kafka_names, database, smtp):
    """Two kinds of poison, on the partition of one task, ahead of a real
    reminder of that task: bytes that are not JSON, and a CloudEvent todod
    cannot act on.  Both land on the dead-letter topic as they were, the
    reason with them; neither is retried, and the reminder behind them is
    mailed."""
    t = start(dapr_todod, database, {
        "email": {"server": smtp.url, "from": "Todo Bot <todod@example.org>", "timeout": "5s"}})
    topic = kafka_names.topic("task-reminders")
    dlq = kafka_names.dlq("task-reminders")
    tid = create_task(t, title="behind the poison")
    key = {"partitionKey": str(tid)}
    resp = t.daprd.publish(topic, POISON, content_type="application/octet-stream",
                           metadata={"rawPayload": "true", **key})
    assert resp.status == 204, resp
    stranger = {"specversion": "1.0", "id": f"poison-{uuid.uuid4()}", "source": "/elsewhere",
                "type": "todod.reminder.due", "subject": f"task/{tid}",
                "datacontenttype": "application/json", "data": {"no": "task"}}
    resp = t.daprd.publish(topic, stranger, metadata={"rawPayload": "true", **key})
    assert resp.status == 204, resp
    event_id = emit_reminder(t, tid)

    [msg] = smtp.wait_for(1, timeout=90)
    assert "behind the poison" in msg.body("plain")
    dead = kafka.wait_records(dlq, lambda rs: len(rs) >= 2, timeout=60,
                              what="both poison messages on the dead-letter topic")
    assert sorted(r.value for r in dead) == sorted([POISON, json.dumps(stranger).encode()])
    assert all(r.key == str(tid) for r in dead)
    # Why, on each dead letter, and where it came from.
    records = kafka.read_topic(topic)
    reasons = {}
    for r in dead:
        [original] = [o for o in records if o.value == r.value]
        assert r.headers["todod-dlq-topic"] == topic, r.headers
        assert r.headers["todod-dlq-partition"] == str(original.partition)
        assert r.headers["todod-dlq-offset"] == str(original.offset)
        reasons[r.value] = r.headers["todod-dlq-reason"]
        print(f"\n[dapr] dead letter's todod-dlq-reason: {reasons[r.value]}")
        t.wait_log(f"delivery on task-reminders goes to {dlq}: {reasons[r.value]}")
    [not_json] = [r for r in dead if r.value == POISON]
    assert "json" in reasons[POISON].lower(), reasons
    assert not_json.headers["todod-dlq-attempts"] == "0", "never handed to a subscriber"
    [refused] = [r for r in dead if r.value != POISON]
    assert "task" in reasons[refused.value], reasons
    assert refused.headers["todod-dlq-attempts"] == "1", refused.headers
    # Dead-lettered once each, without retries.
    assert t.metric("todod_dapr_deliveries_total", status="DROP") == 2, t.log_tail(30)
    # Only the bytes that are not JSON failed to parse.
    assert t.metric("todod_bus_invalid_events_total") == 1
    wait_until(lambda: scalar(t.db, "SELECT count(*) FROM inbox WHERE event_id = %s",
                              event_id) == 1, 30, what="the reminder recorded as handled")
    time.sleep(1)
    assert len(kafka.read_topic(dlq)) == 2
    assert smtp.count() == 1


def test_undeliverable_reminder_is_retried_then_dead_lettered_with_its_trace(
        dapr_todod, kafka, kafka_names, database, smtp):
    t = start(dapr_todod, database, {
        "email": {"server": smtp.url, "from": "Todo Bot <todod@example.org>", "timeout": "2s"}})
    smtp.stop()  # every attempt to mail fails: RETRY, until the attempts run out
    tid = create_task(t, title="never mailed")
    event_id = emit_traced_reminder(t, tid)

    topic = kafka_names.topic("task-reminders")
    [published] = kafka.wait_records(topic, lambda rs: [r for r in rs
                                                        if r.json()["id"] == event_id],
                                     what="the traced reminder on the broker")
    # The CloudEvent on the broker carries the trace it was made under.
    assert published.json()["traceparent"] == TRACEPARENT
    assert published.key == str(tid)

    [dead] = kafka.wait_records(kafka_names.dlq("task-reminders"), lambda rs: rs, timeout=120,
                                what="the reminder on the dead-letter topic")
    # The event as it was published, trace included.
    assert dead.value == published.value and dead.key == published.key
    dead_event = dead.json()
    assert dead_event["id"] == event_id
    assert dead_event["traceparent"] == TRACEPARENT
    # The reason: the attempts, and what the last one ran into, on the
    # dead letter and in the log.
    attempts = CORE["max_attempts"]
    assert dead.headers["todod-dlq-attempts"] == attempts, dead.headers
    reason = dead.headers["todod-dlq-reason"]
    print(f"\n[dapr] dead letter's todod-dlq-reason: {reason}")
    assert reason.startswith(f"gave up after {attempts} attempts: "), reason
    assert "connect" in reason.lower() or "refused" in reason.lower(), reason
    m = re.search(rf"event {event_id} \(todod.reminder.due\) dead-lettered for 'email' after "
                  rf"(\d+) attempts: (.*)", t.log())
    assert m, t.log_tail(40)
    assert m.group(1) == attempts
    assert smtp.count() == 0
    # Dead-lettered once: not redelivered behind todod's back.
    time.sleep(2)
    assert len(kafka.read_topic(kafka_names.dlq("task-reminders"))) == 1


def test_event_whose_outcome_cannot_be_recorded_is_dead_lettered_after_max_deliveries(
        dapr_todod, kafka, kafka_names, own_pg):
    """With its database away todod answers RETRY (it cannot record what
    it did), and daprd redelivers per the Resiliency policy.  The
    delivery max_deliveries allows is dead-lettered by todod, with the
    reason, rather than by daprd without one once its retries run out."""
    deliveries = 3
    db = own_pg.uri("todod")
    t = dapr_todod(db, core=CORE, max_deliveries=deliveries)
    t.user_id, _ = t.provision("alice")
    t.db = db
    start_with_sidecar(t)
    own_pg.stop(mode="fast")
    topic = kafka_names.topic("task-events")
    event = {"specversion": "1.0", "id": f"unrecorded-{uuid.uuid4()}", "source": "/elsewhere",
             "type": "todod.task.updated", "subject": "task/7",
             "datacontenttype": "application/json", "data": {"task": {"id": 7}}}
    resp = t.daprd.publish(topic, event, metadata={"rawPayload": "true", "partitionKey": "7"})
    assert resp.status == 204, resp
    [dead] = kafka.wait_records(kafka_names.dlq("task-events"), lambda rs: rs, timeout=60,
                                what="the unrecorded event on the dead-letter topic")
    assert dead.json()["id"] == event["id"] and dead.key == "7"
    assert dead.headers["todod-dlq-attempts"] == str(deliveries), dead.headers
    reason = dead.headers["todod-dlq-reason"]
    print(f"\n[dapr] dead letter's todod-dlq-reason: {reason}")
    assert reason == f"not handled in {deliveries} deliveries: an outcome could not be recorded"
    assert t.metric("todod_dapr_deliveries_total", status="RETRY") == deliveries - 1
    own_pg.start()
    # The last delivery was answered SUCCESS: daprd adds no dead letter.
    assert len(kafka.read_topic(kafka_names.dlq("task-events"))) == 1

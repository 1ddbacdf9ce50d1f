"""A broker outage delays events and never loses them.

The broker is killed for ten seconds (or for as long as creating the
tasks takes, if that is longer) while 500 tasks are created through MCP
(and ten recurring ones completed).  todod keeps serving MCP, says
once that the brokers are unreachable, reports not-ready, and keeps the
events in its outbox; once the broker is back every event reaches the
topic and each completion makes exactly one successor.
"""

import re
import time

from harness import query, scalar, wait_until
from harness.e2e import McpHttp

OUTAGE_S = 10
TASKS = 500
RECURRING = 10


def test_events_created_during_an_outage_all_arrive_once_it_ends(kafka, kafka_names,
                                                                kafka_todod, database):
    # The backlog goes out in compressed batches.  librdkafka backs
    # reconnects off up to 10 s; an operator who wants a quicker recovery
    # passes a shorter maximum through.
    t = kafka_todod(database, plugins={"mcp-tools": {"auth": "token"}, "recurrence": {}},
                    core={"retry_backoff": "100ms"}, compression="zstd", linger="20ms",
                    **{"librdkafka.reconnect.backoff.max.ms": 1000})
    t.user_id, t.token = t.provision("alice")
    t.start()
    t.wait_ready()
    mcp = McpHttp(t, t.token)

    stopped = time.monotonic()
    kafka.stop(mode="immediate")
    try:
        checks = t.wait_ready(False)
        assert "unreachable" in checks["transport"] or "broker" in checks["transport"], checks
        plain = [mcp.call("add_task", title=f"outage {i}")["task"]["id"]
                 for i in range(TASKS - RECURRING)]
        recurring = [mcp.call("add_task", title=f"series {i}", due_at="2030-01-07T09:00:00Z",
                              rrule="FREQ=DAILY")["task"]["id"] for i in range(RECURRING)]
        for tid in recurring:
            assert mcp.call("complete_task", task_id=tid)["task"]["status"] == "completed"
        created_in = time.monotonic() - stopped
        assert not t.readiness()[0]
        waiting = scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        assert waiting == TASKS + 2 * RECURRING  # created, and completed twice over
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    finally:
        kafka.start()
    back = time.monotonic()
    t.wait_ready()

    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               120, interval=0.2, what="the outbox drained")
    drained = time.monotonic() - back
    successors = wait_until(
        lambda: (lambda rows: rows if len(rows) == RECURRING else None)(
            query(database, "SELECT series_id, id FROM tasks WHERE occurrence = 2")),
        60, what=f"{RECURRING} successors")
    assert sorted(s for s, _ in successors) == sorted(recurring)

    topic = kafka_names.topic("task-events")
    outbox_ids = {r[0] for r in query(database, "SELECT event_id::text FROM outbox "
                                                "WHERE topic = %s", "task-events")}
    records = kafka.wait_records(topic, lambda rs: {r.json()["id"] for r in rs} >= outbox_ids,
                                 what="every outbox event of task-events on the topic")
    events = [r.json() for r in records]
    assert {e["id"] for e in events} == outbox_ids
    created = {e["id"]: e["data"]["task"]["id"] for e in events
               if e["type"] == "todod.task.created"}
    assert sorted(v for v in created.values() if v in set(plain) | set(recurring)) == \
        sorted(plain + recurring), "one created event per task"
    assert len({eid for eid, tid in created.items() if tid in set(plain)}) == TASKS - RECURRING
    print(f"\n[kafka] {TASKS} tasks created {created_in:.2f}s into the outage; "
          f"{len(outbox_ids)} events on {topic} ({len(records)} messages), "
          f"outbox drained {drained:.2f}s after the broker came back")

    # Nothing happens twice: one successor per completion, also later.
    time.sleep(1)
    assert scalar(database, "SELECT count(*) FROM tasks WHERE occurrence = 2") == RECURRING
    assert scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'recurrence'") == \
        RECURRING
    assert kafka.read_topic(kafka_names.dlq("task-recurrence")) == []

    # Said once, not in a flood.
    log = t.log()
    assert len(re.findall(r"brokers unreachable", log)) == 1, log[-3000:]
    assert "brokers reachable again" in log
    warnings = [line for line in log.splitlines()
                if re.search(r" (warn|error) \[kafka-direct\]", line)]
    assert len(warnings) <= 25, "\n".join(warnings[-30:])


def test_todod_starts_and_serves_while_the_broker_is_down(kafka, kafka_names, kafka_todod,
                                                          database):
    """No broker at start: MCP works, readiness says why, the topics are
    created and the waiting event is delivered once a broker appears."""
    kafka.stop(mode="immediate")
    try:
        t = kafka_todod(database, plugins={"mcp-tools": {"auth": "token"}},
                        **{"librdkafka.reconnect.backoff.max.ms": 1000})
        t.user_id, t.token = t.provision("alice")
        t.start()
        assert t.get("/healthz").status == 200
        checks = t.wait_ready(False)
        assert "broker" in checks["transport"], checks
        tid = McpHttp(t, t.token).call("add_task", title="before the broker")["task"]["id"]
        assert scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 1
        # Said once the connection attempts have failed for a while.
        t.wait_log("brokers unreachable", timeout=60)
    finally:
        kafka.start()
    t.wait_ready()
    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               60, interval=0.2, what="the waiting event delivered")
    [record] = kafka.wait_records(kafka_names.topic("task-events"), lambda rs: len(rs) >= 1,
                                  what="the event on task-events")
    assert record.key == str(tid)
    assert len(re.findall(r"brokers unreachable", t.log())) == 1, t.log_tail()


def test_topics_are_created_when_the_broker_starts_after_the_creation_gave_up(
        kafka, kafka_names, kafka_todod, database):
    """The broker starts only after the request to create the topics timed
    out: they are created once it is reachable, and the event that waited
    in the outbox reaches its topic."""
    kafka.stop(mode="immediate")
    try:
        t = kafka_todod(database, plugins={"mcp-tools": {"auth": "token"}},
                        **{"librdkafka.reconnect.backoff.max.ms": 1000})
        t.user_id, t.token = t.provision("alice")
        t.start()
        tid = McpHttp(t, t.token).call("add_task", title="before the broker")["task"]["id"]
        # The request waits 30 s for a controller before it gives up.
        t.wait_log("cannot create topics", timeout=120)
    finally:
        kafka.start()
    [record] = kafka.wait_records(kafka_names.topic("task-events"), lambda rs: len(rs) >= 1,
                                  timeout=60, what="the waiting event on task-events")
    assert record.key == str(tid)
    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               60, interval=0.2, what="the outbox drained")
    assert kafka.partitions(kafka_names.dlq("task-events")) == 1
    assert len(re.findall(r"cannot create topics", t.log())) == 1, t.log_tail()


def test_a_deleted_topic_is_created_again_and_gets_the_event(kafka, kafka_names, kafka_todod,
                                                              database):
    """Someone deletes task-events behind todod's back: the next event
    finds it missing, todod creates it again, and the event arrives."""
    t = kafka_todod(database, plugins={"mcp-tools": {"auth": "token"}})
    t.user_id, t.token = t.provision("alice")
    t.start()
    t.wait_ready(timeout=60)
    topic = kafka_names.topic("task-events")
    t.wait_log(f"created topic {topic}", timeout=60)
    topics = "org.apache.kafka.tools.TopicCommand"
    kafka.admin(topics, "--delete", "--topic", topic)
    # Kafka's own tool: kcat's metadata request would create it again.
    wait_until(lambda: topic not in kafka.admin(topics, "--list").split(), 120, interval=0.5,
               what=f"{topic} deleted")
    tid = McpHttp(t, t.token).call("add_task", title="after the deletion")["task"]["id"]
    [record] = kafka.wait_records(topic, lambda rs: len(rs) >= 1, timeout=120,
                                  what="the event on the created-again task-events")
    assert record.key == str(tid)
    assert len(re.findall(f"topic {topic} does not exist", t.log())) == 1, t.log_tail()

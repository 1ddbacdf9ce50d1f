"""Dead letters: what todod cannot handle goes to <topic>-dlq, with headers
that say why and where it came from, and the partition keeps flowing.

A message that is not a CloudEvent goes there at once; a reminder whose
mail the SMTP server refuses (550) is dropped by the email plugin; one
whose mail cannot be sent at all is retried until kafka-direct's
max_attempts and then dead-lettered.
"""

import json
import time
from datetime import datetime, timezone

from harness import query, scalar, task_id, wait_until

CORE = {"retry_backoff": "100ms"}
RECIPIENT = "alice@example.com"
POISON = b"this is not JSON {\n"
HEADERS = ("todod-dlq-reason", "todod-dlq-attempts", "todod-dlq-topic", "todod-dlq-partition",
           "todod-dlq-offset", "todod-dlq-group")


def start(kafka, kafka_names, kafka_todod, database, plugins, **options):
    t = kafka_todod(database, plugins=plugins, core=CORE, **options)
    t.user_id, _ = t.provision("alice")
    t.db = database
    t.start()
    t.wait_ready()
    # create_topics made them before the consumer subscribed.
    wait_until(lambda: kafka.partitions(kafka_names.topic("task-events")) == 1, 60,
               what="the plugin's topics")
    return t


def create_task(t, **args):
    res = scalar(t.db, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)", t.user_id,
                 json.dumps({"title": "dlq test", **args}))
    return task_id(res)


def emit_reminder(t, tid):
    """What the reminders plugin writes when it claims a reminder; returns
    the event id."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return scalar(t.db, "SELECT todod_emit('task-reminders', 'todod.reminder.due', 'task/' || %s,"
                        " %s::text, jsonb_build_object('user_id', %s::bigint,"
                        " 'task', todod_task_json(%s), 'remind_at', %s::text))::text",
                  tid, tid, t.user_id, tid, now)


def dead_letter(kafka, kafka_names, logical, timeout=60):
    [dead] = kafka.wait_records(kafka_names.dlq(logical), lambda rs: rs, timeout=timeout,
                                what=f"a dead letter on {kafka_names.dlq(logical)}")
    missing = [h for h in HEADERS if h not in dead.headers]
    assert not missing, f"dead letter without {missing}: {dead.headers}"
    return dead


def assert_origin(dead, original, kafka_names):
    """The headers name where the message was consumed, and it is the
    same message."""
    assert dead.headers["todod-dlq-topic"] == original.topic
    assert dead.headers["todod-dlq-partition"] == str(original.partition)
    assert dead.headers["todod-dlq-offset"] == str(original.offset)
    assert dead.headers["todod-dlq-group"] == kafka_names.group
    assert dead.key == original.key
    assert dead.value == original.value


def test_poison_message_is_dead_lettered_and_its_partition_flows_on(kafka, kafka_names,
                                                                    kafka_todod, database):
    t = start(kafka, kafka_names, kafka_todod, database, {"reminders": {"scan_interval": "1h"}},
              max_attempts=2)
    topic = kafka_names.topic("task-events")
    kafka.produce(topic, POISON, key="poison")
    tid = create_task(t)
    [(event_id,)] = query(t.db, "SELECT event_id::text FROM outbox WHERE key = %s", str(tid))

    dead = dead_letter(kafka, kafka_names, "task-events")
    records = kafka.read_topic(topic)
    [poison] = [r for r in records if r.key == "poison"]
    assert_origin(dead, poison, kafka_names)
    reason = dead.headers["todod-dlq-reason"]
    assert "json" in reason.lower(), reason
    # No subscriber was ever tried: it can never parse.
    assert dead.headers["todod-dlq-attempts"] == "0"

    # The valid event behind it on the same partition is handled.
    [valid] = [r for r in records if r.key == str(tid)]
    assert valid.partition == poison.partition and valid.offset > poison.offset
    wait_until(lambda: scalar(t.db, "SELECT count(*) FROM inbox WHERE consumer = 'reminders' "
                                    "AND event_id = %s", event_id) == 1,
               60, what="the valid event handled")
    end = valid.offset + 1
    wait_until(lambda: kafka.group_offsets(kafka_names.group).get((topic, poison.partition))
               == (end, end), 90, what=f"the group's offset on {topic} at {end}")
    assert len(kafka.read_topic(kafka_names.dlq("task-events"))) == 1
    assert t.metric("todod_kafka_dead_letters_total", topic=topic) == 1
    assert t.metric("todod_bus_invalid_events_total") == 1


def test_reminder_refused_by_the_mail_server_is_dead_lettered(kafka, kafka_names, kafka_todod,
                                                              database, smtp):
    smtp.reject(RECIPIENT)
    t = start(kafka, kafka_names, kafka_todod, database,
              {"email": {"server": smtp.url, "from": "todod@example.org", "timeout": "5s"}})
    tid = create_task(t)
    event_id = emit_reminder(t, tid)

    dead = dead_letter(kafka, kafka_names, "task-reminders")
    [original] = kafka.read_topic(kafka_names.topic("task-reminders"))
    assert_origin(dead, original, kafka_names)
    assert json.loads(dead.value)["id"] == event_id
    assert dead.headers["todod-dlq-reason"].startswith(
        f"550 5.1.1 <{RECIPIENT}>: Recipient address rejected"), dead.headers
    assert dead.headers["todod-dlq-attempts"] == "1"
    assert smtp.count() == 0


def test_reminder_that_keeps_failing_is_dead_lettered_after_max_attempts(
        kafka, kafka_names, kafka_todod, database, smtp):
    smtp.stop()  # connection refused: a temporary failure, retried
    t = start(kafka, kafka_names, kafka_todod, database,
              {"email": {"server": smtp.url, "from": "todod@example.org", "timeout": "2s"}},
              max_attempts=2, retry_backoff="100ms")
    tid = create_task(t)
    event_id = emit_reminder(t, tid)

    dead = dead_letter(kafka, kafka_names, "task-reminders")
    [original] = kafka.read_topic(kafka_names.topic("task-reminders"))
    assert_origin(dead, original, kafka_names)
    assert json.loads(dead.value)["id"] == event_id
    assert dead.headers["todod-dlq-attempts"] == "2"
    reason = dead.headers["todod-dlq-reason"]
    assert "connect" in reason.lower() or "refused" in reason.lower(), reason
    assert t.log().count(f"reminder {event_id}: attempt") == 2

    # Settled: a mail server that comes back gets nothing.
    smtp.start()
    topic = kafka_names.topic("task-reminders")
    wait_until(lambda: kafka.group_offsets(kafka_names.group).get((topic, 0)) == (1, 1), 90,
               what=f"the group's offset on {topic} past the dead letter")
    time.sleep(1)
    assert smtp.count() == 0

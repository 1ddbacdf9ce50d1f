"""Two todod instances in one consumer group share the partitions, and
each event is handled once.

Both run on one database with the same kafka-direct group; the topics
have four partitions.  Kafka's own consumer-group tool shows that both
members own partitions; the SMTP server and the tasks table show that
every event took effect exactly once, also when one instance is killed
with SIGKILL in the middle of a stream.
"""

import re
import time

from harness import query, scalar, task_id, wait_until

PARTITIONS = 4
CORE = {"retry_backoff": "100ms", "log_level": "info"}
# A killed member's partitions move on after its session times out; 6 s
# is the smallest session the broker accepts (group.min.session.timeout.ms).
FAST_FAILOVER = {"librdkafka.session.timeout.ms": 6000, "librdkafka.heartbeat.interval.ms": 1000}


def pair(kafka, kafka_names, kafka_todod, database, plugins, **options):
    """Two running todods in one group on one database; the first
    provisioned alice."""
    made = [kafka_todod(database, plugins=plugins, core=CORE, topic_partitions=PARTITIONS,
                        **options) for _ in range(2)]
    made[0].user_id, _ = made[0].provision("alice")
    for t in made:
        t.start()
    for t in made:
        t.wait_ready()

    def shared():
        members = kafka.group_members(kafka_names.group)
        return members if len(members) == 2 and all(m.partitions > 0 for m in members) else None
    members = wait_until(shared, 90, interval=0.5,
                         what=f"both instances owning partitions in {kafka_names.group}")
    # Each subscribed topic is split between the two.
    assert sum(m.partitions for m in members) % PARTITIONS == 0, members
    return made


def test_two_instances_share_the_partitions_and_mail_each_reminder_once(
        kafka, kafka_names, kafka_todod, database, smtp):
    a, b = pair(kafka, kafka_names, kafka_todod, database, {
        "reminders": {"scan_interval": "1h"},
        "email": {"server": smtp.url, "from": "todod@example.org", "timeout": "5s"},
    })
    # The reminders are due in 3 s; the task.created events reach
    # whichever instance owns their partition, which arms its timer.
    rows = query(database,
                 "SELECT todod_task_create(%s, jsonb_build_object('title', 'group ' || n,"
                 " 'remind_at', to_char((date_trunc('second', now()) + interval '3 s')"
                 " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')), NULL, NULL) "
                 "FROM generate_series(1, 200) AS n", a.user_id)
    tasks = sorted(task_id(r[0]) for r in rows)

    smtp.wait_for(200, timeout=120)
    time.sleep(1.5)
    messages = smtp.messages()
    assert len(messages) == 200
    ids = [m.header("Message-ID") for m in messages]
    assert len(set(ids)) == 200, "a Message-ID came twice"
    mailed = sorted(int(re.fullmatch(r"Reminder: group (\d+)", m.header("Subject")).group(1))
                    for m in messages)
    assert mailed == list(range(1, 201))
    per_instance = [len(re.findall(r"\[email\] reminder \S+ for task \d+ mailed", t.log()))
                    for t in (a, b)]
    print(f"\n[kafka] 200 reminders mailed by two instances: {per_instance}")
    assert sum(per_instance) == 200 and all(per_instance), per_instance
    assert scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'email'") == 200
    assert len(tasks) == 200
    assert kafka.read_topic(kafka_names.dlq("task-reminders")) == []


def test_killed_instance_loses_nothing_and_doubles_nothing(kafka, kafka_names, kafka_todod,
                                                           database):
    a, b = pair(kafka, kafka_names, kafka_todod, database, {"recurrence": {}}, **FAST_FAILOVER)
    uid = a.user_id
    query(database, "SELECT todod_task_create(%s, jsonb_build_object('title', 'series ' || n,"
                    " 'due_at', '2030-01-07T09:00:00Z', 'rrule', 'FREQ=DAILY'), NULL, NULL) "
                    "FROM generate_series(1, 300) AS n", uid)
    firsts = [r[0] for r in query(database, "SELECT id FROM tasks ORDER BY id")]

    def complete(ids):
        query(database, "SELECT todod_task_complete(%s, jsonb_build_object('id', id), NULL, NULL)"
                        " FROM unnest(%s::bigint[]) AS id", uid, ids)

    def successors():
        return scalar(database, "SELECT count(*) FROM tasks WHERE occurrence = 2")

    def made_by(t):
        return len(re.findall(r"\[recurrence\] task \d+: next occurrence", t.log()))

    complete(firsts[:100])
    # Killed once it has done part of the work: under load its first
    # fetch can come well after the other instance's.
    wait_until(lambda: successors() >= 20 and made_by(b) > 0, 60, interval=0.02,
               what="the stream under way on both instances")
    b.kill9()
    killed_at = successors()
    complete(firsts[100:])

    wait_until(lambda: successors() >= 300, 120, interval=0.2, what="300 successors")
    time.sleep(2)
    by_b, by_a = made_by(b), made_by(a)
    again = a.metric("todod_bus_deliveries_total", consumer="recurrence", result="duplicate")
    print(f"\n[kafka] 300 completions: {killed_at} successors when one instance was killed; "
          f"made by the killed one {by_b}, by the survivor {by_a} (which saw {again or 0:.0f} "
          f"redelivered as duplicates)")
    assert by_b > 0 and by_a > 0
    # Exactly one successor per completion, and one created event each.
    assert successors() == 300
    assert query(database, "SELECT count(*) FROM tasks GROUP BY series_id "
                           "HAVING count(*) <> 2") == []
    assert scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'recurrence'") == 300
    assert scalar(database, "SELECT count(*) FROM (SELECT key FROM outbox WHERE "
                            "type = 'todod.task.created' GROUP BY key HAVING count(*) > 1) d") == 0
    assert kafka.read_topic(kafka_names.dlq("task-recurrence")) == []
    # The survivor took over every partition.
    members = kafka.group_members(kafka_names.group)
    assert len(members) == 1 and members[0].partitions == PARTITIONS, members

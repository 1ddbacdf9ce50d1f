"""SIGTERM with kafka-direct loaded: what was committed reaches the
broker before todod exits, the consumer's offsets are committed, and it
leaves its group at once instead of being timed out by the broker.

A 3 s linger keeps the produced events inside librdkafka when SIGTERM
arrives, so the drain has to wait for their delivery reports; the
consumer group's session is 10 s, so a member that is still listed right
after the exit did not leave cleanly.
"""

import json

from harness import scalar, wait_until

EVENTS = 50


def test_sigterm_delivers_commits_and_leaves_the_group(kafka, kafka_names, kafka_todod,
                                                       database):
    t = kafka_todod(database, plugins={"reminders": {"scan_interval": "1h"}},
                    core={"drain_timeout": "20s"}, linger="3s")
    t.user_id, _ = t.provision("alice")
    t.start()
    t.wait_ready()
    topic = kafka_names.topic("task-events")
    wait_until(lambda: len(kafka.group_members(kafka_names.group)) == 1, 90,
               what=f"todod in group {kafka_names.group}")

    # One consumed event first, so the group has an offset to commit.
    scalar(database, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)", t.user_id,
           json.dumps({"title": "before"}))
    wait_until(lambda: t.metric("todod_kafka_consumed_total", topic=topic) == 1, 60,
               what="the first event consumed")

    for i in range(EVENTS):
        scalar(database, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)", t.user_id,
               json.dumps({"title": f"task {i}"}))
    # Handed to librdkafka (the relay polls every 250 ms), not yet sent.
    wait_until(lambda: t.metric("todod_kafka_produce_latency_seconds_count") is not None, 30,
               what="the produce histogram")
    code, _ = t.stop()
    assert code == 0, t.log_tail()
    log = t.log()
    assert "drain_timeout reached" not in log, log[-3000:]

    assert scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    on_topic = {r.json()["id"] for r in kafka.read_topic(topic)}
    assert len(on_topic) == EVENTS + 1
    assert kafka.group_members(kafka_names.group) == []
    committed, end = kafka.group_offsets(kafka_names.group)[(topic, 0)]
    assert committed is not None and committed >= 1, (committed, end)

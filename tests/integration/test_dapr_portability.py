"""Story 2 of the original system, for real: infrastructure portability.

The same todod, running all along with the same configuration, works
over Kafka, then over Redis Streams, then over Kafka again: only the
sidecar's pub/sub component changes (contrib/dapr/pubsub-kafka.yaml and
pubsub-redis.yaml both declare the component "pubsub"), and the sidecar
restarts.  In each phase reminders are mailed and a recurring task gets
its successor; a task created while the sidecar is away waits in the
outbox and goes out on the new broker.  Every event the outbox holds is
found exactly once on exactly one broker, and every effect happened
once.
"""

import hashlib
import json
import math
import time

from harness import lead_time, query, scalar, task_id, wait_until
from harness.dapr import start_with_sidecar

CORE = {"instance": "dapr-swap", "retry_backoff": "200ms", "log_level": "info"}
SENDER = "todod@example.org"
REMINDERS_PER_PHASE = 5
TOPICS = ("task-events", "task-reminders", "task-recurrence")


def plugins(smtp_url):
    return {
        "reminders": {"scan_interval": "1h"},
        "email": {"server": smtp_url, "from": f"Todo Bot <{SENDER}>", "timeout": "5s"},
        "recurrence": {},
    }


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def create(t, title, **fields):
    return task_id(scalar(t.db, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)",
                          t.user_id, json.dumps({"title": title, **fields})))


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def run_phase(t, smtp, name, mailed_before):
    """Reminders due together and a recurring task completed; waits for
    every effect.  Returns the ids of the tasks it made."""
    at = math.ceil(time.time() + lead_time(0.5, minimum=5))
    reminded = [create(t, f"{name} reminder {i}", remind_at=iso(at))
                for i in range(REMINDERS_PER_PHASE)]
    series = create(t, f"{name} series", due_at="2031-03-03T09:00:00Z", rrule="FREQ=DAILY")
    scalar(t.db, "SELECT todod_task_complete(%s, %s::jsonb, NULL, NULL) IS NOT NULL", t.user_id,
           json.dumps({"id": series}))
    smtp.wait_for(mailed_before + REMINDERS_PER_PHASE, timeout=90)
    wait_until(lambda: scalar(t.db, "SELECT count(*) FROM tasks WHERE series_id = %s", series)
               == 2, 60, what=f"the successor of the {name} series")
    return reminded, series


def settled(t):
    """Every event acknowledged by the sidecar and delivered back and
    handled: the outbox is empty and every event in it is in the inbox
    (each topic has a consumer here: dapr-transport's job scheduler on
    task-events, email, recurrence)."""
    wait_until(lambda: scalar(t.db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               60, what="the outbox empty")
    wait_until(lambda: scalar(t.db, "SELECT count(*) FROM outbox o WHERE NOT EXISTS"
                                    " (SELECT 1 FROM inbox i WHERE i.event_id = o.event_id::text)")
               == 0, 60, what="every event handled")


def swap(t, backend, redis, while_away=lambda: None):
    """The operator's swap: stop the sidecar, put the other pub/sub file in
    its resources directory, start it, until todod is ready again.
    `while_away` runs while the sidecar is down.  Returns (seconds to
    stop, seconds from start to todod ready)."""
    stop_s = t.daprd.stop()
    while_away()
    t.daprd.swap_pubsub(backend, redis=redis)
    started = time.monotonic()
    t.daprd.start()
    t.wait_ready()
    return stop_s, time.monotonic() - started


def kafka_ids(kafka, kafka_names):
    out = []
    for logical in TOPICS:
        out += [r.json()["id"] for r in kafka.read_topic(kafka_names.topic(logical))]
    return out


def redis_ids(redis, kafka_names):
    out = []
    for logical in TOPICS:
        for _, fields in redis.stream(kafka_names.topic(logical)):
            out.append(json.loads(fields["data"])["id"])
    return out


def outbox_ids(t, since, until=None):
    rows = query(t.db, "SELECT event_id::text FROM outbox WHERE created_at >= to_timestamp(%s)"
                       " AND (%s::float8 IS NULL OR created_at < to_timestamp(%s))",
                 since, until, until)
    return sorted(r[0] for r in rows)


def test_swap_kafka_to_redis_and_back_with_every_event_accounted_for(
        dapr_todod, kafka, kafka_names, redis, database, smtp):
    t = dapr_todod(database, plugins=plugins(smtp.url), core=CORE, redis=redis)
    t.user_id, _ = t.provision("alice")
    t.db = database
    start_with_sidecar(t)
    pid, config = t.pid, digest(t.config_path)
    marks = [time.time()]

    # -- Kafka ------------------------------------------------------------------------------
    run_phase(t, smtp, "kafka", 0)
    settled(t)
    marks.append(time.time())

    # -- to Redis Streams, with a task created while the sidecar is away ------------------
    away = []
    to_redis = swap(t, "redis", redis, lambda: away.append(
        create(t, "created while swapping", remind_at=iso(time.time() + 600))))
    assert t.daprd.components()["pubsub"] == "pubsub.redis/v1"
    run_phase(t, smtp, "redis", REMINDERS_PER_PHASE)
    settled(t)
    marks.append(time.time())

    # -- and back to Kafka -------------------------------------------------------------------
    back = swap(t, "kafka", redis)
    assert t.daprd.components()["pubsub"] == "pubsub.kafka/v1"
    run_phase(t, smtp, "kafka again", 2 * REMINDERS_PER_PHASE)
    settled(t)
    marks.append(time.time())
    for name, (stop_s, start_s) in (("Kafka -> Redis Streams", to_redis),
                                    ("Redis Streams -> Kafka", back)):
        print(f"\n[dapr] swap {name}: daprd stopped in {stop_s:.2f}s, started with the other "
              f"pub/sub and todod ready again in {start_s:.2f}s", end="")
    print()

    # todod never restarted and its configuration never changed.
    assert t.pid == pid and t.alive()
    assert digest(t.config_path) == config

    # Every event, once, on the broker of its phase.
    on_kafka, on_redis = kafka_ids(kafka, kafka_names), redis_ids(redis, kafka_names)
    assert len(on_kafka) == len(set(on_kafka)), "an event twice on Kafka"
    assert len(on_redis) == len(set(on_redis)), "an event twice on Redis"
    assert not set(on_kafka) & set(on_redis), "an event on both brokers"
    kafka_phases = outbox_ids(t, marks[0], marks[1]) + outbox_ids(t, marks[2])
    assert sorted(on_kafka) == sorted(kafka_phases)
    assert sorted(on_redis) == outbox_ids(t, marks[1], marks[2])
    [(away_event,)] = query(t.db, "SELECT event_id::text FROM outbox WHERE key = %s",
                            str(away[0]))
    assert away_event in on_redis
    print(f"[dapr] events: {len(on_kafka)} on Kafka, {len(on_redis)} on Redis Streams, "
          f"{len(on_kafka) + len(on_redis)} in the outbox")

    # Every effect once: 3 x 5 mails, 3 successors, nothing dead.
    time.sleep(1)
    assert smtp.count() == 3 * REMINDERS_PER_PHASE
    subjects = [str(m.header("Subject")) for m in smtp.messages()]
    assert len(set(subjects)) == len(subjects), subjects
    assert scalar(t.db, "SELECT count(*) FROM tasks WHERE occurrence = 2") == 3
    assert query(t.db, "SELECT reason FROM dead_letters") == []
    for logical in TOPICS:
        assert kafka.read_topic(kafka_names.dlq(logical)) == []
        assert redis.stream(kafka_names.dlq(logical)) == []

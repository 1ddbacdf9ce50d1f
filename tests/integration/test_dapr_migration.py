"""Story 5 of the original system, for real: a fleet moves from
kafka-direct to dapr-transport one instance at a time, and back, while
tasks are created and completed; nothing is lost and nothing happens
twice.

Two todod instances share one database, the same Kafka topics and one
consumer group: kafka-direct's group_id is the Dapr app id, which is the
group Dapr's Kafka component joins.  This is the runbook,
doc/migration.md, step by step; "step N" below is its step N:

  prepare:    1 one consumer group (group_id = app id); 2 the same topics;
              3 a sidecar per instance, prepared, not started;
              4 a baseline with every instance on kafka-direct.
  to Dapr:    5 stop todod (it drains its outbox and leaves the group);
              6 replace [plugin.kafka-direct] by [plugin.dapr-transport];
              7 start todod; 8 then its daprd (which waits for the app
              port); 9 wait for /readyz; 10 watch it work.
  and back:   R1 stop daprd first (it leaves the group; a sidecar left
              running would deliver to a stopped app); R2 stop todod;
              R3 replace [plugin.dapr-transport] by [plugin.kafka-direct];
              R4 start todod; R5 wait for /readyz; R6 watch it work.
  finish:     11 check the fleet.

Meanwhile a writer keeps creating tasks with reminders due a few seconds
later and completing recurring tasks.  At the end (step 11) every
reminder was mailed once, every completion has one successor, and every
event the outbox holds is on Kafka once.
"""

import json
import os
import threading
import time

from harness import find_plugin, query, scalar, task_id, wait_until
from harness.dapr import transport_options
from harness.kafka import LOGICAL_TOPICS, todod_options

CORE = {"retry_backoff": "200ms", "log_level": "info"}
SENDER = "todod@example.org"
PARTITIONS = 2


def plugins(smtp_url):
    return {
        # A reminder whose timer was on an instance that is being moved is
        # claimed by the other's scan (or the Dapr safety job) instead.
        "reminders": {"scan_interval": "5s"},
        "email": {"server": smtp_url, "from": f"Todo Bot <{SENDER}>", "timeout": "5s"},
        "recurrence": {},
    }


class Instance:
    """One todod of the fleet, switchable between the two transports."""

    def __init__(self, name, t, kafka_opts):
        self.name = name
        self.t = t
        self.kafka_opts = kafka_opts
        self.transport = "kafka-direct"

    def configure(self, transport):
        self.t.plugins.pop("kafka-direct", None)
        self.t.plugins.pop("dapr-transport", None)
        self.t.plugins[transport] = (self.kafka_opts if transport == "kafka-direct"
                                     else transport_options(self.t.daprd, self.t.names))
        self.t.write_config()
        self.transport = transport

    def to_dapr(self):
        """Runbook steps 5-9."""
        code, _ = self.t.stop()                     # step 5: stop todod, exit 0
        assert code == 0, self.t.log_tail(30)
        self.configure("dapr-transport")            # step 6: switch its configuration
        self.t.start()                              # step 7: start todod
        self.t.daprd.start()                        # step 8: start its daprd
        self.t.wait_ready()                         # step 9: /readyz 200

    def to_kafka(self):
        """Runbook steps R1-R5."""
        self.t.daprd.stop()                         # step R1: stop daprd first
        code, _ = self.t.stop()                     # step R2: stop todod, exit 0
        assert code == 0, self.t.log_tail(30)
        self.configure("kafka-direct")              # step R3: switch back
        self.t.start()                              # step R4: start todod
        self.t.wait_ready()                         # step R5: /readyz 200


class Writer(threading.Thread):
    """Creates a task with a reminder `lead` seconds ahead every `pace`
    seconds, and every fifth time a recurring task it then completes."""

    def __init__(self, db, uid, pace=0.4, lead=3):
        super().__init__(daemon=True)
        self.db, self.uid, self.pace, self.lead = db, uid, pace, lead
        self.reminded, self.completed = [], []
        self.stopping = threading.Event()
        self.error = None

    def _create(self, args):
        return task_id(scalar(self.db, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)",
                              self.uid, json.dumps(args)))

    def run(self):
        n = 0
        try:
            while not self.stopping.is_set():
                n += 1
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.lead))
                self.reminded.append(self._create({"title": f"move {n}", "remind_at": at}))
                if n % 5 == 0:
                    tid = self._create({"title": f"series {n}", "due_at": "2031-05-05T10:00:00Z",
                                        "rrule": "FREQ=WEEKLY"})
                    scalar(self.db, "SELECT todod_task_complete(%s, %s::jsonb, NULL, NULL) "
                                    "IS NOT NULL", self.uid, json.dumps({"id": tid}))
                    self.completed.append(tid)
                self.stopping.wait(self.pace)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def effects(db):
    """(reminders mailed per the tasks table, successors made)."""
    return (scalar(db, "SELECT count(*) FROM tasks WHERE reminder_state = 'fired'"),
            scalar(db, "SELECT count(*) FROM tasks WHERE occurrence = 2"))


def progress(inst, smtp, what, more=3):
    """Runbook steps 4, 10 and R6: the fleet keeps working in its new
    shape: `more` mails arrive."""
    before = smtp.count()
    wait_until(lambda: smtp.count() >= before + more, 90,
               what=f"{more} more mails after {what}")


def test_fleet_moves_to_dapr_and_back_one_instance_at_a_time(
        todod_factory, daprd_factory, dapr_scheduler, kafka, kafka_names, database, smtp):
    # Step 2: the topics exist beforehand, with their partitions; both
    # transports use the same names (kafka_names' topic. mapping).
    for logical in LOGICAL_TOPICS:
        kafka.create_topic(kafka_names.topic(logical), partitions=PARTITIONS)
    # Step 1: kafka-direct's group_id is the Dapr app id.
    group = kafka_names.group
    fleet = []
    for name in ("A", "B"):
        # Both plugins are linked into its plugin dir; the config names one.
        t = todod_factory(database, plugins={**plugins(smtp.url), "kafka-direct": {},
                                             "dapr-transport": {}}, core=CORE)
        assert os.path.exists(find_plugin("dapr-transport"))
        t.names = kafka_names
        # Step 3: its sidecar, prepared and not started.
        t.daprd = daprd_factory(group, t.port, scheduler=dapr_scheduler, pubsub="kafka",
                                kafka=kafka, database=database,
                                api_token="api-" + name, app_token="app-" + name)
        inst = Instance(name, t, todod_options(kafka, kafka_names, topic_partitions=PARTITIONS))
        inst.configure("kafka-direct")
        fleet.append(inst)
    a, b = fleet
    uid, _ = a.t.provision("alice")
    for inst in fleet:
        inst.t.start()
    for inst in fleet:
        inst.t.wait_ready()

    writer = Writer(database, uid)
    writer.start()
    steps = []
    try:
        progress(a, smtp, "both on kafka-direct")  # step 4: the baseline
        # Steps 5-10 for B, then A; the rollback, R1-R6, last moved first.
        for inst, move, runbook in ((b, "to_dapr", "steps 5-9"), (a, "to_dapr", "steps 5-9"),
                                    (a, "to_kafka", "steps R1-R5"),
                                    (b, "to_kafka", "steps R1-R5")):
            started = time.monotonic()
            getattr(inst, move)()
            steps.append((f"{inst.name} {move.replace('_', ' ')} ({runbook})",
                          time.monotonic() - started))
            assert writer.error is None, writer.error
            progress(inst, smtp, steps[-1][0])     # step 10 / R6: watch it work
            if all(i.transport == "dapr-transport" for i in fleet):
                # Both on Dapr: both sidecars deliver (the group spread
                # the partitions over them).
                wait_until(lambda: all((i.t.metric("todod_dapr_deliveries_total",
                                                   status="SUCCESS") or 0) > 0 for i in fleet),
                           60, what="deliveries through both sidecars")
    finally:
        writer.stopping.set()
        writer.join(30)
    assert writer.error is None, writer.error
    print("\n[dapr] migration runbook (doc/migration.md): "
          + ", ".join(f"{s} {d:.2f}s" for s, d in steps))

    # Step 11: everything the writer did takes effect, once.
    reminded, completed = len(writer.reminded), len(writer.completed)
    smtp.wait_for(reminded, timeout=120)
    wait_until(lambda: effects(database) == (reminded, completed), 90,
               what=f"{reminded} reminders fired and {completed} successors")
    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               60, what="the outbox empty")
    time.sleep(2)  # room for a duplicate to show up
    subjects = [str(m.header("Subject")) for m in smtp.messages()]
    dupes = sorted({s for s in subjects if subjects.count(s) > 1})
    assert not dupes, f"mailed twice: {dupes}"
    assert sorted(subjects) == sorted(f"Reminder: move {i + 1}" for i in range(reminded))
    per_series = dict(query(database, "SELECT series_id, count(*) FROM tasks"
                                      " WHERE series_id = ANY(%s) GROUP BY series_id",
                            writer.completed))
    assert per_series == {tid: 2 for tid in writer.completed}, "not one successor each"
    assert effects(database) == (reminded, completed)

    # Every event once on Kafka, whichever transport published it.
    outbox = sorted(r[0] for r in query(database, "SELECT event_id::text FROM outbox"))
    on_kafka = []
    for logical in LOGICAL_TOPICS:
        on_kafka += [r.json()["id"] for r in kafka.read_topic(kafka_names.topic(logical))]
        assert kafka.read_topic(kafka_names.dlq(logical)) == []
    assert len(on_kafka) == len(set(on_kafka)), "an event twice on Kafka"
    assert sorted(on_kafka) == outbox
    # Both transports published: daprd's Kafka component writes the publish
    # metadata as record headers, kafka-direct does not.
    by_dapr = sum(1 for logical in LOGICAL_TOPICS
                  for r in kafka.read_topic(kafka_names.topic(logical))
                  if r.headers.get("rawPayload") == "true")
    assert 0 < by_dapr < len(outbox), (by_dapr, len(outbox))
    assert query(database, "SELECT reason FROM dead_letters") == []
    print(f"[dapr] {reminded} reminders mailed once, {completed} successors, "
          f"{len(outbox)} events on Kafka once each ({by_dapr} published through daprd)")

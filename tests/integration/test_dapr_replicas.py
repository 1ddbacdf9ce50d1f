"""Story 4 of the original system, for real: guaranteed job execution.

Three todod replicas, each with its own daprd, all under one app id (so
one Kafka consumer group, and one set of Dapr jobs the scheduler hands to
one replica at a time), on one database.  Reminder timing comes from Dapr
jobs (dapr-transport `jobs = yes`): one job per reminder at its
remind_at, plus a periodic safety job.

What the user checks is the mailbox: every reminder mailed, none twice,
also when a replica dies by kill -9 in the middle of it, and when the
sidecar and the scheduler restart before the reminders are due.  The one
second copy a kill -9 can cause is a mail the dying replica had handed to
the SMTP server but not yet recorded: it goes out again, the same message
with the same Message-ID, and the test says how many there were.
"""

import math
import re
import time

import pytest

from harness import lead_time, query, scalar, task_id, wait_until
from harness.e2e import received_with_times

CORE = {"retry_backoff": "200ms", "log_level": "info"}
SENDER = "todod@example.org"
RECIPIENT = "alice@example.com"
PARTITIONS = 3


def plugins(smtp_url):
    return {
        "mcp-tools": {"auth": "token"},
        # The hourly scan must not be what fires them: the Dapr jobs are.
        "reminders": {"scan_interval": "1h"},
        "email": {"server": smtp_url, "from": f"Todo Bot <{SENDER}>", "timeout": "5s"},
    }


def fleet(dapr_todod, kafka, kafka_names, database, smtp, replicas):
    """`replicas` todod+daprd pairs under one app id, started; the first
    provisioned alice.  The topics have PARTITIONS partitions, so the
    consumer group spreads them over the sidecars."""
    for logical in ("task-events", "task-reminders", "task-recurrence"):
        kafka.create_topic(kafka_names.topic(logical), partitions=PARTITIONS)
    made = [dapr_todod(database, plugins=plugins(smtp.url), core=CORE) for _ in range(replicas)]
    made[0].user_id, made[0].token = made[0].provision("alice")
    started = time.monotonic()
    for t in made:
        t.start(wait=False)
    for t in made:
        t.wait_healthy()
    for t in made:
        t.daprd.start(wait=False)
    for t in made:
        t.daprd.wait_healthy()
        t.wait_ready()
    took = time.monotonic() - started
    print(f"\n[dapr] {replicas} replicas with their sidecars ready in {took:.2f}s")
    return made, took


def create_due_together(database, uid, count, at):
    """`count` tasks titled "bulk <id>" whose reminders all come due at
    epoch second `at`; their task.created events carry the reminder to
    dapr-transport, which schedules one job each."""
    rows = query(database,
                 "SELECT todod_task_create(%s, jsonb_build_object('title', 'bulk', 'remind_at',"
                 "  to_char(to_timestamp(%s) AT TIME ZONE 'UTC',"
                 "          'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')), NULL, NULL)"
                 " FROM generate_series(1, %s)", uid, at, count)
    ids = [task_id(r[0]) for r in rows]
    query(database, "UPDATE tasks SET title = 'bulk ' || id WHERE id = ANY(%s)", ids)
    return ids


def mailed_task_ids(smtp):
    return mailed_task_ids_of(smtp.messages())


def assert_each_once(smtp, tasks):
    got = mailed_task_ids(smtp)
    dupes = sorted({i for i in got if got.count(i) > 1})
    assert not dupes, f"mailed more than once: {dupes}"
    assert sorted(got) == sorted(tasks), f"missing: {sorted(set(tasks) - set(got))}"
    assert all(m.rcpt_tos == [RECIPIENT] for m in smtp.messages())


def logged_mails(t):
    return [int(x) for x in re.findall(r"\[email\] reminder \S+ for task (\d+) mailed",
                                       t.log())]


def assert_once_but_the_victims_unrecorded(smtp, tasks, database, killed_at, victim, replicas):
    """Every reminder fired once (one reminder.due event, one Message-ID
    per task) and mailed.  The one exception kill -9 allows: a mail the
    killed replica had handed to the SMTP server (250) but not yet
    recorded as handled is sent again by a survivor, the same message
    with the same Message-ID (e-mail has no transaction to share with the
    inbox).  Returns how many such resends there were."""
    due = scalar(database, "SELECT count(*) FROM outbox WHERE type = 'todod.reminder.due'")
    assert due == len(tasks), f"{due} reminder.due events for {len(tasks)} reminders"
    copies = {}
    for msg, at in received_with_times(smtp):
        [tid] = mailed_task_ids_of([msg])
        copies.setdefault(tid, []).append((at, msg.header("Message-ID")))
    assert sorted(copies) == sorted(tasks), f"missing: {sorted(set(tasks) - set(copies))}"
    assert all(m.rcpt_tos == [RECIPIENT] for m in smtp.messages())
    logged = set(logged_mails(victim))
    by_survivors = [tid for t in replicas if t is not victim for tid in logged_mails(t)]
    resent = {tid: c for tid, c in copies.items() if len(c) > 1}
    for tid, c in resent.items():
        assert len(c) == 2, f"task {tid} mailed {len(c)} times"
        (first, first_id), (second, second_id) = sorted(c)
        assert first_id == second_id, f"task {tid}: two different mails {first_id} {second_id}"
        assert first <= killed_at < second, f"task {tid} mailed twice, not across the kill"
        assert tid not in logged, f"task {tid}: the killed replica had recorded it"
        assert by_survivors.count(tid) == 1, f"task {tid}: mailed twice by the survivors"
    return len(resent)


def mailed_task_ids_of(messages):
    ids = []
    for msg in messages:
        m = re.search(r"Reminder: bulk (\d+)", str(msg.header("Subject")))
        assert m, msg.header("Subject")
        ids.append(int(m.group(1)))
    return ids


def job_calls(replicas):
    return [int(t.metric("todod_dapr_job_callbacks_total") or 0) if t.alive() else None
            for t in replicas]


def test_three_replicas_mail_100_reminders_once_even_when_one_dies(
        dapr_todod, kafka, kafka_names, database, smtp):
    replicas, took = fleet(dapr_todod, kafka, kafka_names, database, smtp, 3)
    uid = replicas[0].user_id
    # Far enough ahead for 100 created events to reach the group and 100
    # jobs to be scheduled, on this machine now.
    at = math.ceil(time.time() + lead_time(took, minimum=15))
    tasks = create_due_together(database, uid, 100, at)
    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               60, what="the 100 created events acknowledged by the sidecars")
    assert time.time() < at, "too slow to publish the tasks before they were due"

    # Mid-run: once the first mails are out, one replica dies with its
    # sidecar (a pod lost), whichever had the most job calls.  The SMTP
    # server's receive times are compared with this moment.
    wait_until(lambda: smtp.count() >= 5, at - time.time() + 90, what="the first mails")
    calls = job_calls(replicas)
    victim = replicas[max(range(3), key=lambda i: calls[i])]
    victim.kill9()
    victim.daprd.kill9()
    killed_at = time.time()
    mailed_then = smtp.count()
    print(f"[dapr] killed replica {replicas.index(victim) + 1} (job calls so far {calls}) "
          f"after {mailed_then} mails, {killed_at - at:.2f}s after remind_at")

    smtp.wait_for(100, timeout=180)
    wait_until(lambda: scalar(database, "SELECT count(*) FROM tasks "
                                        "WHERE reminder_state = 'fired'") == 100,
               60, what="all 100 reminders claimed")
    wait_until(lambda: len(set(mailed_task_ids(smtp))) == 100, 60, what="100 tasks mailed")
    time.sleep(3)  # room for a duplicate to show up
    resent = assert_once_but_the_victims_unrecorded(smtp, tasks, database, killed_at, victim,
                                                    replicas)
    times = sorted(at_ for _, at_ in received_with_times(smtp))
    print(f"[dapr] 100 reminders, 3 replicas (one killed): first mail {times[0] - at:.2f}s, "
          f"last {times[-1] - at:.2f}s after remind_at; job calls {job_calls(replicas)}; "
          f"{resent} mail(s) the killed replica had sent but not recorded, sent again")
    assert times[0] >= at - 0.05, "mailed before it was due"
    assert all(t.alive() for t in replicas if t is not victim)
    # Every claim came through the trigger the Dapr job callbacks pull.
    fired = [how for t in replicas
             for how in re.findall(r"\[reminders\] (\w+): \d+ reminder\(s\) fired", t.log())]
    assert fired and set(fired) == {"trigger"}, fired
    assert query(database, "SELECT reason FROM dead_letters") == []
    for logical in ("task-events", "task-reminders"):
        assert kafka.read_topic(kafka_names.dlq(logical)) == []


@pytest.mark.parametrize("scheduler_stop", ["sigterm", "kill9"])
def test_jobs_survive_restarting_the_sidecar_and_the_scheduler(
        dapr_todod, dapr_scheduler, kafka, kafka_names, database, smtp, scheduler_stop):
    """The scheduler stops (SIGTERM, or kill -9: then a sidecar takes about
    20 s to get through to its successor, while the dead one's etcd leases
    expire) and starts again, the sidecar is killed and started, all
    before the reminders are due; each still fires from its own job."""
    [t], took = fleet(dapr_todod, kafka, kafka_names, database, smtp, 1)
    lead = 25 if scheduler_stop == "sigterm" else 50
    at = math.ceil(time.time() + lead_time(took, minimum=lead))
    tasks = create_due_together(database, t.user_id, 10, at)
    # The jobs are in the scheduler before anything restarts.
    wait_until(lambda: all(t.daprd.get_job(f"reminder-{tid}").status == 200 for tid in tasks),
               60, what="one job per reminder in the scheduler")
    started = time.monotonic()
    dapr_scheduler.restart(crash=scheduler_stop == "kill9")
    t.daprd.restart(crash=True)
    t.wait_ready()
    took = time.monotonic() - started
    assert time.time() < at - 2, "the restarts took longer than the lead time"

    smtp.wait_for(10, timeout=120)
    time.sleep(2)
    assert_each_once(smtp, tasks)
    late = [x - at for _, x in received_with_times(smtp)]
    print(f"\n[dapr] scheduler {scheduler_stop} + restart, sidecar kill -9 + start: ready again "
          f"in {took:.1f}s; 10 reminders mailed {min(late):.2f}s .. {max(late):.2f}s after "
          f"remind_at")
    assert min(late) >= -0.05
    # Fired through the trigger Dapr's job callbacks pull (the first one
    # claims all ten), not by the reminders plugin's own timer or scan;
    # and on time, so by their own jobs, not the minutely safety job.
    fired = re.findall(r"\[reminders\] (\w+): (\d+) reminder\(s\) fired", t.log())
    assert fired and all(how == "trigger" for how, _ in fired), fired
    assert sum(int(n) for _, n in fired) == 10, fired
    assert max(late) < 10, late

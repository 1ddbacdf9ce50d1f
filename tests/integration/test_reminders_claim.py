"""The reminders plugin fires each reminder exactly once, on time.

What a user would check is the outbox: one todod.reminder.due event per
reminder (no email plugin is needed for that), and the task's
reminder_state.  Reminders are created through the store's own
todod_task_create, which refuses a time in the past; the test that needs
an old reminder moves it back by hand while todod is down, as downtime
would have.
"""

import math
import re
import time

from harness import lead_time, query, scalar, start_all, wait_until
from harness.todod import task_id

DUE = "SELECT count(*) FROM outbox WHERE type = 'todod.reminder.due'"
# How late a reminder may fire on a loaded machine.  The tests run the
# hourly scan, so one fired by the scan instead of the timer is far later.
LATE_S = 10


def create_reminders(database, uid, count, delay_s):
    """`count` tasks whose reminders come due `delay_s` seconds from now,
    spread over one second; returns their ids."""
    rows = query(database,
                 "SELECT todod_task_create(%s, jsonb_build_object("
                 "  'title', 'reminder ' || i,"
                 "  'remind_at', to_char((date_trunc('second', now()) + make_interval(secs => %s)"
                 "                        + make_interval(secs => (i %% 1000) / 1000.0))"
                 "                       AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')),"
                 "  NULL, NULL) "
                 "FROM generate_series(1, %s) i", uid, delay_s, count)
    return [task_id(r[0]) for r in rows]


def reminder_events(database):
    """task id -> number of todod.reminder.due events for it."""
    rows = query(database, "SELECT key::bigint, count(*) FROM outbox "
                           "WHERE type = 'todod.reminder.due' GROUP BY key")
    return dict(rows)


def fired_in_log(t):
    return sum(int(n) for n in re.findall(r"(\d+) reminder\(s\) fired", t.log()))


def test_a_reminder_fires_once_at_its_time(todod_factory, database):
    t = todod_factory(database, plugins={"reminders": {"scan_interval": "1h"}})
    uid, _ = t.provision()
    # Due after the start-up round, which runs once the database is
    # connected (healthy comes before that), or that round may fire it.
    t.start()
    t.wait_ready()
    [task] = create_reminders(database, uid, 1, 2)
    due = scalar(database, "SELECT extract(epoch FROM remind_at)::float8 FROM tasks WHERE id = %s", task)

    wait_until(lambda: scalar(database, DUE) == 1, 30, what="the reminder.due event")
    # The timer, not the hourly scan, fired it: at its time, not before.
    fired_at = scalar(database, "SELECT extract(epoch FROM created_at)::float8 FROM outbox "
                                "WHERE type = 'todod.reminder.due'")
    assert due <= fired_at < due + LATE_S, fired_at - due
    [trigger] = wait_until(lambda: re.findall(r"\] ([a-z -]+): 1 reminder\(s\) fired", t.log()),
                           30, what="the round to be logged")
    assert trigger != "scan", t.log_tail(20)

    [(topic, subject, key, data)] = query(
        database, "SELECT topic, subject, key, data FROM outbox WHERE type = 'todod.reminder.due'")
    assert (topic, subject, key) == ("task-reminders", f"task/{task}", str(task))
    assert data["user_id"] == uid
    assert data["task"]["id"] == task and data["task"]["reminder_state"] == "fired"
    assert data["remind_at"] == data["task"]["remind_at"]
    assert scalar(database, "SELECT reminder_state FROM tasks WHERE id = %s", task) == "fired"

    time.sleep(1.5)  # nothing fires twice
    assert scalar(database, DUE) == 1
    assert t.metric("todod_reminders_fired_total") == 1
    assert t.metric("todod_reminder_lateness_seconds_count") == 1
    assert 0 <= t.metric("todod_reminder_lateness_seconds_sum") < LATE_S


def test_three_replicas_fire_300_reminders_once_each(todod_factory, database):
    replicas = [todod_factory(database, plugins={"reminders": {"scan_interval": "1h", "batch": 40}},
                              core={"log_level": "info"}) for _ in range(3)]
    uid, _ = replicas[0].provision()
    # Due after every replica is up, so all three arm their timers for the
    # same second and claim at the same time.  Tasks created while they
    # run would reach one replica only, so they are created before, ahead
    # by what starting the three took on this machine just now.
    took = start_all(replicas)
    for t in replicas:
        assert t.stop()[0] == 0
    tasks = create_reminders(database, uid, 300, math.ceil(lead_time(took, minimum=4)))
    start_all(replicas)
    assert scalar(database, DUE) == 0, "the replicas took too long to start"

    wait_until(lambda: scalar(database, DUE) == 300, 60, what="300 reminder.due events")
    wait_until(lambda: sum(fired_in_log(t) for t in replicas) >= 300, 30,
               what="the replicas to log 300 fired")
    time.sleep(1.0)  # and nothing more
    events = reminder_events(database)
    assert sorted(events) == sorted(tasks)
    assert set(events.values()) == {1}
    # Not before its time, though all three claimed at once.
    assert query(database, "SELECT t.id FROM tasks t JOIN outbox o ON o.key = t.id::text "
                           "AND o.type = 'todod.reminder.due' WHERE o.created_at < t.remind_at") == []
    assert scalar(database, "SELECT count(*) FROM tasks WHERE reminder_state = 'fired'") == 300
    assert sum(fired_in_log(t) for t in replicas) == 300


def test_reminders_due_while_stopped_fire_once_at_start(todod_factory, database):
    t = todod_factory(database, plugins={"reminders": {}})
    uid, _ = t.provision()
    t.start()
    code, _ = t.stop()
    assert code == 0
    # Created while todod is down: however long stopping took, they come
    # due while it is stopped.
    tasks = create_reminders(database, uid, 50, 2)

    wait_until(lambda: scalar(database, "SELECT count(*) FROM tasks WHERE remind_at <= now()") == 50,
               30, what="the reminders to come due")
    t.start()
    wait_until(lambda: scalar(database, DUE) == 50, 30, what="50 reminder.due events")
    t.stop()
    t.start()  # a second start finds nothing left to fire
    time.sleep(1.0)
    events = reminder_events(database)
    assert sorted(events) == sorted(tasks) and set(events.values()) == {1}


def test_a_reminder_older_than_grace_is_skipped_not_sent(todod_factory, database):
    t = todod_factory(database, plugins={"reminders": {"grace": "1h"}})
    uid, _ = t.provision()
    stale, late = create_reminders(database, uid, 2, 60)
    # As if todod had been down: one reminder two hours late, one ten minutes.
    query(database, "UPDATE tasks SET remind_at = now() - interval '2 hours' WHERE id = %s", stale)
    query(database, "UPDATE tasks SET remind_at = now() - interval '10 minutes' WHERE id = %s", late)

    t.start()
    wait_until(lambda: scalar(database, "SELECT count(*) FROM tasks "
                                        "WHERE reminder_state <> 'pending'") == 2,
               30, what="both reminders claimed")
    assert scalar(database, "SELECT reminder_state FROM tasks WHERE id = %s", stale) == "skipped"
    assert scalar(database, "SELECT reminder_state FROM tasks WHERE id = %s", late) == "fired"
    assert reminder_events(database) == {late: 1}
    t.wait_log("1 reminder(s) skipped")
    assert t.metric("todod_reminders_fired_total") == 1
    assert t.metric("todod_reminders_skipped_total") == 1
    # Ten minutes late, measured from remind_at to the claim; the skipped
    # one is not observed.
    assert t.metric("todod_reminder_lateness_seconds_count") == 1
    assert 600 <= t.metric("todod_reminder_lateness_seconds_sum") < 600 + 60
    assert t.metric("todod_reminder_lateness_seconds_bucket", le="10") == 0
    assert re.search(r"warn.*1 reminder\(s\) skipped", t.log(), re.I), t.log_tail(20)

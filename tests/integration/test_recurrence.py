"""The recurrence plugin: completing a recurring task makes its successor.

Tasks are created and completed through the store's SQL functions; todod
runs with the recurrence plugin and turns each completion on topic
task-recurrence into the next task of the series (store op task.recur).
The user lives in Europe/Berlin, so due dates are checked as local wall
clock time, across the change to summer time on 2026-03-29.
"""

import datetime
import json

import psycopg2
import pytest

from harness import query, scalar, wait_until

TZ = "Europe/Berlin"


@pytest.fixture
def rec(todod_factory, database):
    t = todod_factory(database, plugins={"recurrence": {}})
    t.user_id, _ = t.provision()
    query(database, "UPDATE users SET tz = %s WHERE id = %s", TZ, t.user_id)
    t.db = database
    return t.start()


def call(t, fn, args):
    return scalar(t.db, f"SELECT {fn}(%s, %s::jsonb, NULL, NULL)", t.user_id, json.dumps(args))


def create(t, **args):
    return call(t, "todod_task_create", args)["id"]


def recurrence_event(t, task_id):
    """The id of the newest completion event of the task on task-recurrence."""
    return scalar(t.db, "SELECT event_id::text FROM outbox WHERE topic = 'task-recurrence' "
                        "AND key = %s ORDER BY id DESC LIMIT 1", str(task_id))


def wait_handled(t, event_id):
    wait_until(lambda: scalar(t.db, "SELECT count(*) FROM inbox WHERE consumer = 'recurrence' "
                                    "AND event_id = %s", event_id) == 1
               or scalar(t.db, "SELECT count(*) FROM dead_letters WHERE event_id = %s", event_id),
               60, interval=0.05, what=f"the recurrence plugin handling event {event_id}")
    assert scalar(t.db, "SELECT count(*) FROM dead_letters") == 0, \
        query(t.db, "SELECT reason FROM dead_letters")


def complete(t, task_id):
    """Completes the task and waits until its completion was handled;
    returns the successor's row id, or None."""
    call(t, "todod_task_complete", {"id": task_id})
    wait_handled(t, recurrence_event(t, task_id))
    return successor(t, task_id)


def successor(t, task_id):
    rows = query(t.db, "SELECT n.id FROM tasks o JOIN tasks n ON n.series_id = o.series_id "
                       "AND n.occurrence = o.occurrence + 1 WHERE o.id = %s", task_id)
    return rows[0][0] if rows else None


def local_due(t, task_id):
    return scalar(t.db, "SELECT to_char(due_at AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI Dy') "
                        "FROM tasks WHERE id = %s", TZ, task_id)


def series_dues(t, first, n):
    """Completes `n` tasks of the series starting at `first`; their
    successors' local due dates."""
    dues, task = [], first
    for _ in range(n):
        task = complete(t, task)
        assert task is not None
        dues.append(local_due(t, task))
    return dues


def test_daily_keeps_local_time_across_dst(rec):
    first = create(rec, title="water plants", due_at="2026-03-27T09:00", rrule="FREQ=DAILY")
    assert series_dues(rec, first, 3) == ["2026-03-28 09:00 Sat", "2026-03-29 09:00 Sun",
                                          "2026-03-30 09:00 Mon"]
    # 09:00 is 08:00 UTC in winter and 07:00 UTC in summer.
    assert query(rec.db, "SELECT to_char(due_at AT TIME ZONE 'UTC', 'HH24:MI'), occurrence "
                         "FROM tasks WHERE series_id = %s ORDER BY occurrence", first) == \
        [("08:00", 1), ("08:00", 2), ("07:00", 3), ("07:00", 4)]
    created = scalar(rec.db, "SELECT count(*) FROM outbox WHERE type = 'todod.task.created' "
                             "AND topic = 'task-events'")
    assert created == 4


def test_daily_in_the_skipped_hour_moves_by_the_gap(rec):
    """02:30 does not exist on 2026-03-29 in Berlin: that day's task is due
    at 03:30, the next day's at 02:30 again."""
    first = create(rec, title="night job", due_at="2026-03-28T02:30", rrule="FREQ=DAILY")
    assert series_dues(rec, first, 2) == ["2026-03-29 03:30 Sun", "2026-03-30 02:30 Mon"]


def test_weekly_byday(rec):
    first = create(rec, title="gym", due_at="2026-03-02T18:30",
                   rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR")
    assert series_dues(rec, first, 4) == ["2026-03-04 18:30 Wed", "2026-03-06 18:30 Fri",
                                          "2026-03-09 18:30 Mon", "2026-03-11 18:30 Wed"]


def test_monthly_last_friday(rec):
    first = create(rec, title="report", due_at="2026-01-30T17:00", rrule="FREQ=MONTHLY;BYDAY=-1FR")
    assert series_dues(rec, first, 3) == ["2026-02-27 17:00 Fri", "2026-03-27 17:00 Fri",
                                          "2026-04-24 17:00 Fri"]


def test_yearly(rec):
    first = create(rec, title="birthday", due_at="2026-07-01T08:00", rrule="FREQ=YEARLY")
    assert series_dues(rec, first, 2) == ["2027-07-01 08:00 Thu", "2028-07-01 08:00 Sat"]


def test_follows_original_due_date_not_moved_one(rec):
    first = create(rec, title="standup", due_at="2026-03-02T10:00", rrule="FREQ=DAILY")
    second = complete(rec, first)
    # Moving one task by hand does not move the series.
    call(rec, "todod_task_update", {"id": second, "due_at": "2026-03-03T15:00"})
    assert local_due(rec, complete(rec, second)) == "2026-03-04 10:00 Wed"


def test_count_ends_the_series(rec):
    first = create(rec, title="three times", due_at="2026-05-04T12:00",
                   rrule="FREQ=DAILY;COUNT=3")
    last = series_dues(rec, first, 2)
    assert last == ["2026-05-05 12:00 Tue", "2026-05-06 12:00 Wed"]
    third = successor(rec, successor(rec, first))
    assert complete(rec, third) is None
    assert scalar(rec.db, "SELECT count(*) FROM tasks WHERE series_id = %s", first) == 3
    rec.wait_log("COUNT reached")


def test_until_ends_the_series(rec):
    first = create(rec, title="until", due_at="2026-06-01T07:00",
                   rrule="FREQ=DAILY;UNTIL=20260602")
    second = complete(rec, first)
    assert local_due(rec, second) == "2026-06-02 07:00 Tue"
    assert complete(rec, second) is None
    rec.wait_log("UNTIL passed")


def test_the_calendar_end_ends_the_series(rec):
    """Nothing after 9999-12-31T23:59:59Z can be kept: the last occurrence
    before it is completed without a successor and without a dead letter."""
    first = create(rec, title="to the end", due_at="9999-12-30T09:00", rrule="FREQ=DAILY")
    last = complete(rec, first)
    assert local_due(rec, last) == "9999-12-31 09:00 Fri"
    assert complete(rec, last) is None
    rec.wait_log("no next occurrence (no date after 9999-12-31)")
    assert " [error] " not in rec.log()


def test_without_due_date_starts_at_completion(rec):
    first = create(rec, title="no date", rrule="FREQ=WEEKLY")
    nxt = complete(rec, first)
    gap = scalar(rec.db, "SELECT n.due_at - date_trunc('second', o.completed_at) FROM tasks o, tasks n "
                         "WHERE o.id = %s AND n.id = %s", first, nxt)
    assert gap == datetime.timedelta(days=7)


def test_successor_copies_the_task(rec):
    call(rec, "todod_category_create", {"name": "home"})
    first = create(rec, title="clean", description="kitchen & bath", priority="high",
                   category="home", tags=["chores", "weekly"], due_at="2030-01-07T09:00",
                   remind_before_min=30, rrule="FREQ=WEEKLY")
    nxt = complete(rec, first)
    task = call(rec, "todod_task_get", {"id": nxt})
    assert task["title"] == "clean"
    assert task["description"] == "kitchen & bath"
    assert task["priority"] == "high"
    assert task["category"]["name"] == "home"
    assert task["tags"] == ["chores", "weekly"]
    assert task["rrule"] == "FREQ=WEEKLY"
    assert task["status"] == "pending"
    assert task["series_id"] == first and task["occurrence"] == 2
    assert task["due_at"] == "2030-01-14T08:00:00Z"
    assert task["remind_at"] == "2030-01-14T07:30:00Z"
    assert task["reminder_state"] == "pending"
    created = query(rec.db, "SELECT data FROM outbox WHERE type = 'todod.task.created' "
                            "AND key = %s", str(nxt))
    assert len(created) == 1 and created[0][0]["task"]["id"] == nxt


def test_replayed_event_makes_one_successor(rec):
    first = create(rec, title="replay", due_at="2026-03-02T10:00", rrule="FREQ=DAILY")
    assert complete(rec, first) is not None
    event = recurrence_event(rec, first)
    query(rec.db, "INSERT INTO outbox (event_id, topic, type, subject, key, data) "
                  "SELECT event_id, topic, type, subject, key, data FROM outbox "
                  "WHERE event_id = %s::uuid AND topic = 'task-recurrence'", event)
    duplicate = 'todod_bus_deliveries_total{consumer="recurrence",result="duplicate"} 1'
    wait_until(lambda: duplicate in rec.get("/metrics").text, 60,
               what="the replayed event answered as a duplicate")
    assert scalar(rec.db, "SELECT count(*) FROM tasks WHERE series_id = %s", first) == 2
    assert scalar(rec.db, "SELECT count(*) FROM dead_letters") == 0


def test_event_twice_in_one_backlog_makes_one_successor(rec):
    """Both copies can pass the bus's inbox check together; the store's
    once-key and the one-successor-per-occurrence rule still hold."""
    first = create(rec, title="backlog", due_at="2026-03-02T10:00", rrule="FREQ=DAILY")
    rec.stop()
    call(rec, "todod_task_complete", {"id": first})
    event = recurrence_event(rec, first)
    query(rec.db, "INSERT INTO outbox (event_id, topic, type, subject, key, data) "
                  "SELECT event_id, topic, type, subject, key, data FROM outbox "
                  "WHERE event_id = %s::uuid", event)
    rec.start()
    wait_until(lambda: scalar(rec.db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               60, what="the backlog sent")
    wait_handled(rec, event)
    assert scalar(rec.db, "SELECT count(*) FROM tasks WHERE series_id = %s", first) == 2
    assert scalar(rec.db, "SELECT count(*) FROM outbox WHERE type = 'todod.task.created' "
                          "AND key = %s", str(successor(rec, first))) == 1


def test_toggled_completion_makes_one_successor(rec):
    first = create(rec, title="toggle", due_at="2026-03-02T10:00", rrule="FREQ=DAILY")
    nxt = complete(rec, first)
    call(rec, "todod_task_uncomplete", {"id": first})
    assert complete(rec, first) == nxt
    assert scalar(rec.db, "SELECT count(*) FROM inbox WHERE consumer = 'recurrence'") == 2
    assert scalar(rec.db, "SELECT count(*) FROM tasks WHERE series_id = %s", first) == 2
    assert scalar(rec.db, "SELECT count(*) FROM outbox WHERE type = 'todod.task.created' "
                          "AND key = %s", str(nxt)) == 1


def test_store_once_key_refuses_a_repeat(rec):
    """The guard behind the bus's inbox: the successor's statement takes
    the once-key, so a delivery that raced past the inbox check changes
    nothing (ALREADY_HANDLED), and another event for the same occurrence
    gets the existing successor back."""
    first = create(rec, title="once", due_at="2026-03-02T10:00", rrule="FREQ=DAILY")
    nxt = complete(rec, first)
    event = recurrence_event(rec, first)
    args = json.dumps({"id": first, "due": 1772528400, "start": 1772442000,
                       "start_occurrence": 1})
    with pytest.raises(psycopg2.Error) as raised:
        query(rec.db, "SELECT todod_task_recur_create(%s, %s::jsonb, 'recurrence', %s)",
              rec.user_id, args, event)
    assert raised.value.diag.message_primary == "ALREADY_HANDLED"
    with pytest.raises(psycopg2.Error) as raised:
        query(rec.db, "SELECT todod_task_recur_source(%s, %s::jsonb, 'recurrence', %s)",
              rec.user_id, json.dumps({"id": first}), event)
    assert raised.value.diag.message_primary == "ALREADY_HANDLED"
    again = scalar(rec.db, "SELECT todod_task_recur_create(%s, %s::jsonb, 'recurrence', 'other')",
                   rec.user_id, args)
    assert again["created"] is False and again["task"]["id"] == nxt
    assert scalar(rec.db, "SELECT count(*) FROM tasks WHERE series_id = %s", first) == 2

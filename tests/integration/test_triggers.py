"""Triggers (plugin ABI 2.1): one plugin asks another to act now.

The reminders plugin provides trigger "reminders.due" (claim and send what
is due); the test plugin trigger_caller fires a trigger named over HTTP, as
a scheduler plugin or a Dapr Job callback would.  Real PostgreSQL and SMTP:
what is checked is the mail the user gets.

The reminders plugin's own timer cannot be switched off, so it is kept
from firing: each reminder is set a day ahead (the timer is armed for
then) and moved back to just now by hand, which no task event reports.
Its scan runs daily, so only the trigger can send it.
"""

import re
from concurrent.futures import ThreadPoolExecutor

from harness import query, scalar, task_id, wait_until

SENDER = "todod@example.org"
MAILED = "SELECT count(*) FROM inbox WHERE consumer = 'email'"


def fire(t, name="reminders.due"):
    return t.post(f"/trigger/fire?{name}", b"")


def due_by_hand(database, uid, title):
    """A pending reminder due a second ago that no timer is armed for."""
    [[created]] = query(database,
                        "SELECT todod_task_create(%s, jsonb_build_object('title', %s::text,"
                        "  'remind_at', to_char(now() AT TIME ZONE 'UTC' + interval '1 day',"
                        "                       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')), NULL, NULL)",
                        uid, title)
    tid = task_id(created)
    query(database, "UPDATE tasks SET remind_at = now() - interval '1 second' WHERE id = %s", tid)
    return tid


def rounds_fired(t):
    """What started each round that fired something, from the log."""
    return re.findall(r"\] ([a-z -]+): \d+ reminder\(s\) fired", t.log())


def test_the_trigger_sends_a_due_reminder_once(todod_factory, database, smtp):
    t = todod_factory(database, plugins={
        "reminders": {"scan_interval": "24h"},
        "email": {"server": smtp.url, "from": f"Todo Bot <{SENDER}>", "timeout": "5s"},
        "trigger_caller": {},
    })
    uid, _ = t.provision("alice")
    t.start()
    t.wait_ready()
    # The plugin's own start-up round would claim a reminder made due
    # while it is still running (a slow database under load).
    wait_until(lambda: "start-up: nothing due" in t.log(), 30,
               what="the reminders plugin's start-up round")

    first = due_by_hand(database, uid, "first")
    assert scalar(database, "SELECT reminder_state FROM tasks WHERE id = %s", first) == "pending"
    assert fire(t).status == 202
    [msg] = smtp.wait_for(1, timeout=30)
    assert msg.header("Subject") == "Reminder: first"
    assert rounds_fired(t) == ["trigger"], t.log_tail(20)

    # Many fires at once: one round runs, the others coalesce into at
    # most one more round after it, and the database claims each
    # reminder once.
    second = due_by_hand(database, uid, "second")
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: fire(t).status, range(32)))
    assert statuses == [202] * 32
    wait_until(lambda: scalar(database, MAILED) >= 2, 30, what="the email plugin to send both")
    assert scalar(database, "SELECT count(*) FROM tasks WHERE id = ANY(%s) "
                            "AND reminder_state = 'fired'", [first, second]) == 2
    assert scalar(database, "SELECT count(*) FROM outbox "
                            "WHERE type = 'todod.reminder.due'") == 2
    assert smtp.count() == 2
    subjects = sorted(m.header("Subject") for m in smtp.messages())
    assert subjects == ["Reminder: first", "Reminder: second"]
    assert rounds_fired(t) == ["trigger", "trigger"], t.log_tail(20)


def test_a_trigger_nobody_provides_is_a_clear_error(todod_factory, database):
    t = todod_factory(database, plugins={"trigger_caller": {}})
    t.provision()
    t.start()

    resp = fire(t)
    assert resp.status == 404
    assert resp.json()["error"] == {"code": "NO_TRIGGER",
                                    "message": "no plugin provides trigger 'reminders.due'"}
    assert t.post("/trigger/fire", b"").status == 400


def test_service_provide_refuses_a_trigger_without_fire(todod_factory, database):
    t = todod_factory(database, plugins={"trigger_caller": {}})
    t.provision()
    t.start()

    resp = t.post("/trigger/provide-broken", b"")
    assert resp.status == 422
    assert resp.json()["error"]["message"] == "trigger service has no 'fire'"
    assert fire(t, "caller.broken").status == 404

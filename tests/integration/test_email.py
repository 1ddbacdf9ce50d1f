"""The email plugin against a real SMTP server (aiosmtpd) and real PostgreSQL.

The todod.reminder.due event comes from the reminders plugin when the
build has it (a task whose remind_at is two seconds ahead); the failure
cases write the event straight into the outbox with todod_emit, which is
what the reminders plugin's claim does, so they do not wait on a clock."""

import json
import mailbox
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness import ServiceUnavailable, find_plugin, query, scalar, task_id, wait_until  # noqa: E402

TITLE = 'Pay <b>rent</b> & "bills" — Grüße'
DESCRIPTION = "<script>alert('x')</script>\nFrom the landlord"
DUE_AT = datetime(2026, 12, 24, 17, 0, tzinfo=timezone.utc)
TZ = "Europe/Berlin"
SENDER = "todod@example.org"

# Fast redelivery so a 10 s outage is bridged within a test's patience:
# retries after 0.2, 0.6, 1.4, 3, 6.2, 12.6 s ...
CORE = {"retry_backoff": "200ms", "max_attempts": "12"}


def local(dt):
    """How the mail shows a time: "Thu 24 Dec 2026 18:00 CET"."""
    return dt.astimezone(ZoneInfo(TZ)).strftime("%a %d %b %Y %H:%M %Z")


def rfc3339(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def have_reminders():
    try:
        find_plugin("reminders")
        return True
    except ServiceUnavailable:
        return False


def start(todod_factory, database, server, reminders=False):
    plugins = {"email": {"server": server, "from": f"Todo Bot <{SENDER}>", "timeout": "5s"}}
    if reminders:
        plugins["reminders"] = {"scan_interval": "1s"}
    t = todod_factory(database, plugins=plugins, core=CORE)
    t.user_id, _ = t.provision("alice")
    query(database, "UPDATE users SET tz = %s WHERE id = %s", TZ, t.user_id)
    return t.start()


def create_task(t, remind_at=None):
    args = {"title": TITLE, "description": DESCRIPTION, "priority": "high",
            "due_at": rfc3339(DUE_AT)}
    if remind_at:
        args["remind_at"] = rfc3339(remind_at)
    res = scalar(t.core["database"], "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)",
                 t.user_id, json.dumps(args))
    return task_id(res)


def emit_reminder(t, tid, remind_at):
    """What the reminders plugin writes when it claims a reminder."""
    return scalar(t.core["database"],
                  "SELECT todod_emit('task-reminders', 'todod.reminder.due', 'task/' || %s, %s::text,"
                  " jsonb_build_object('user_id', %s::bigint, 'task', todod_task_json(%s),"
                  "                    'remind_at', %s::text))::text",
                  tid, tid, t.user_id, tid, rfc3339(remind_at))


def dead_letters(t):
    return query(t.core["database"],
                 "SELECT event_id, reason, attempts FROM dead_letters WHERE consumer = 'email'")


def check_content(msg, remind_at):
    assert str(make_header(decode_header(msg.header("Subject")))) == f"Reminder: {TITLE}"
    assert msg.header("To") == "alice@example.com"
    assert SENDER in msg.header("From")
    assert msg.header("Message-ID").startswith("<reminder-")
    assert msg.header("Message-ID").endswith("@example.org>")
    html = msg.body("html")
    assert "Pay &lt;b&gt;rent&lt;/b&gt; &amp; &quot;bills&quot; — Grüße" in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<script>" not in html and "<b>rent" not in html
    text = msg.body("plain")
    assert f"Reminder: {TITLE}" in text
    assert f"Due:       {local(DUE_AT)}" in text  # "Thu 24 Dec 2026 18:00 CET"
    assert f"Remind at: {local(remind_at)}" in text
    assert local(DUE_AT) in html


def test_reminder_is_mailed_once(todod_factory, database, smtp):
    reminders = have_reminders()
    t = start(todod_factory, database, smtp.url, reminders=reminders)
    remind_at = (datetime.now(timezone.utc) + timedelta(seconds=2)).replace(microsecond=0)
    tid = create_task(t, remind_at if reminders else None)
    if not reminders:
        emit_reminder(t, tid, remind_at)

    [msg] = smtp.wait_for(1, timeout=30)
    assert msg.mail_from == SENDER
    assert msg.rcpt_tos == ["alice@example.com"]
    check_content(msg, remind_at)
    wait_until(lambda: scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'email'") == 1,
               30, what="the inbox row")
    time.sleep(2)
    assert smtp.count() == 1
    assert dead_letters(t) == []


def test_smtp_outage_delays_the_mail(todod_factory, database, smtp):
    t = start(todod_factory, database, smtp.url)
    smtp.stop()
    remind_at = datetime.now(timezone.utc).replace(microsecond=0)
    emit_reminder(t, create_task(t), remind_at)
    t.wait_log("will retry", timeout=30)
    time.sleep(10)
    assert dead_letters(t) == []
    smtp.start()

    [msg] = smtp.wait_for(1, timeout=60)
    check_content(msg, remind_at)
    time.sleep(2)
    assert smtp.count() == 1
    assert dead_letters(t) == []


def test_permanent_refusal_is_dead_lettered(todod_factory, database, smtp):
    smtp.reject("alice@example.com")
    t = start(todod_factory, database, smtp.url)
    event_id = emit_reminder(t, create_task(t), datetime.now(timezone.utc))

    [(dead_id, reason, attempts)] = wait_until(lambda: dead_letters(t), 60,
                                               what="a dead letter")
    assert dead_id == event_id
    assert reason.startswith("550 5.1.1 <alice@example.com>: Recipient address rejected")
    assert attempts == 1
    assert smtp.count() == 0


def test_owner_without_address_is_dead_lettered(todod_factory, database, smtp):
    t = start(todod_factory, database, smtp.url)
    query(database, "UPDATE users SET email = NULL WHERE id = %s", t.user_id)
    emit_reminder(t, create_task(t), datetime.now(timezone.utc))

    [(_, reason, _)] = wait_until(lambda: dead_letters(t), 60, what="a dead letter")
    assert "has no usable email address" in reason
    assert smtp.count() == 0


def test_mbox_target(todod_factory, database, tmp_path):
    path = tmp_path / "mail" / "reminders.mbox"
    path.parent.mkdir()
    t = start(todod_factory, database, f"mbox:{path}")
    remind_at = datetime.now(timezone.utc).replace(microsecond=0)
    emit_reminder(t, create_task(t), remind_at)

    wait_until(lambda: path.exists() and len(mailbox.mbox(str(path))) == 1, 60,
               what="one message in the mbox")
    assert path.read_text().startswith(f"From {SENDER} ")
    [raw] = mailbox.mbox(str(path))
    assert str(make_header(decode_header(raw["Subject"]))) == f"Reminder: {TITLE}"
    assert raw["To"] == "alice@example.com"
    time.sleep(1)
    assert len(mailbox.mbox(str(path))) == 1
    assert dead_letters(t) == []


def plain_text(raw):
    """The decoded text/plain part of an mbox message."""
    [part] = [p for p in raw.walk() if p.get_content_type() == "text/plain"]
    return part.get_payload(decode=True).decode()


def test_times_in_the_owners_zone(todod_factory, database, tmp_path):
    """The core's zone reader, through the plugin API, as Python's zoneinfo
    shows the same instants: half-hour offsets and DST, and a due date
    after the zone files' last listed change (their footer rule)."""
    cases = [("Australia/Lord_Howe", datetime(2026, 10, 4, 15, 45, tzinfo=timezone.utc)),
             ("Asia/Kolkata", datetime(2026, 12, 24, 17, 0, tzinfo=timezone.utc)),
             ("America/New_York", datetime(2045, 3, 12, 7, 30, tzinfo=timezone.utc)),
             ("Europe/Berlin", datetime(2045, 10, 29, 0, 30, tzinfo=timezone.utc))]
    path = tmp_path / "reminders.mbox"
    t = start(todod_factory, database, f"mbox:{path}")
    remind_at = datetime.now(timezone.utc).replace(microsecond=0)
    for n, (zone, due_at) in enumerate(cases, 1):
        query(database, "UPDATE users SET tz = %s WHERE id = %s", zone, t.user_id)
        tid = scalar(database, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)", t.user_id,
                     json.dumps({"title": zone, "due_at": rfc3339(due_at)}))
        emit_reminder(t, task_id(tid), remind_at)
        wait_until(lambda: path.exists() and len(mailbox.mbox(str(path))) == n, 20,
                   what=f"the message for {zone}")
    for raw, (zone, due_at) in zip(mailbox.mbox(str(path)), cases):
        shown = due_at.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y %H:%M %Z")
        assert f"Due:       {shown}" in plain_text(raw), zone
    assert dead_letters(t) == []


@pytest.mark.parametrize("server, complaint", [
    ("http://mail.example.org", "is not an smtp://host:port, smtps://host:port or mbox:/path"),
    ("mbox:relative/path", "must name an absolute path"),
])
def test_bad_server_url_is_refused(todod_factory, database, server, complaint):
    t = todod_factory(database, plugins={"email": {"server": server, "from": SENDER}})
    res = t.cli("-t")
    assert res.returncode != 0
    assert complaint in res.stderr + res.stdout

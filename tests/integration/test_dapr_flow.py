"""Story 1 of the original system, for real: transparent event processing
through a Dapr sidecar.

A user adds a task with a due date and a reminder over MCP; its events go
through daprd to Kafka (Dapr's Kafka component, loaded from
contrib/dapr/pubsub-kafka.yaml); the reminder is fired by a Dapr job the
scheduler calls back; one e-mail arrives.  A recurring task completed
over MCP gets exactly one successor, its completion carried by Kafka
through daprd.

With dapr-transport loaded there is no in-process delivery: every effect
below went through the sidecar and the broker, which the tests see on
the broker itself (the record headers Dapr's Kafka component writes).
"""

import math
import time
from datetime import datetime, timezone

from harness import lead_time, query, scalar, wait_until
from harness.dapr import start_with_sidecar
from harness.e2e import RECIPIENT, McpHttp, received_with_times, reminder_plugins

CORE = {"instance": "dapr-flow", "retry_backoff": "200ms", "log_level": "debug"}


def utc(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def of_type(records, typ, task_id):
    return [r for r in records if r.json()["type"] == typ
            and r.json()["subject"] == f"task/{task_id}"]


def through_dapr(record):
    """The record on the broker was written by daprd's Kafka component:
    it turns each publish metadata entry into a record header
    (dapr-transport publishes with rawPayload, so the CloudEvent's bytes
    are todod's own), and the key is the task id (partitionKey)."""
    event = record.json()
    assert record.headers.get("rawPayload") == "true", record.headers
    assert record.key == event["subject"].split("/")[1], (record.key, event["subject"])
    assert record.headers.get("partitionKey") == record.key, record.headers
    return event


def test_reminder_and_recurrence_flow_through_the_sidecar(dapr_todod, kafka, kafka_names,
                                                          database, smtp):
    t = dapr_todod(database, plugins=reminder_plugins(smtp.url), core=CORE)
    t.user_id, t.token = t.provision("alice")
    started = time.monotonic()
    start_with_sidecar(t)
    print(f"\n[dapr] todod + daprd ready in {time.monotonic() - started:.2f}s")
    mcp = McpHttp(t, t.token)

    # -- a task with a due date and a reminder ------------------------------------------
    call_started = time.monotonic()
    probe = mcp.call("add_task", title="probe", due_at="2031-01-01T09:00:00Z")["task"]
    remind_at = math.ceil(time.time() + lead_time(time.monotonic() - call_started, minimum=4))
    added = mcp.call("add_task", title="Renew the passport", priority="high",
                     due_at="2031-02-01T09:00:00Z", remind_at=utc(remind_at))["task"]
    assert added["reminder_state"] == "pending"

    events = kafka_names.topic("task-events")
    created = kafka.wait_records(events, lambda rs: of_type(rs, "todod.task.created", added["id"]),
                                 what="the created event on the broker")
    [record] = of_type(created, "todod.task.created", added["id"])
    event = through_dapr(record)
    [(event_id,)] = query(database, "SELECT event_id::text FROM outbox WHERE key = %s "
                                    "AND type = 'todod.task.created'", str(added["id"]))
    assert event["id"] == event_id
    assert event["data"]["task"]["remind_at"] == utc(remind_at)
    # Acknowledged by daprd's 204, so marked sent.
    wait_until(lambda: scalar(database, "SELECT sent_at IS NOT NULL FROM outbox "
                                        "WHERE event_id = %s::uuid", event_id),
               30, what="the outbox row marked sent")

    [msg] = smtp.wait_for(1, timeout=90)
    [(_, at)] = received_with_times(smtp)
    print(f"[dapr] reminder mailed {at - remind_at:.3f}s after remind_at")
    assert at >= remind_at - 0.05, "mailed before it was due"
    assert msg.rcpt_tos == [RECIPIENT]
    assert "Renew the passport" in msg.body("plain")

    reminders = kafka_names.topic("task-reminders")
    [due] = of_type(kafka.read_topic(reminders), "todod.reminder.due", added["id"])
    through_dapr(due)
    assert msg.header("Message-ID") == f"<reminder-{due.json()['id']}@example.org>"
    # Fired by its own Dapr job, which the scheduler called back at
    # remind_at: not by the reminders plugin's scan.
    assert f"job reminder-{added['id']} fired reminders.due" in t.log(), t.log_tail(40)
    assert "[reminders] trigger: 1 reminder(s) fired" in t.log(), t.log_tail(40)
    assert (t.metric("todod_dapr_job_callbacks_total") or 0) >= 1

    # -- a recurring task completed: one successor ----------------------------------------
    series = mcp.call("add_task", title="Water the plants", due_at="2031-01-06T08:00:00Z",
                      rrule="FREQ=WEEKLY")["task"]
    done = mcp.call("complete_task", task_id=series["id"])["task"]
    assert done["status"] == "completed"
    recurrence = kafka_names.topic("task-recurrence")
    [completion] = kafka.wait_records(
        recurrence, lambda rs: of_type(rs, "todod.task.completed", series["id"]),
        what="the completion on task-recurrence")
    through_dapr(completion)
    [(succ_id,)] = wait_until(lambda: query(database, "SELECT id FROM tasks WHERE series_id = %s "
                                                      "AND occurrence = 2", series["id"]),
                              60, what="the successor task")
    successor = mcp.call("get_task", task_id=succ_id)["task"]
    assert successor["title"] == "Water the plants"
    assert successor["due_at"] == "2031-01-13T08:00:00Z"
    assert successor["status"] == "pending"
    # Completing it again is no second completion, and no second successor.
    again = mcp.call("complete_task", task_id=series["id"])["task"]
    assert again["completed_at"] == done["completed_at"]
    kafka.wait_records(events, lambda rs: of_type(rs, "todod.task.created", succ_id),
                       what="the successor's own created event")

    # -- and nothing more ---------------------------------------------------------------------
    wait_until(lambda: scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'email'")
               == 1, 30, what="the mail recorded as handled")
    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               30, what="every event acknowledged by daprd")
    time.sleep(2)  # room for a duplicate to show up
    assert smtp.count() == 1
    assert scalar(database, "SELECT count(*) FROM tasks WHERE series_id = %s", series["id"]) == 2
    assert kafka.read_topic(kafka_names.dlq("task-reminders")) == []
    assert kafka.read_topic(kafka_names.dlq("task-recurrence")) == []
    assert query(database, "SELECT reason FROM dead_letters") == []

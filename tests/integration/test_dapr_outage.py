"""todod restarts while its sidecar keeps running (a container restart in
a pod, an upgrade under systemd): the deliveries daprd has for it in the
meantime must wait for it, not go to the dead-letter topic.

daprd retries a delivery that could not reach the app as the Resiliency
policy of contrib/dapr says; once those retries run out it publishes the
message to <topic>-dlq.  What a user checks: a reminder that came due
while todod was down for 10 s is mailed once when it is back, and
nothing was dead-lettered.
"""

import json
import time
import uuid

from harness import scalar, task_id, wait_until
from harness.dapr import start_with_sidecar

CORE = {"instance": "dapr-outage", "retry_backoff": "200ms"}
DOWN_S = 10


def reminder_event(t, tid):
    """A todod.reminder.due CloudEvent for task `tid`, as todod writes it."""
    task = scalar(t.db, "SELECT todod_task_json(%s)", tid)
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/todod/elsewhere",
            "type": "todod.reminder.due", "subject": f"task/{tid}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "datacontenttype": "application/json",
            "data": {"user_id": t.user_id, "task": task,
                     "remind_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}


def test_deliveries_wait_for_todod_while_it_restarts(dapr_todod, kafka, kafka_names, database,
                                                     smtp):
    t = dapr_todod(database, core=CORE, plugins={
        "email": {"server": smtp.url, "from": "Todo Bot <todod@example.org>", "timeout": "5s"}})
    t.user_id, _ = t.provision("alice")
    t.db = database
    start_with_sidecar(t)
    tid = task_id(scalar(database, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)",
                         t.user_id, json.dumps({"title": "due while todod was away"})))
    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
               30, what="the task's events out")

    assert t.stop()[0] == 0
    down_at = time.monotonic()
    # Another replica (here: the test, through this sidecar's API, which
    # still answers) publishes a reminder for todod's consumer group.
    event = reminder_event(t, tid)
    resp = t.daprd.publish(kafka_names.topic("task-reminders"), event,
                           metadata={"rawPayload": "true", "partitionKey": str(tid)})
    assert resp.status == 204, resp
    while time.monotonic() - down_at < DOWN_S:
        time.sleep(0.2)
    t.start()
    t.wait_ready()

    [msg] = smtp.wait_for(1, timeout=90)
    assert "due while todod was away" in msg.body("plain")
    wait_until(lambda: scalar(database, "SELECT count(*) FROM inbox WHERE event_id = %s",
                              event["id"]) == 1, 30, what="the reminder recorded as handled")
    assert kafka.read_topic(kafka_names.dlq("task-reminders")) == [], \
        "dead-lettered while todod restarted:\n" + t.daprd.log_tail(20)
    time.sleep(1)
    assert smtp.count() == 1

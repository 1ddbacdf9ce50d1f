"""A crash in the middle of delivering a backlog neither loses nor repeats an effect.

1,000 tasks are created while todod is down, so their created events wait
in the outbox.  todod starts with the probe, which marks every created task
once per event id; it is killed with SIGKILL half way through and started
again.  Afterwards every event is sent, every task is marked, and none was
marked twice: not in the outbox (no second todod.task.updated event), not
in the inbox, and not in the probe's log of the updates that took effect.
"""

import collections
import contextlib
import re
import time

import psycopg2

from harness import query, scalar, wait_until

TASKS = 1000


def test_kill_9_during_delivery_loses_and_repeats_nothing(todod_factory, database):
    t = todod_factory(database, plugins={"probe": {"user_id": 1}}, core={"log_level": "info"})
    uid, _ = t.provision()
    query(database,
          "SELECT todod_task_create(%s, jsonb_build_object('title', 't' || i), NULL, NULL) "
          "FROM generate_series(1, %s) i", uid, TASKS)
    assert scalar(database, "SELECT count(*) FROM outbox "
                            "WHERE type = 'todod.task.created' AND sent_at IS NULL") == TASKS

    # Polling starts at once: waiting for /healthz could miss the window.
    t.start(wait=False)
    # Created events the probe has handled; its inbox also fills with the
    # updated events it answers, which do not count here.
    handled = ("SELECT count(*) FROM inbox i JOIN outbox o ON o.event_id::text = i.event_id "
               "WHERE i.consumer = 'probe' AND o.type = 'todod.task.created'")
    with contextlib.closing(psycopg2.connect(database)) as conn:
        conn.autocommit = True
        cur = conn.cursor()
        deadline = time.monotonic() + 60
        while True:
            cur.execute(handled)
            n = cur.fetchone()[0]
            if 1 <= n < TASKS:
                t.kill9()
                break
            assert n < TASKS, "the probe handled the whole backlog before it could be interrupted"
            assert t.alive(), f"todod exited with {t.proc.returncode}:\n{t.log_tail()}"
            assert time.monotonic() < deadline, "the probe handled nothing within 60s"
            time.sleep(0.002)
    handled_at_kill = scalar(database, handled)

    t.start()
    wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
               and scalar(database, "SELECT count(*) FROM tasks "
                                    "WHERE description IS DISTINCT FROM 'seen by probe'") == 0,
               120, interval=0.2, what="every event sent and every task seen by the probe")

    # The probe logs every update that took effect; both runs share one log.
    log = t.log()
    marks = collections.Counter(re.findall(r"marked task (\d+) for event", log))
    assert [tid for tid, n in marks.items() if n > 1] == [], "tasks marked more than once"
    print(f"killed with {handled_at_kill} of {TASKS} created events handled; "
          f"{log.count('already handled')} redeliveries answered as already handled")
    assert scalar(database, "SELECT count(*) FROM tasks WHERE user_id = %s", uid) == TASKS
    twice = query(database,
                  "SELECT key, count(*) FROM outbox WHERE type = 'todod.task.updated' "
                  "GROUP BY key HAVING count(*) > 1 ORDER BY key LIMIT 10")
    assert twice == [], f"tasks updated more than once (key, updates): {twice}"
    assert scalar(database, "SELECT count(*) FROM outbox WHERE type = 'todod.task.updated'") == TASKS
    created_without_one_inbox_row = scalar(database, """
        SELECT count(*) FROM outbox o
         WHERE o.type = 'todod.task.created'
           AND (SELECT count(*) FROM inbox i
                 WHERE i.consumer = 'probe' AND i.event_id = o.event_id::text) <> 1""")
    assert created_without_one_inbox_row == 0
    assert scalar(database, "SELECT count(*) FROM dead_letters") == 0
    assert scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0

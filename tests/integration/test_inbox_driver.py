"""An inbox driver a plugin provides replaces the database inbox.

With `[core] inbox = memory` the memory_inbox test plugin answers the
bus's inbox checks and records: every created event reaches its
subscriber once, a redelivery of the same event ids (the outbox rows
marked unsent again) is answered by the driver as a duplicate and has no
second effect, and the database's inbox table stays empty.  A name no
loaded plugin provides stops the start with an error naming it.
"""

from harness import ServiceUnavailable, query, scalar, wait_until

import pytest

TASKS = 5


def stats(t):
    resp = t.get("/memory-inbox")
    assert resp.status == 200, resp
    return resp.json()


def test_plugin_inbox_driver_answers_redelivery(todod_factory, database):
    t = todod_factory(database, plugins={"memory_inbox": {}}, core={"inbox": "memory"})
    uid, _ = t.provision()
    query(database,
          "SELECT todod_task_create(%s, jsonb_build_object('title', 't' || i), NULL, NULL) "
          "FROM generate_series(1, %s) i", uid, TASKS)
    t.start()
    assert "inbox: driver 'memory'" in t.log()
    unsent = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
    wait_until(lambda: scalar(database, unsent) == 0 and stats(t)["handled"] == TASKS, 60,
               what="every created event handled")
    first = stats(t)
    assert first["handled_twice"] == 0
    assert first["seen_calls"] >= 1 and first["seen_keys"] >= TASKS
    assert first["record_keys"] >= TASKS
    assert first["seen_found"] == 0

    # The same event ids once more: the relay sends them again.
    query(database, "UPDATE outbox SET sent_at = NULL WHERE type = 'todod.task.created'")
    wait_until(lambda: scalar(database, unsent) == 0
               and stats(t)["seen_found"] >= first["seen_found"] + TASKS, 60,
               what="the redelivered events answered as duplicates")
    again = stats(t)
    assert again["handled"] == TASKS and again["handled_twice"] == 0
    assert again["record_keys"] == first["record_keys"], "a duplicate was recorded again"
    assert scalar(database, "SELECT count(*) FROM inbox") == 0
    assert scalar(database, "SELECT count(*) FROM dead_letters") == 0


def test_unknown_inbox_driver_stops_the_start(todod_factory, database):
    t = todod_factory(database, plugins={"memory_inbox": {}}, core={"inbox": "statestore"})
    t.provision()
    with pytest.raises(ServiceUnavailable):
        t.start(timeout=30)
    log = t.log()
    assert "[core] inbox = statestore: no loaded plugin provides an inbox driver of that name" \
        in log, log
    assert "loaded: memory" in log


def test_database_inbox_stays_default_with_a_driver_loaded(todod_factory, database):
    t = todod_factory(database, plugins={"memory_inbox": {}})
    uid, _ = t.provision()
    query(database, "SELECT todod_task_create(%s, '{\"title\": \"t\"}', NULL, NULL)", uid)
    t.start()
    wait_until(lambda: scalar(database, "SELECT count(*) FROM inbox WHERE consumer = 'memory'")
               == 1, 60, what="the event recorded in the database inbox")
    s = stats(t)
    assert s["handled"] == 1 and s["seen_calls"] == 0 and s["record_calls"] == 0

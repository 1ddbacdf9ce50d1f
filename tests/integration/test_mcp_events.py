"""Every change made through an MCP tool writes its CloudEvent to the outbox,
in the same transaction, carrying what the tool answered."""

import pytest

from harness import mcp_sdk, query
from harness.mcp_sdk import call, ok, ref, task

FUTURE = "2030-01-15T09:00:00Z"


@pytest.fixture
def mcp(todod_factory, database):
    return mcp_sdk.start_todod(todod_factory, database)


def events(db, topic="task-events"):
    return query(db, "SELECT type, subject, key, data FROM outbox WHERE topic = %s ORDER BY id",
                 topic)


def test_each_mutation_writes_its_event_with_the_tools_snapshot(mcp):
    tid = ref("t", "task", "id")
    steps = mcp_sdk.http_session(mcp.mcp_url, mcp.tokens["alice"], [
        call("add_task", "t", title="Pay rent", due_at=FUTURE),
        call("update_task", task_id=tid, title="Pay the rent"),
        call("update_task", task_id=tid, title="Pay the rent"),  # no visible change
        call("set_reminder", task_id=tid, remind_before_min=60),
        call("add_tag_to_task", task_id=tid, tags=["bills"]),
        call("remove_tag_from_task", task_id=tid, tags=["bills"]),
        call("complete_task", task_id=tid),
        call("complete_task", task_id=tid),  # already completed: no event
        call("delete_task", task_id=tid),
        call("create_category", name="no events for labels"),
        call("create_tag", name="nor-for-tags"),
    ])["steps"]
    results = [task(ok(s)) for s in steps[:9]]
    tid = results[0]["id"]
    rows = events(mcp.core["database"])
    assert [r[0] for r in rows] == [
        "todod.task.created", "todod.task.updated", "todod.task.updated", "todod.task.updated",
        "todod.task.updated", "todod.task.completed", "todod.task.deleted"]
    expected_snapshots = [results[0], results[1], results[3], results[4], results[5], results[6],
                          results[8]]
    for (typ, subject, key, data), snapshot in zip(rows, expected_snapshots):
        assert subject == f"task/{tid}", typ
        assert key == str(tid), typ
        assert data["user_id"] == mcp.user_ids["alice"], typ
        assert data["task"] == snapshot, typ
    assert "title" in rows[1][3]["changed"]
    assert rows[2][3]["changed"] and "remind_at" in rows[2][3]["changed"]
    assert rows[3][3]["changed"] == ["tags"] and rows[4][3]["changed"] == ["tags"]
    # A delete carries the task as it was before.
    assert rows[6][3]["task"]["status"] == "completed"
    assert results[7] == results[6]


def test_completing_a_recurring_task_also_goes_to_task_recurrence(mcp):
    steps = mcp_sdk.http_session(mcp.mcp_url, mcp.tokens["alice"], [
        call("add_task", "t", title="Water plants", due_at=FUTURE,
             rrule="FREQ=WEEKLY;COUNT=3"),
        call("complete_task", task_id=ref("t", "task", "id")),
        call("complete_task", task_id=ref("t", "task", "id")),
    ])["steps"]
    done = task(ok(steps[1]))
    rows = events(mcp.core["database"], "task-recurrence")
    assert [(r[0], r[1]) for r in rows] == [("todod.task.completed", f"task/{done['id']}")]
    assert rows[0][3]["task"] == done


def test_a_refused_call_writes_nothing(mcp):
    steps = mcp_sdk.http_session(mcp.mcp_url, mcp.tokens["alice"], [
        call("add_task", title="t" * 201),
        call("add_task", title="x", due_at="not a date"),
        call("complete_task", task_id=987654321),
    ])["steps"]
    assert all(s["isError"] for s in steps), steps
    assert query(mcp.core["database"], "SELECT count(*) FROM outbox") == [(0,)]
    assert query(mcp.core["database"], "SELECT count(*) FROM tasks") == [(0,)]

"""mcp-tools as an MCP client sees it, through MCP's official Python SDK.

Each test runs one or more SDK sessions (tests/integration/mcp_client/
session.py in the SDK's venv) against a real todod and asserts on what the
client got back."""

import datetime
import json
import re

import pytest

from harness import mcp_sdk
from harness.mcp_sdk import TOOL_NAMES as TOOLS, call, ok, ref, task, tool_error

READ_ONLY = {"get_task", "list_tasks", "search_tasks", "list_categories", "list_tags"}
DELETING = {"delete_task", "delete_category", "delete_tag"}
ADDITIVE = {"add_task", "create_category", "create_tag"}

FUTURE = "2030-01-15T09:00:00Z"


@pytest.fixture
def mcp(todod_factory, database):
    return mcp_sdk.start_todod(todod_factory, database)


def session(t, steps, user="alice"):
    return mcp_sdk.http_session(t.mcp_url, t.tokens[user], steps)


# ---- lifecycle ----------------------------------------------------------------

def test_initialize_negotiates_2025_11_25(mcp):
    report = session(mcp, [{"ping": True}])
    assert report["protocol_version"] == "2025-11-25"
    assert report["server_info"]["name"] == "todod"
    assert report["server_info"]["version"]
    assert "tools" in report["capabilities"]
    sid = report["session_id"]
    assert sid and re.fullmatch(r"[\x21-\x7e]{16,}", sid), sid
    assert report["steps"][0] == {"result": {}}


def test_tools_list_has_the_18_tools_with_schemas_and_annotations(mcp):
    listing = session(mcp, [{"list_tools": True}])["steps"][0]
    names = [t["name"] for t in listing["tools"]]
    assert sorted(names) == sorted(TOOLS), names
    assert len(names) == len(set(names))
    for tool in listing["tools"]:
        name = tool["name"]
        assert tool.get("title") and tool.get("description"), name
        assert tool["inputSchema"]["type"] == "object", name
        assert tool["inputSchema"].get("additionalProperties") is False, name
        assert tool["outputSchema"]["type"] == "object", name
        hints = tool["annotations"]
        assert hints["openWorldHint"] is False, name
        assert hints.get("readOnlyHint", False) is (name in READ_ONLY), name
        if name in DELETING | ADDITIVE:
            assert hints.get("destructiveHint", True) is (name in DELETING), name


def test_unknown_tool_is_a_protocol_error(mcp):
    step = session(mcp, [call("no_such_tool")])["steps"][0]
    assert step["error"]["code"] == -32602, step


def test_unknown_argument_is_refused(mcp):
    # The input schemas are closed (additionalProperties false); the
    # refusal names the argument so a model can drop it.
    err = tool_error(session(mcp, [call("add_task", title="x", colour="red")])["steps"][0])
    assert (err["code"], err.get("field")) == ("UNKNOWN_FIELD", "colour"), err


# ---- every tool's happy path ----------------------------------------------------

def test_task_tools_happy_path(mcp):
    report = session(mcp, [
        call("create_category", "cat", name="Home", color="#3366FF"),
        call("create_tag", "tag", name="bills"),
        call("add_task", "t", title="Pay rent", description="flat 3", priority="high",
             due_at=FUTURE, category="Home", tags=["bills"], rrule="FREQ=MONTHLY"),
        call("get_task", task_id=ref("t", "task", "id")),
        call("update_task", task_id=ref("t", "task", "id"), title="Pay the rent",
             priority="urgent"),
        call("add_tag_to_task", task_id=ref("t", "task", "id"), tags=["monthly"]),
        call("remove_tag_from_task", task_id=ref("t", "task", "id"), tags=["bills"]),
        call("set_reminder", task_id=ref("t", "task", "id"), remind_before_min=30),
        call("list_tasks"),
        call("search_tasks", query="rent"),
        call("complete_task", task_id=ref("t", "task", "id")),
        call("list_tasks", status="completed"),
        call("delete_task", task_id=ref("t", "task", "id")),
        call("get_task", task_id=ref("t", "task", "id")),
    ])
    (cat, tag, add, get, upd, tag_add, tag_rm, remind, listed, found, done, listed_done,
     deleted, gone) = report["steps"]
    assert ok(cat)["category"]["name"] == "Home"
    assert ok(tag)["tag"]["name"] == "bills"
    created = task(ok(add))
    assert created["title"] == "Pay rent"
    assert created["description"] == "flat 3"
    assert created["priority"] == "high"
    assert created["due_at"] == FUTURE
    assert created["status"] == "pending"
    assert created["category"]["name"] == "Home"
    assert created["tags"] == ["bills"]
    assert created["rrule"] == "FREQ=MONTHLY"
    assert task(ok(get)) == created
    updated = task(ok(upd))
    assert (updated["title"], updated["priority"]) == ("Pay the rent", "urgent")
    assert task(ok(tag_add))["tags"] == ["bills", "monthly"]
    assert task(ok(tag_rm))["tags"] == ["monthly"]
    reminded = task(ok(remind))
    assert reminded["remind_at"] == "2030-01-15T08:30:00Z"
    assert reminded["reminder_state"] == "pending"
    assert [x["id"] for x in ok(listed)["tasks"]] == [created["id"]]
    assert [x["id"] for x in ok(found)["tasks"]] == [created["id"]]
    completed = task(ok(done))
    assert completed["status"] == "completed" and completed["completed_at"]
    assert [x["id"] for x in ok(listed_done)["tasks"]] == [created["id"]]
    assert task(ok(deleted))["id"] == created["id"]
    assert tool_error(gone)["code"] == "TASK_NOT_FOUND"


def test_label_tools_happy_path(mcp):
    report = session(mcp, [
        call("create_category", "c", name="Work", color="#112233"),
        call("create_category", name="Errands"),
        call("update_category", category_id=ref("c", "category", "id"), name="Office", color=""),
        call("list_categories"),
        call("delete_category", category_id=ref("c", "category", "id")),
        call("list_categories"),
        call("create_tag", "g", name="urgent-ish", color="#abcdef"),
        call("update_tag", tag_id=ref("g", "tag", "id"), name="soon"),
        call("list_tags"),
        call("delete_tag", tag_id=ref("g", "tag", "id")),
        call("list_tags"),
    ])
    c, c2, cu, cl, cd, cl2, g, gu, gl, gd, gl2 = report["steps"]
    work = ok(c)["category"]
    assert (work["name"], work["color"]) == ("Work", "#112233")
    assert ok(c2)["category"]["name"] == "Errands"
    assert ok(cu)["category"] == {"id": work["id"], "name": "Office", "color": None}
    assert [x["name"] for x in ok(cl)["categories"]] == ["Errands", "Office"]
    assert ok(cd) == {"deleted": True, "category": ok(cu)["category"]}
    assert [x["name"] for x in ok(cl2)["categories"]] == ["Errands"]
    tag = ok(g)["tag"]
    # Colors come back in one spelling, whatever the case they were given in.
    assert (tag["name"], tag["color"]) == ("urgent-ish", "#ABCDEF")
    assert ok(gu)["tag"] == {"id": tag["id"], "name": "soon", "color": "#ABCDEF"}
    assert ok(gl)["tags"] == [ok(gu)["tag"]]
    assert ok(gd) == {"deleted": True, "tag": ok(gu)["tag"]}
    assert ok(gl2)["tags"] == []


# ---- error paths ----------------------------------------------------------------

MISSING = 987654321


@pytest.mark.parametrize("name,args,code,field", [
    ("get_task", {"task_id": MISSING}, "TASK_NOT_FOUND", "task_id"),
    ("update_task", {"task_id": MISSING, "title": "x"}, "TASK_NOT_FOUND", "task_id"),
    ("complete_task", {"task_id": MISSING}, "TASK_NOT_FOUND", "task_id"),
    ("delete_task", {"task_id": MISSING}, "TASK_NOT_FOUND", "task_id"),
    ("set_reminder", {"task_id": MISSING, "remind_at": FUTURE}, "TASK_NOT_FOUND", "task_id"),
    ("add_tag_to_task", {"task_id": MISSING, "tags": ["a"]}, "TASK_NOT_FOUND", "task_id"),
    ("remove_tag_from_task", {"task_id": MISSING, "tags": ["a"]}, "TASK_NOT_FOUND", "task_id"),
    ("add_task", {"title": "t" * 201}, "TITLE_TOO_LONG", "title"),
    ("add_task", {"title": ""}, "TITLE_REQUIRED", "title"),
    ("add_task", {"title": "x", "priority": "whenever"}, "INVALID_PRIORITY", "priority"),
    ("add_task", {"title": "x", "due_at": "next blue moon"}, "INVALID_DUE_DATE", "due_at"),
    ("add_task", {"title": "x", "tags": [f"t{i}" for i in range(11)]}, "TOO_MANY_TAGS", "tags"),
    ("add_task", {"title": "x", "category": "Nowhere"}, "CATEGORY_NOT_FOUND", "category"),
    ("list_tasks", {"status": "someday"}, "INVALID_STATUS", "status"),
    ("list_tasks", {"cursor": "not-a-cursor"}, "INVALID_CURSOR", "cursor"),
    ("search_tasks", {"query": "x", "limit": 0}, "INVALID_LIMIT", "limit"),
    ("list_categories", {"name": "x"}, "UNKNOWN_FIELD", "name"),
    ("list_tags", {"color": "#000000"}, "UNKNOWN_FIELD", "color"),
    ("get_task", {}, "FIELD_REQUIRED", "task_id"),
    ("set_reminder", {"task_id": MISSING}, "FIELD_REQUIRED", "remind_at"),
    ("update_category", {"category_id": MISSING, "name": "x"}, "CATEGORY_NOT_FOUND", "category_id"),
    ("delete_category", {"category_id": MISSING}, "CATEGORY_NOT_FOUND", "category_id"),
    ("create_category", {"name": "x", "color": "red"}, "INVALID_COLOR", "color"),
    ("update_tag", {"tag_id": MISSING, "name": "x"}, "TAG_NOT_FOUND", "tag_id"),
    ("delete_tag", {"tag_id": MISSING}, "TAG_NOT_FOUND", "tag_id"),
    ("create_tag", {"name": "n" * 31}, "TAG_NAME_TOO_LONG", "name"),
])
def test_tool_error_names_code_and_field(mcp, name, args, code, field):
    err = tool_error(session(mcp, [call(name, **args)])["steps"][0])
    assert (err["code"], err.get("field")) == (code, field), err


@pytest.mark.parametrize("rule,part", [("FREQ=SOMETIMES", "FREQ"),
                                       ("FREQ=WEEKLY;BYDAY=XX", "BYDAY"),
                                       ("FREQ=DAILY;EVERY=2", "EVERY"),
                                       ("INTERVAL=2", "FREQ")])
def test_invalid_recurrence_rule_names_the_part(mcp, rule, part):
    err = tool_error(session(mcp, [call("add_task", title="x", due_at=FUTURE,
                                        rrule=rule)])["steps"][0])
    assert (err["code"], err.get("field")) == ("INVALID_RECURRENCE_RULE", "rrule"), err
    assert part in err["message"], err


def test_duplicate_names_are_refused(mcp):
    steps = session(mcp, [call("create_category", name="Home"), call("create_category", name="Home"),
                          call("create_tag", name="x"), call("create_tag", name="x")])["steps"]
    assert tool_error(steps[1])["code"] == "CATEGORY_EXISTS"
    assert tool_error(steps[3])["code"] == "TAG_EXISTS"


def test_set_reminder_in_the_past_is_refused(mcp):
    soon = (datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tid = ref("t", "task", "id")
    steps = session(mcp, [
        call("add_task", "t", title="x", due_at=soon),
        call("set_reminder", task_id=tid, remind_at="2020-01-01T00:00:00Z"),
        call("set_reminder", task_id=tid, remind_before_min=60),
        call("get_task", task_id=tid),
    ])["steps"]
    for step, field in ((steps[1], "remind_at"), (steps[2], "remind_before_min")):
        err = tool_error(step)
        assert (err["code"], err.get("field")) == ("REMINDER_IN_PAST", field), err
    after = task(ok(steps[3]))
    assert (after["remind_at"], after["reminder_state"]) == (None, "none")


# ---- behaviour ----------------------------------------------------------------

def test_list_tasks_pages_with_limit_and_cursor(mcp):
    steps = [call("add_task", title=f"task {i}") for i in range(7)]
    steps += [call("list_tasks", "p1", limit=3),
              call("list_tasks", "p2", limit=3, cursor=ref("p1", "next_cursor")),
              call("list_tasks", "p3", limit=3, cursor=ref("p2", "next_cursor"))]
    out = session(mcp, steps)["steps"]
    created = [task(ok(s))["id"] for s in out[:7]]
    pages = [ok(s) for s in out[7:]]
    assert [len(p["tasks"]) for p in pages] == [3, 3, 1]
    assert pages[0]["next_cursor"] and pages[1]["next_cursor"]
    assert pages[2]["next_cursor"] is None
    seen = [x["id"] for p in pages for x in p["tasks"]]
    assert sorted(seen) == sorted(created) and len(set(seen)) == 7


def test_update_task_clears_the_due_date_with_null(mcp):
    steps = session(mcp, [
        call("add_task", "t", title="x", due_at=FUTURE),
        call("update_task", task_id=ref("t", "task", "id"), due_at=None),
        call("get_task", task_id=ref("t", "task", "id")),
    ])["steps"]
    assert task(ok(steps[0]))["due_at"] == FUTURE
    assert task(ok(steps[1]))["due_at"] is None
    assert task(ok(steps[2]))["due_at"] is None


def test_complete_task_twice_changes_nothing(mcp):
    steps = session(mcp, [
        call("add_task", "t", title="x"),
        call("complete_task", task_id=ref("t", "task", "id")),
        call("complete_task", task_id=ref("t", "task", "id")),
    ])["steps"]
    first, second = task(ok(steps[1])), task(ok(steps[2]))
    assert first["status"] == "completed"
    assert second == first


# ---- two users ----------------------------------------------------------------

def without_ids(err, *ids):
    text = json.dumps(err)
    for i in ids:
        text = re.sub(rf"\b{i}\b", "ID", text)
    return json.loads(text)


def test_another_users_task_is_like_a_missing_one(mcp):
    alice = session(mcp, [call("add_task", "t", title="alice's secret"),
                          call("create_category", name="Private")])["steps"]
    tid = task(ok(alice[0]))["id"]
    probes = []
    for target in (tid, MISSING):
        probes += [call("get_task", task_id=target),
                   call("update_task", task_id=target, title="mine now"),
                   call("complete_task", task_id=target),
                   call("set_reminder", task_id=target, remind_at=FUTURE),
                   call("add_tag_to_task", task_id=target, tags=["x"]),
                   call("delete_task", task_id=target)]
    probes += [call("list_tasks", status="all"), call("search_tasks", query="secret"),
               call("list_categories")]
    bob = session(mcp, probes, user="bob")["steps"]
    n = (len(bob) - 3) // 2
    for theirs, missing in zip(bob[:n], bob[n:2 * n]):
        assert tool_error(theirs)["code"] == "TASK_NOT_FOUND"
        assert without_ids(tool_error(theirs), tid) == without_ids(tool_error(missing), MISSING)
    assert ok(bob[-3])["tasks"] == [] and ok(bob[-2])["tasks"] == []
    assert ok(bob[-1])["categories"] == []
    after = session(mcp, [call("get_task", task_id=tid)])["steps"][0]
    assert task(ok(after)) == task(ok(alice[0]))

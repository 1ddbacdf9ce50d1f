"""One user must not crowd out the others (mcp-tools): per-user session
caps, per-user quotas on categories and tags, label lists in pages, and
sessions that do not outlive a change of authentication."""

import base64
import json
import secrets
import signal
import threading

import pytest

from harness import mcp_sdk, query, wait_until
from harness.e2e import messages

ACCEPT = "application/json, text/event-stream"
VERSION = "2025-11-25"


# ---- raw JSON-RPC over HTTP ------------------------------------------------------

def post(t, body, token, session=None):
    hdrs = {"Accept": ACCEPT, "Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    if session:
        hdrs.update({"MCP-Session-Id": session, "MCP-Protocol-Version": VERSION})
    return t.request("POST", "/mcp", body=json.dumps(body).encode(), headers=hdrs)


def initialize(t, token):
    """Opens a session; returns its id."""
    resp = post(t, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"protocolVersion": VERSION, "capabilities": {},
                               "clientInfo": {"name": "fair-test", "version": "0"}}}, token)
    assert resp.status == 200, resp
    sid = resp.headers.get("Mcp-Session-Id") or resp.headers.get("MCP-Session-Id")
    assert sid, resp.headers
    note = post(t, {"jsonrpc": "2.0", "method": "notifications/initialized"}, token, sid)
    assert note.status == 202, note
    return sid


def ping(t, token, sid):
    """The HTTP status of a ping in session `sid`."""
    return post(t, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, token, sid).status


def call_tool(t, token, sid, tool, **args):
    """The result of tools/call (isError and structuredContent)."""
    resp = post(t, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": tool, "arguments": args}}, token, sid)
    assert resp.status == 200, resp
    msgs = messages(resp)
    assert len(msgs) == 1 and "result" in msgs[0], msgs
    return msgs[0]["result"]


def tool_ok(result):
    assert not result.get("isError"), result
    return result["structuredContent"]


def reload(t, **plugin_options):
    before = t.log().count("configuration reloaded")
    t.plugins["mcp-tools"].update(plugin_options)
    t.write_config()
    t.send_signal(signal.SIGHUP)
    wait_until(lambda: t.log().count("configuration reloaded") > before, 30,
               what="the reload to finish")


# ---- sessions: a per-user cap ----------------------------------------------------

def test_a_flood_of_initialize_evicts_only_the_flooders_own_sessions(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database, options={"max_sessions_per_user": "3"})
    alice, bob = t.tokens["alice"], t.tokens["bob"]
    alices = initialize(t, alice)
    b1, b2, b3 = (initialize(t, bob) for _ in range(3))
    assert ping(t, bob, b1) == 200  # b1 is now more recently used than b2
    b4 = initialize(t, bob)
    # Bob's least recently used session made room; his others are intact.
    assert ping(t, bob, b2) == 404
    assert [ping(t, bob, s) for s in (b1, b3, b4)] == [200, 200, 200]

    flood = [initialize(t, bob) for _ in range(50)]
    assert ping(t, alice, alices) == 200
    assert [ping(t, bob, s) for s in flood[-3:]] == [200, 200, 200]
    assert [ping(t, bob, s) for s in (b1, b3, b4, *flood[:-3])] == [404] * 50


# ---- a reload that changes authentication ---------------------------------------

def test_switching_auth_from_token_to_none_ends_the_sessions(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database)
    alice = t.tokens["alice"]
    sid = initialize(t, alice)
    assert tool_ok(call_tool(t, alice, sid, "add_task", title="before"))

    reload(t, auth="none", default_user="bob")
    # Neither with her token nor without one does the old session act for alice.
    assert ping(t, alice, sid) == 404
    assert ping(t, None, sid) == 404
    # A new session is bob's, the default user's.
    fresh = initialize(t, None)
    tool_ok(call_tool(t, None, fresh, "add_task", title="after"))
    owners = query(database, "SELECT t.title, u.name FROM tasks t JOIN users u ON u.id = t.user_id"
                             " ORDER BY t.id")
    assert owners == [("before", "alice"), ("after", "bob")]


def test_switching_auth_from_none_to_token_ends_the_sessions(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database,
                            options={"auth": "none", "default_user": "alice"})
    sid = initialize(t, None)
    assert ping(t, None, sid) == 200

    reload(t, auth="token")
    bob = t.tokens["bob"]
    assert ping(t, bob, sid) == 404
    assert ping(t, None, sid) == 401
    assert ping(t, bob, initialize(t, bob)) == 200


def test_changing_the_default_user_ends_the_sessions(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database,
                            options={"auth": "none", "default_user": "alice"})
    sid = initialize(t, None)
    reload(t, default_user="bob")
    assert ping(t, None, sid) == 404


# ---- bad tokens --------------------------------------------------------------------

def test_a_flood_of_bad_tokens_is_refused_and_good_ones_still_work(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database)
    alice = t.tokens["alice"]
    sid = initialize(t, alice)
    # Shaped like real tokens, so each one needs a look in the database.
    statuses, lock = [], threading.Lock()

    def flood():
        for _ in range(25):
            fake = "tdd_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            resp = post(t, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"protocolVersion": VERSION, "capabilities": {},
                                       "clientInfo": {"name": "x", "version": "0"}}}, fake)
            with lock:
                statuses.append((resp.status, resp.headers.get("Retry-After")))

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(statuses) == 200
    # Refused as not valid, or (when too many wait for a look) asked to retry.
    assert all(s == 401 or (s == 503 and retry == "1") for s, retry in statuses), statuses
    assert ping(t, alice, sid) == 200
    assert ping(t, alice, initialize(t, alice)) == 200


# ---- categories and tags: quotas -------------------------------------------------

@pytest.fixture
def small_quotas(todod_factory, database):
    return mcp_sdk.start_todod(todod_factory, database,
                               core={"max_categories_per_user": "3", "max_tags_per_user": "4"})


def quota_error(result, field):
    assert result.get("isError") is True, result
    err = mcp_sdk.tool_error(result)
    assert (err["code"], err.get("field")) == ("QUOTA_EXCEEDED", field), err
    return err


def label_names(database, table, user):
    return sorted(r[0] for r in query(database, f"SELECT l.name FROM {table} l JOIN users u"
                                                f" ON u.id = l.user_id WHERE u.name = %s", user))


def test_category_quota(small_quotas, database):
    t, alice = small_quotas, small_quotas.tokens["alice"]
    sid = initialize(t, alice)
    for name in ("a", "b", "c"):
        tool_ok(call_tool(t, alice, sid, "create_category", name=name))
    err = quota_error(call_tool(t, alice, sid, "create_category", name="d"), "name")
    assert "3" in err["message"], err
    assert label_names(database, "categories", "alice") == ["a", "b", "c"]
    # An existing name is still an existing name, and bob has his own quota.
    assert mcp_sdk.tool_error(call_tool(t, alice, sid, "create_category", name="a"))["code"] == \
        "CATEGORY_EXISTS"
    bob = t.tokens["bob"]
    tool_ok(call_tool(t, bob, initialize(t, bob), "create_category", name="d"))
    # Deleting one makes room again.
    first = tool_ok(call_tool(t, alice, sid, "list_categories"))["categories"][0]
    tool_ok(call_tool(t, alice, sid, "delete_category", category_id=first["id"]))
    tool_ok(call_tool(t, alice, sid, "create_category", name="d"))


def test_tag_quota_covers_tags_that_tasks_create(small_quotas, database):
    t, alice = small_quotas, small_quotas.tokens["alice"]
    sid = initialize(t, alice)
    tool_ok(call_tool(t, alice, sid, "create_tag", name="one"))
    task = tool_ok(call_tool(t, alice, sid, "add_task", title="x", tags=["two", "three"]))["task"]
    # Two new tags when only one place is left: neither is made, the task is unchanged.
    quota_error(call_tool(t, alice, sid, "add_tag_to_task", task_id=task["id"],
                          tags=["four", "five"]), "tags")
    quota_error(call_tool(t, alice, sid, "add_task", title="y", tags=["four", "five"]), "tags")
    quota_error(call_tool(t, alice, sid, "update_task", task_id=task["id"],
                          tags=["four", "five", "six"]), "tags")
    assert label_names(database, "tags", "alice") == ["one", "three", "two"]
    assert [r[0] for r in query(database, "SELECT title FROM tasks ORDER BY id")] == ["x"]
    # Tags the user has already cost nothing; the last place can be taken.
    got = tool_ok(call_tool(t, alice, sid, "add_tag_to_task", task_id=task["id"],
                            tags=["one", "four"]))["task"]
    assert sorted(got["tags"]) == ["four", "one", "three", "two"]
    tool_ok(call_tool(t, alice, sid, "add_task", title="z", tags=["one", "two"]))
    quota_error(call_tool(t, alice, sid, "create_tag", name="five"), "name")
    assert len(label_names(database, "tags", "alice")) == 4


def test_concurrent_creates_stop_at_the_quota(small_quotas, database):
    t, alice = small_quotas, small_quotas.tokens["alice"]
    sessions = [initialize(t, alice) for _ in range(10)]
    results = [None] * 10

    def create(i):
        results[i] = call_tool(t, alice, sessions[i], "create_tag", name=f"tag{i}")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(not r.get("isError") for r in results) == 4, results
    for r in results:
        if r.get("isError"):
            quota_error(r, "name")
    assert len(label_names(database, "tags", "alice")) == 4


# ---- categories and tags: pages ----------------------------------------------------

@pytest.mark.parametrize("tool,table", [("list_categories", "categories"), ("list_tags", "tags")])
def test_labels_come_in_pages_each_exactly_once(todod_factory, database, tool, table):
    t = mcp_sdk.start_todod(todod_factory, database)
    alice = t.tokens["alice"]
    # Names whose order differs between byte order and a locale's.
    names = [f"{p}{i:02d}" for i in range(15) for p in ("a", "B", "_", "z")]
    query(database, f"INSERT INTO {table} (user_id, name) SELECT %s, unnest(%s::text[])",
          t.user_ids["alice"], names)
    query(database, f"INSERT INTO {table} (user_id, name) VALUES (%s, 'bobs')", t.user_ids["bob"])
    sid = initialize(t, alice)
    seen, cursor, pages = [], None, 0
    while True:
        args = {"limit": 7} if cursor is None else {"limit": 7, "cursor": cursor}
        page = tool_ok(call_tool(t, alice, sid, tool, **args))
        assert len(page[table]) <= 7
        seen += [item["name"] for item in page[table]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 9  # 60 names, 7 a page
    assert seen == sorted(names, key=lambda n: n.encode())  # in name order, each once

    default = tool_ok(call_tool(t, alice, sid, tool))
    assert len(default[table]) == 20 and default["next_cursor"]
    for bad, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                       ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor")):
        err = mcp_sdk.tool_error(call_tool(t, alice, sid, tool, **bad))
        assert err.get("field") == field, err


def test_a_cursor_of_one_kind_is_refused_by_the_other(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database)
    alice = t.tokens["alice"]
    for table in ("categories", "tags"):
        query(database, f"INSERT INTO {table} (user_id, name) VALUES (%s, 'a'), (%s, 'b')",
              t.user_ids["alice"], t.user_ids["alice"])
    sid = initialize(t, alice)
    cursor = tool_ok(call_tool(t, alice, sid, "list_categories", limit=1))["next_cursor"]
    err = mcp_sdk.tool_error(call_tool(t, alice, sid, "list_tags", cursor=cursor))
    assert (err["code"], err.get("field")) == ("INVALID_CURSOR", "cursor"), err


# ---- tags: [] ------------------------------------------------------------------------

@pytest.mark.parametrize("tool", ["add_tag_to_task", "remove_tag_from_task"])
def test_an_empty_tag_list_is_refused(todod_factory, database, tool):
    t = mcp_sdk.start_todod(todod_factory, database)
    alice = t.tokens["alice"]
    sid = initialize(t, alice)
    task = tool_ok(call_tool(t, alice, sid, "add_task", title="x", tags=["keep"]))["task"]
    before = query(database, "SELECT updated_at FROM tasks")
    err = mcp_sdk.tool_error(call_tool(t, alice, sid, tool, task_id=task["id"], tags=[]))
    assert err.get("field") == "tags", err
    assert query(database, "SELECT updated_at FROM tasks") == before
    assert tool_ok(call_tool(t, alice, sid, "get_task", task_id=task["id"]))["task"]["tags"] == \
        ["keep"]

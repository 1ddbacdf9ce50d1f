"""mcp-tools' Streamable HTTP transport, byte by byte (urllib, no SDK):
what a client that gets it wrong is told."""

import json
import time

import pytest

from harness import mcp_sdk, query
from harness.e2e import messages

ACCEPT = "application/json, text/event-stream"
ALLOWED_ORIGIN = "https://app.example"


@pytest.fixture
def mcp(todod_factory, database):
    return mcp_sdk.start_todod(todod_factory, database,
                               options={"allowed_origins": ALLOWED_ORIGIN},
                               core={"max_body_size": "64k"})


def post(t, body, token=None, session=None, version=None, headers=None, user="alice"):
    hdrs = {"Accept": ACCEPT, "Content-Type": "application/json"}
    token = t.tokens[user] if token is None else token
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    if session:
        hdrs["MCP-Session-Id"] = session
    if version:
        hdrs["MCP-Protocol-Version"] = version
    hdrs.update(headers or {})
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    return t.request("POST", "/mcp", body=body, headers=hdrs)


def answer(resp):
    msgs = messages(resp)
    assert len(msgs) == 1, msgs
    assert msgs[0]["jsonrpc"] == "2.0", msgs
    return msgs[0]


def rpc_error(resp, status, code):
    assert resp.status == status, resp
    err = answer(resp)
    assert err["error"]["code"] == code, err
    assert err["error"]["message"], err
    return err


def request(method, params=None, rid=1):
    msg = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def initialize_msg(version="2025-11-25"):
    return request("initialize", {"protocolVersion": version, "capabilities": {},
                                  "clientInfo": {"name": "raw-test", "version": "0"}})


def open_session(t, user="alice"):
    """initialize + notifications/initialized; returns the session id."""
    resp = post(t, initialize_msg(), user=user)
    assert resp.status == 200, resp
    assert answer(resp)["result"]["protocolVersion"] == "2025-11-25"
    sid = resp.headers.get("Mcp-Session-Id") or resp.headers.get("MCP-Session-Id")
    assert sid, resp.headers
    note = post(t, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session=sid,
                version="2025-11-25", user=user)
    assert note.status == 202 and note.body == b"", note
    return sid


def in_session(t, sid, msg, user="alice", **kw):
    return post(t, msg, session=sid, version="2025-11-25", user=user, **kw)


# ---- version negotiation -----------------------------------------------------

@pytest.mark.parametrize("asked,got", [("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"),
                                       ("2025-03-26", "2025-03-26"), ("1999-01-01", "2025-11-25"),
                                       ("2026-07-28", "2025-11-25")])
def test_initialize_negotiates_the_version(mcp, asked, got):
    resp = post(mcp, initialize_msg(asked))
    assert resp.status == 200, resp
    result = answer(resp)["result"]
    assert result["protocolVersion"] == got
    assert result["serverInfo"]["name"] == "todod"
    assert "tools" in result["capabilities"]


def test_invalid_protocol_version_header_is_400(mcp):
    sid = open_session(mcp)
    resp = post(mcp, request("ping"), session=sid, version="1999-01-01")
    assert resp.status == 400, resp
    assert in_session(mcp, sid, request("ping")).status == 200


# ---- malformed messages ------------------------------------------------------

def test_bad_json_is_400_parse_error(mcp):
    err = rpc_error(post(mcp, b'{"jsonrpc": "2.0", "id": 1, "method": '), 400, -32700)
    assert err.get("id") is None


def test_batch_is_invalid_request(mcp):
    sid = open_session(mcp)
    resp = in_session(mcp, sid, [request("ping", rid=1), request("ping", rid=2)])
    rpc_error(resp, 400, -32600)


def test_not_json_rpc_is_invalid_request(mcp):
    sid = open_session(mcp)
    rpc_error(in_session(mcp, sid, {"id": 1, "method": "ping"}), 400, -32600)


def test_unknown_method_is_32601(mcp):
    sid = open_session(mcp)
    err = rpc_error(in_session(mcp, sid, request("tasks/frobnicate", rid=7)), 200, -32601)
    assert err["id"] == 7


def test_unknown_tool_is_32602(mcp):
    sid = open_session(mcp)
    resp = in_session(mcp, sid, request("tools/call", {"name": "nope", "arguments": {}}, rid=3))
    err = rpc_error(resp, 200, -32602)
    assert err["id"] == 3 and "nope" in err["error"]["message"]


def test_arguments_not_an_object_is_32602(mcp):
    sid = open_session(mcp)
    resp = in_session(mcp, sid, request("tools/call", {"name": "get_task", "arguments": [1]}))
    rpc_error(resp, 200, -32602)


def test_tool_calls_are_counted_per_tool_and_outcome(mcp):
    sid = open_session(mcp)
    ok = answer(in_session(mcp, sid, request("tools/call", {"name": "add_task",
                                                             "arguments": {"title": "counted"}})))
    assert not ok["result"].get("isError"), ok
    bad = answer(in_session(mcp, sid, request("tools/call", {"name": "get_task",
                                                              "arguments": {"task_id": 999999}},
                                              rid=2)))
    assert bad["result"]["isError"] is True, bad
    assert mcp.metric("todod_mcp_tool_calls_total", tool="add_task", outcome="ok") == 1
    # The caller's mistake, not the server's.
    assert mcp.metric("todod_mcp_tool_calls_total", tool="get_task", outcome="refused") == 1
    assert mcp.metric("todod_mcp_tool_calls_total", tool="get_task", outcome="failed") == 0
    assert mcp.metric("todod_mcp_tool_duration_seconds_count", tool="add_task") == 1
    # Every tool's series exists from the start, so a rate over it is 0, not absent.
    assert mcp.metric("todod_mcp_tool_calls_total", tool="delete_tag", outcome="failed") == 0


# ---- sessions ----------------------------------------------------------------

def test_request_without_session_after_initialize_is_400(mcp):
    open_session(mcp)
    resp = post(mcp, request("tools/list"), version="2025-11-25")
    assert resp.status == 400, resp


def test_unknown_session_is_404(mcp):
    resp = post(mcp, request("tools/list"), session="no-such-session-0123456789",
                version="2025-11-25")
    rpc_error(resp, 404, -32001)


def test_deleted_session_is_404(mcp):
    sid = open_session(mcp)
    assert in_session(mcp, sid, request("ping")).status == 200
    gone = mcp.request("DELETE", "/mcp", headers={"Authorization": f"Bearer {mcp.tokens['alice']}",
                                                   "MCP-Session-Id": sid,
                                                   "MCP-Protocol-Version": "2025-11-25"})
    assert gone.status in (200, 204), gone
    assert in_session(mcp, sid, request("ping")).status == 404


def test_session_ids_differ(mcp):
    assert open_session(mcp) != open_session(mcp)


def test_another_users_token_on_a_session_sees_nothing_of_the_owner(mcp):
    sid = open_session(mcp, "alice")
    call = request("tools/call", {"name": "add_task", "arguments": {"title": "alice only"}})
    assert in_session(mcp, sid, call).status == 200
    listing = request("tools/call", {"name": "list_tasks", "arguments": {"status": "all"}}, rid=2)
    resp = in_session(mcp, sid, listing, user="bob")
    if resp.status == 200:
        assert answer(resp)["result"]["structuredContent"]["tasks"] == []
    else:
        assert resp.status in (401, 403, 404), resp


SESSION_TIMEOUT_S = 1


def timed_ping(t, sid):
    """(status, monotonic time sent, monotonic time answered).  todod
    marks the session used, on the same clock, between the two."""
    sent = time.monotonic()
    status = in_session(t, sid, request("ping")).status
    return status, sent, time.monotonic()


def test_idle_session_expires(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database,
                            options={"session_timeout": f"{SESSION_TIMEOUT_S}s"})
    # Used again before the timeout, the session stays.  That can only be
    # told when the previous use was sent less than the timeout before
    # this one was answered; a loaded machine may need another try.
    for _ in range(5):
        sid = open_session(t)
        status, sent, answered = timed_ping(t, sid)
        assert status == 200
        time.sleep(SESSION_TIMEOUT_S / 2)
        status, _, answered = timed_ping(t, sid)
        if answered - sent < SESSION_TIMEOUT_S:
            assert status == 200, "expired before it was idle for its timeout"
            break
    else:
        pytest.fail("no two pings within the session timeout: the machine is too slow")
    # Idle for the timeout since it was last answered, it is gone (a
    # millisecond more for todod's whole-millisecond clock).  No polling:
    # each ping of a live session would count as use.
    time.sleep(max(0.0, answered + SESSION_TIMEOUT_S + 0.01 - time.monotonic()))
    assert in_session(t, sid, request("ping")).status == 404


# ---- HTTP-level refusals -----------------------------------------------------

def test_bad_origin_is_403(mcp):
    resp = post(mcp, initialize_msg(), headers={"Origin": "https://evil.example"})
    assert resp.status == 403, resp
    assert post(mcp, initialize_msg(), headers={"Origin": ALLOWED_ORIGIN}).status == 200


@pytest.mark.parametrize("token", ["", "not-a-real-token"])
def test_missing_or_bad_token_is_401_with_bearer_challenge(mcp, token):
    resp = post(mcp, initialize_msg(), token=token)
    assert resp.status == 401, resp
    assert resp.headers.get("WWW-Authenticate") == 'Bearer realm="todod"', resp.headers
    assert resp.headers.get("Content-Type", "").startswith("application/json")
    assert token not in resp.text or not token


def test_token_in_query_string_is_not_accepted(mcp):
    tok = mcp.tokens["alice"]
    resp = mcp.request("POST", f"/mcp?access_token={tok}", body=json.dumps(initialize_msg()).encode(),
                       headers={"Accept": ACCEPT, "Content-Type": "application/json"})
    assert resp.status == 401, resp


def test_oversized_body_is_413(mcp):
    sid = open_session(mcp)
    big = request("tools/call", {"name": "add_task",
                                 "arguments": {"title": "x", "description": "d" * 100_000}})
    assert in_session(mcp, sid, big).status == 413
    assert in_session(mcp, sid, request("ping")).status == 200


def test_get_is_405(mcp):
    sid = open_session(mcp)
    resp = mcp.request("GET", "/mcp", headers={"Accept": "text/event-stream",
                                                "Authorization": f"Bearer {mcp.tokens['alice']}",
                                                "MCP-Session-Id": sid})
    assert resp.status == 405, resp


def test_oauth_discovery_is_a_json_404(mcp):
    resp = mcp.get("/.well-known/oauth-protected-resource")
    assert resp.status == 404, resp
    assert resp.headers.get("Content-Type", "").startswith("application/json")
    resp.json()


def test_notification_is_202_without_body(mcp):
    sid = open_session(mcp)
    resp = in_session(mcp, sid, {"jsonrpc": "2.0", "method": "notifications/cancelled",
                                 "params": {"requestId": 99}})
    assert resp.status == 202 and resp.body == b"", resp


# ---- auth = none ---------------------------------------------------------------

def test_auth_none_serves_the_default_user(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database,
                            options={"auth": "none", "default_user": "alice"})
    report = mcp_sdk.http_session(t.mcp_url, "", [
        {"call": "add_task", "args": {"title": "no token needed"}}])
    assert report["steps"][0]["isError"] is False, report
    assert query(database, "SELECT u.name FROM tasks t JOIN users u ON u.id = t.user_id") == \
        [("alice",)]

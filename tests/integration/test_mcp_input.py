"""Bad input through MCP gets a clear answer and leaves nothing behind
(issue 9 section 5).

Where the mistake lies decides the answer:
- a body that is not JSON (invalid UTF-8, NaN/Infinity) is a JSON-RPC
  -32700 Parse error; valid JSON that is no message (a bare 42) is -32600;
- a well-formed message whose tool argument cannot be kept (a string with
  \\u0000, a time outside 0001-9999, a recurrence that could never recur)
  is a tool result with isError and the code and field to fix.
None of them is INTERNAL_ERROR, and none puts an error-level line in the
daemon's log: a client's mistake must not flood it."""

import json
import subprocess

import pytest

from harness import mcp_sdk, query, scalar
from harness.todod import sanitizer_env
from test_mcp_http import answer, in_session, open_session, post, request, rpc_error


@pytest.fixture
def mcp(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database)
    t.db = database
    return t


def raw_call(tool, arguments, rid=1):
    """A tools/call body whose arguments are sent as given, byte for byte."""
    if isinstance(arguments, str):
        arguments = arguments.encode()
    head = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": tool, "arguments": {}}}).encode()
    return head.replace(b'"arguments": {}', b'"arguments": ' + arguments)


def tool_error(resp):
    """{code, field, message} of a tools/call answered with isError."""
    assert resp.status == 200, resp
    result = answer(resp)["result"]
    assert result.get("isError") is True, result
    return json.loads(result["content"][0]["text"])["error"]


def no_error_logged(t):
    errors = [line for line in t.log().splitlines() if " [error] " in line]
    assert not errors, errors


def tasks_stored(t):
    return scalar(t.db, "SELECT count(*) FROM tasks")


# ---- not JSON: -32700 --------------------------------------------------------

@pytest.mark.parametrize("arguments", [b'{"title":"\xff\xfe"}', b'{"title":"caf\xc3"}'],
                         ids=["ff-fe", "truncated-sequence"])
def test_invalid_utf8_is_a_parse_error(mcp, arguments):
    sid = open_session(mcp)
    body = raw_call("add_task", arguments)
    err = rpc_error(in_session(mcp, sid, body), 400, -32700)
    assert "UTF-8" in err["error"]["message"], err
    assert err["id"] is None
    assert tasks_stored(mcp) == 0
    no_error_logged(mcp)


# json-c 0.16 takes both of these even in strict mode; RFC 8259 does not.
# A second "id" in single quotes once made the reply echo the first id
# while todod had read the second (found by fuzz_mcp_json).
@pytest.mark.parametrize("arguments, reason", [
    (b"{'title':\"x\"}", "a string must be in double quotes"),
    (b'{"title":"a\x01b"}', "a control character in a string must be escaped"),
], ids=["single-quoted-name", "raw-control-character"])
def test_what_json_c_forgives_is_a_parse_error(mcp, arguments, reason):
    sid = open_session(mcp)
    body = raw_call("add_task", arguments)
    err = rpc_error(in_session(mcp, sid, body), 400, -32700)
    assert reason in err["error"]["message"], err
    assert err["id"] is None
    assert tasks_stored(mcp) == 0
    no_error_logged(mcp)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_a_parse_error(mcp, literal):
    sid = open_session(mcp)
    body = raw_call("add_task", '{"title":"x","remind_before_min":%s}' % literal)
    err = rpc_error(in_session(mcp, sid, body), 400, -32700)
    assert "NaN and Infinity are not JSON numbers" in err["error"]["message"], err
    assert tasks_stored(mcp) == 0
    no_error_logged(mcp)


def test_a_huge_number_is_json_and_the_store_names_the_field(mcp):
    sid = open_session(mcp)
    body = raw_call("add_task", '{"title":"x","remind_before_min":1e999}')
    err = tool_error(in_session(mcp, sid, body))
    assert err["field"] == "remind_before_min", err
    assert tasks_stored(mcp) == 0
    no_error_logged(mcp)


# ---- JSON but no message: -32600 ---------------------------------------------

@pytest.mark.parametrize("body", [b"42", b"42\n", b'"ping"', b"true", b"null"])
def test_a_bare_value_is_an_invalid_request(mcp, body):
    sid = open_session(mcp)
    rpc_error(in_session(mcp, sid, body), 400, -32600)
    no_error_logged(mcp)


# ---- ids are echoed as sent ---------------------------------------------------

@pytest.mark.parametrize("rid", ["99999999999999999999", "-99999999999999999999",
                                 "18446744073709551616", "-9223372036854775809",
                                 "9223372036854775807", "-0"])
def test_an_id_is_echoed_exactly(mcp, rid):
    sid = open_session(mcp)
    resp = in_session(mcp, sid, b'{"jsonrpc":"2.0","id":%s,"method":"ping"}' % rid.encode())
    assert resp.status == 200, resp
    assert b'"id":' + rid.encode() + b"," in resp.body, resp.body


# ---- storable arguments only: isError INVALID_ARGUMENT --------------------------

@pytest.mark.parametrize("tool,arguments,field", [
    ("add_task", '{"title":"a\\u0000b"}', "title"),
    ("add_task", '{"title":"x","description":"\\u0000"}', "description"),
    ("add_task", '{"title":"x","tags":["ok","b\\u0000d"]}', "tags"),
    ("search_tasks", '{"query":"x\\u0000"}', "query"),
])
def test_a_nul_character_is_invalid_argument(mcp, tool, arguments, field):
    sid = open_session(mcp)
    err = tool_error(in_session(mcp, sid, raw_call(tool, arguments)))
    assert (err["code"], err["field"]) == ("INVALID_ARGUMENT", field), err
    assert "NUL" in err["message"], err
    assert tasks_stored(mcp) == 0
    no_error_logged(mcp)


def test_a_nul_character_in_an_update_changes_nothing(mcp):
    sid = open_session(mcp)
    made = in_session(mcp, sid, raw_call("add_task", '{"title":"keep me"}'))
    task_id = answer(made)["result"]["structuredContent"]["task"]["id"]
    update = raw_call("update_task", '{"task_id":%d,"title":"x\\u0000y"}' % task_id, rid=2)
    err = tool_error(in_session(mcp, sid, update))
    assert (err["code"], err["field"]) == ("INVALID_ARGUMENT", "title"), err
    assert query(mcp.db, "SELECT title FROM tasks") == [("keep me",)]
    no_error_logged(mcp)


# ---- times: only instants that come back as they went in ------------------------

@pytest.mark.parametrize("due_at", ["2026-12-05T10:00+99:99", "2026-12-05T10:00-24:00",
                                    "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+01:00",
                                    "2026-02-30T10:00Z"])
def test_a_time_that_cannot_round_trip_is_invalid_due_date(mcp, due_at):
    sid = open_session(mcp)
    body = raw_call("add_task", json.dumps({"title": "x", "due_at": due_at}))
    err = tool_error(in_session(mcp, sid, body))
    assert (err["code"], err["field"]) == ("INVALID_DUE_DATE", "due_at"), err
    assert due_at in err["message"], err
    assert tasks_stored(mcp) == 0
    no_error_logged(mcp)


def test_a_filter_time_that_cannot_round_trip_names_the_filter(mcp):
    sid = open_session(mcp)
    body = raw_call("list_tasks", '{"due_before":"2026-12-05T10:00+99:99"}')
    err = tool_error(in_session(mcp, sid, body))
    assert (err["code"], err["field"]) == ("INVALID_DUE_DATE", "due_before"), err
    no_error_logged(mcp)


def test_the_last_and_first_instants_round_trip(mcp):
    sid = open_session(mcp)
    for rid, due_at in enumerate(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"], start=1):
        made = in_session(mcp, sid, raw_call("add_task", json.dumps({"title": due_at,
                                                                      "due_at": due_at}), rid))
        stored = answer(made)["result"]["structuredContent"]["task"]
        assert stored["due_at"] == due_at, stored
        again = raw_call("update_task", json.dumps({"task_id": stored["id"],
                                                    "due_at": stored["due_at"]}), rid + 10)
        result = answer(in_session(mcp, sid, again))["result"]
        assert not result.get("isError"), result
        assert result["structuredContent"]["task"]["due_at"] == due_at
    no_error_logged(mcp)


# ---- recurrence rules that could never recur ------------------------------------

@pytest.mark.parametrize("rrule,says", [
    ("FREQ=DAILY;INTERVAL=2147483647", "INTERVAL is at most 36525"),
    ("FREQ=YEARLY;INTERVAL=100000", "INTERVAL is at most 100"),
    ("FREQ=MONTHLY;BYMONTHDAY=1;BYDAY=-1MO", "BYDAY and BYMONTHDAY never happen on the same date"),
])
def test_a_rule_that_could_never_recur_is_refused_at_creation(mcp, rrule, says):
    sid = open_session(mcp)
    body = raw_call("add_task", json.dumps({"title": "x", "due_at": "2026-12-05T10:00Z",
                                            "rrule": rrule}))
    err = tool_error(in_session(mcp, sid, body))
    assert (err["code"], err["field"]) == ("INVALID_RECURRENCE_RULE", "rrule"), err
    assert says in err["message"], err
    assert tasks_stored(mcp) == 0
    no_error_logged(mcp)


def test_the_largest_interval_is_accepted(mcp):
    sid = open_session(mcp)
    body = raw_call("add_task", json.dumps({"title": "x", "due_at": "2026-12-05T10:00Z",
                                            "rrule": "FREQ=YEARLY;INTERVAL=100"}))
    result = answer(in_session(mcp, sid, body))["result"]
    assert result["structuredContent"]["task"]["rrule"] == "FREQ=YEARLY;INTERVAL=100", result


# ---- the stdio transport reads the same way --------------------------------------

def test_stdio_reads_as_strictly(todod_factory, database):
    t = mcp_sdk.start_todod(todod_factory, database, start=False)
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}}
    lines = [json.dumps(init).encode(),
             b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
             raw_call("add_task", b'{"title":"\xff"}', rid=2),
             raw_call("add_task", '{"title":"x","remind_before_min":NaN}', rid=3),
             b"42",
             b'{"jsonrpc":"2.0","id":99999999999999999999,"method":"ping"}',
             raw_call("add_task", '{"title":"a\\u0000"}', rid=5)]
    proc = subprocess.run([t.binary, "mcp-stdio", "--user", "alice", "-c", t.config_path],
                          input=b"\n".join(lines) + b"\n", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60, env=sanitizer_env())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    msgs = [json.loads(line) for line in out]
    codes = [m.get("error", {}).get("code") for m in msgs]
    assert codes[1:4] == [-32700, -32700, -32600], msgs
    assert b'"id":99999999999999999999,' in out[4], out[4]
    assert json.loads(msgs[5]["result"]["content"][0]["text"])["error"]["field"] == "title"
    assert scalar(database, "SELECT count(*) FROM tasks") == 0
    assert b" [error] " not in proc.stderr, proc.stderr

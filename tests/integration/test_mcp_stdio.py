"""`todod mcp-stdio --user NAME -c FILE`: MCP over stdin/stdout for a
desktop client that starts todod itself."""

import json
import subprocess

import pytest

from harness import mcp_sdk, query
from harness.mcp_sdk import TOOL_NAMES, call, ok, task, tool_error
from harness.todod import sanitizer_env

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.fixture
def configured(todod_factory, database):
    """Migrated, with users alice and bob; no daemon running."""
    return mcp_sdk.start_todod(todod_factory, database, start=False)


def test_sdk_stdio_client_lists_tools_and_calls_one(configured):
    t = configured
    report = mcp_sdk.stdio_session(t.binary, t.config_path, "alice", [
        {"list_tools": True},
        call("add_task", title="from the desktop"),
        call("get_task", task_id=987654321),
    ])
    assert not any(m in report["client_stderr"] for m in SANITIZER_MARKS), report["client_stderr"]
    assert report["protocol_version"] == "2025-11-25"
    assert report["server_info"]["name"] == "todod"
    listing, added, missing = report["steps"]
    assert sorted(x["name"] for x in listing["tools"]) == sorted(TOOL_NAMES)
    created = task(ok(added))
    assert tool_error(missing)["code"] == "TASK_NOT_FOUND"
    assert query(t.core["database"], "SELECT user_id, title FROM tasks") == \
        [(t.user_ids["alice"], "from the desktop")]
    assert created["title"] == "from the desktop"


def test_stdout_carries_only_json_rpc(configured):
    t = configured
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "add_task", "arguments": {"title": "raw stdio"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "ping"},
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in lines) + "this is not json\n"
    proc = subprocess.run([t.binary, "mcp-stdio", "--user", "bob", "-c", t.config_path],
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, env=sanitizer_env())
    assert not any(m in proc.stderr for m in SANITIZER_MARKS), proc.stderr
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    msgs = [json.loads(line) for line in out]  # every line is one JSON message
    assert all(m.get("jsonrpc") == "2.0" for m in msgs), out
    by_id = {m.get("id"): m for m in msgs}
    assert set(by_id) == {1, 2, 3, 4, None}, out  # None: the parse error for the last line
    assert by_id[None]["error"]["code"] == -32700
    assert by_id[1]["result"]["protocolVersion"] == "2025-11-25"
    assert by_id[2]["result"]["tools"]
    assert by_id[3]["result"].get("isError", False) is False, by_id[3]
    assert by_id[4]["result"] == {}
    assert query(t.core["database"], "SELECT user_id FROM tasks") == [(t.user_ids["bob"],)]


def test_unknown_user_is_refused_before_any_output(configured):
    t = configured
    proc = subprocess.run([t.binary, "mcp-stdio", "--user", "nobody", "-c", t.config_path],
                          input="", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, env=sanitizer_env())
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "nobody" in proc.stderr

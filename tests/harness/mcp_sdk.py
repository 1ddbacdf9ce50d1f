"""MCP's official Python client SDK (PyPI `mcp`), in a virtualenv of its own.

pytest stays on Debian's /usr/bin/python3; the SDK and its dependencies
(httpx, pydantic, anyio, ...) live in a cached venv at
${XDG_CACHE_HOME:-~/.cache}/todod-tests/venv-mcp, and the client programs
in tests/integration/mcp_client run there as subprocesses.

The pin: `mcp` 1.30.0 is the newest release of the 1.x line, whose client
speaks the stateful Streamable HTTP revisions (LATEST_PROTOCOL_VERSION
2025-11-25, initialize + MCP-Session-Id).  The 2.x line probes the
stateless 2026-07-28 revision first (server/discover), which todod does
not implement.
"""

import contextlib
import json
import os
import subprocess
import sys

from .pg import scalar
from .venv import PinnedVenv

MCP_VERSION = "1.30.0"

# What tools/list must show.
TOOL_NAMES = frozenset({
    "add_task", "get_task", "list_tasks", "search_tasks", "update_task", "complete_task",
    "delete_task", "set_reminder", "add_tag_to_task", "remove_tag_from_task",
    "create_category", "list_categories", "update_category", "delete_category",
    "create_tag", "list_tags", "update_tag", "delete_tag",
})


_SDK = PinnedVenv("venv-mcp", "mcp", MCP_VERSION)


def ensure():
    """The SDK venv's python, built once."""
    return _SDK.ensure()


def run_client(script, *args, stdin=None, env=None, timeout=120):
    """Run a client program in the SDK venv, with `stdin` (JSON-encoded)
    as its input; it prints one JSON document on stdout, which is returned.  A non-zero exit is an AssertionError
    that shows what the program said."""
    python = ensure()
    full_env = dict(os.environ)
    full_env.pop("PYTHONPATH", None)
    full_env.update(env or {})
    res = subprocess.run([python, script, *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=timeout, env=full_env,
                         input=json.dumps(stdin) if stdin is not None else "")
    if res.returncode != 0:
        raise AssertionError(f"{os.path.basename(script)} exited {res.returncode}\n"
                             f"stdout:\n{res.stdout[-4000:]}\nstderr:\n{res.stderr[-6000:]}")
    try:
        report = json.loads(res.stdout)
    except ValueError as exc:
        raise AssertionError(f"{os.path.basename(script)} printed no JSON: {exc}\n"
                             f"stdout:\n{res.stdout[-4000:]}\nstderr:\n{res.stderr[-4000:]}") from exc
    if isinstance(report, dict):
        report["client_stderr"] = res.stderr
    return report


CLIENT_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "integration",
                                          "mcp_client"))


def http_session(url, token, steps):
    """One SDK session over Streamable HTTP performing `steps` (see
    mcp_client/session.py); returns its report."""
    return run_client(os.path.join(CLIENT_DIR, "session.py"), "http", url, token or "", stdin=steps)


def stdio_session(todod_binary, config, user, steps):
    """The same through `todod mcp-stdio --user USER -c CONFIG`."""
    return run_client(os.path.join(CLIENT_DIR, "session.py"), "stdio", todod_binary, config, user,
                      stdin=steps)


def start_todod(todod_factory, database, options=None, core=None, users=("alice", "bob"),
                start=True):
    """A (running, unless start=False) todod with mcp-tools (token auth unless `options` say
    otherwise) and the given users; `t.tokens` maps each name to its API
    token and `t.user_ids` to its id."""
    opts = {"auth": "token"}
    opts.update(options or {})
    t = todod_factory(database, plugins={"mcp-tools": opts}, core=core)
    t.user_ids, t.tokens = {}, {}
    for i, name in enumerate(users):
        if i == 0:
            uid, token = t.provision(name)
        else:
            token = t.add_user(name)
            uid = scalar(database, "SELECT id FROM users WHERE name = %s", name)
        t.user_ids[name], t.tokens[name] = uid, token
    t.mcp_url = t.url("/mcp")
    return t.start() if start else t


# ---- reading a session's report -------------------------------------------------

def ok(step):
    """The structured result of a successful call."""
    assert step.get("isError") is False, step
    assert isinstance(step.get("structuredContent"), dict), step
    # Clients without structured output read the same JSON as text.
    texts = [c["text"] for c in step["content"] if c["type"] == "text"]
    assert texts and json.loads(texts[0]) == step["structuredContent"], step
    return step["structuredContent"]


def tool_error(step):
    """{code, field, message} of a business error, which must be a tool
    result with isError (not a JSON-RPC error) so a model can correct it."""
    assert step.get("isError") is True, step
    texts = [c["text"] for c in step["content"] if c["type"] == "text"]
    assert texts and texts[0], step
    sc = step.get("structuredContent") or {}
    err = sc.get("error", sc) if sc else json.loads(texts[0]).get("error")
    assert isinstance(err, dict) and err.get("code") and err.get("message"), step
    return err


def task(result):
    """The task snapshot in a task tool's result."""
    return result["task"] if isinstance(result.get("task"), dict) else result


def call(tool, save=None, /, **args):
    """A tools/call step; `save` names its result for ref()."""
    step = {"call": tool, "args": args}
    if save:
        step["save"] = save
    return step


def ref(name, *path):
    """A placeholder for part of the structured result saved as `name`."""
    return "${" + ".".join([name, "structuredContent", *path]) + "}"


if __name__ == "__main__":
    # `python3 -m harness.mcp_sdk` (from tests/) prepares the venv ahead of a run.
    with contextlib.suppress(BrokenPipeError):
        print(ensure())
    sys.exit(0)

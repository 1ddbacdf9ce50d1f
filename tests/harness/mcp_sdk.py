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
import fcntl
import json
import os
import subprocess
import sys

from .pg import scalar
from .util import ServiceUnavailable

MCP_VERSION = "1.30.0"
BASE_PYTHON = "/usr/bin/python3"

_ready = None

# What tools/list must show.
TOOL_NAMES = frozenset({
    "add_task", "get_task", "list_tasks", "search_tasks", "update_task", "complete_task",
    "delete_task", "set_reminder", "add_tag_to_task", "remove_tag_from_task",
    "create_category", "list_categories", "update_category", "delete_category",
    "create_tag", "list_tags", "update_tag", "delete_tag",
})


def venv_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "todod-tests", "venv-mcp")


def venv_python():
    return os.path.join(venv_dir(), "bin", "python")


def _installed_version(python):
    if not os.access(python, os.X_OK):
        return None
    res = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('mcp'))"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def _run(argv, what):
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise ServiceUnavailable(f"{what} failed ({res.returncode}): {' '.join(argv)}\n"
                                 f"{res.stdout[-3000:]}")


def ensure():
    """Create the venv and install the pinned SDK unless that was done;
    returns the venv's python.  Raises ServiceUnavailable (a failure when
    CI=true, through conftest) when it cannot be had."""
    global _ready
    if _ready:
        return _ready
    python = venv_python()
    if _installed_version(python) != MCP_VERSION:
        os.makedirs(os.path.dirname(venv_dir()), exist_ok=True)
        # Concurrent test runs (xdist, two checkouts) must not build one
        # venv at the same time.
        with open(venv_dir() + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _installed_version(python) != MCP_VERSION:
                _build(python)
    _ready = python
    return python


def _build(python):
    probe = subprocess.run([BASE_PYTHON, "-c", "import venv, ensurepip"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if probe.returncode != 0:
        raise ServiceUnavailable("python3 cannot create virtualenvs: install Debian's python3-venv "
                                 "(contrib/install-deps.sh test)")
    if not os.path.exists(python):
        _run([BASE_PYTHON, "-m", "venv", "--clear", venv_dir()], "creating the SDK virtualenv")
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
          f"mcp=={MCP_VERSION}"], f"pip install mcp=={MCP_VERSION}")
    got = _installed_version(python)
    if got != MCP_VERSION:
        raise ServiceUnavailable(f"the SDK venv has mcp {got}, expected {MCP_VERSION}")


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

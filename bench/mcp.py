"""Benchmark mcp-tools against a throwaway PostgreSQL and a fresh todod.

Started by bench/mcp.sh.  50 keep-alive clients on loopback (wrk), one run
each: ping, tools/call get_task (and the same row read by pgbench alone,
prepared), tools/call add_task (and the same rows written by pgbench
alone), and whole sessions (initialize, notifications/initialized, one
tools/call, DELETE).  pgbench runs with as many clients, right after the
todod figure it is the limit of, so both see the same machine.  todod's resident
memory is sampled during every run.  Prints each figure with the exact
command and ends in a summary with the targets.
"""

import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from harness import PostgresServer, Todod, builddir  # noqa: E402
from summary import print_checks, sanitized  # noqa: E402

DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "50"))
THREADS = 2
ACCEPT = "application/json, text/event-stream"


class RssSampler:
    """The highest VmRSS of a process while the `with` block runs."""

    def __init__(self, todod):
        self.todod, self.peak_kib, self._stop = todod, 0, threading.Event()

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak_kib = max(self.peak_kib, self.todod.vmrss_kib() or 0)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def mcp_post(t, token, body, session=None):
    headers = {"Accept": ACCEPT, "Content-Type": "application/json",
               "Authorization": f"Bearer {token}"}
    if session:
        headers.update({"MCP-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    resp = t.post("/mcp", body, headers=headers)
    if resp.status not in (200, 202):
        sys.exit(f"setup: POST /mcp {body.get('method')} answered {resp.status}: {resp.text}")
    return resp


def open_session(t, token):
    resp = mcp_post(t, token, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                               "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                          "clientInfo": {"name": "bench", "version": "1"}}})
    sid = {k.lower(): v for k, v in resp.headers.items()}.get("mcp-session-id")
    if not sid:
        sys.exit(f"setup: initialize gave no session id: {resp.headers}")
    mcp_post(t, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    return sid


def wrk(t, script, env, threads=THREADS):
    cmd = ["wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "-s",
           os.path.join(HERE, script), t.url("/mcp")]
    # The token is a secret even here: the command shows where it comes from.
    shown = " ".join(f"{k}=<the bench user's token>" if k == "MCP_TOKEN" else f"{k}='{v}'"
                     for k, v in env.items()) + " " + " ".join(cmd)
    with RssSampler(t) as rss:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, **env})
    line = next((x for x in res.stdout.splitlines() if x.startswith("mcp: ")), None)
    if res.returncode != 0 or not line:
        sys.exit(f"wrk failed ({res.returncode}):\n{res.stdout}")
    fig = {k: float(v) for k, v in (kv.split("=") for kv in line[5:].split())}
    fig["rps"] = fig["requests"] / fig["seconds"]
    fig["rss_peak_kib"] = rss.peak_kib
    fig["command"] = shown
    return fig


def pgbench(pg, script, mode, **variables):
    """PostgreSQL alone running `script` with pgbench's query `mode`:
    transactions per second and the command."""
    defines = [arg for k, v in variables.items() for arg in ("-D", f"{k}={v}")]
    cmd = ["pgbench", "-n", "-M", mode, f"-c{CONNECTIONS}", f"-j{THREADS}",
           f"-T{DURATION}", *defines, "-f", os.path.join(HERE, script), pg.uri("todod")]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tps = next((float(x.split()[2]) for x in res.stdout.splitlines() if x.startswith("tps = ")),
               None)
    if res.returncode != 0 or tps is None:
        sys.exit(f"pgbench failed:\n{res.stdout}")
    return tps, " ".join(cmd)


def report(name, fig, unit="req/s", rate=None):
    rate = fig["rps"] if rate is None else rate
    print(f"{name}: {rate:,.0f} {unit}  p50 {fig['p50']:.2f} ms  p95 {fig['p95']:.2f} ms  "
          f"p99 {fig['p99']:.2f} ms  failures {int(fig['failures'])}  "
          f"socket errors {int(fig['errors'])}  peak VmRSS {fig['rss_peak_kib']} KiB", flush=True)
    print(f"  command: {fig['command']}", flush=True)


def main():
    with PostgresServer() as pg:
        pg.create_database("todod")
        t = Todod(pg.uri("todod"), plugins={"mcp-tools": {"auth": "token"}},
                  core={"log_level": "warn", "db_pool_size": os.environ.get("DB_POOL_SIZE", "4")})
        try:
            uid, token = t.provision("bench")
            t.start()
            warn = sanitized(t.pid)
            sessions = ",".join(open_session(t, token) for _ in range(THREADS))
            first = sessions.split(",")[0]
            added = mcp_post(t, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                        "params": {"name": "add_task",
                                                   "arguments": {"title": "bench target"}}},
                             first).json()
            task_id = added["result"]["structuredContent"]["task"]["id"]
            time.sleep(0.5)
            rss_idle = t.vmrss_kib()
            print(f"todod pid {t.pid}, {t.url('/mcp')}, PostgreSQL on port {pg.port}, "
                  f"build {builddir()}, {os.cpu_count()} cores", flush=True)

            base = {"MCP_TOKEN": token, "MCP_SESSIONS": sessions}
            ping = wrk(t, "mcp_call.lua", {**base, "MCP_METHOD": "ping"})
            report("ping", ping)
            get_params = json.dumps({"name": "get_task", "arguments": {"task_id": task_id}})
            get = wrk(t, "mcp_call.lua", {**base, "MCP_METHOD": "tools/call",
                                          "MCP_PARAMS": get_params})
            report("tools/call get_task", get)
            sel_tps, sel_cmd = pgbench(pg, "task_get.sql", "prepared", uid=uid, id=task_id)
            print(f"same row via pgbench: {sel_tps:,.0f} tx/s  (get_task / pgbench "
                  f"{get['rps'] / sel_tps:.2f})\n  command: {sel_cmd}", flush=True)
            add_params = json.dumps({"name": "add_task",
                                     "arguments": {"title": "bench", "priority": "medium"}})
            add = wrk(t, "mcp_call.lua", {**base, "MCP_METHOD": "tools/call",
                                          "MCP_PARAMS": add_params})
            report("tools/call add_task", add)
            pg_tps, pg_cmd = pgbench(pg, "task_create.sql", "simple", uid=uid)
            print(f"same rows via pgbench: {pg_tps:,.0f} tx/s  (add_task / pgbench "
                  f"{add['rps'] / pg_tps:.2f})\n  command: {pg_cmd}", flush=True)
            loop = wrk(t, "mcp_session.lua",
                       {"MCP_TOKEN": token, "MCP_TOOL": "get_task",
                        "MCP_ARGS": json.dumps({"task_id": task_id})}, threads=CONNECTIONS)
            per_s = loop["sessions"] / loop["seconds"]
            report("full sessions", loop, "sessions/s", per_s)
            rss_end = t.vmrss_kib()
            with open(f"/proc/{t.pid}/status") as f:
                hwm = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
        finally:
            t.close()

    rss_peak = max(ping["rss_peak_kib"], get["rss_peak_kib"], add["rss_peak_kib"],
                   loop["rss_peak_kib"], hwm)
    ratio = add["rps"] / pg_tps if pg_tps else 0.0
    get_ratio = get["rps"] / sel_tps if sel_tps else 0.0
    checks = [
        ("ping >= 10,000 req/s", ping["rps"] >= 10_000, f"{ping['rps']:,.0f}"),
        ("get_task >= 0.5 x pgbench", get_ratio >= 0.5,
         f"{get_ratio:.2f} ({get['rps']:,.0f} / {sel_tps:,.0f})"),
        ("get_task p99 < 10 ms", get["p99"] < 10, f"{get['p99']:.2f} ms"),
        ("full sessions >= 5,000/s", per_s >= 5_000, f"{per_s:,.0f}"),
        ("add_task >= 0.8 x pgbench", ratio >= 0.8,
         f"{ratio:.2f} ({add['rps']:,.0f} / {pg_tps:,.0f})"),
        ("VmRSS < 32 MB", rss_peak < 32 * 1024, f"{rss_peak} KiB peak"),
        ("no failures", not any(f["failures"] or f["errors"] for f in (ping, get, add, loop)),
         ", ".join(str(int(f["failures"] + f["errors"])) for f in (ping, get, add, loop))),
    ]
    print_checks("mcp-tools", checks, warn)
    print(f"memory (VmRSS): idle {rss_idle} KiB, end {rss_end} KiB, peak {rss_peak} KiB")
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/mcp.sh   "
          f"(DURATION, CONNECTIONS, DB_POOL_SIZE to vary)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import glob
import resource
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from harness import PostgresServer, Todod, builddir  # noqa: E402
from summary import print_checks, sanitized  # noqa: E402

DURATION = int(os.environ.get("DURATION", "10"))
# PG_DURABLE=1: PostgreSQL with fsync and synchronous commits, as deployed.
DURABLE = os.environ.get("PG_DURABLE", "") not in ("", "0")
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


def cpu_seconds(pid, reaped=False):
    """User + system CPU of a process (and of its waited-for children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = sum(int(x) for x in fields[11:15 if reaped else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_now(t, pg):
    """CPU seconds so far of todod, of the PostgreSQL cluster (the
    postmaster, its live backends, and those gone) and of the load
    generators this script ran.  On a shared machine throughput moves
    with the neighbours' load; CPU per call does not."""
    backends = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    postgres = cpu_seconds(pg.proc.pid, reaped=True)
    for pid in backends:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pg.proc.pid:
                    postgres += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"todod": cpu_seconds(t.pid), "PostgreSQL": postgres,
            "client": ru.ru_utime + ru.ru_stime}


def cpu_per_call(before, after, calls, client, serving=("todod", "PostgreSQL")):
    """CPU microseconds per call of the `serving` processes and the load
    generator `client`, and the same as text."""
    used = {k: (after[k] - before[k]) / calls * 1e6 for k in serving}
    used[client] = (after["client"] - before["client"]) / calls * 1e6
    shown = ", ".join(f"{k} {v:.0f}" for k, v in used.items())
    return used, f"CPU per call (us): {shown}; total {sum(used.values()):.0f}"


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


def wrk(t, pg, script, env, threads=THREADS):
    cmd = ["wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "-s",
           os.path.join(HERE, script), t.url("/mcp")]
    # The token is a secret even here: the command shows where it comes from.
    shown = " ".join(f"{k}=<the bench user's token>" if k == "MCP_TOKEN" else f"{k}='{v}'"
                     for k, v in env.items()) + " " + " ".join(cmd)
    before = cpu_now(t, pg)
    with RssSampler(t) as rss:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, **env})
    after = cpu_now(t, pg)
    line = next((x for x in res.stdout.splitlines() if x.startswith("mcp: ")), None)
    if res.returncode != 0 or not line:
        sys.exit(f"wrk failed ({res.returncode}):\n{res.stdout}")
    fig = {k: float(v) for k, v in (kv.split("=") for kv in line[5:].split())}
    fig["rps"] = fig["requests"] / fig["seconds"]
    fig["cpu"], fig["cpu_text"] = cpu_per_call(before, after, fig["requests"], "wrk")
    fig["rss_peak_kib"] = rss.peak_kib
    fig["command"] = shown
    return fig


def pgbench(t, pg, script, mode, **variables):
    """PostgreSQL alone running `script` with pgbench's query `mode`:
    transactions per second, the 99th percentile latency in ms (from
    pgbench's per-transaction log), CPU per transaction and the command."""
    defines = [arg for k, v in variables.items() for arg in ("-D", f"{k}={v}")]
    with tempfile.TemporaryDirectory(prefix="todod-pgbench-") as logs:
        cmd = ["pgbench", "-n", "-M", mode, f"-c{CONNECTIONS}", f"-j{THREADS}",
               f"-T{DURATION}", "-l", f"--log-prefix={logs}/tx", *defines,
               "-f", os.path.join(HERE, script), pg.uri("todod")]
        before = cpu_now(t, pg)
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        after = cpu_now(t, pg)
        # The third column of each line is the transaction's latency in us.
        latencies = sorted(int(line.split()[2]) for log in glob.glob(f"{logs}/tx*")
                           for line in open(log))
    tps = next((float(x.split()[2]) for x in res.stdout.splitlines() if x.startswith("tps = ")),
               None)
    if res.returncode != 0 or tps is None or not latencies:
        sys.exit(f"pgbench failed:\n{res.stdout}")
    p99_ms = latencies[len(latencies) * 99 // 100] / 1000
    cpu, cpu_text = cpu_per_call(before, after, len(latencies), "pgbench", ("PostgreSQL",))
    return {"tps": tps, "p99": p99_ms, "cpu": cpu, "cpu_text": cpu_text, "command": " ".join(cmd)}


def report(name, fig, unit="req/s", rate=None):
    rate = fig["rps"] if rate is None else rate
    print(f"{name}: {rate:,.0f} {unit}  p50 {fig['p50']:.2f} ms  p95 {fig['p95']:.2f} ms  "
          f"p99 {fig['p99']:.2f} ms  failures {int(fig['failures'])}  "
          f"socket errors {int(fig['errors'])}  peak VmRSS {fig['rss_peak_kib']} KiB", flush=True)
    print(f"  {fig['cpu_text']}\n  command: {fig['command']}", flush=True)


def report_pgbench(name, bench, fig, versus):
    """pgbench's figures, and `fig`'s throughput and CPU against them."""
    cpu_ratio = sum(bench["cpu"].values()) / sum(fig["cpu"].values())
    print(f"{name}: {bench['tps']:,.0f} tx/s  p99 {bench['p99']:.2f} ms  ({versus} / pgbench: "
          f"{fig['rps'] / bench['tps']:.2f} by throughput, {cpu_ratio:.2f} by CPU per call)\n"
          f"  {bench['cpu_text']}\n  command: {bench['command']}", flush=True)


def main():
    with PostgresServer(durable=DURABLE) as pg:
        pg.create_database("todod")
        t = Todod(pg.uri("todod"), plugins={"mcp-tools": {"auth": "token"}},
                  core={"log_level": "warn",
                        # unset: the build's own default
                        **({"db_pool_size": os.environ["DB_POOL_SIZE"]}
                           if os.environ.get("DB_POOL_SIZE") else {})})
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
                  f"build {builddir()}, {os.cpu_count()} cores, PostgreSQL fsync "
                  f"{'on' if DURABLE else 'off'}, todod db_pool_size "
                  f"{os.environ.get('DB_POOL_SIZE') or 'default'}", flush=True)

            base = {"MCP_TOKEN": token, "MCP_SESSIONS": sessions}
            ping = wrk(t, pg, "mcp_call.lua", {**base, "MCP_METHOD": "ping"})
            report("ping", ping)
            get_params = json.dumps({"name": "get_task", "arguments": {"task_id": task_id}})
            get = wrk(t, pg, "mcp_call.lua", {**base, "MCP_METHOD": "tools/call",
                                          "MCP_PARAMS": get_params})
            report("tools/call get_task", get)
            sel = pgbench(t, pg, "task_get.sql", "prepared", uid=uid, id=task_id)
            report_pgbench("same row via pgbench", sel, get, "get_task")
            add_params = json.dumps({"name": "add_task",
                                     "arguments": {"title": "bench", "priority": "medium"}})
            add = wrk(t, pg, "mcp_call.lua", {**base, "MCP_METHOD": "tools/call",
                                          "MCP_PARAMS": add_params})
            report("tools/call add_task", add)
            ins = pgbench(t, pg, "task_create.sql", "simple", uid=uid)
            report_pgbench("same rows via pgbench", ins, add, "add_task")
            loop = wrk(t, pg, "mcp_session.lua",
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
    ratio = add["rps"] / ins["tps"]
    get_ratio = get["rps"] / sel["tps"]
    checks = [
        ("ping >= 10,000 req/s", ping["rps"] >= 10_000, f"{ping['rps']:,.0f}"),
        ("get_task >= 0.5 x pgbench", get_ratio >= 0.5,
         f"{get_ratio:.2f} ({get['rps']:,.0f} / {sel['tps']:,.0f})"),
        # ping's p99 is the machine's floor: no database work at all.
        ("get_task p99 < 10 ms", get["p99"] < 10,
         f"{get['p99']:.2f} ms (ping {ping['p99']:.2f}, pgbench {sel['p99']:.2f})"),
        ("full sessions >= 5,000/s", per_s >= 5_000, f"{per_s:,.0f}"),
        ("add_task >= 0.8 x pgbench", ratio >= 0.8,
         f"{ratio:.2f} ({add['rps']:,.0f} / {ins['tps']:,.0f})"),
        ("VmRSS < 32 MB", rss_peak < 32 * 1024, f"{rss_peak} KiB peak"),
        ("no failures", not any(f["failures"] or f["errors"] for f in (ping, get, add, loop)),
         ", ".join(str(int(f["failures"] + f["errors"])) for f in (ping, get, add, loop))),
    ]
    print_checks("mcp-tools", checks, warn)
    print(f"memory (VmRSS): idle {rss_idle} KiB, end {rss_end} KiB, peak {rss_peak} KiB")
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/mcp.sh   "
          f"(DURATION, CONNECTIONS, DB_POOL_SIZE, PG_DURABLE=1 to vary)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

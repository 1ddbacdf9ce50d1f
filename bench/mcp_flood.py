"""A legitimate MCP client's latency with and without a bad-token flood.

Started by bench/mcp_flood.sh.  The client (wrk, CONNECTIONS keep-alive
connections, default 10) calls get_task in its sessions for DURATION
seconds: alone, then while another wrk (FLOOD_CONNECTIONS, default 50)
sends initialize with a fresh well-shaped bad token each time, then while
it sends one garbage token.  The flood aims at FLOOD_RATE requests a
second (default 5400, the rate of the report this answers; 0: as fast as
todod answers, so a cheaper refusal makes a faster flood).  Prints the client's p50/p95/p99, the flood's
rate and how it was answered, and the command that reproduces it all.
"""

import json
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from harness import PostgresServer, Todod, builddir  # noqa: E402
from mcp import mcp_post, open_session  # noqa: E402  (bench/mcp.py, this folder's)
from summary import sanitized  # noqa: E402

DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "10"))
FLOOD_CONNECTIONS = int(os.environ.get("FLOOD_CONNECTIONS", "50"))
FLOOD_RATE = int(os.environ.get("FLOOD_RATE", "5400"))
POOL = os.environ.get("DB_POOL_SIZE", "4")


def run_wrk(t, script, connections, env, prefix):
    """Runs wrk to the end; returns the figures of its `prefix` line."""
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION}s", "-s",
           os.path.join(HERE, script), t.url("/mcp")]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, **env})
    line = next((x for x in res.stdout.splitlines() if x.startswith(prefix)), None)
    if res.returncode != 0 or not line:
        sys.exit(f"wrk failed ({res.returncode}):\n{res.stdout}")
    fig = {k: float(v) for k, v in (kv.split("=") for kv in line[len(prefix):].split())}
    fig["rps"] = fig["requests"] / fig["seconds"]
    return fig


def legit_run(t, env, flood_kind=None):
    """The client's figures, beside a flood of `flood_kind` tokens (or none)."""
    flood = {}
    if flood_kind:
        def run():
            # Each connection waits its share of the target rate's interval.
            pause = FLOOD_CONNECTIONS * 1000 // FLOOD_RATE if FLOOD_RATE else 0
            flood.update(run_wrk(t, "mcp_bad_token.lua", FLOOD_CONNECTIONS,
                                 {"MCP_BAD_TOKEN": flood_kind,
                                  "MCP_FLOOD_DELAY_MS": str(pause)}, "flood: "))
        flooder = threading.Thread(target=run)
        flooder.start()
    client = run_wrk(t, "mcp_call.lua", CONNECTIONS, env, "mcp: ")
    if flood_kind:
        flooder.join()
    return client, flood


def report(name, client, flood):
    print(f"{name}: client {client['rps']:,.0f} req/s  p50 {client['p50']:.2f} ms  "
          f"p95 {client['p95']:.2f} ms  p99 {client['p99']:.2f} ms  "
          f"failures {int(client['failures'] + client['errors'])}", flush=True)
    if flood:
        print(f"  flood: {flood['rps']:,.0f} initialize/s, {int(flood['refused_401'])} answered "
              f"401, {int(flood['refused_503'])} 503 (retry later), {int(flood['other'])} "
              f"other", flush=True)


def main():
    with PostgresServer() as pg:
        pg.create_database("todod")
        t = Todod(pg.uri("todod"), plugins={"mcp-tools": {"auth": "token"}},
                  core={"log_level": "warn", "db_pool_size": POOL})
        try:
            _, token = t.provision("bench")
            t.start()
            warn = sanitized(t.pid)
            sessions = ",".join(open_session(t, token) for _ in range(2))
            added = mcp_post(t, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                        "params": {"name": "add_task",
                                                   "arguments": {"title": "bench target"}}},
                             sessions.split(",")[0]).json()
            task_id = added["result"]["structuredContent"]["task"]["id"]
            print(f"todod pid {t.pid}, build {builddir()}, {os.cpu_count()} cores, "
                  f"db_pool_size {POOL}, client {CONNECTIONS} connections, flood "
                  f"{FLOOD_CONNECTIONS} connections aiming at {FLOOD_RATE or 'unlimited'}/s, "
                  f"{DURATION}s each", flush=True)
            env = {"MCP_TOKEN": token, "MCP_SESSIONS": sessions, "MCP_METHOD": "tools/call",
                   "MCP_PARAMS": json.dumps({"name": "get_task",
                                             "arguments": {"task_id": task_id}})}
            report("get_task alone", *legit_run(t, env))
            report("get_task beside well-shaped bad tokens", *legit_run(t, env, "shaped"))
            report("get_task beside garbage tokens", *legit_run(t, env, "garbage"))
        finally:
            t.close()
    if warn:
        print("WARNING: this todod was built with sanitizers; build without "
              "--enable-sanitizers for figures worth comparing")
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/mcp_flood.sh   "
          f"(DURATION, CONNECTIONS, FLOOD_CONNECTIONS, FLOOD_RATE, DB_POOL_SIZE to vary)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run every todod benchmark against a throwaway PostgreSQL and a fresh todod.

Started by bench/run.sh; figures go to stdout, ending in one summary block.
The services come from tests/harness, so the benchmark sees exactly what
the integration tests see.
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from harness import PostgresServer, Todod, builddir  # noqa: E402
from harness.pg import scalar  # noqa: E402


def sanitized(pid):
    """A sanitizer build measures the sanitizer as much as todod."""
    with open(f"/proc/{pid}/maps") as f:
        return any("libasan" in line or "libubsan" in line for line in f)


def run_script(name, *args):
    cmd = [os.path.join(HERE, name), *args]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(res.stdout, end="", flush=True)
    if res.returncode != 0:
        sys.exit(f"{name} failed with exit code {res.returncode}")
    return res.stdout


def main():
    with PostgresServer() as pg:
        pg.create_database("todod")
        # The probe only creates tasks here; the example plugin is the
        # in-process subscriber every event is delivered to (inbox and all).
        t = Todod(pg.uri("todod"), plugins={"probe": {"user_id": 1, "subscribe": "no"},
                                            "example": {}},
                  core={"log_level": "warn", "db_pool_size": os.environ.get("DB_POOL_SIZE", "4")})
        try:
            uid, _ = t.provision("bench")
            t.start()
            time.sleep(1)
            rss_idle = t.vmrss_kib()
            print(f"todod pid {t.pid}, {t.url('/')}, PostgreSQL on port {pg.port}, "
                  f"build {builddir()}", flush=True)

            healthz = run_script("healthz.sh", t.url(""))
            rss_after_healthz = t.vmrss_kib()
            create = run_script("task_create.sh", t.url(""), pg.uri("todod"), str(uid))
            rss_end = t.vmrss_kib()
            # Creation is only half of it: every event must also have been
            # delivered.  How far behind was the relay when the load ended?
            backlog = scalar(pg.dsn("todod"), "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            t0 = time.monotonic()
            while scalar(pg.dsn("todod"), "SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                time.sleep(0.05)
            drained_s = time.monotonic() - t0
            events = scalar(pg.dsn("todod"), "SELECT count(*) FROM outbox")
            warn = sanitized(t.pid)
        finally:
            t.close()

    print("\n==== todod benchmark summary ====")
    if warn:
        print("WARNING: this todod was built with sanitizers; build without "
              "--enable-sanitizers for figures worth comparing")
    print(healthz.rstrip())
    print(create.rstrip())
    print(f"events: {events} written; {backlog} not yet delivered when the load ended, "
          f"all delivered {drained_s:.2f}s later")
    print(f"memory (VmRSS): idle {rss_idle} KiB, after healthz load {rss_after_healthz} KiB, "
          f"at the end of the task load {rss_end} KiB")
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/run.sh   "
          f"(DURATION, CONNECTIONS, DB_POOL_SIZE to vary)")
    print(f"  machine: {os.cpu_count()} cores; todod db_pool_size "
          f"{t.core['db_pool_size']}; figures include the relay and delivery to one in-process subscriber (inbox check and record)")


if __name__ == "__main__":
    main()

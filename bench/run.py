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
        t = Todod(pg.uri("todod"), plugins={"probe": {"user_id": 1}},
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
            warn = sanitized(t.pid)
        finally:
            t.close()

    print("\n==== todod benchmark summary ====")
    if warn:
        print("WARNING: this todod was built with sanitizers; build without "
              "--enable-sanitizers for figures worth comparing")
    print(healthz.rstrip())
    print(create.rstrip())
    print(f"memory (VmRSS): idle {rss_idle} KiB, after healthz load {rss_after_healthz} KiB, "
          f"at the end of the task load {rss_end} KiB")
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/run.sh   "
          f"(DURATION, CONNECTIONS, DB_POOL_SIZE to vary)")
    print(f"  machine: {os.cpu_count()} cores; todod db_pool_size "
          f"{t.core['db_pool_size']}; figures include the relay and the probe's update per task")


if __name__ == "__main__":
    main()

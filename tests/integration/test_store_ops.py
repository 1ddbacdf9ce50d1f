"""The store's typed operations and their validation errors, driven by the
C test program tests/integration/test_store (TAP) against a real
PostgreSQL: every operation, every error code with its field, the events
each change writes, once-keys, paging, and the pool's behaviour while the
server goes down and comes back."""

import os
import re
import subprocess

from harness import PostgresServer
from harness.todod import builddir


def build_store_test():
    path = os.path.join(builddir(), "tests", "integration", "test_store")
    res = subprocess.run(["make", "-s", "-C", builddir(), "tests/integration/test_store"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert res.returncode == 0, res.stdout
    return path


def test_store_operations_against_postgresql(tmp_path):
    program = build_store_test()
    server = PostgresServer().start()
    try:
        env = dict(os.environ)
        env["TODOD_TEST_DSN"] = server.dsn()
        # The pool must survive the server going away and coming back.
        pg_ctl = os.path.join(server.bindir, "pg_ctl")
        as_owner = "runuser -u postgres -- " if os.geteuid() == 0 else ""
        env["TODOD_TEST_PG_STOP"] = f"{as_owner}{pg_ctl} stop -s -m fast -D {server.datadir}"
        env["TODOD_TEST_PG_START"] = (
            f"{as_owner}{pg_ctl} start -s -w -D {server.datadir} -l {server.tmp}/pg_ctl.log "
            f"-o '-p {server.port} -k {server.sockdir} -c listen_addresses=127.0.0.1 -c fsync=off'")
        res = subprocess.run([program], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=300)
        # A server the test restarted is pg_ctl's, not the harness's child.
        subprocess.run(env["TODOD_TEST_PG_STOP"], shell=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    finally:
        server.destroy()
    out = res.stdout
    failed = [line for line in out.splitlines() if line.startswith("not ok")]
    plan = re.search(r"^1\.\.(\d+)", out, re.M)
    assert res.returncode == 0 and not failed, out[-6000:]
    assert plan and int(plan.group(1)) > 150, "the store test ran fewer checks than expected:\n" + out[-2000:]
    assert "SKIP" not in out.splitlines()[0], out[:500]

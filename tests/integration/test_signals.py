"""Signals as systemd and an operator send them: reload and stop."""

import signal

import pytest

from harness import render_config, wait_until

DRAIN_TIMEOUT_S = 3


def test_sighup_with_a_broken_config_keeps_serving(probe_todod):
    t = probe_todod
    good = render_config(t.sections())
    broken = good.replace("[core]\n", "[core]\nlisten_backlog = 7\n", 1)
    line = broken.splitlines().index("listen_backlog = 7") + 1
    t.write_config(broken)

    t.send_signal(signal.SIGHUP)
    t.wait_log(f"{t.config_path}:{line}:")
    assert t.alive()
    assert t.get("/healthz").status == 200
    assert t.post("/probe/tasks", {"title": "still here"}).status == 201

    # The old configuration is still the one in force: a later good reload
    # works as if the broken one never happened.
    t.write_config(good)
    t.send_signal(signal.SIGHUP)
    t.wait_log("configuration reloaded")
    assert t.alive() and t.get("/healthz").status == 200


def test_sighup_applies_a_new_body_limit(probe_todod):
    t = probe_todod
    body = {"title": "medium", "description": "d" * 2000}
    assert t.post("/probe/tasks", body).status == 201  # under the 4k limit

    t.core["max_body_size"] = "1k"
    t.write_config()
    t.send_signal(signal.SIGHUP)
    wait_until(lambda: t.post("/probe/tasks", body).status == 413, 30,
               what="the reloaded max_body_size to apply")
    assert t.alive()


def test_sighup_reports_a_no_reload_key_and_applies_the_rest(probe_todod):
    """db_pool_size is marked no-reload in the [core] schema: a change is
    named in the log and waits for a restart, while a reloadable key
    changed by the same SIGHUP takes effect."""
    t = probe_todod
    body = {"title": "medium", "description": "d" * 2000}
    assert t.post("/probe/tasks", body).status == 201

    t.core["db_pool_size"] = "2"
    t.core["max_body_size"] = "1k"
    t.write_config()
    t.send_signal(signal.SIGHUP)
    t.wait_log("reload: [core] db_pool_size changed; that needs a restart")
    t.wait_log("configuration reloaded")
    assert t.post("/probe/tasks", body).status == 413
    assert t.post("/probe/tasks", {"title": "small"}).status == 201
    assert "max_body_size changed" not in t.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_drains_and_exits_0(todod_factory, database, sig):
    t = todod_factory(database, plugins={"probe": {"user_id": 1}},
                      core={"drain_timeout": f"{DRAIN_TIMEOUT_S}s"})
    t.provision()
    t.start()
    assert t.post("/probe/tasks", {"title": "before stop"}).status == 201

    code, took = t.stop(sig, timeout=DRAIN_TIMEOUT_S + 30)
    assert code == 0, f"exit {code}:\n{t.log_tail()}"
    # Nothing was busy: the drain ended as soon as it saw that, not at its
    # deadline.  The exit work after it (ASan's leak check among it) gets
    # seconds on a loaded machine, not the minute of a stop that hangs.
    log = t.log()
    assert "drained; exiting" in log and "drain_timeout reached" not in log, t.log_tail()
    assert took <= DRAIN_TIMEOUT_S + 10, f"took {took:.1f}s to stop"
    with pytest.raises(OSError):
        t.get("/healthz", timeout=2)

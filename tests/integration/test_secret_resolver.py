"""Secret resolvers: a SECRET option written SCHEME:REF is resolved by the
plugin that provides service "secrets" for SCHEME.

The test plugin secret_source resolves testsecret:NAME from a file of
NAME=value lines, answering later from a timer, as a resolver that asks a
sidecar over HTTP does.  Its own SECRET option `token` guards
GET /secret-source/check (200 when X-Test-Token matches, 403 when not),
which shows what value is in place without printing it.  The [core]
database DSN coming from the resolver shows the ordering: the database is
connected only after the plugins' resolvers answered.  Real PostgreSQL.
"""

import signal
import subprocess

from harness import wait_until

TOKEN_A = "tok-A-7c1e9f0b"
TOKEN_B = "tok-B-52d8aa31"


def values_file(tmp_path, **values):
    path = tmp_path / "secrets.txt"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return str(path)


def check(t, token):
    return t.get("/secret-source/check", headers={"X-Test-Token": token}).status


def line_of(t, prefix):
    """The 1-based line of the config file that starts with `prefix`."""
    with open(t.config_path) as f:
        for number, line in enumerate(f, 1):
            if line.startswith(prefix):
                return number
    raise AssertionError(f"no line starting with {prefix!r} in {t.config_path}")


def exit_code(t, timeout=60):
    try:
        return t.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"todod did not exit:\n{t.log_tail(30)}") from None


def test_the_database_and_a_plugin_option_come_from_the_resolver(todod_factory, database,
                                                                 tmp_path):
    values = values_file(tmp_path, dsn=database, token=TOKEN_A)
    t = todod_factory(database, plugins={
        "secret_source": {"values": values, "delay": "300ms", "token": "testsecret:token"},
    })
    t.core["database"] = "testsecret:dsn"
    t.write_config()
    t.start()
    # Ready means the database was reached with the DSN the resolver gave.
    checks = t.wait_ready()
    assert checks.get("database") == "ok", checks
    assert check(t, TOKEN_A) == 200
    assert check(t, "tok-wrong") == 403

    log = t.log()
    assert database not in log and TOKEN_A not in log, t.log_tail(40)
    assert "[core] key 'database': resolved through its plugin" in log

    # -t does not resolve (no plugin runs) and shows no value.
    res = t.cli("-t")
    assert res.returncode == 0, res.stderr
    assert "database = (secret)" in res.stdout and "token = (secret)" in res.stdout, res.stdout
    for value in (database, TOKEN_A):
        assert value not in res.stdout + res.stderr
    assert t.stop()[0] == 0


def test_a_failing_resolver_fails_start_up_naming_the_key(todod_factory, database, tmp_path):
    values = values_file(tmp_path, token=TOKEN_A)
    t = todod_factory(database, plugins={
        "secret_source": {"values": values, "fail": "yes", "token": "testsecret:token"},
    })
    t.start(wait=False)
    assert exit_code(t) == 1
    line = line_of(t, "token = ")
    log = t.log()
    assert (f"{t.config_path}:{line}: [plugin.secret_source] key 'token': testsecret:token: "
            "lookup of 'token' refused (fail = yes)") in log, t.log_tail(20)
    assert TOKEN_A not in log
    assert " ready on " not in log


def test_a_resolver_that_does_not_answer_in_time_fails_start_up(todod_factory, database,
                                                                tmp_path):
    values = values_file(tmp_path, dsn=database)
    t = todod_factory(database, plugins={
        "secret_source": {"values": values, "delay": "1h"},
    }, core={"secret_timeout": "500ms"})
    t.core["database"] = "testsecret:dsn"
    t.write_config()
    t.start(wait=False)
    assert exit_code(t) == 1
    line = line_of(t, "database = ")
    log = t.log()
    assert (f"{t.config_path}:{line}: [core] key 'database': testsecret:dsn: no answer within "
            "500ms ([core] secret_timeout)") in log, t.log_tail(20)
    assert database not in log


def test_a_colon_in_a_literal_keeps_it_literal(todod_factory, database, tmp_path):
    # "plain" is no resolver's scheme, and the DSN (postgresql://...) is
    # no resolver's either: both are taken as written.
    t = todod_factory(database, plugins={
        "secret_source": {"values": values_file(tmp_path), "token": "plain:colon-value"},
    })
    t.start()
    t.wait_ready()
    assert check(t, "plain:colon-value") == 200
    assert check(t, "colon-value") == 403


def reloads(t):
    return t.log().count("configuration reloaded")


def test_sighup_resolves_again_and_keeps_the_old_value_on_failure(todod_factory, database,
                                                                  tmp_path):
    values = values_file(tmp_path, token_a=TOKEN_A, token_b=TOKEN_B)
    # Each lookup takes a second: long enough for the second SIGHUP below
    # to arrive while one is waiting, on a busy machine too.
    t = todod_factory(database, plugins={
        "secret_source": {"values": values, "delay": "1s", "token": "testsecret:token_a"},
    })
    t.start()
    t.wait_ready()
    assert check(t, TOKEN_A) == 200

    # A changed reference is resolved, then applied.
    t.plugins["secret_source"]["token"] = "testsecret:token_b"
    t.write_config()
    t.send_signal(signal.SIGHUP)
    wait_until(lambda: reloads(t) == 1, 30, what="the reload")
    assert check(t, TOKEN_B) == 200
    assert check(t, TOKEN_A) == 403

    # A reference the resolver cannot answer keeps the running value.
    t.plugins["secret_source"]["token"] = "testsecret:missing"
    t.write_config()
    line = line_of(t, "token = ")
    t.send_signal(signal.SIGHUP)
    t.wait_log(f"reload failed, keeping the running configuration: {t.config_path}:{line}: "
               "[plugin.secret_source] key 'token': testsecret:missing: no secret named 'missing'")
    assert check(t, TOKEN_B) == 200

    # A second SIGHUP while the first one's secrets resolve is one more
    # reload after it, which reads the file as it is then.
    t.plugins["secret_source"]["token"] = "testsecret:token_a"
    t.write_config()
    t.send_signal(signal.SIGHUP)
    wait_until(lambda: t.log().count("SIGHUP: reloading") == 3, 30, what="the third reload")
    t.send_signal(signal.SIGHUP)
    t.wait_log("SIGHUP while a reload waits for its secrets")
    wait_until(lambda: reloads(t) == 3, 30, what="two more reloads")
    assert t.log().count("SIGHUP: reloading") == 4
    assert check(t, TOKEN_A) == 200
    log = t.log()
    assert TOKEN_A not in log and TOKEN_B not in log
    assert t.stop()[0] == 0

"""The command line as an operator uses it: version, config check, users, migrate."""

import os
import re
import subprocess

import pytest

from harness import binary, query, scalar

EX_CONFIG = 78
# `todod -t` must not need a reachable database: nothing listens on port 1.
NO_DATABASE = "postgresql://postgres@127.0.0.1:1/none"


def configure_ac_version():
    src = os.path.join(os.path.dirname(__file__), "..", "..", "configure.ac")
    with open(src) as f:
        return re.search(r"AC_INIT\(\[todod\],\s*\[([^\]]+)\]", f.read()).group(1)


def test_version_prints_the_release():
    res = subprocess.run([binary(), "--version"], capture_output=True, text=True, timeout=10)
    assert res.returncode == 0, res.stderr
    assert "todod" in res.stdout
    assert configure_ac_version() in res.stdout


def test_check_accepts_a_good_config(todod_factory):
    t = todod_factory(NO_DATABASE, plugins={"probe": {"user_id": 7}},
              core={"drain_timeout": "5s", "max_body_size": "64k", "db_pool_size": 2})
    res = t.cli("-t")
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"


def test_help_plugin_documents_its_options(todod_factory):
    t = todod_factory(NO_DATABASE, plugins={"probe": {"user_id": 7}})
    res = t.cli("--help-plugin", "probe")
    assert res.returncode == 0, res.stderr
    assert "user_id" in res.stdout


# Each case: the text appended after a valid [core] section (lines 1-5),
# the line the error must name, and a word the message must contain.
BAD_CONFIGS = {
    "unknown core key": ("colour = blue\n", 6, "colour"),
    "bad duration": ("drain_timeout = 10 parsecs\n", 6, "drain_timeout"),
    "bad log level": ("log_level = chatty\n", 6, "log_level"),
    "unknown plugin": ("\n[plugin.nosuch]\n", 7, "nosuch"),
    "missing required plugin option": ("\n[plugin.probe]\n", 7, "user_id"),
    "plugin option of the wrong type": ("\n[plugin.probe]\nuser_id = seven\n", 8, "user_id"),
    "unknown plugin option": ("\n[plugin.probe]\nuser_id = 7\nfavourite = 3\n", 9, "favourite"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_rejects_a_bad_config_naming_file_and_line(todod_factory, case):
    tail, line, word = BAD_CONFIGS[case]
    t = todod_factory(NO_DATABASE, plugins={"probe": {"user_id": 7}})
    text = ("# todod test config\n"
            "[core]\n"
            f"listen = 127.0.0.1:{t.port}\n"
            f"database = {NO_DATABASE}\n"
            f"plugin_dir = {t.plugin_dir}\n") + tail
    path = t.write_config(text)
    res = t.cli("-t")
    assert res.returncode == EX_CONFIG, f"exit {res.returncode}, stderr:\n{res.stderr}"
    assert f"{path}:{line}:" in res.stderr
    assert word in res.stderr


def test_user_add_list_token_del(todod_factory, database):
    t = todod_factory(database)
    t.migrate()

    res = t.cli("user", "add", "alice", "--email", "alice@example.com", "--tz", "Europe/Berlin")
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\S{16,}", token), f"last line is not a token: {token!r}"

    listed = t.cli("user", "list")
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout and "alice@example.com" in listed.stdout
    assert token not in listed.stdout, "user list must not print API tokens"

    # Tokens are stored hashed: the plain token appears in no column.
    rows = query(database, "SELECT u::text FROM users u WHERE name = 'alice'")
    assert len(rows) == 1 and token not in rows[0][0]

    rotated = t.cli("user", "token", "alice")
    assert rotated.returncode == 0, rotated.stderr
    new_token = rotated.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\S{16,}", new_token) and new_token != token
    assert "alice" in t.cli("user", "list").stdout

    deleted = t.cli("user", "del", "alice")
    assert deleted.returncode == 0, deleted.stderr
    assert "alice" not in t.cli("user", "list").stdout
    assert scalar(database, "SELECT count(*) FROM users WHERE name = 'alice'") == 0


def test_user_commands_on_an_unknown_user_fail(todod_factory, database):
    t = todod_factory(database)
    t.migrate()
    for args in (("user", "token", "nobody"), ("user", "del", "nobody")):
        res = t.cli(*args)
        assert res.returncode != 0, f"{args} succeeded on a missing user"
        assert "nobody" in res.stderr


def test_migrate_is_idempotent(todod_factory, database):
    t = todod_factory(database)
    tables = ("SELECT string_agg(table_name, ',' ORDER BY table_name) "
              "FROM information_schema.tables WHERE table_schema = 'public'")
    first = t.cli("migrate")
    assert first.returncode == 0, first.stderr
    schema = scalar(database, tables)
    for name in ("outbox", "inbox", "users", "tasks"):
        assert name in schema.split(",")

    second = t.cli("migrate")
    assert second.returncode == 0, second.stderr
    assert scalar(database, tables) == schema

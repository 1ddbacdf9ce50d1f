"""Fixtures for todod's integration tests: real PostgreSQL, Apache Kafka,
Redis, Dapr's sidecar and scheduler, the real binary.

Run from the source tree:
    TODOD_BUILDDIR=/path/to/build /usr/bin/python3 -m pytest -q tests/integration

A service that cannot start (no binary, no PostgreSQL, a daemon that dies
at start-up) fails the test when CI=true and skips it, with the reason,
otherwise.
"""

import itertools
import os
import re
import sys
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from harness import KafkaServer, PostgresServer, ServiceUnavailable, Todod, in_ci  # noqa: E402
from harness.dapr import Daprd, RedisServer, Scheduler, transport_options  # noqa: E402
from harness.kafka import KafkaNames, todod_options  # noqa: E402
from harness.smtp import SmtpServer  # noqa: E402

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "report_" + report.when, report)
    if call.excinfo is not None and call.excinfo.errisinstance(ServiceUnavailable):
        if in_ci():
            report.longrepr = f"service unavailable (CI=true makes this a failure): {call.excinfo.value}"
        else:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0,
                               f"Skipped: service unavailable: {call.excinfo.value}")


def started(what, service):
    """A started `service()`; one that cannot start fails the run with
    CI=true and skips the test elsewhere."""
    try:
        return service().start()
    except ServiceUnavailable as exc:
        if in_ci():
            pytest.fail(f"{what} could not start (CI=true): {exc}", pytrace=False)
        pytest.skip(f"{what} could not start: {exc}")


# ---- PostgreSQL -----------------------------------------------------------

@pytest.fixture(scope="session")
def pg_server():
    """One server shared by the tests that do not stop it."""
    server = started("PostgreSQL", PostgresServer)
    yield server
    server.destroy()


_db_numbers = itertools.count(1)


@pytest.fixture
def database(pg_server):
    """A fresh, empty database; returns its URI."""
    name = pg_server.create_database(f"todod_t{os.getpid()}_{next(_db_numbers)}")
    return pg_server.uri(name)


@pytest.fixture
def own_pg():
    """A private server, for tests that stop and restart it."""
    server = PostgresServer().start()
    server.create_database("todod")
    yield server
    server.destroy()


# ---- SMTP -------------------------------------------------------------------

@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) that keeps what it receives."""
    server = started("the SMTP server", SmtpServer)
    yield server
    server.destroy()


# ---- Apache Kafka ----------------------------------------------------------

@pytest.fixture(scope="session")
def kafka():
    """One broker for the whole session: a JVM start costs seconds.  Tests
    keep apart through kafka_names; a test that stops the broker starts
    it again before it ends."""
    server = started("Kafka", KafkaServer)
    yield server
    server.destroy()


_kafka_numbers = itertools.count(1)


@pytest.fixture
def kafka_names(request):
    """Topic prefix and consumer group of this test's own."""
    n = next(_kafka_numbers)
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:32].strip("-")
    return KafkaNames(prefix=f"t{os.getpid()}-{n}-{name}", group=f"todod-{os.getpid()}-{n}")


# ---- todod ------------------------------------------------------------------

@pytest.fixture
def todod_factory(request, tmp_path):
    """make(database, plugins=None, core=None) -> a Todod not yet started.

    Every instance is stopped at teardown; its log is shown when the test
    failed, and a sanitizer report in it fails the test."""
    made = []

    def make(database, plugins=None, core=None):
        workdir = tmp_path / f"todod{len(made) + 1}"
        workdir.mkdir()
        t = Todod(database, plugins=plugins, core=core, workdir=str(workdir))
        made.append(t)
        return t

    yield make

    failed = any(getattr(request.node, "report_" + w, None) is not None
                 and getattr(request.node, "report_" + w).failed for w in ("setup", "call"))
    reports = []
    for t in made:
        t.close()
        log = t.log()
        if failed:
            print(f"---- todod log ({t.stderr_path}) ----\n{t.log_tail(80)}")
        if any(mark in log for mark in SANITIZER_MARKS):
            reports.append(f"{t.stderr_path}:\n{t.log_tail(80)}")
    if reports:
        pytest.fail("sanitizer report in todod's stderr:\n" + "\n".join(reports), pytrace=False)


@pytest.fixture
def probe_todod(todod_factory, database):
    """A running todod with the probe plugin, for a provisioned user."""
    t = todod_factory(database, plugins={"probe": {"user_id": 1}},
                      core={"max_body_size": "4k", "request_timeout": "5s"})
    t.user_id, t.token = t.provision()
    return t.start()


@pytest.fixture
def kafka_todod(kafka, kafka_names, todod_factory):
    """make(database, plugins=None, core=None, sasl=None, names=None, **options)
    -> a Todod (not started) with `plugins` and kafka-direct on the
    session's broker, under this test's topic names and group (or
    `names`); `options` are further kafka-direct options."""
    def make(database, plugins=None, core=None, sasl=None, names=None, **options):
        everything = dict(plugins or {})
        everything["kafka-direct"] = todod_options(kafka, names or kafka_names, sasl=sasl,
                                                   **options)
        return todod_factory(database, plugins=everything, core=core)
    return make


# ---- Dapr -------------------------------------------------------------------------

@pytest.fixture
def redis():
    """A private redis-server (password set, nothing persisted)."""
    server = started("Redis", RedisServer)
    yield server
    server.destroy()


@pytest.fixture
def dapr_scheduler():
    """A Dapr scheduler with a fresh etcd data dir."""
    server = started("the Dapr scheduler", Scheduler)
    yield server
    server.destroy()


@pytest.fixture
def daprd_factory(request, tmp_path):
    """make(app_id, app_port, **Daprd options) -> a Daprd not yet started,
    loading the component files of contrib/dapr.  Every sidecar is killed
    at teardown; its log is shown when the test failed."""
    made = []

    def make(app_id, app_port, **options):
        workdir = tmp_path / f"daprd{len(made) + 1}"
        d = Daprd(app_id, app_port, workdir=str(workdir), **options)
        made.append(d)
        return d

    yield make

    failed = any(getattr(request.node, "report_" + w, None) is not None
                 and getattr(request.node, "report_" + w).failed for w in ("setup", "call"))
    for d in made:
        d.kill9()
        if failed:
            print(f"---- daprd log ({d.logfile}) ----\n{d.log_tail(60)}")


@pytest.fixture
def dapr_todod(todod_factory, daprd_factory, dapr_scheduler, kafka, kafka_names):
    """make(database, plugins=None, core=None, backend="kafka", redis=None,
    app_id=None, sidecar=None, **transport options) -> a Todod (not
    started) with `plugins` and dapr-transport, and its own daprd (not
    started) as t.daprd: app id kafka_names.group unless given (it names
    the Kafka consumer group), this test's topic names, tokens both ways,
    the state store in `database`.  `sidecar` adds Daprd options.  Start
    the pair with harness.dapr.start_with_sidecar(t)."""
    def make(database, plugins=None, core=None, backend="kafka", redis=None, app_id=None,
             sidecar=None, **transport):
        everything = dict(plugins or {})
        everything["dapr-transport"] = {}
        t = todod_factory(database, plugins=everything, core=core)
        side = {"api_token": "api-" + uuid.uuid4().hex, "app_token": "app-" + uuid.uuid4().hex,
                **(sidecar or {})}
        t.daprd = daprd_factory(app_id or kafka_names.group, t.port, scheduler=dapr_scheduler,
                                pubsub=backend, kafka=kafka, redis=redis, database=database,
                                **side)
        t.plugins["dapr-transport"] = transport_options(t.daprd, kafka_names, **transport)
        t.write_config()
        return t
    return make

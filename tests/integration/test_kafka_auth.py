"""SASL login and TLS: SCRAM-SHA-256 with the harness's user works end to
end; a wrong password makes todod not ready, with a reason and a log line
that say "authentication" and never show the password.  TLS to the
broker's SSL listener, and SCRAM-SHA-512 over TLS (SASL_SSL), carry
events end to end when ssl_ca is the CA that signed the broker; with a CA
that did not, todod is not ready and says why: the certificate.

SCRAM against Kafka 4.x needs librdkafka 2.6.1 or newer (tests/run builds
2.12.1; Debian's 2.0.2 sends a nonce the broker refuses), so the tests
check which librdkafka the plugin loads before blaming todod.
"""

import json
import time

import pytest

from harness import ServiceUnavailable, find_plugin, query, scalar, task_id, wait_until
from harness.kafka import SASL_PASSWORD, SASL_USER, librdkafka_version
from harness.tls import make_ca

WRONG_PASSWORD = "not-the-Secret-42"
PASSWORD_ENV = "TODOD_TEST_KAFKA_PASSWORD"


@pytest.fixture
def scram_capable():
    version = librdkafka_version(find_plugin("kafka-direct"))
    if version is None or tuple(map(int, version.split(".")[:3])) < (2, 6, 1):
        raise ServiceUnavailable(f"kafka-direct loads librdkafka {version}; SCRAM against "
                                 "Kafka 4 needs >= 2.6.1 (tests/run builds 2.12.1)")
    return version


def start(kafka_todod, database, tmp_path, password=None, core=None, **kafka):
    """A todod with the recurrence plugin on the broker; `password` logs
    in with SCRAM-SHA-256 (from a file), `kafka` are todod_options'
    arguments (sasl=..., tls=...) and further kafka-direct options."""
    if password is not None:
        secret = tmp_path / "kafka-password"
        secret.write_text(password + "\n")
        kafka["sasl"] = ("SCRAM-SHA-256", SASL_USER, f"file:{secret}")
    t = kafka_todod(database, plugins={"recurrence": {}},
                    core={"retry_backoff": "100ms", **(core or {})}, **kafka)
    t.user_id, _ = t.provision("alice")
    t.db = database
    return t.start()


def assert_events_flow(t, kafka, kafka_names, database):
    """Ready, then produced and consumed through the configured listener:
    a completion makes its successor."""
    checks = t.wait_ready()
    assert checks["transport"] == "ok"
    first = task_id(scalar(database, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)",
                           t.user_id, json.dumps({"title": "rotate keys", "rrule": "FREQ=WEEKLY",
                                                  "due_at": "2030-01-07T09:00:00Z"})))
    scalar(database, "SELECT todod_task_complete(%s, %s::jsonb, NULL, NULL)", t.user_id,
           json.dumps({"id": first}))
    wait_until(lambda: query(database, "SELECT id FROM tasks WHERE series_id = %s "
                                       "AND occurrence = 2", first), 60, what="the successor")
    records = kafka.read_topic(kafka_names.topic("task-recurrence"))
    assert [r.key for r in records] == [str(first)]


def test_scram_sha_256_login_carries_events(scram_capable, kafka, kafka_names, kafka_todod,
                                            database, tmp_path):
    t = start(kafka_todod, database, tmp_path, SASL_PASSWORD)
    assert t.plugins["kafka-direct"]["brokers"] == kafka.sasl_bootstrap
    assert_events_flow(t, kafka, kafka_names, database)
    assert SASL_PASSWORD not in t.log()


def test_plain_login_carries_events(kafka, kafka_names, kafka_todod, database, monkeypatch):
    # PLAIN works with every librdkafka, Debian's 2.0.2 included.
    monkeypatch.setenv("TODOD_TEST_KAFKA_PLAIN", SASL_PASSWORD)
    t = start(kafka_todod, database, None,
              sasl=("PLAIN", SASL_USER, "env:TODOD_TEST_KAFKA_PLAIN"))
    assert t.plugins["kafka-direct"]["sasl_mechanism"] == "PLAIN"
    assert_events_flow(t, kafka, kafka_names, database)
    assert SASL_PASSWORD not in t.log()


def test_wrong_password_is_an_authentication_error(scram_capable, kafka, kafka_names,
                                                   kafka_todod, database, tmp_path):
    t = start(kafka_todod, database, tmp_path, WRONG_PASSWORD)

    def refused():
        ready, checks = t.readiness()
        why = checks.get("transport", "")
        return why if not ready and "authentication" in why.lower() else None
    reason = wait_until(refused, 60, what="/readyz naming authentication as the reason")
    print(f"\n[kafka] /readyz transport: {reason}")
    assert WRONG_PASSWORD not in reason

    # Still serving; the event waits in the outbox.
    assert t.get("/healthz").status == 200
    scalar(database, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)", t.user_id,
           json.dumps({"title": "waits"}))
    t.wait_log("authentication", timeout=30)
    log = t.log()
    said = [line for line in log.splitlines()
            if " error [kafka-direct] authentication failed" in line]
    assert said, log[-3000:]
    assert "SCRAM-SHA-256" in said[0] and SASL_USER in said[0], said[0]
    assert WRONG_PASSWORD not in log
    assert scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") >= 1
    assert not t.readiness()[0]

    # Nothing can be delivered: SIGTERM does not wait for the drain
    # deadline, and the event stays in the outbox for the next start.
    code, _ = t.stop()
    assert code == 0, t.log_tail()
    log = t.log()
    assert "drain_timeout reached" not in log, log[-3000:]
    assert scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") >= 1


def test_tls_with_the_brokers_ca_carries_events(kafka, kafka_names, kafka_todod, database,
                                                tmp_path):
    t = start(kafka_todod, database, tmp_path, tls=True)
    opts = t.plugins["kafka-direct"]
    assert (opts["brokers"], opts["security_protocol"], opts["ssl_ca"]) == \
        (kafka.ssl_bootstrap, "ssl", kafka.ca_file)
    assert_events_flow(t, kafka, kafka_names, database)


def test_scram_sha_512_over_tls_carries_events(scram_capable, kafka, kafka_names, kafka_todod,
                                               database, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, SASL_PASSWORD)
    t = start(kafka_todod, database, tmp_path, tls=True,
              sasl=("SCRAM-SHA-512", SASL_USER, f"env:{PASSWORD_ENV}"))
    opts = t.plugins["kafka-direct"]
    assert (opts["brokers"], opts["security_protocol"]) == (kafka.sasl_ssl_bootstrap, "sasl_ssl")
    assert_events_flow(t, kafka, kafka_names, database)
    assert SASL_PASSWORD not in t.log()


def test_a_ca_that_did_not_sign_the_broker_is_a_certificate_error(kafka, kafka_names,
                                                                  kafka_todod, database,
                                                                  tmp_path):
    stranger = make_ca(str(tmp_path), "stranger-ca")
    started = time.monotonic()
    t = start(kafka_todod, database, tmp_path, tls=stranger.cert)

    def refused():
        ready, checks = t.readiness()
        why = checks.get("transport", "")
        return why if not ready and "certificate" in why.lower() else None
    reason = wait_until(refused, 60, what="/readyz naming the certificate as the reason")
    print(f"\n[kafka] /readyz transport: {reason}")
    assert t.get("/healthz").status == 200

    # Said once, however often librdkafka tries again meanwhile: both
    # client handles fail, retries come within a second, and a lost
    # connection is announced after a 5 s grace.
    scalar(database, "SELECT todod_task_create(%s, %s::jsonb, NULL, NULL)", t.user_id,
           json.dumps({"title": "waits"}))
    time.sleep(max(0.0, started + 8 - time.monotonic()))
    log = t.log()
    said = [line for line in log.splitlines()
            if (" error " in line or " warn " in line) and "certificate" in line.lower()]
    assert len(said) == 1, "\n".join(said) or log[-3000:]
    assert scalar(database, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") >= 1
    assert not t.readiness()[0]

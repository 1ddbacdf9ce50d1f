"""PostgreSQL restarts while clients keep creating tasks.

During the outage every answer is a prompt 503 DATABASE_UNAVAILABLE (no
hang past request_timeout, no crash); afterwards the same todod process
creates tasks again and delivers the events of every task it confirmed.
"""

import collections
import time

from harness import query, task_id, wait_until

REQUEST_TIMEOUT_S = 5


def post_task(t, n):
    """(status, body or None, seconds); a connection failure is status 0."""
    try:
        resp = t.post("/probe/tasks", {"title": f"load {n}"}, timeout=REQUEST_TIMEOUT_S + 10)
    except OSError as exc:
        return 0, repr(exc), 0.0
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    return resp.status, body, resp.elapsed


def test_database_restart_under_load(todod_factory, own_pg):
    db = own_pg.uri("todod")
    t = todod_factory(db, plugins={"probe": {"user_id": 1}},
                      core={"request_timeout": f"{REQUEST_TIMEOUT_S}s", "log_level": "info"})
    t.provision()
    t.start()

    answers = []  # (phase, status, body, seconds)
    n = 0

    def load(phase, seconds):
        nonlocal n
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            n += 1
            answers.append((phase, *post_task(t, n)))

    load("before", 1.0)
    own_pg.stop(mode="fast")
    load("outage", 3.0)
    own_pg.start()
    # The pool reconnects with backoff: keep posting until it is back.
    deadline = time.monotonic() + 30
    while not any(p == "after" and s == 201 for p, s, _, _ in answers):
        assert time.monotonic() < deadline, "no task created within 30s of PostgreSQL's return"
        load("after", 0.2)
    load("after", 1.0)

    counts = collections.Counter((p, s) for p, s, _, _ in answers)
    print(f"answers by phase and status: {dict(sorted(counts.items()))}")
    assert t.alive(), f"todod died (exit {t.proc.returncode}):\n{t.log_tail()}"
    assert all(s in (201, 503) for _, s, _, _ in answers), \
        f"unexpected answers: {[a for a in answers if a[1] not in (201, 503)][:5]}"
    failures = [a for a in answers if a[1] == 503]
    assert [a for a in answers if a[0] == "outage"] and \
        all(s == 503 for p, s, _, _ in answers if p == "outage"), "every answer during the outage is 503"
    for _, _, body, _ in failures:
        assert body["error"]["code"] == "DATABASE_UNAVAILABLE", body
    slowest = max(secs for _, _, _, secs in answers)
    assert slowest <= REQUEST_TIMEOUT_S + 3, f"a request took {slowest:.1f}s"
    assert any(p == "before" and s == 201 for p, s, _, _ in answers)

    created = [task_id(body) for _, s, body, _ in answers if s == 201]
    assert len(created) == len(set(created))
    # Every task todod confirmed was stored and its created event reached
    # the probe, also those confirmed just before the outage.
    wait_until(lambda: query(db, "SELECT count(*) FROM tasks "
                                 "WHERE id = ANY(%s) AND description = 'seen by probe'", created)
               == [(len(created),)], 60, interval=0.2,
               what="the probe to see every confirmed task")
    wait_until(lambda: query(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == [(0,)],
               30, what="the outbox to drain")


def test_unresponsive_database_answers_within_request_timeout(todod_factory, own_pg):
    """A server that keeps its connections open but stops answering (a
    network partition) must not hold requests past request_timeout."""
    db = own_pg.uri("todod")
    t = todod_factory(db, plugins={"probe": {"user_id": 1}},
                      core={"request_timeout": f"{REQUEST_TIMEOUT_S}s", "log_level": "info"})
    t.provision()
    t.start()
    assert post_task(t, 0)[0] == 201

    own_pg.freeze()
    try:
        for n in range(1, 4):
            status, body, secs = post_task(t, n)
            assert status in (503, 408), \
                f"no answer within {REQUEST_TIMEOUT_S}s request_timeout: {status} {body}"
            assert isinstance(body, dict) and body["error"]["code"], body
            assert secs <= REQUEST_TIMEOUT_S + 3, f"a request took {secs:.1f}s"
    finally:
        own_pg.freeze(False)
    assert t.alive(), f"todod died (exit {t.proc.returncode}):\n{t.log_tail()}"
    wait_until(lambda: post_task(t, 99)[0] == 201, 30,
               what="a task to be created once PostgreSQL answers again")

"""What an unauthenticated client cannot do to the HTTP listener: hold
connections open by trickling bytes, exhaust the daemon's descriptors, or
smuggle a second request past a proxy with two Content-Length headers,
or Transfer-Encoding beside one."""

import json
import selectors
import signal
import socket
import threading
import time

import pytest

from harness import mcp_sdk, query, wait_until

HEADER_TIMEOUT_S = 3
MAX_FDS = 256           # the daemon's descriptor limit in the flood tests
TRICKLERS = 320         # more than it may hold
TRICKLE_EVERY_S = 0.5


class Tricklers:
    """`n` connections that each send a request one byte at a time and
    never finish it; a thread keeps them trickling and notes when the
    server closes each one."""

    def __init__(self, port, n):
        self.sel = selectors.DefaultSelector()
        self.open = {}
        self.closed_at = []
        self.started = time.monotonic()
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            self.open[s] = b"GET /healthz HTTP/1.1\r\nHost: flood\r\nX-Slow: "
            self.sel.register(s, selectors.EVENT_READ)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _closed(self, s):
        self.sel.unregister(s)
        del self.open[s]
        s.close()
        self.closed_at.append(time.monotonic() - self.started)

    def _run(self):
        next_byte = 0.0
        while not self.stop.is_set() and self.open:
            for key, _ in self.sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._closed(key.fileobj)
            if time.monotonic() < next_byte:
                continue
            next_byte = time.monotonic() + TRICKLE_EVERY_S
            for s in list(self.open):
                try:
                    s.send(self.open[s][:1] or b"a")
                    self.open[s] = self.open[s][1:]
                except (BlockingIOError, InterruptedError):
                    pass  # not connected yet: it waits in the server's backlog
                except OSError:
                    self._closed(s)

    def remaining(self):
        return len(self.open)

    def close(self):
        self.stop.set()
        self.thread.join(10)
        for s in list(self.open):
            s.close()


def mcp_initialize(t):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                  "clientInfo": {"name": "flood-test", "version": "0"}}}).encode()
    return t.request("POST", "/mcp", body=body, timeout=10, headers={
        "Accept": "application/json, text/event-stream", "Content-Type": "application/json",
        "Authorization": f"Bearer {t.tokens['alice']}"})


def answered(request):
    try:
        return request().status == 200
    except OSError:
        return False  # refused or reset while the daemon is full


@pytest.mark.parametrize("max_connections", ["0", "5000"],
                         ids=["max_connections-default", "past-the-descriptor-limit"])
def test_trickling_clients_cannot_take_the_daemon_offline(todod_factory, database,
                                                          max_connections):
    """The default max_connections refuses the excess at once; set above
    the descriptor limit, accept() fails with EMFILE and the listener must
    rest rather than spin.  Either way the daemon stays cheap, its log
    short, and every trickling connection is closed at its deadline."""
    t = mcp_sdk.start_todod(todod_factory, database, start=False, core={
        "header_timeout": f"{HEADER_TIMEOUT_S}s", "body_timeout": f"{HEADER_TIMEOUT_S}s",
        "request_timeout": "60s", "max_connections": max_connections, "log_level": "info"})
    t.start(max_fds=MAX_FDS)
    log_before = len(t.log().splitlines())
    cpu_before, wall_before = t.cpu_seconds(), time.monotonic()

    flood = Tricklers(t.port, TRICKLERS)
    try:
        # Tricklers that wait in the backlog get their turn as the first
        # ones are closed, so all are done within a few deadlines.
        bound = 4 * HEADER_TIMEOUT_S + 20
        wait_until(lambda: answered(lambda: t.get("/healthz", timeout=10)), bound,
                   interval=0.2, what="/healthz answered during the flood")
        wait_until(lambda: answered(lambda: mcp_initialize(t)), bound, interval=0.2,
                   what="an MCP call answered during the flood")
        wait_until(lambda: flood.remaining() == 0, bound, interval=0.2,
                   what=f"the server to close every trickling connection "
                        f"({flood.remaining()} of {TRICKLERS} still open)")
    finally:
        flood.close()

    wall = time.monotonic() - wall_before
    cpu = t.cpu_seconds() - cpu_before
    assert cpu < 0.35 * wall, f"the daemon used {cpu:.1f} s of CPU in {wall:.1f} s of flood"
    lines = t.log().splitlines()[log_before:]
    print(f"flood of {TRICKLERS} with {MAX_FDS} descriptors: {cpu:.2f} s CPU in {wall:.1f} s, "
          f"{len(lines)} log lines, last trickler closed after {max(flood.closed_at):.1f} s")
    assert not any("Error from accept" in line for line in lines), "\n".join(lines[:20])
    # One line per kind (refusals, pauses, deadlines) per 10 s interval,
    # plus the few requests logged around the MCP call.
    assert len(lines) <= 3 * (wall // 10 + 1) + 10, "\n".join(lines[:40])
    assert t.alive()
    # Counted exactly: once the flood is gone only the asking connection is open.
    wait_until(lambda: t.metric("todod_http_connections") == 1, 30,
               what="todod_http_connections to come back to 1")
    assert t.metric("todod_http_connections_closed_total", reason="header_timeout") > 0


def seconds_until_closed_while_trickling(port, give_up_s=30):
    """Send a request that never ends, a byte every 0.3 s (each well within
    the idle timeout); seconds until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(0.3)  # the client's pace, not synchronisation
        started = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        while time.monotonic() - started < give_up_s:
            try:
                s.send(request[:1] or b"a")
                request = request[1:]
                if s.recv(4096) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        else:
            return None
        return time.monotonic() - started


def test_request_closed_at_header_timeout_however_steady(todod_factory, database):
    """One byte every 0.3 s meets an idle timeout every time; the header
    deadline counts from the first byte."""
    t = todod_factory(database, core={"header_timeout": "2s", "request_timeout": "30s"})
    t.start()
    elapsed = seconds_until_closed_while_trickling(t.port)
    assert elapsed is not None, "the connection outlived 30 s of trickling"
    assert 1.5 <= elapsed <= 10, f"closed after {elapsed:.1f} s, header_timeout is 2 s"
    assert t.get("/healthz").status == 200


def test_header_timeout_changes_at_a_reload(todod_factory, database):
    t = todod_factory(database, core={"header_timeout": "60s", "request_timeout": "30s"})
    t.start()
    t.core["header_timeout"] = "2s"
    t.write_config()
    t.send_signal(signal.SIGHUP)
    t.wait_log("configuration reloaded")
    elapsed = seconds_until_closed_while_trickling(t.port)
    assert elapsed is not None and elapsed <= 10, f"closed after {elapsed} s; reloaded to 2 s"


def raw_exchange(port, data):
    """Send `data` and read until the server closes; returns the bytes and
    whether it closed within 10 s."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(10)
        s.sendall(data)
        received = b""
        try:
            while chunk := s.recv(65536):
                received += chunk
        except socket.timeout:
            return received, False
    return received, True


def status_and_body(response):
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def task_titled(db, title):
    return query(db, "SELECT count(*) FROM tasks WHERE title = %s", title)[0][0]


def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


SMUGGLED_BODY = b'{"title": "smuggled"}'
SMUGGLED = (b"POST /probe/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(SMUGGLED_BODY), SMUGGLED_BODY))
FIRST_BODY = b'{"title": "framed by the first length"}'


def ambiguous_requests():
    """Each frames FIRST_BODY one way and FIRST_BODY + SMUGGLED another:
    (name, request, what the refusal names)."""
    head = b"POST /probe/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    whole = FIRST_BODY + SMUGGLED
    yield ("two lengths",
           head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s"
           % (len(FIRST_BODY), len(whole), whole), b"Content-Length")
    yield ("chunked beside a length",
           head + b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n%s%s"
           % (len(chunked(FIRST_BODY)) + len(SMUGGLED), chunked(FIRST_BODY), SMUGGLED),
           b"Transfer-Encoding")
    yield ("two codings",
           head + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n%s%s"
           % (chunked(FIRST_BODY), SMUGGLED), b"Transfer-Encoding")


@pytest.mark.parametrize("name,request_bytes,names",
                         list(ambiguous_requests()), ids=[r[0] for r in ambiguous_requests()])
def test_ambiguous_framing_is_refused_and_nothing_is_smuggled(probe_todod, name, request_bytes, names):
    response, closed = raw_exchange(probe_todod.port, request_bytes)
    assert closed, "the connection stayed open after the refusal"
    assert response.count(b"HTTP/1.1 ") == 1, response
    status, body = status_and_body(response)
    assert status == 400, response
    # libevent 2.1 refuses a Transfer-Encoding it finds doubtful itself,
    # with its own HTML page, before todod sees the request.
    if not body.startswith(b"<HTML>"):
        assert names in body and json.loads(body)["error"]["code"] == "BAD_REQUEST"
    db = probe_todod.core["database"]
    assert task_titled(db, "smuggled") == 0, "the smuggled request was executed"
    assert task_titled(db, "framed by the first length") == 0


def test_a_coding_other_than_chunked_is_501_and_nothing_is_smuggled(probe_todod):
    request = (b"POST /probe/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: gzip, chunked\r\n\r\n%s%s" % (chunked(FIRST_BODY), SMUGGLED))
    response, closed = raw_exchange(probe_todod.port, request)
    assert closed and response.count(b"HTTP/1.1 ") == 1, response
    status, body = status_and_body(response)
    assert status == 501, response
    assert json.loads(body)["error"]["code"] == "NOT_IMPLEMENTED"
    db = probe_todod.core["database"]
    assert task_titled(db, "smuggled") == 0, "the smuggled request was executed"


def test_http11_without_host_is_400_and_http10_without_host_is_served(probe_todod):
    response, closed = raw_exchange(probe_todod.port, b"GET /healthz HTTP/1.1\r\n\r\n")
    status, body = status_and_body(response)
    assert status == 400 and closed, response
    assert "Host" in json.loads(body)["error"]["message"]

    response, _ = raw_exchange(probe_todod.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert status_and_body(response) == (200, b'{"status":"ok"}'), response

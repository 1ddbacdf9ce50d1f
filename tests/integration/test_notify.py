"""systemd's notify protocol, as systemd itself would see it: a datagram
socket named by NOTIFY_SOCKET receives READY=1 once todod serves,
RELOADING=1 then READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM."""

import os
import signal
import socket

import pytest


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


def next_state(sock):
    return sock.recv(4096).decode()


def test_ready_reload_stopping(notify_socket, todod_factory, database):
    t = todod_factory(database)
    t.start()
    assert next_state(notify_socket) == "READY=1"
    assert t.get("/healthz").status == 200

    t.send_signal(signal.SIGHUP)
    assert next_state(notify_socket) == "RELOADING=1"
    assert next_state(notify_socket) == "READY=1"

    code, _ = t.stop(signal.SIGTERM)
    assert next_state(notify_socket) == "STOPPING=1"
    assert code == 0


def test_abstract_socket_name(todod_factory, database, monkeypatch):
    """systemd may hand out an abstract socket ("@name")."""
    name = f"todod-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(60)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        t = todod_factory(database)
        t.start()
        assert next_state(sock) == "READY=1"
    finally:
        sock.close()

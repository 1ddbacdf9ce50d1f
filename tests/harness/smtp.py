"""A real SMTP server for the tests: aiosmtpd (Debian: python3-aiosmtpd) in a
subprocess on loopback, keeping every accepted message as files.

    with SmtpServer() as smtp:          # started on a free port
        smtp.url                        # "smtp://127.0.0.1:PORT"
        smtp.reject("bob@example.com")  # RCPT TO answers 550 from now on
        smtp.stop(); smtp.start()       # down and back on the same port
        smtp.wait_for(1)                # -> [Received, ...]

Each accepted message is written as N.eml (the bytes after DATA) and
then N.json (envelope); the .json appears last, so a message is counted
only once it is complete.  The rejection list is a file the server reads
at every RCPT, so it can change while the server runs.
"""

import email
import email.policy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from .util import ServiceUnavailable, free_port, tail, wait_until

REJECT_REPLY = "550 5.1.1 <{}>: Recipient address rejected: User unknown"


class Received:
    """One accepted message: envelope and parsed content."""

    def __init__(self, mail_from, rcpt_tos, raw):
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.raw = raw
        self.message = email.message_from_bytes(raw, policy=email.policy.default)

    def header(self, name):
        return self.message[name]

    def body(self, subtype):
        """The decoded text of the text/<subtype> part."""
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None


class SmtpServer:
    def __init__(self, host="127.0.0.1", port=None, spool=None):
        try:
            import aiosmtpd  # noqa: F401 - only checking it is installed
        except ImportError as exc:
            raise ServiceUnavailable("aiosmtpd is not installed (apt-get install "
                                     f"python3-aiosmtpd): {exc}") from exc
        self.host = host
        self.port = port or free_port(host)
        self._own_spool = spool is None
        self.spool = spool or tempfile.mkdtemp(prefix="todod-smtp-")
        self.reject_path = os.path.join(self.spool, "reject.txt")
        self.log_path = os.path.join(self.spool, "server.log")
        self.proc = None
        open(self.reject_path, "a").close()

    @property
    def url(self):
        return f"smtp://{self.host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout=60):
        log = open(self.log_path, "ab")
        try:
            # Run as a module of the harness package so its imports resolve.
            env = dict(os.environ)
            tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (tests_dir, env.get("PYTHONPATH")) if p)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harness.smtp", self.host, str(self.port), self.spool,
                 self.reject_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        finally:
            log.close()
        try:
            wait_until(self._greets, timeout, what=f"SMTP server on {self.host}:{self.port}")
        except TimeoutError as exc:
            self.stop()
            raise ServiceUnavailable(f"{exc}\n{tail(self.log_path)}") from exc
        return self

    def _greets(self):
        if self.proc.poll() is not None:
            raise ServiceUnavailable(f"SMTP server exited with {self.proc.returncode}:\n"
                                     f"{tail(self.log_path)}")
        with socket.create_connection((self.host, self.port), timeout=1) as s:
            return s.recv(64).startswith(b"220")

    def stop(self, timeout=10):
        """Stop the server; connections to the port are refused until start()."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self):
        self.stop()
        if self._own_spool:
            shutil.rmtree(self.spool, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()

    # -- behaviour -------------------------------------------------------------

    def reject(self, *addresses):
        """RCPT TO any of `addresses` answers 550 (none: accept everyone)."""
        tmp = self.reject_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(a.lower() + "\n" for a in addresses))
        os.replace(tmp, self.reject_path)

    # -- what arrived ------------------------------------------------------------

    def messages(self):
        out = []
        names = sorted((n for n in os.listdir(self.spool) if n.endswith(".json")),
                       key=lambda n: int(n.split(".")[0]))
        for name in names:
            with open(os.path.join(self.spool, name)) as f:
                env = json.load(f)
            with open(os.path.join(self.spool, env["file"]), "rb") as f:
                out.append(Received(env["mail_from"], env["rcpt_tos"], f.read()))
        return out

    def count(self):
        return sum(1 for n in os.listdir(self.spool) if n.endswith(".json"))

    def wait_for(self, n, timeout=60):
        """Wait until at least `n` messages arrived; return them all."""
        wait_until(lambda: self.count() >= n, timeout, what=f"{n} message(s) at {self.url}")
        return self.messages()


# ---- the server process ------------------------------------------------------

def _serve(host, port, spool, reject_path):
    import asyncio

    from aiosmtpd.smtp import SMTP

    class Handler:
        def __init__(self):
            self.seq = len([n for n in os.listdir(spool) if n.endswith(".json")])

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            with open(reject_path) as f:
                rejected = {line.strip() for line in f if line.strip()}
            if address.lower() in rejected:
                return REJECT_REPLY.format(address)
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            self.seq += 1
            eml = f"{self.seq}.eml"
            with open(os.path.join(spool, eml), "wb") as f:
                f.write(envelope.original_content or envelope.content)
            tmp = os.path.join(spool, f"{self.seq}.json.tmp")
            with open(tmp, "w") as f:
                json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                           "file": eml, "received": time.time()}, f)
            os.replace(tmp, os.path.join(spool, f"{self.seq}.json"))
            return "250 Message accepted for delivery"

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler()
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="smtp.test"), host, port,
                           reuse_address=True))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    print(f"listening on {host}:{port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])

"""Small pieces the service runners share: ports, polling, failure policy."""

import os
import random
import socket
import time


class ServiceUnavailable(Exception):
    """A service the tests need could not be started on this machine.

    The harness only raises it; the test suite decides what it means
    (a failure when CI=true, a skip otherwise), so the benchmarks can
    use the same runners without pytest."""


def in_ci():
    return os.environ.get("CI", "").lower() == "true"


# Ports are drawn from one range so concurrent runs on one machine spread
# out; a drawn port is only returned once it was seen free.
PORT_RANGE = (20000, 29999)


def free_port(host="127.0.0.1"):
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise ServiceUnavailable(f"no free TCP port on {host} in {PORT_RANGE}")


# Deadlines are for a machine with a load average of 5 to 10 (parallel
# builds, a JVM broker, daemons under AddressSanitizer): waiting longer
# only costs time when a test is failing anyway.

def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns something truthy; return that.

    Raises TimeoutError naming `what` (and the last exception the
    predicate raised, which is usually the real reason)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ServiceUnavailable:
            raise  # a daemon that died will not come up by waiting
        except Exception as exc:  # noqa: BLE001 - reported below
            last_exc = exc
        if time.monotonic() >= deadline:
            why = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{why}")
        time.sleep(interval)


def lead_time(expected, minimum=3.0):
    """Seconds ahead to schedule something that set-up expected to take
    `expected` seconds (measured on this machine just now) must beat:
    `minimum` on a quiet machine, three times the measure and a second
    more on a loaded one, whose speed changes from one moment to the next."""
    return max(minimum, 3 * expected + 1)


def tail(path, lines=60):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""

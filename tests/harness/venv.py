"""Cached virtualenvs, each holding one pinned package from PyPI.

pytest stays on Debian's /usr/bin/python3; a tool the suite needs from
PyPI (MCP's client SDK, kubernetes-validate) lives in a venv of its own
under ${XDG_CACHE_HOME:-~/.cache}/todod-tests and runs there as a
subprocess.  A venv is built once and again only when the pin changes.
"""

import fcntl
import os
import subprocess

from .util import ServiceUnavailable

BASE_PYTHON = "/usr/bin/python3"


def cache_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "todod-tests")


def _run(argv, what):
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise ServiceUnavailable(f"{what} failed ({res.returncode}): {' '.join(argv)}\n"
                                 f"{res.stdout[-3000:]}")


class PinnedVenv:
    """A venv at cache_dir()/NAME with PACKAGE==VERSION installed."""

    def __init__(self, name, package, version):
        self.dir = os.path.join(cache_dir(), name)
        self.python = os.path.join(self.dir, "bin", "python")
        self.package = package
        self.version = version
        self._ready = False

    def installed(self):
        """The version of the package in the venv, or None."""
        if not os.access(self.python, os.X_OK):
            return None
        res = subprocess.run([self.python, "-c", "import importlib.metadata as m; "
                              f"print(m.version({self.package!r}))"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return res.stdout.strip() if res.returncode == 0 else None

    def ensure(self):
        """Build the venv unless it has the pin; returns its python.
        Raises ServiceUnavailable (a failure when CI=true, through
        conftest) when it cannot be had."""
        if self._ready:
            return self.python
        if self.installed() != self.version:
            os.makedirs(cache_dir(), exist_ok=True)
            # Concurrent test runs (two checkouts) must not build one venv
            # at the same time.
            with open(self.dir + ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if self.installed() != self.version:
                    self._build()
        self._ready = True
        return self.python

    def _build(self):
        probe = subprocess.run([BASE_PYTHON, "-c", "import venv, ensurepip"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if probe.returncode != 0:
            raise ServiceUnavailable("python3 cannot create virtualenvs: install Debian's "
                                     "python3-venv (contrib/install-deps.sh test)")
        pin = f"{self.package}=={self.version}"
        if not os.path.exists(self.python):
            _run([BASE_PYTHON, "-m", "venv", "--clear", self.dir], f"creating the venv for {pin}")
        _run([self.python, "-m", "pip", "install", "--disable-pip-version-check", "-q", pin],
             f"pip install {pin}")
        got = self.installed()
        if got != self.version:
            raise ServiceUnavailable(f"the venv {self.dir} has {self.package} {got}, "
                                     f"expected {self.version}")

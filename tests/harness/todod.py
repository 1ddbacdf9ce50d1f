"""Run the real todod binary: write its config, start it, talk to it, stop it."""

import glob
import json
import os
import resource
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from .pg import scalar
from .util import ServiceUnavailable, free_port, tail, wait_until

# The source tree this harness belongs to (for tests that build against it).
SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

def builddir():
    return os.path.abspath(os.environ.get("TODOD_BUILDDIR", "/tmp/h5build"))


def binary():
    path = os.path.join(builddir(), "todod")
    if not os.access(path, os.X_OK):
        raise ServiceUnavailable(f"no todod binary at {path}; build it, or point TODOD_BUILDDIR "
                                 "at the build directory")
    return path


def plugin_search_path():
    """Where built plugins are looked for, test plugins first."""
    dirs = []
    if os.environ.get("TODOD_TEST_PLUGINDIR"):
        dirs.append(os.environ["TODOD_TEST_PLUGINDIR"])
    dirs.append(os.path.join(builddir(), "tests", "plugins", ".libs"))
    dirs.extend(sorted(glob.glob(os.path.join(builddir(), "plugins", "*", ".libs"))))
    return dirs


def find_plugin(name):
    for d in plugin_search_path():
        path = os.path.join(d, name + ".so")
        if os.path.exists(path):
            return path
    # Test plugins are check-only libraries (`make check` builds them):
    # build the one asked for rather than fail on a fresh `make`.
    built = ""
    if os.path.exists(os.path.join(builddir(), "Makefile")):
        target = f"tests/plugins/{name}.la"
        res = subprocess.run(["make", "-s", "-C", builddir(), target],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        path = os.path.join(builddir(), "tests", "plugins", ".libs", name + ".so")
        if res.returncode == 0 and os.path.exists(path):
            return path
        built = f"; make {target} said:\n{res.stdout[-2000:]}"
    raise ServiceUnavailable(f"plugin {name}.so not found in {plugin_search_path()}{built}")


# Loopback only: an http_proxy in the environment must not see test traffic.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sanitizer_env():
    """Make a sanitizer report fatal and visible in the captured stderr."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def render_config(sections):
    """{"core": {...}, "plugin.probe": {...}} -> INI text, in order."""
    out = []
    for name, keys in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in keys.items())
        out.append("")
    return "\n".join(out)


def task_id(obj):
    """The id of a task as task.create returns it (bare, or under "task")."""
    if isinstance(obj.get("task"), dict):
        obj = obj["task"]
    return int(obj["id"])


class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


def http_call(method, url, body=None, headers=None, timeout=10):
    """One HTTP request to `url` (a dict body goes as JSON); a Response for
    every HTTP status.  Connection-level failures raise OSError."""
    data = body
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, bytearray)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    started = time.monotonic()
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return Response(resp.status, dict(resp.headers), resp.read(),
                            time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers), exc.read(), time.monotonic() - started)


class Todod:
    """One todod process with its own work dir, config file and stderr log.

    `plugins` maps plugin names to their option dicts; each plugin's .so is
    linked into a private plugin_dir so test and real plugins can mix."""

    def __init__(self, database, plugins=None, core=None, workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="todod-run-")
        self.config_path = os.path.join(self.workdir, "todod.conf")
        self.stderr_path = os.path.join(self.workdir, "todod.stderr")
        self.plugin_dir = os.path.join(self.workdir, "plugins")
        self.port = free_port()
        self.proc = None
        self.binary = binary()
        self.plugins = dict(plugins or {})
        self.core = {
            "listen": f"127.0.0.1:{self.port}",
            "database": database,
            "plugin_dir": self.plugin_dir,
            "log_level": "debug",
        }
        self.core.update(core or {})
        os.makedirs(self.plugin_dir, exist_ok=True)
        for name in self.plugins:
            link = os.path.join(self.plugin_dir, name + ".so")
            if not os.path.lexists(link):
                os.symlink(find_plugin(name), link)
        self.write_config()

    # -- configuration -------------------------------------------------

    def sections(self):
        sections = {"core": self.core}
        for name, opts in self.plugins.items():
            sections[f"plugin.{name}"] = opts
        return sections

    def write_config(self, text=None):
        """Write the config (the given text, or the one built from
        core/plugins); return its path."""
        with open(self.config_path, "w") as f:
            f.write(text if text is not None else render_config(self.sections()))
        return self.config_path

    # -- the command line ----------------------------------------------

    def cli(self, *args, timeout=60):
        """Run `todod -c CONFIG ARGS...` to completion."""
        cmd = [self.binary, "-c", self.config_path, *args]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, env=sanitizer_env())

    def migrate(self):
        res = self.cli("migrate")
        if res.returncode != 0:
            raise AssertionError(f"todod migrate exited {res.returncode}:\n{res.stderr}")

    def add_user(self, name):
        """`todod user add`; returns the token (the last line of stdout)."""
        res = self.cli("user", "add", name, "--email", f"{name}@example.com")
        if res.returncode != 0:
            raise AssertionError(f"todod user add exited {res.returncode}:\n{res.stderr}")
        return res.stdout.strip().splitlines()[-1]

    def provision(self, name="probe"):
        """Migrate, add user `name`, and point the probe plugin (when
        configured) at that user.  Returns (user id, API token)."""
        self.migrate()
        token = self.add_user(name)
        uid = scalar(self.core["database"], "SELECT id FROM users WHERE name = %s", name)
        if "probe" in self.plugins:
            self.plugins["probe"]["user_id"] = uid
            self.write_config()
        return uid, token

    # -- the daemon ----------------------------------------------------

    def start(self, wait=True, timeout=60, max_fds=None):
        """`max_fds` lowers the daemon's descriptor limit (RLIMIT_NOFILE)."""
        self._log_offset = os.path.getsize(self.stderr_path) if os.path.exists(self.stderr_path) else 0
        err = open(self.stderr_path, "ab")
        limit_fds = None
        if max_fds is not None:
            def limit_fds():
                resource.setrlimit(resource.RLIMIT_NOFILE, (max_fds, max_fds))
        try:
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=sanitizer_env(), cwd=self.workdir,
                                         preexec_fn=limit_fds)
        finally:
            err.close()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=60):
        def healthy():
            if self.proc.poll() is not None:
                raise ServiceUnavailable(f"todod exited with {self.proc.returncode} during start-up:\n"
                                         f"{self.log_tail()}")
            try:
                return self.request("GET", "/healthz", timeout=2).status == 200
            except OSError:
                return False
        try:
            wait_until(healthy, timeout, what="todod /healthz")
        except TimeoutError as exc:
            raise ServiceUnavailable(f"{exc}\n{self.log_tail()}") from exc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Ask todod to stop; returns (exit code, seconds it took).  It is
        killed if it does not exit within `timeout`."""
        if not self.alive():
            return self.proc.returncode if self.proc else None, 0.0
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        return self.proc.returncode, time.monotonic() - started

    # -- logs ----------------------------------------------------------

    def log(self, since_start=False):
        try:
            with open(self.stderr_path, errors="replace") as f:
                if since_start:
                    f.seek(self._log_offset)
                return f.read()
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return tail(self.stderr_path, lines)

    def wait_log(self, needle, timeout=30):
        return wait_until(lambda: needle in self.log(), timeout, what=f"{needle!r} in todod's log")

    # -- HTTP ----------------------------------------------------------

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=None, headers=None, timeout=10):
        """One HTTP request; returns a Response for every HTTP status.
        Connection-level failures raise OSError."""
        return http_call(method, self.url(path), body, headers, timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def readiness(self):
        """(ready, checks) as /readyz reports them; checks maps each
        component ("database", "transport", plugins) to "ok" or why not."""
        resp = self.get("/readyz", timeout=5)
        return resp.status == 200, resp.json().get("checks", {})

    def wait_ready(self, ready=True, timeout=60):
        """Wait until /readyz says `ready`; returns its checks."""
        def check():
            state, checks = self.readiness()
            return checks if state == ready else None
        try:
            return wait_until(check, timeout, interval=0.1,
                              what=f"/readyz to say ready={ready}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {self.readiness()}\n{self.log_tail(30)}") from exc

    def metric(self, name, **labels):
        """The value of one series on /metrics (labels must match
        exactly); None when it is not there."""
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        series = f"{name}{{{want}}}" if want else name
        for line in self.get("/metrics").text.splitlines():
            got, _, value = line.rpartition(" ")
            if got == series:
                return float(value)
        return None

    def cpu_seconds(self):
        """User plus system CPU time the daemon has used so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def vmrss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def close(self):
        if self.alive():
            self.stop(timeout=15)


def start_all(replicas):
    """Starts the replicas side by side; returns the seconds it took."""
    started = time.monotonic()
    for t in replicas:
        t.start(wait=False)
    for t in replicas:
        t.wait_healthy()
    return time.monotonic() - started

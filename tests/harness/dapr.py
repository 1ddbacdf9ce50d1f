"""Dapr for the tests: Redis, the Dapr scheduler and daprd sidecars, all on
loopback, started by hand the way a self-hosted operator would.

The binaries come from contrib/build-dapr.sh (tests/run calls it), cached
in ${XDG_CACHE_HOME:-~/.cache}/todod-tests/dapr-1.18.0/bin, or from
$TODOD_DAPR_BINDIR.  The components a sidecar loads are exactly the files
in contrib/dapr/: its resources directory holds symbolic links to the
ones asked for, and the addresses in them come from daprd's environment
(envRef) and its secret store (a JSON file written here), never from an
edited copy.

    redis = RedisServer().start()                 # redis-server, password set
    sched = Scheduler().start()                   # fresh etcd data dir
    d = Daprd("todod", app_port=todod.port, scheduler=sched,
              pubsub="kafka", kafka=kafka, database=dsn)
    todod.start(); d.start()                      # app first: daprd waits for it
    d.publish("task-events", cloudevent)          # -> 204
    d.stop(); d.swap_pubsub("redis", redis=redis); d.start()

Start order matters (dapr-build.md pitfalls 11 and 19): the brokers, then
the scheduler (daprd's healthz stays 500 and job calls hang while it is
down), then the app (daprd blocks until the app port accepts), then daprd.
"""

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .todod import http_call
from .util import ServiceUnavailable, free_port, tail, wait_until

DAPR_VERSION = "1.18.0"
SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPONENTS_DIR = os.path.join(SRCDIR, "contrib", "dapr")

# The files of contrib/dapr a sidecar loads, by pub/sub backend.
PUBSUB_FILES = {"kafka": "pubsub-kafka.yaml", "redis": "pubsub-redis.yaml"}
COMMON_FILES = ("statestore-postgresql.yaml", "secretstore-file.yaml", "resiliency.yaml")
CONFIG_FILE = "config.yaml"

# Secret names the component files read (secretKeyRef) from "secretstore".
SECRET_STATESTORE_DSN = "todod-statestore-dsn"
SECRET_REDIS_PASSWORD = "todod-redis-password"


def bindir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.environ.get("TODOD_DAPR_BINDIR") or os.path.join(
        base, "todod-tests", f"dapr-{DAPR_VERSION}", "bin")


def dapr_binary(name):
    path = os.path.join(bindir(), name)
    if not os.access(path, os.X_OK):
        raise ServiceUnavailable(f"no {name} at {path}: run contrib/build-dapr.sh (tests/run "
                                 "does), or point TODOD_DAPR_BINDIR at a bin/ with daprd and "
                                 "scheduler")
    return path


def component_path(name):
    return os.path.join(COMPONENTS_DIR, name)


def _ports(n):
    """n distinct free loopback ports."""
    ports = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def rss_kib(pid):
    """VmRSS of a process from /proc, in KiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class _Process:
    """A service binary in its own process group, logging to a file."""

    name = "process"
    _own_tmp = True  # whether destroy() removes self.tmp

    def __init__(self, workdir):
        self.workdir = workdir
        self.logfile = os.path.join(workdir, f"{self.name}.log")
        self.proc = None

    def destroy(self):
        """Kill the process and remove its scratch directory."""
        self.kill9()
        if self._own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()

    def argv(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def _spawn(self):
        log = open(self.logfile, "ab")
        try:
            log.write(f"==== start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir,
                                         env=self.env(), start_new_session=True)
        finally:
            log.close()

    def _spawn_until(self, ready, timeout, what, interval=0.05):
        """Start the process and wait until ready() is true; a process
        that dies or never gets there is killed and named."""
        self._spawn()
        try:
            wait_until(ready, timeout, interval=interval, what=what)
        except TimeoutError as exc:
            self.kill9()
            raise ServiceUnavailable(f"{exc}\n{self.log_tail()}") from exc
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise ServiceUnavailable(f"{self.name} exited with {self.proc.returncode}:\n"
                                     f"{self.log_tail()}")

    @property
    def pid(self):
        return self.proc.pid

    def rss_kib(self):
        return rss_kib(self.proc.pid) if self.alive() else None

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return tail(self.logfile, lines)

    def stop(self, timeout=30):
        """SIGTERM and wait; SIGKILL when it does not go in `timeout`.
        Returns the seconds it took."""
        if not self.alive():
            return 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        return time.monotonic() - started

    def kill9(self):
        """A crash: SIGKILL to the whole process group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def freeze(self, frozen=True):
        """SIGSTOP (or SIGCONT): connections stay open, nothing answers."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)


# ---- Redis ----------------------------------------------------------------------

class RedisServer(_Process):
    """redis-server by hand (Debian's unit needs systemd, pitfall 21): loopback,
    a free port, a password, no persistence."""

    name = "redis"
    PASSWORD = "todod-redis-secret"

    def __init__(self, password=PASSWORD):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            raise ServiceUnavailable("redis-server is not installed (apt-get install redis-server)")
        self.tmp = tempfile.mkdtemp(prefix="todod-redis-")
        super().__init__(self.tmp)
        self.port = free_port()
        self.password = password

    def argv(self):
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--daemonize", "no", "--save", "", "--appendonly", "no", "--dir", self.tmp,
                "--protected-mode", "yes"]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def start(self, timeout=30):
        return self._spawn_until(self._pong, timeout, "redis-server to answer PING")

    def _pong(self):
        self._check_alive()
        return self.cli("PING") == "PONG"

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def cli(self, *args, timeout=30):
        """One redis-cli command; its raw output, stripped."""
        argv = [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(self.port),
                "--no-auth-warning"]
        if self.password:
            argv += ["-a", self.password]
        res = subprocess.run(argv + [str(a) for a in args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(f"redis-cli {' '.join(map(str, args))}: {res.stderr}")
        return res.stdout.strip()

    def stream(self, key):
        """The entries of a Redis stream as [(id, {field: value})]."""
        out = subprocess.run(
            [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(self.port),
             "--no-auth-warning", *(["-a", self.password] if self.password else []),
             "--json", "XRANGE", key, "-", "+"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError(f"XRANGE {key}: {out.stderr}")
        text = out.stdout.strip()
        if not text:
            return []
        entries = json.loads(text)
        return [(eid, dict(zip(fields[0::2], fields[1::2]))) for eid, fields in entries]



# ---- the scheduler ------------------------------------------------------------------

class Scheduler(_Process):
    """Dapr's scheduler with embedded etcd, every port free and on 127.0.0.1
    (except healthz, which v1.18.0 binds on all interfaces whatever it is
    told: pitfall 8).  The etcd data dir is fresh for each Scheduler and
    kept across stop/start, so jobs survive a restart."""

    name = "scheduler"

    def __init__(self, sched_id="sched0"):
        self.binary = dapr_binary("scheduler")
        self.tmp = tempfile.mkdtemp(prefix="todod-sched-")
        super().__init__(self.tmp)
        self.id = sched_id
        self.datadir = os.path.join(self.tmp, "etcd")
        self.port, self.healthz_port, self.etcd_client_port, self.etcd_peer_port = _ports(4)

    def argv(self):
        return [self.binary, "--id", self.id,
                "--listen-address", "127.0.0.1", "--port", str(self.port),
                "--healthz-listen-address", "127.0.0.1", "--healthz-port", str(self.healthz_port),
                "--enable-metrics=false",
                "--etcd-data-dir", self.datadir,
                "--etcd-client-port", str(self.etcd_client_port),
                "--etcd-client-listen-address", "127.0.0.1",
                "--etcd-initial-cluster", f"{self.id}=http://127.0.0.1:{self.etcd_peer_port}",
                "--log-level", "info"]

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=60):
        return self._spawn_until(self._healthy, timeout, "the scheduler's healthz", 0.1)

    def _healthy(self):
        self._check_alive()
        try:
            return http_call("GET", f"http://127.0.0.1:{self.healthz_port}/healthz",
                        timeout=2).status == 200
        except OSError:
            return False

    def restart(self, crash=False):
        (self.kill9 if crash else self.stop)()
        return self.start()



# ---- daprd ------------------------------------------------------------------------

class Daprd(_Process):
    """One sidecar for the app listening on 127.0.0.1:`app_port`.

    `pubsub` picks the pub/sub component file ("kafka" or "redis"); the
    backends it needs are given as `kafka` (a KafkaServer) and `redis` (a
    RedisServer).  `database` (a libpq DSN) is the state store's.
    `api_token` / `app_token` go to daprd as DAPR_API_TOKEN / APP_API_TOKEN.
    `secrets` adds entries to the secret store file."""

    name = "daprd"

    def __init__(self, app_id, app_port, scheduler=None, pubsub="kafka", kafka=None, redis=None,
                 database=None, api_token=None, app_token=None, secrets=None, workdir=None,
                 log_level="info", extra_args=()):
        self.binary = dapr_binary("daprd")
        self._own_tmp = workdir is None
        self.tmp = workdir or tempfile.mkdtemp(prefix="todod-daprd-")
        os.makedirs(self.tmp, exist_ok=True)
        super().__init__(self.tmp)
        self.app_id = app_id
        self.app_port = app_port
        self.scheduler = scheduler
        self.kafka = kafka
        self.redis = redis
        self.api_token = api_token
        self.app_token = app_token
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.http_port, self.grpc_port, self.internal_grpc_port = _ports(3)
        self.resources = os.path.join(self.tmp, "resources")
        self.secrets_file = os.path.join(self.tmp, "secrets.json")
        self.secrets = {}
        if database:
            self.secrets[SECRET_STATESTORE_DSN] = database
        if redis is not None:
            self.secrets[SECRET_REDIS_PASSWORD] = redis.password or ""
        self.secrets.update(secrets or {})
        self.pubsub = None
        self.swap_pubsub(pubsub, redis=redis, kafka=kafka)

    # -- the files it loads -------------------------------------------------

    def _write_secrets(self):
        tmp = self.secrets_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.secrets, f)
        os.replace(tmp, self.secrets_file)

    def swap_pubsub(self, pubsub, redis=None, kafka=None):
        """Make the resources dir hold the `pubsub` component file (and the
        common ones).  Stop daprd first: a running one hot-reloads its
        resources directory."""
        if pubsub not in PUBSUB_FILES:
            raise ValueError(f"pubsub must be one of {sorted(PUBSUB_FILES)}")
        if redis is not None:
            self.redis = redis
            self.secrets[SECRET_REDIS_PASSWORD] = redis.password or ""
        if kafka is not None:
            self.kafka = kafka
        if pubsub == "kafka" and self.kafka is None:
            raise ValueError("a Kafka pub/sub needs kafka=")
        if pubsub == "redis" and self.redis is None:
            raise ValueError("a Redis pub/sub needs redis=")
        os.makedirs(self.resources, exist_ok=True)
        for entry in os.listdir(self.resources):
            os.unlink(os.path.join(self.resources, entry))
        for name in (PUBSUB_FILES[pubsub], *COMMON_FILES):
            src = component_path(name)
            if not os.path.exists(src):
                raise ServiceUnavailable(f"component file {src} is missing")
            os.symlink(src, os.path.join(self.resources, name))
        self.pubsub = pubsub
        self._write_secrets()

    def env(self):
        env = dict(os.environ)
        for name in ("DAPR_API_TOKEN", "APP_API_TOKEN", "TODOD_KAFKA_BROKERS", "TODOD_REDIS_HOST"):
            env.pop(name, None)
        env["TODOD_DAPR_SECRETS_FILE"] = self.secrets_file
        if self.kafka is not None:
            env["TODOD_KAFKA_BROKERS"] = self.kafka.bootstrap
        if self.redis is not None:
            env["TODOD_REDIS_HOST"] = self.redis.address
        if self.api_token:
            env["DAPR_API_TOKEN"] = self.api_token
        if self.app_token:
            env["APP_API_TOKEN"] = self.app_token
        return env

    def argv(self):
        argv = [self.binary, "--app-id", self.app_id,
                "--app-port", str(self.app_port), "--app-channel-address", "127.0.0.1",
                "--dapr-listen-addresses", "127.0.0.1",
                "--dapr-http-port", str(self.http_port),
                "--dapr-grpc-port", str(self.grpc_port),
                "--dapr-internal-grpc-port", str(self.internal_grpc_port),
                "--dapr-internal-grpc-listen-address", "127.0.0.1",
                "--enable-metrics=false",
                "--resources-path", self.resources,
                "--config", component_path(CONFIG_FILE),
                "--placement-host-address", "",
                "--log-level", self.log_level]
        if self.scheduler is not None:
            argv += ["--scheduler-host-address", self.scheduler.address]
        return argv + self.extra_args

    # -- lifecycle ------------------------------------------------------------

    @property
    def endpoint(self):
        """What dapr-transport's http_endpoint names."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, wait=True, timeout=90):
        """Start daprd; with `wait`, until /v1.0/healthz answers 204 (the
        components loaded, the app channel up, the scheduler connected).
        The app must already listen on app_port."""
        self._spawn()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=90, path="/v1.0/healthz"):
        def healthy():
            self._check_alive()
            try:
                return http_call("GET", self.endpoint + path, timeout=2).status == 204
            except OSError:
                return False
        try:
            wait_until(healthy, timeout, interval=0.1, what=f"daprd {path}")
        except TimeoutError as exc:
            raise ServiceUnavailable(f"{exc}\n{self.log_tail()}") from exc

    def restart(self, crash=False, wait=True):
        (self.kill9 if crash else self.stop)()
        return self.start(wait=wait)

    # -- the Dapr API ---------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=10):
        hdrs = dict(headers or {})
        if self.api_token:
            hdrs.setdefault("dapr-api-token", self.api_token)
        return http_call(method, self.endpoint + path, body=body, headers=hdrs, timeout=timeout)

    def metadata(self):
        resp = self.request("GET", "/v1.0/metadata")
        assert resp.status == 200, resp
        return resp.json()

    def components(self):
        """{name: "type/version"} of the loaded components."""
        return {c["name"]: f"{c['type']}/{c['version']}"
                for c in self.metadata().get("components", [])}

    def subscriptions(self):
        return self.metadata().get("subscriptions", [])

    def publish(self, topic, event, pubsub="pubsub", metadata=None, headers=None,
                content_type="application/cloudevents+json"):
        """POST /v1.0/publish; returns the answer (204 on success)."""
        query = "&".join(f"metadata.{k}={v}" for k, v in (metadata or {}).items())
        body = event if isinstance(event, (bytes, bytearray)) else json.dumps(event).encode()
        hdrs = {"Content-Type": content_type, **(headers or {})}
        path = f"/v1.0/publish/{pubsub}/{topic}" + ("?" + query if query else "")
        return self.request("POST", path, body=body, headers=hdrs)

    def schedule_job(self, name, job, timeout=10):
        return self.request("POST", f"/v1.0/jobs/{name}", body=job, timeout=timeout)

    def get_job(self, name):
        return self.request("GET", f"/v1.0/jobs/{name}")

    def get_secret(self, store, key):
        return self.request("GET", f"/v1.0/secrets/{store}/{key}")

    def get_state(self, store, key):
        return self.request("GET", f"/v1.0/state/{store}/{key}")


# ---- an app for daprd to call ---------------------------------------------------------

class Recorded:
    """One request daprd made to the app."""

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.at = time.time()

    def json(self):
        return json.loads(self.body)


class SubscriberApp:
    """A small HTTP app in a thread of the test process, for daprd to
    deliver to without todod: it lists `subscriptions` on GET
    /dapr/subscribe, records every request and answers POSTs with
    `answer(recorded) -> (status, body)` (default 200 SUCCESS).  Answers
    go out in one write with TCP_NODELAY (pitfall 14: Nagle plus a delayed
    ACK costs 40 ms a delivery)."""

    def __init__(self, subscriptions=(), answer=None):
        self.subscriptions = list(subscriptions)
        self.answer = answer or (lambda rec: (200, {"status": "SUCCESS"}))
        self.requests = []
        self.lock = threading.Lock()
        self.port = free_port()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _reply(self, status, body):
                data = json.dumps(body).encode() if body is not None else b""
                head = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n").encode()
                self.wfile.write(head + data)
                self.wfile.flush()

            def _record(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(method, self.path, dict(self.headers), body)
                with app.lock:
                    app.requests.append(rec)
                return rec

            def do_GET(self):
                self._record("GET")
                if self.path == "/dapr/subscribe":
                    self._reply(200, app.subscriptions)
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self):
                rec = self._record("POST")
                status, body = app.answer(rec)
                self._reply(status, body)

            do_PUT = do_POST

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def received(self, path_prefix):
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def wait_for(self, path_prefix, n=1, timeout=60):
        wait_until(lambda: len(self.received(path_prefix)) >= n, timeout,
                   what=f"{n} request(s) to {path_prefix}")
        return self.received(path_prefix)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def listening_sockets(pid):
    """The TCP listening addresses ("ip:port") and bound UDP sockets of a
    process, from `ss`; for checking that nothing listens beyond loopback."""
    res = subprocess.run(["ss", "-Hlntup"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    out = []
    for line in res.stdout.splitlines():
        if f"pid={pid}," in line:
            cols = line.split()
            out.append((cols[0], cols[4]))
    return out


def wait_port(port, timeout=30):
    def accepts():
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    wait_until(accepts, timeout, what=f"127.0.0.1:{port} to accept")


# ---- todod with a sidecar ---------------------------------------------------------

def transport_options(daprd, names=None, **extra):
    """The [plugin.dapr-transport] options for a todod whose sidecar is
    `daprd`: its endpoint and tokens, the pub/sub and state store names of
    contrib/dapr, jobs on.  `names` (a KafkaNames) maps the logical topics
    to this test's own; `extra` adds or overrides options."""
    from .kafka import LOGICAL_TOPICS
    opts = {
        "http_endpoint": daprd.endpoint,
        "pubsub": "pubsub",
        "statestore": "statestore",
        "request_timeout": "5s",
        "jobs": "yes",
    }
    if daprd.api_token:
        opts["api_token"] = daprd.api_token
    if daprd.app_token:
        opts["app_token"] = daprd.app_token
    if names is not None and names.prefix:
        for logical in LOGICAL_TOPICS:
            opts[f"topic.{logical}"] = names.topic(logical)
    opts.update({k: str(v) for k, v in extra.items()})
    return opts


def start_with_sidecar(todod, timeout=90):
    """todod first (daprd blocks until the app port accepts), then its
    daprd, then until todod says it is ready (which waits for the
    sidecar)."""
    if not todod.alive():
        todod.start()
    if not todod.daprd.alive():
        todod.daprd.start(timeout=timeout)
    todod.wait_ready(timeout=timeout)
    return todod

"""The operator scripts of contrib/ops, run the way an operator runs them
on one machine (--self-hosted), against real services: PostgreSQL, an
SMTP server, Kafka and Redis, the Dapr scheduler, and a daprd started
from the daprd.sh that setup.sh writes.

setup.sh writes the deployment directory (todod.conf, daprd's resources,
secrets and tokens, daprd.sh, ops.env, an MCP token for the checks);
todod runs from that todod.conf and daprd from that daprd.sh.  Then each
script is run and judged by its exit status, what it says, and what an
operator would check behind it: the mails, the broker, the processes.

The cluster mode of each script needs a Kubernetes cluster with Dapr,
which the suite does not have; it is only checked to refuse clearly
without one.
"""

import glob
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import time

import pytest

from harness import scalar, wait_until
from harness.dapr import COMPONENTS_DIR, _ports, dapr_binary
from harness.kafka import LOGICAL_TOPICS
from harness.todod import SRCDIR

OPS = os.path.join(SRCDIR, "contrib", "ops")
SCRIPTS = ("setup.sh", "validate-deployment.sh", "infrastructure-swap.sh",
           "guaranteed-job-execution.sh", "simplified-operations.sh")
PLUGINS = ("mcp-tools", "reminders", "email", "recurrence", "dapr-transport")
PRIVATE = ("database-url", "dapr-api-token", "dapr-app-token", "dapr-secrets.json", "daprd.env",
           "ops-token")


def run(script, *args, timeout=300, env=None):
    res = subprocess.run([os.path.join(OPS, script), *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    print(f"\n---- {script} {' '.join(map(str, args[:2]))} (exit {res.returncode}) ----\n"
          f"{res.stdout}{res.stderr}", end="")
    return res


class Deployment:
    """The directory setup.sh wrote, the todod running from it, and the
    daprd running from its daprd.sh (pid in DIR/daprd.pid, as the
    scripts expect)."""

    def __init__(self, todod, directory, setup_args):
        self.t = todod
        self.dir = directory
        self.setup_args = setup_args

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def daprd_pid(self):
        try:
            return int(self.read("daprd.pid"))
        except (OSError, ValueError):
            return None

    def start_sidecar(self):
        with open(self.path("daprd.log"), "ab") as log:
            proc = subprocess.Popen([self.path("daprd.sh")], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        with open(self.path("daprd.pid"), "w") as f:
            f.write(f"{proc.pid}\n")
        self.proc = proc

    def kill_sidecar(self, sig=signal.SIGKILL):
        pid = self.daprd_pid()
        if pid is None:
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        wait_until(lambda: not _alive(pid), 30, what=f"daprd {pid} to exit")

    def daprd_log(self):
        try:
            with open(self.path("daprd.log"), errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of a child of this process counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def deployment(request, todod_factory, dapr_scheduler, kafka, kafka_names, redis, database, smtp,
               tmp_path):
    t = todod_factory(database, plugins={name: {} for name in PLUGINS})
    directory = str(tmp_path / "deploy")
    password_file = tmp_path / "redis-password"
    password_file.write_text(redis.password + "\n")
    http_port, grpc_port, internal_port = _ports(3)
    args = ["--self-hosted", directory, "--database", database,
            "--listen", f"127.0.0.1:{t.port}", "--plugin-dir", t.plugin_dir,
            "--pubsub", "kafka", "--kafka-brokers", kafka.bootstrap,
            "--redis-host", redis.address, "--redis-password-file", str(password_file),
            "--app-id", kafka_names.group, "--scheduler", dapr_scheduler.address,
            "--dapr-http-port", http_port, "--dapr-grpc-port", grpc_port,
            "--dapr-internal-grpc-port", internal_port, "--dapr-metrics-port", "0",
            "--smtp", smtp.url, "--mail-from", "Todo Bot <todod@example.org>",
            "--components", COMPONENTS_DIR, "--todod", t.binary, "--daprd", dapr_binary("daprd"),
            "--ops-user", "ops",
            # A Dapr job fires each reminder here, not the hourly scan.
            "--set", "plugin.reminders:scan_interval=1h",
            "--set", "plugin.email:timeout=5s", "--set", "core:retry_backoff=200ms"]
    for logical in LOGICAL_TOPICS:
        args += ["--set", f"plugin.dapr-transport:topic.{logical}={kafka_names.topic(logical)}"]
    res = run("setup.sh", *args)
    assert res.returncode == 0, res.stderr
    d = Deployment(t, directory, args)
    d.setup_output = res.stdout + res.stderr
    t.config_path = d.path("todod.conf")
    t.start()
    d.start_sidecar()
    try:
        t.wait_ready(timeout=90)
        yield d
    finally:
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            print(f"---- daprd log ({d.path('daprd.log')}) ----\n{d.daprd_log()}")
        d.kill_sidecar()


def test_setup_writes_a_deployment_that_validates(deployment, database, kafka_names):
    d, t = deployment, deployment.t
    out = d.setup_output
    assert "todod -t: " in out and "todod.conf is valid" in out, out
    # Secrets sit in files only their owner reads, referenced by name.
    for name in PRIVATE:
        assert stat.S_IMODE(os.stat(d.path(name)).st_mode) == 0o600, name
    conf = d.read("todod.conf")
    tokens = [d.read("dapr-api-token").strip(), d.read("dapr-app-token").strip(),
              d.read("ops-token").strip()]
    assert f"api_token = file:{d.dir}/dapr-api-token" in conf
    assert f"database = file:{d.dir}/database-url" in conf
    for token in tokens:
        assert len(token) >= 32
        assert token not in conf and token not in out
    assert database not in conf
    assert sorted(os.listdir(d.path("dapr"))) == ["pubsub-kafka.yaml", "resiliency.yaml",
                                                   "secretstore-file.yaml",
                                                   "statestore-postgresql.yaml"]
    assert os.path.realpath(d.path("dapr/pubsub-kafka.yaml")) == os.path.join(
        os.path.realpath(COMPONENTS_DIR), "pubsub-kafka.yaml")

    res = run("validate-deployment.sh", "--self-hosted", d.dir)
    assert res.returncode == 0, res.stdout
    for line in ("ok    todod /healthz", "ok    todod /readyz: ready",
                 "ok    todod /mcp refuses a client without a token (401)",
                 "ok    todod /mcp tools/list: 18 tools", "ok    daprd /v1.0/healthz",
                 "ok    daprd component pubsub: pubsub.kafka/v1",
                 "ok    daprd component statestore: state.postgresql/v2",
                 "ok    the pub/sub is kafka", "validate-deployment: 11 checks, 0 failed"):
        assert line in res.stdout, line
    reminders = kafka_names.topic("task-reminders")
    assert f"{reminders} (dead letters: {kafka_names.dlq('task-reminders')})" in res.stdout

    # Run again, setup keeps the tokens daprd and todod were started with.
    again = run("setup.sh", *d.setup_args)
    assert again.returncode == 0, again.stderr
    assert "keeping" in again.stdout
    assert [d.read("dapr-api-token").strip(), d.read("dapr-app-token").strip()] == tokens[:2]

    # The sidecar gone: the checks that depend on it fail, each saying why.
    d.kill_sidecar(signal.SIGTERM)
    t.wait_ready(ready=False, timeout=30)
    res = run("validate-deployment.sh", "--self-hosted", d.dir)
    assert res.returncode == 1, res.stdout
    endpoint = f"http://127.0.0.1:{d.setup_args[d.setup_args.index('--dapr-http-port') + 1]}"
    assert f"FAIL  todod /readyz: transport: Dapr sidecar at {endpoint} unreachable" in res.stdout
    assert "FAIL  daprd /v1.0/healthz: HTTP 000" in res.stdout
    assert "ok    todod /healthz" in res.stdout
    assert "ok    todod /mcp tools/list: 18 tools" in res.stdout


def test_guaranteed_job_execution_fires_each_reminder_once(deployment, smtp, database):
    d, t = deployment, deployment.t
    res = run("guaranteed-job-execution.sh", "--self-hosted", d.dir, "--count", 5, "--lead", 5,
              "--mail-dir", smtp.spool)
    assert res.returncode == 0, res.stdout
    assert "ok    5 of 5 reminders fired" in res.stdout
    assert "ok    5 of 5 reminders mailed exactly once" in res.stdout
    assert "job(s) back on this instance" in res.stdout
    assert "guaranteed-job-execution: 3 checks, 0 failed" in res.stdout
    # Behind the script: five mails, one per task, each fired by its Dapr job.
    subjects = [str(m.header("Subject")) for m in smtp.messages()]
    assert len(subjects) == 5 and len(set(subjects)) == 5, subjects
    assert all(s.startswith("Reminder: ops-check ") for s in subjects)
    assert (t.metric("todod_dapr_job_callbacks_total") or 0) >= 1
    assert scalar(database, "SELECT count(*) FROM tasks") == 0  # deleted at the end


def test_simplified_operations_dead_letters_a_poison_event(deployment, kafka, kafka_names):
    d = deployment
    res = run("simplified-operations.sh", "--self-hosted", d.dir, "--poison")
    assert res.returncode == 0, res.stdout
    dlq = kafka_names.dlq("task-reminders")
    reminders = kafka_names.topic("task-reminders")
    assert f"      {reminders} -> {dlq}" in res.stdout
    assert "ok    every subscription has a dead-letter topic" in res.stdout
    assert "ok    Resiliency policy loaded" in res.stdout
    assert f"todod answered it DROP: daprd moved it to {dlq}" in res.stdout
    assert "ok    still ready after the poison event" in res.stdout
    assert "dead letters in the database (todod dlq list)" in res.stdout
    assert "ID     WHEN (UTC)" in res.stdout
    [poison_id] = [w for w in res.stdout.split() if w.startswith("ops-poison-")]
    # Behind the script: the poison message is on the dead-letter topic.
    kafka.wait_records(dlq, lambda rs: [r for r in rs if r.json()["id"] == poison_id],
                       timeout=60, what="the poison event on the dead-letter topic")
    assert d.t.metric("todod_dapr_deliveries_total", status="DROP") == 1


def test_infrastructure_swap_to_redis_and_back(deployment, redis, kafka, kafka_names, smtp):
    d, t = deployment, deployment.t
    pid = t.pid
    with open(t.config_path, "rb") as f:
        config = hashlib.sha256(f.read()).hexdigest()

    res = run("infrastructure-swap.sh", "--self-hosted", d.dir, "--to", "redis")
    assert res.returncode == 0, res.stdout
    assert "ok    the pub/sub is redis" in res.stdout
    assert "ok    the deployment validates on redis" in res.stdout
    assert os.listdir(d.path("dapr")).count("pubsub-redis.yaml") == 1
    assert not os.path.exists(d.path("dapr/pubsub-kafka.yaml"))
    # Events now travel on Redis Streams: reminders made now are mailed.
    res = run("guaranteed-job-execution.sh", "--self-hosted", d.dir, "--count", 2, "--lead", 4,
              "--mail-dir", smtp.spool)
    assert res.returncode == 0, res.stdout
    assert redis.stream(kafka_names.topic("task-events")), "no task event on Redis Streams"
    on_kafka_before = len(kafka.read_topic(kafka_names.topic("task-events")))

    res = run("infrastructure-swap.sh", "--self-hosted", d.dir, "--to", "kafka")
    assert res.returncode == 0, res.stdout
    assert "ok    the pub/sub is kafka" in res.stdout
    res = run("guaranteed-job-execution.sh", "--self-hosted", d.dir, "--count", 2, "--lead", 4,
              "--mail-dir", smtp.spool)
    assert res.returncode == 0, res.stdout
    assert len(kafka.read_topic(kafka_names.topic("task-events"))) > on_kafka_before
    # todod itself never restarted, and its configuration never changed.
    assert t.pid == pid and t.alive()
    with open(t.config_path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == config
    assert smtp.count() == 4


def test_scripts_are_shellcheck_clean_and_refuse_clearly_without_a_cluster(tmp_path):
    scripts = sorted(glob.glob(os.path.join(OPS, "*.sh")))
    assert {os.path.basename(s) for s in scripts} >= set(SCRIPTS)
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (contrib/install-deps.sh test)"
    res = subprocess.run([shellcheck, "-x", *scripts], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, cwd=SRCDIR)
    assert res.returncode == 0, res.stdout
    # No cluster here: each script's cluster mode says so and exits 2.
    env = {"KUBECONFIG": str(tmp_path / "no-such-kubeconfig"), "PATH": os.environ["PATH"]}
    for script in SCRIPTS:
        assert run(script, "--help").returncode == 0
        extra = ("--to", "redis") if script == "infrastructure-swap.sh" else ()
        started = time.monotonic()
        res = run(script, "-n", "todod-ops-test", *extra, env=env, timeout=120)
        assert res.returncode == 2, (script, res.stdout, res.stderr)
        assert f"{script[:-3]}: error: " in res.stderr, res.stderr
        assert time.monotonic() - started < 60

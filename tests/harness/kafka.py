"""A throwaway Apache Kafka broker: single node, KRaft, loopback only.

Debian has no Kafka package, so the broker is assembled from Maven Central
jars (org.apache.kafka:kafka_2.13 with its runtime dependencies, plus the
log4j2 backend its POM leaves out) that Maven resolves once into
${XDG_CACHE_HOME:-~/.cache}/todod-tests/kafka-<version>/libs; later runs
only start a JVM.  Each server formats its own log dir and listens on:

  PLAINTEXT      127.0.0.1:<port>           no auth
  SASL_PLAINTEXT 127.0.0.1:<sasl_port>      SCRAM-SHA-256, SCRAM-SHA-512, PLAIN
  SSL            127.0.0.1:<ssl_port>       TLS, no auth
  SASL_SSL       127.0.0.1:<sasl_ssl_port>  TLS + the same SASL mechanisms
  CONTROLLER     127.0.0.1:<free port>      KRaft quorum, not for clients

The TLS listeners present a certificate for IP:127.0.0.1 and
DNS:localhost signed by a CA made for this broker alone (ca_file, PEM),
generated with openssl into the broker's temp dir when it is created.

The SASL user (SASL_USER / SASL_PASSWORD) is written into the cluster
metadata when the storage is formatted, so it exists before any client
connects.  Clients on librdkafka older than 2.6.1 (Debian 12 has 2.0.2)
fail SCRAM against every Kafka 4.x ("invalid credentials": they send a
doubled nonce, librdkafka #4895); PLAIN works with any version.

Topics are read and written with kcat over PLAINTEXT (Debian's kcat links
librdkafka 2.0.2, which is fine without SCRAM), consumer groups are
described with Kafka's own admin tool:

    kafka.produce("task-events", b"not json", key="42")
    kafka.read_topic("task-events")      # -> [Record(partition, offset, key, value, headers)]
    kafka.group_members("todod")         # -> [Member(consumer_id, client_id, partitions)]
"""

import base64
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field

from .tls import make_ca, make_server_cert
from .util import ServiceUnavailable, free_port, tail, wait_until

# Debian's librdkafka 2.0.2 only enables its group consumer when the broker
# lists JoinGroup v0, which 4.0.0 dropped and 4.0.1/4.1 put back
# (KAFKA-19444); groups and idempotent produce were checked on 4.1.2 and 4.4.0.
KAFKA_VERSION = os.environ.get("TODOD_KAFKA_VERSION", "4.1.2")
# The backend for the slf4j 1.7 API the broker POM pulls in.
LOG4J_VERSION = "2.24.3"

SASL_USER = "todod"
SASL_PASSWORD = "todod-secret"

# Extra jars beside the broker: the log backend, and kafka-tools for the
# admin command-line classes (topics, consumer groups).  kafka-tools drags
# in Kafka Connect (Jetty, Jersey) for one tool the tests never run.
_EXTRA_ARTIFACTS = [
    ("org.apache.kafka", "kafka-tools", "{kafka}", "org.apache.kafka:connect-runtime"),
    ("org.apache.logging.log4j", "log4j-core", "{log4j}", None),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", "{log4j}", None),
]

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>todod.tests</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {logfile}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
"""

# The broker logs this once every listener is serving requests.
_STARTED = "Kafka Server started"

JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true"]


GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"

# The topics todod uses (DESIGN §6), by their logical names.
LOGICAL_TOPICS = ("task-events", "task-recurrence", "task-reminders")


@dataclass
class Record:
    """One message read back from a topic."""
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    headers: dict = field(default_factory=dict)   # name -> last value (str)

    def json(self):
        return json.loads(self.value)


@dataclass
class Member:
    """One member of a consumer group as the admin tool describes it."""
    consumer_id: str
    client_id: str
    partitions: int


def kcat():
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if not path:
        raise ServiceUnavailable("kcat is not installed (apt-get install kcat)")
    return path


def cache_dir(version=KAFKA_VERSION):
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "todod-tests", f"kafka-{version}")


def _dependency(group, artifact, version, exclude):
    excl = ""
    if exclude:
        eg, ea = exclude.split(":")
        excl = (f"<exclusions><exclusion><groupId>{eg}</groupId>"
                f"<artifactId>{ea}</artifactId></exclusion></exclusions>")
    return (f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version>{excl}</dependency>")


def _pom(version):
    coords = [("org.apache.kafka", "kafka_2.13", "{kafka}", None), *_EXTRA_ARTIFACTS]
    deps = "\n".join(_dependency(g, a, v.format(kafka=version, log4j=LOG4J_VERSION), x)
                      for g, a, v, x in coords)
    return _POM.format(deps=deps)


def broker_jars(version=KAFKA_VERSION):
    """The directory holding every jar the broker needs, resolving it with
    Maven on first use.  A lock keeps concurrent test runs from fetching
    into the same place; the directory only appears once it is complete."""
    root = cache_dir(version)
    libs = os.path.join(root, "libs")
    if os.path.isdir(libs):
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceUnavailable(f"Kafka {version} jars are not cached in {libs} "
                                 "and Maven (mvn) is not installed to fetch them")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(libs):
            return libs  # another run fetched them while we waited
        work = tempfile.mkdtemp(prefix="fetch-", dir=root)
        try:
            with open(os.path.join(work, "pom.xml"), "w") as f:
                f.write(_pom(version))
            res = subprocess.run(
                [mvn, "-B", "-q", "dependency:copy-dependencies", "-DincludeScope=runtime",
                 f"-DoutputDirectory={os.path.join(work, 'libs')}"],
                cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if res.returncode != 0:
                raise ServiceUnavailable(f"Maven could not fetch Kafka {version} "
                                         f"({res.returncode}):\n{res.stdout[-4000:]}")
            os.rename(os.path.join(work, "libs"), libs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return libs


def _cluster_id():
    """A random cluster id as Kafka writes them: 22 base64url characters.
    Kafka never hands out one starting with '-' (it would read as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaServer:
    """One combined broker+controller (node.id 1) on loopback.

    Tuned for tests: one partition per topic, replication factor 1,
    no fsync beyond the OS default."""

    def __init__(self, version=KAFKA_VERSION):
        self.version = version
        self.java = shutil.which("java")
        if not self.java:
            raise ServiceUnavailable("java is not installed (Kafka 4 needs Java 17 or newer)")
        self.libs = broker_jars(version)
        self.tmp = tempfile.mkdtemp(prefix="todod-kafka-")
        self.logdir = os.path.join(self.tmp, "data")
        self.config = os.path.join(self.tmp, "server.properties")
        self.log4j = os.path.join(self.tmp, "log4j2.properties")
        self.logfile = os.path.join(self.tmp, "server.log")
        self.stdout = os.path.join(self.tmp, "stdout.log")
        self.port = free_port()
        self.sasl_port = self._another_port(self.port)
        self.ssl_port = self._another_port(self.port, self.sasl_port)
        self.sasl_ssl_port = self._another_port(self.port, self.sasl_port, self.ssl_port)
        self.controller_port = self._another_port(self.port, self.sasl_port, self.ssl_port,
                                                  self.sasl_ssl_port)
        self.ca = make_ca(self.tmp, "kafka-ca")
        self.keystore = make_server_cert(self.tmp, self.ca, "kafka-server")
        self.proc = None
        self._write_config()

    @staticmethod
    def _another_port(*taken):
        while True:
            port = free_port()
            if port not in taken:
                return port

    def _write_config(self):
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
        listeners = ",".join(f"{name}://127.0.0.1:{port}" for name, port in (
            ("PLAINTEXT", self.port), ("SASL_PLAINTEXT", self.sasl_port),
            ("SSL", self.ssl_port), ("SASL_SSL", self.sasl_ssl_port),
            ("CONTROLLER", self.controller_port)))
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                                              "SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,"
                                              "SASL_SSL:SASL_SSL",
            # A PEM file with the key and then the certificate; the key is
            # not encrypted, so no password is set at all.
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": self.keystore,
            "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
            **{f"listener.name.{listener}.{mech}.sasl.jaas.config": config
               for listener in ("sasl_plaintext", "sasl_ssl")
               for mech, config in (
                   ("scram-sha-256", f"{scram} required;"),
                   ("scram-sha-512", f"{scram} required;"),
                   ("plain", f'{plain} required user_{SASL_USER}="{SASL_PASSWORD}";'))},
            "log.dirs": self.logdir,
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A lone test consumer should not wait 3 s for others to join.
            "group.initial.rebalance.delay.ms": "0",
            # After a kill -9 the controller keeps the broker fenced until
            # its old session expires (9 s by default): restarts in the
            # outage tests take 5 s instead of 13.
            "broker.session.timeout.ms": "2000",
            "broker.heartbeat.interval.ms": "500",
        }
        with open(self.config, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in props.items())
        with open(self.log4j, "w") as f:
            f.write(_LOG4J2.format(logfile=self.logfile))

    def _java(self, main, *args, log_to_file=False):
        # Only the broker logs to the file; the short-lived tools keep
        # log4j2's default (errors on the console, which _run reports).
        log = [f"-Dlog4j2.configurationFile={self.log4j}"] if log_to_file else []
        return [self.java, *JVM_OPTS, *log, "-cp", os.path.join(self.libs, "*"), main, *args]

    def _run(self, main, *args, timeout=120):
        argv = self._java(main, *args)
        try:
            res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, cwd=self.tmp, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ServiceUnavailable(f"{main} {' '.join(args)} timed out after {timeout}s") \
                from exc
        if res.returncode != 0:
            raise ServiceUnavailable(f"{main} {' '.join(args)} failed ({res.returncode}):\n"
                                     f"{res.stdout[-4000:]}")
        return res.stdout

    def format(self):
        users = [f"{mech}=[name={SASL_USER},password={SASL_PASSWORD}]"
                 for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512")]
        self._run("kafka.tools.StorageTool", "format", "--standalone",
                  "--cluster-id", _cluster_id(), "--config", self.config,
                  *[arg for user in users for arg in ("--add-scram", user)])

    # -- lifecycle -----------------------------------------------------

    def start(self, timeout=180):
        if not os.path.exists(os.path.join(self.logdir, "meta.properties")):
            self.format()
        # Each start logs afresh, so readiness is judged on this run's lines.
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.logfile, self.logfile + ".old")
        out = open(self.stdout, "ab")
        try:
            # Its own process group, as for PostgreSQL: a Ctrl-C meant for
            # pytest must not take the broker down behind the test's back.
            self.proc = subprocess.Popen(self._java("kafka.Kafka", self.config, log_to_file=True),
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp,
                                         start_new_session=True)
        finally:
            out.close()
        try:
            wait_until(self._ready, timeout, interval=0.1, what="Kafka to start")
        except TimeoutError as exc:
            self.stop(mode="immediate")
            raise ServiceUnavailable(f"Kafka did not start: {exc}\n{self._logs()}") from exc
        return self

    def _logs(self):
        return tail(self.logfile) + tail(self.stdout, 20)

    def _ready(self):
        if self.proc.poll() is not None:
            raise ServiceUnavailable(f"kafka exited with {self.proc.returncode}:\n{self._logs()}")
        try:
            with open(self.logfile, errors="replace") as f:
                if _STARTED not in f.read():
                    return False
        except FileNotFoundError:
            return False
        with socket.create_connection(("127.0.0.1", self.port), timeout=2):
            return True

    def stop(self, mode="graceful", timeout=60):
        """Stop the broker: graceful (SIGTERM, controlled shutdown, logs
        flushed) or immediate (SIGKILL, like a crash).  start() brings it
        back on the same ports with the same data."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.freeze(False)  # a stopped JVM would never act on the signal
        if mode == "immediate":
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def freeze(self, frozen=True):
        """SIGSTOP (or SIGCONT) the broker: connections stay open but
        nothing answers, as in a network partition."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def destroy(self):
        self.stop(mode="immediate")
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- access --------------------------------------------------------

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self):
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def ssl_bootstrap(self):
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def sasl_ssl_bootstrap(self):
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ca_file(self):
        """The PEM certificate of the CA that signed the TLS listeners'
        certificate: what a client trusts."""
        return self.ca.cert

    def admin(self, main, *args, timeout=120):
        """Run one of Kafka's admin tools (a class from kafka-tools, e.g.
        org.apache.kafka.tools.TopicCommand) against the PLAINTEXT listener;
        returns its output."""
        return self._run(main, "--bootstrap-server", self.bootstrap, *args, timeout=timeout)

    def create_topic(self, name, partitions=1):
        self.admin("org.apache.kafka.tools.TopicCommand", "--create", "--topic", name,
                   "--partitions", str(partitions), "--replication-factor", "1")
        return name

    def _kcat(self, *args, timeout=30):
        return subprocess.run([kcat(), "-b", self.bootstrap, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def read_topic(self, topic, timeout=30):
        """Every message on `topic`, from the beginning to the current end
        of each partition, in partition then offset order.  A topic that
        does not exist yet reads as empty."""
        res = self._kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J",
                         timeout=timeout)
        err = res.stderr.decode(errors="replace")
        if res.returncode != 0:
            if "Unknown topic" in err:
                return []
            raise AssertionError(f"kcat -C -t {topic} exited {res.returncode}: {err}")
        out = []
        for line in res.stdout.decode().splitlines():
            if not line.strip():
                continue
            m = json.loads(line)
            names = m.get("headers") or []
            payload = m.get("payload")
            out.append(Record(topic=m["topic"], partition=m["partition"], offset=m["offset"],
                              key=m.get("key"),
                              value=None if payload is None else payload.encode(),
                              headers=dict(zip(names[0::2], names[1::2]))))
        out.sort(key=lambda r: (r.partition, r.offset))
        return out

    def wait_records(self, topic, predicate, timeout=60, what=None):
        """Read `topic` until predicate(records) is truthy; returns the records."""
        seen = []

        def check():
            seen[:] = self.read_topic(topic)
            return predicate(seen)
        wait_until(check, timeout, interval=0.3,
                   what=what or f"the expected messages on {topic} ({len(seen)} seen)")
        return list(seen)

    def produce(self, topic, value, key=None, partition=None, headers=None):
        """Produce one message (bytes or str, as is) and wait until the
        broker has it."""
        if isinstance(value, str):
            value = value.encode()
        with tempfile.NamedTemporaryFile(prefix="kcat-", dir=self.tmp) as f:
            # kcat sends each file named on its command line as one
            # message, byte for byte (stdin would be split at newlines).
            f.write(value)
            f.flush()
            args = ["-P", "-t", topic]
            if key is not None:
                args += ["-k", str(key)]
            if partition is not None:
                args += ["-p", str(partition)]
            for name, val in (headers or {}).items():
                args += ["-H", f"{name}={val}"]
            res = self._kcat(*args, f.name)
        if res.returncode != 0:
            raise AssertionError(f"kcat -P -t {topic} exited {res.returncode}: "
                                 f"{res.stderr.decode(errors='replace')}")

    def partitions(self, topic):
        """The number of partitions of `topic` (0 when it does not exist)."""
        res = self._kcat("-L", "-t", topic, "-J")
        if res.returncode != 0:
            return 0
        [meta] = json.loads(res.stdout)["topics"]
        return 0 if meta.get("error") else len(meta["partitions"])

    def group_members(self, group):
        """The members of consumer group `group` with how many partitions
        each owns; [] when the group has no active member."""
        out = self.admin(GROUP_COMMAND, "--describe", "--group", group, "--members",
                         "--verbose", timeout=60)
        members = []
        header = None
        for line in out.splitlines():
            cols = line.split()
            if not cols:
                continue
            if cols[0] == "GROUP":
                header = cols
                continue
            if header and cols[0] == group and len(cols) >= 5:
                info = dict(zip(header, cols))
                members.append(Member(consumer_id=info["CONSUMER-ID"],
                                      client_id=info["CLIENT-ID"],
                                      partitions=int(info["#PARTITIONS"])))
        return members

    def group_offsets(self, group):
        """{(topic, partition): (committed offset or None, log end offset)}."""
        out = self.admin(GROUP_COMMAND, "--describe", "--group", group, "--offsets",
                         timeout=60)
        offsets = {}
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 5 and cols[0] == group and cols[2].isdigit():
                current = int(cols[3]) if cols[3].isdigit() else None
                end = int(cols[4]) if cols[4].isdigit() else None
                offsets[(cols[1], int(cols[2]))] = (current, end)
        return offsets

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()


@dataclass
class KafkaNames:
    """The topic prefix and consumer group of one test, so tests sharing
    one broker never see each other's events.  An empty prefix means
    DESIGN's default topic names."""
    prefix: str
    group: str

    def topic(self, logical):
        return f"{self.prefix}-{logical}" if self.prefix else logical

    def dlq(self, logical):
        return self.topic(logical) + "-dlq"


def todod_options(kafka, names, sasl=None, tls=None, **extra):
    """The [plugin.kafka-direct] options for a todod on `kafka`.

    Every logical topic is mapped to names.topic(logical) (topic.<logical>
    options) and created by the plugin (create_topics) with one partition
    unless extra says otherwise.  `sasl` = (mechanism, username, password
    or secret reference) logs in on the SASL_PLAINTEXT listener.  `tls`
    talks TLS instead, to the SSL listener (SASL_SSL with `sasl`),
    trusting kafka.ca_file when it is True or the CA file it names.
    `extra` adds or overrides options, e.g. topic_partitions=4 or
    **{"librdkafka.session.timeout.ms": 6000}."""
    brokers = {(False, False): kafka.bootstrap, (True, False): kafka.sasl_bootstrap,
               (False, True): kafka.ssl_bootstrap, (True, True): kafka.sasl_ssl_bootstrap}
    opts = {
        "brokers": brokers[(bool(sasl), bool(tls))],
        "group_id": names.group,
        "create_topics": "true",
        "topic_partitions": "1",
        "topic_replication": "1",
        "max_attempts": "3",
        "retry_backoff": "100ms",
    }
    if sasl or tls:
        opts["security_protocol"] = ("sasl_" if sasl else "") + ("ssl" if tls else "plaintext")
    if sasl:
        mechanism, username, password = sasl
        opts.update(sasl_mechanism=mechanism, username=username, password=password)
    if tls:
        opts["ssl_ca"] = kafka.ca_file if tls is True else str(tls)
    if names.prefix:
        for logical in LOGICAL_TOPICS:
            opts[f"topic.{logical}"] = names.topic(logical)
    opts.update({k: str(v) for k, v in extra.items()})
    return opts


def librdkafka_version(shared_object):
    """The version of the librdkafka that `shared_object` (a plugin .so)
    loads, e.g. "2.12.1"; None when it does not link librdkafka."""
    res = subprocess.run(["ldd", shared_object], stdout=subprocess.PIPE, text=True)
    for line in res.stdout.splitlines():
        name, _, rest = line.strip().partition(" => ")
        if name.startswith("librdkafka.so") and rest.startswith("/"):
            lib = ctypes.CDLL(rest.split()[0])
            lib.rd_kafka_version_str.restype = ctypes.c_char_p
            return lib.rd_kafka_version_str().decode()
    return None

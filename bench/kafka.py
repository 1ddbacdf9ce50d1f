"""Benchmark the kafka-direct transport against a real Apache Kafka broker,
a throwaway PostgreSQL, a real SMTP server and a fresh todod.

Started by bench/kafka.sh.  todod runs kafka-direct (PLAINTEXT, topics
created at start), mcp-tools, reminders and email.  Three runs:

  publish    PUBLISH_TASKS add_task calls over MCP, one at a time on one
             keep-alive connection, paced at PUBLISH_RATE per second.  For
             each event: outbox created_at (clock_timestamp() at its INSERT,
             a fraction of a millisecond before the commit) -> sent_at (the
             relay's UPDATE once the broker's delivery reports for the whole
             batch are in), read back from the outbox table; and created_at
             -> the moment a kcat consumer of task-events printed it.  The /metrics histograms
             todod_outbox_publish_latency_seconds (commit -> delivery
             report, per event, in the relay) and
             todod_kafka_produce_latency_seconds (produce() -> delivery
             report) are scraped before and after, and their quantiles
             interpolated from the bucket counts; librdkafka's split of the
             latter (todod_kafka_producer_stage_seconds: queue, send, broker
             round trip) is sampled once a second.
  burst      BURST_TASKS add_task calls at once over BURST_CONNECTIONS
             keep-alive connections (threads released together): from the
             first event's created_at until the last one's sent_at, and
             until kcat has seen the last one on task-events.
  reminders  bench/reminders.py's latency run, here through Kafka: tasks
             created with SQL reach the reminders plugin from task-events,
             and their reminder.due events reach email from task-reminders;
             a second kcat on task-reminders times remind_at -> on the topic.

The broker is warmed up before todod starts (warm_broker: a JVM started
seconds earlier answers produce requests tens of times slower than one
that has been running, which a deployed broker has).  The broker,
PostgreSQL, the SMTP server, kcat and this script share the cores with
todod, so they are part of what is measured.  All times are
wall-clock on one host (PostgreSQL's clock_timestamp() and time.time()).
"""

import contextlib
import http.client
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from harness import (KafkaServer, PostgresServer, Response, Todod, builddir,  # noqa: E402
                     find_plugin, query, scalar, task_id)
from harness.e2e import McpHttp  # noqa: E402
from harness.kafka import kcat, librdkafka_version  # noqa: E402
from harness.smtp import SmtpServer  # noqa: E402

import reminders  # noqa: E402  (bench/reminders.py: the reminder latency run)
from summary import print_checks, sanitized  # noqa: E402

PUBLISH_TASKS = int(os.environ.get("PUBLISH_TASKS", "2000"))
PUBLISH_RATE = float(os.environ.get("PUBLISH_RATE", "200"))
BURST_TASKS = int(os.environ.get("BURST_TASKS", "1000"))
BURST_CONNECTIONS = int(os.environ.get("BURST_CONNECTIONS", "50"))
REMINDER_TASKS = int(os.environ.get("REMINDER_TASKS", "500"))
REMINDER_SPREAD = float(os.environ.get("REMINDER_SPREAD", "10"))
WARMUP_REQUESTS = int(os.environ.get("WARMUP_REQUESTS", "20000"))
SETTLE_TIMEOUT = 30.0   # seconds to wait for events to be sent / consumed
TOPIC = "task-events"
DUE_TOPIC = "task-reminders"

vm_kib, percentile = reminders.vm_kib, reminders.percentile


class KeepAlive:
    """todod's HTTP listener over one persistent connection; stands in for
    the Todod object McpHttp posts through (it only calls request())."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method, path, body=None, headers=None):
        started = time.monotonic()
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        return Response(resp.status, dict(resp.getheaders()), data, time.monotonic() - started)

    def close(self):
        self.conn.close()


class TopicWatch:
    """A kcat consumer of one topic from its beginning, keeping each
    CloudEvent with the time it was first printed, and counting those that
    came more than once."""

    def __init__(self, bootstrap, topic, errlog):
        self.cmd = [kcat(), "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-u", "-q",
                    "-f", "%s\\n"]
        self.arrived, self.dups, self.unreadable = {}, 0, 0
        self.lock = threading.Lock()
        with open(errlog, "ab") as err:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            at = time.time()
            try:
                event = json.loads(line)
                event_id = event["id"]
            except (ValueError, KeyError, TypeError):
                self.unreadable += 1
                continue
            with self.lock:
                if event_id in self.arrived:
                    self.dups += 1
                else:
                    self.arrived[event_id] = (at, event)

    def times(self, event_ids):
        with self.lock:
            return {e: self.arrived[e][0] for e in event_ids if e in self.arrived}

    def of_type(self, ce_type):
        """[(first arrival, event)] of every event of one CloudEvents type."""
        with self.lock:
            return [(at, ev) for at, ev in self.arrived.values() if ev.get("type") == ce_type]

    def wait_for(self, event_ids, timeout=SETTLE_TIMEOUT):
        """{event id: first arrival} once all arrived, or what did by the timeout."""
        deadline = time.monotonic() + timeout
        while len(self.times(event_ids)) < len(event_ids) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.times(event_ids)

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def created_events(dsn, ids):
    """{event id: (created_at, sent_at or None)} of the task.created events
    of the given tasks, as epoch seconds."""
    rows = query(dsn, "SELECT event_id::text, extract(epoch FROM created_at)::float8,"
                      "       extract(epoch FROM sent_at)::float8"
                      "  FROM outbox WHERE type = 'todod.task.created' AND key = ANY(%s)",
                 [str(i) for i in ids])
    return {eid: (created, sent) for eid, created, sent in rows}


def wait_sent(dsn, ids, timeout=SETTLE_TIMEOUT):
    """created_events() once every one is marked sent, or at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        events = created_events(dsn, ids)
        done = len(events) == len(ids) and all(s is not None for _, s in events.values())
        if done or time.monotonic() > deadline:
            return events
        time.sleep(0.02)


# -- /metrics histograms ------------------------------------------------------

def scrape_buckets(todod, family):
    """{upper bound: cumulative count} of a histogram family, summed over
    its series (kafka-direct labels its series by topic)."""
    text = todod.get("/metrics").text
    pattern = re.compile(rf'^{family}_bucket\{{(.*)\}} (\S+)$')
    out = {}
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
            bound = float("inf") if le == "+Inf" else float(le)
            out[bound] = out.get(bound, 0) + float(m.group(2))
    return out


def scrape_counter(todod, name):
    """A counter without labels, or None when todod has no such series."""
    m = re.search(rf'^{name} (\S+)$', todod.get("/metrics").text, re.M)
    return float(m.group(1)) if m else None


def bucket_quantile(before, after, q):
    """Prometheus' histogram_quantile over the observations made between two
    scrapes: linear within the bucket; past the last finite bound, that
    bound.  None without observations."""
    bounds = sorted(after)
    cum = [after[b] - before.get(b, 0) for b in bounds]
    if not cum or cum[-1] <= 0:
        return None
    rank = q * cum[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, cum):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def hist_summary(before, after):
    n = (after.get(float("inf"), 0) - before.get(float("inf"), 0))
    qs = [bucket_quantile(before, after, q) for q in (0.5, 0.95, 0.99)]
    if None in qs:
        return "no observations (series missing from /metrics?)"
    return (f"p50 ~{qs[0] * 1000:.1f}ms  p95 ~{qs[1] * 1000:.1f}ms  p99 ~{qs[2] * 1000:.1f}ms  "
            f"count {n:.0f}")


STAGE = re.compile(r'^todod_kafka_producer_stage_seconds\{broker="[^"]*",stage="([^"]+)",'
                   r'quantile="([^"]+)"\} (\S+)$')


class StageSampler:
    """Samples kafka-direct's per-stage gauges (librdkafka's statistics:
    partition queue, request send, broker rtt; one window a second) while a
    run lasts, so the producer's time can be split."""

    def __init__(self, todod):
        self.todod, self.samples, self.stop = todod, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(1.0):
            found = {}
            for line in self.todod.get("/metrics").text.splitlines():
                m = STAGE.match(line)
                if m:
                    found[(m.group(1), m.group(2))] = float(m.group(3))
            self.samples.append(found)

    def summary(self):
        """Per stage, the median over the sampled windows of each window's
        p50/p95/p99 (the last window repeats while no request was made)."""
        self.stop.set()
        self.thread.join()
        parts = []
        for stage in ("queue", "send", "broker"):
            qs = []
            for q in ("0.5", "0.95", "0.99"):
                values = sorted(s[(stage, q)] for s in self.samples if (stage, q) in s)
                if not values:
                    break
                qs.append(f"{values[len(values) // 2] * 1000:.1f}")
            if len(qs) == 3:
                parts.append(f"{stage} {'/'.join(qs)}")
        if not parts:
            return "no statistics (series missing from /metrics?)"
        return "  ".join(parts) + f" ms p50/p95/p99 ({len(self.samples)} windows)"


def quantiles(values):
    """p50/p95/p99/max of a list of seconds, as text in milliseconds."""
    if not values:
        return "no values"
    v = sorted(values)
    return (f"p50 {percentile(v, 50) * 1000:.1f}ms  p95 {percentile(v, 95) * 1000:.1f}ms  "
            f"p99 {percentile(v, 99) * 1000:.1f}ms  max {v[-1] * 1000:.1f}ms")


# -- the runs -----------------------------------------------------------------

def publish_run(t, token, dsn, watch):
    mcp = McpHttp(KeepAlive(t.port), token)
    families = ("todod_outbox_publish_latency_seconds", "todod_kafka_produce_latency_seconds")
    before = {f: scrape_buckets(t, f) for f in families}
    claims_before = scrape_counter(t, "todod_outbox_claims_total")
    stages = StageSampler(t)
    ids = []
    t0 = time.monotonic()
    for i in range(PUBLISH_TASKS):
        ahead = t0 + i / PUBLISH_RATE - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        ids.append(task_id(mcp.call("add_task", title=f"pub-{i}")))
    rate = PUBLISH_TASKS / (time.monotonic() - t0)
    mcp.todod.close()
    events = wait_sent(dsn, ids)
    seen = watch.wait_for(list(events))
    after = {f: scrape_buckets(t, f) for f in families}
    claims = scrape_counter(t, "todod_outbox_claims_total")
    stage_split = stages.summary()
    sent = [s - c for c, s in events.values() if s is not None]
    # The first events of a run also wait for the topic's metadata.
    created = sorted(c for c, _ in events.values())
    settled = created[min(len(created), int(PUBLISH_RATE)) - 1] if created else 0
    sent_later = [s - c for c, s in events.values() if s is not None and c > settled]
    consumed = [seen[e] - c for e, (c, _) in events.items() if e in seen]
    return {"rate": rate, "events": len(events), "sent": len(sent), "consumed": len(consumed),
            "sent_q": quantiles(sent), "sent_later_q": quantiles(sent_later),
            "consumed_q": quantiles(consumed),
            "outbox_hist": hist_summary(before[families[0]], after[families[0]]),
            "produce_hist": hist_summary(before[families[1]], after[families[1]]),
            "claims": (f"{claims - claims_before:.0f} ({(claims - claims_before) / len(events):.2f}"
                       " per event)" if claims is not None and events else "not counted"),
            "stages": stage_split}


def burst_run(t, token, dsn, watch):
    clients = [McpHttp(KeepAlive(t.port), token) for _ in range(BURST_CONNECTIONS)]
    share = [BURST_TASKS // BURST_CONNECTIONS + (i < BURST_TASKS % BURST_CONNECTIONS)
             for i in range(BURST_CONNECTIONS)]
    ids, failures = [], []
    lock = threading.Lock()
    gate = threading.Barrier(BURST_CONNECTIONS + 1)

    def create(n, mcp, count):
        gate.wait()
        for j in range(count):
            try:
                tid = task_id(mcp.call("add_task", title=f"burst-{n}-{j}"))
            except (AssertionError, OSError, KeyError, ValueError) as exc:
                with lock:
                    failures.append(repr(exc))
                continue
            with lock:
                ids.append(tid)

    threads = [threading.Thread(target=create, args=(n, c, k))
               for n, (c, k) in enumerate(zip(clients, share))]
    for th in threads:
        th.start()
    gate.wait()
    started = time.time()
    for th in threads:
        th.join()
    calls_s = time.time() - started
    for c in clients:
        c.todod.close()
    events = wait_sent(dsn, ids)
    seen = watch.wait_for(list(events))
    first = min((c for c, _ in events.values()), default=started)
    sent = [s for _, s in events.values() if s is not None]
    return {"calls_s": calls_s, "created": len(ids), "failures": failures,
            "events": len(events), "sent": len(sent), "consumed": len(seen),
            "created_span_s": max((c for c, _ in events.values()), default=first) - first,
            "acked_s": max(sent) - first if sent else None,
            "on_topic_s": max(seen.values()) - first if seen else None,
            "client_lag_s": first - started}


def reminder_run(dsn, uid, smtp, due_watch):
    """bench/reminders.py's latency run with this benchmark's sizes, and
    the part of it up to the reminder.due event being on task-reminders."""
    reminders.LATENCY_TASKS, reminders.SPREAD = REMINDER_TASKS, REMINDER_SPREAD
    lat = reminders.latency_run(dsn, uid, smtp)
    # The event's remind_at is whole seconds; the table has the exact one.
    remind_at = dict(query(dsn, "SELECT title, extract(epoch FROM remind_at)::float8 FROM tasks"
                                " WHERE title LIKE 'lat-%%'"))
    on_topic = [at - remind_at[ev["data"]["task"]["title"]]
                for at, ev in due_watch.of_type("todod.reminder.due")
                if ev["data"]["task"]["title"] in remind_at]
    lat["due_events"], lat["due_q"] = len(on_topic), quantiles(on_topic)
    return lat


def warm_broker(broker, errlog):
    """A broker started seconds ago runs Kafka's request paths in the JVM's
    interpreter until the JIT has compiled them: its produce round trip is
    then tens of milliseconds, not the fraction of one a broker that has
    been serving for a while answers in.  So before todod starts, kcat
    sends WARMUP_REQUESTS one-message idempotent acks=all produce requests
    to a topic of its own while a second kcat tails it (the fetches a
    produce completes).  Nothing of todod is warmed; WARMUP_REQUESTS=0
    measures a cold broker.  Returns the seconds it took."""
    if WARMUP_REQUESTS <= 0:
        return 0.0
    started = time.monotonic()
    topic = "bench-warmup"
    with open(errlog, "ab") as err:
        tail = subprocess.Popen([kcat(), "-C", "-b", broker.bootstrap, "-t", topic, "-o", "end",
                                 "-q", "-u"], stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL)
        try:
            lines = b"".join(b"warm-up %d\n" % i for i in range(WARMUP_REQUESTS))
            subprocess.run([kcat(), "-P", "-b", broker.bootstrap, "-t", topic,
                            "-X", "linger.ms=0", "-X", "batch.num.messages=1",
                            "-X", "enable.idempotence=true", "-X", "acks=all"],
                           input=lines, stdout=subprocess.DEVNULL, stderr=err, check=True,
                           timeout=300)
        finally:
            tail.terminate()
            tail.wait()
    return time.monotonic() - started


def kafka_options(broker):
    """The plugin's defaults but for the broker, and what the environment varies."""
    opts = {"brokers": broker.bootstrap, "create_topics": "yes"}
    if os.environ.get("KAFKA_LINGER_MS"):
        opts["linger"] = os.environ["KAFKA_LINGER_MS"] + "ms"
    if os.environ.get("KAFKA_PARTITIONS"):
        opts["topic_partitions"] = os.environ["KAFKA_PARTITIONS"]
    for item in os.environ.get("KAFKA_OPTIONS", "").split():
        key, _, value = item.partition("=")
        opts[key] = value
    return opts


def main():
    core = {"log_level": "warn", "db_pool_size": os.environ.get("DB_POOL_SIZE", "4")}
    load = [os.getloadavg()[0]]
    broker = KafkaServer()
    with contextlib.ExitStack() as stack:
        stack.callback(broker.destroy)
        broker.start()
        warm_s = warm_broker(broker, os.path.join(broker.tmp, "warmup.stderr"))
        pg = stack.enter_context(PostgresServer())
        smtp = stack.enter_context(SmtpServer())
        pg.create_database("todod")
        dsn = pg.dsn("todod")
        kafka = kafka_options(broker)
        t = Todod(pg.uri("todod"), core=core,
                  plugins={"kafka-direct": kafka, "mcp-tools": {"auth": "token"},
                           "reminders": {},
                           "email": {"server": smtp.url, "from": "Todo Bot <todod@example.org>"}})
        stack.callback(t.close)
        uid, token = t.provision("bench")
        t.start()
        t.wait_ready()
        warn = sanitized(t.pid)
        rdkafka = librdkafka_version(find_plugin("kafka-direct"))
        errlog = os.path.join(t.workdir, "kcat.stderr")
        watch = TopicWatch(broker.bootstrap, TOPIC, errlog)
        stack.callback(watch.close)
        due_watch = TopicWatch(broker.bootstrap, DUE_TOPIC, errlog)
        stack.callback(due_watch.close)
        time.sleep(0.5)
        rss_idle = vm_kib(t.pid, "VmRSS")
        print(f"todod pid {t.pid}, Kafka {broker.version} on {broker.bootstrap}, "
              f"PostgreSQL on port {pg.port}, SMTP {smtp.url}, build {builddir()}, "
              f"librdkafka {rdkafka}, {os.cpu_count()} cores", flush=True)
        print(f"  consumers: {shlex.join(watch.cmd)}\n             {shlex.join(due_watch.cmd)}",
              flush=True)
        print(f"  broker warmed with {WARMUP_REQUESTS} produce requests in {warm_s:.1f}s "
              f"(WARMUP_REQUESTS=0 for a cold one)", flush=True)

        pub = publish_run(t, token, dsn, watch)
        print(f"publish: {PUBLISH_TASKS} add_task at {pub['rate']:.0f}/s: "
              f"{pub['sent']}/{pub['events']} sent, {pub['consumed']} seen by kcat\n"
              f"  outbox created_at -> sent_at (per event, from the table): {pub['sent_q']}\n"
              f"    after the first second: {pub['sent_later_q']}\n"
              f"  outbox created_at -> on {TOPIC} (kcat): {pub['consumed_q']}\n"
              f"  /metrics todod_outbox_publish_latency_seconds: {pub['outbox_hist']}\n"
              f"  /metrics todod_kafka_produce_latency_seconds: {pub['produce_hist']}\n"
              f"  librdkafka's split (todod_kafka_producer_stage_seconds): {pub['stages']}\n"
              f"  relay claims (todod_outbox_claims_total): {pub['claims']}",
              flush=True)

        burst = burst_run(t, token, dsn, watch)
        print(f"burst: {burst['created']} add_task over {BURST_CONNECTIONS} connections "
              f"in {burst['calls_s']:.3f}s ({len(burst['failures'])} failed); first "
              f"created -> last created {burst['created_span_s']:.3f}s, -> all acknowledged "
              f"{fmt_s(burst['acked_s'])} ({burst['sent']}/{burst['events']}), -> all on "
              f"{TOPIC} {fmt_s(burst['on_topic_s'])} ({burst['consumed']}/{burst['events']})",
              flush=True)
        if burst["failures"]:
            print(f"  first failure: {burst['failures'][0]}", flush=True)

        lat = reminder_run(dsn, uid, smtp, due_watch)
        print(f"reminders: {lat['count']} messages for {REMINDER_TASKS} reminders spread over "
              f"{REMINDER_SPREAD:g}s: p50 {lat['p50']:.3f}s  p95 {lat['p95']:.3f}s  "
              f"p99 {lat['p99']:.3f}s  max {lat['max']:.3f}s  min {lat['min']:.3f}s  "
              f"missing {lat['missing']}  duplicates {lat['dups']}\n"
              f"  remind_at -> reminder.due on {DUE_TOPIC} (kcat): {lat['due_q']} "
              f"({lat['due_events']} events)", flush=True)

        rss_end = vm_kib(t.pid, "VmRSS")
        hwm = vm_kib(t.pid, "VmHWM")
        dead = scalar(dsn, "SELECT count(*) FROM dead_letters")
        unsent = scalar(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        alive = t.alive()
        load.append(os.getloadavg()[0])

    target = 1.0
    checks = [
        (f"publish: {PUBLISH_TASKS} sent and seen", pub["sent"] == PUBLISH_TASKS
         and pub["consumed"] == PUBLISH_TASKS,
         f"{pub['sent']} sent, {pub['consumed']} on {TOPIC}"),
        (f"burst: {BURST_TASKS} created", burst["created"] == BURST_TASKS,
         f"{burst['created']}, {len(burst['failures'])} failed"),
        (f"burst: all acknowledged < {target:g} s", burst["sent"] == BURST_TASKS
         and burst["acked_s"] is not None and burst["acked_s"] < target,
         f"{fmt_s(burst['acked_s'])} ({burst['sent']} sent)"),
        (f"burst: all on {TOPIC} < {target:g} s", burst["consumed"] == BURST_TASKS
         and burst["on_topic_s"] is not None and burst["on_topic_s"] < target,
         f"{fmt_s(burst['on_topic_s'])} ({burst['consumed']} seen)"),
        (f"reminders: {REMINDER_TASKS} mailed once", lat["count"] == REMINDER_TASKS
         and not lat["missing"] and not lat["dups"] and not lat["strangers"],
         f"{lat['count']} received, {lat['missing']} missing, {lat['dups']} duplicates"),
        (f"reminders: {REMINDER_TASKS} due on {DUE_TOPIC}", lat["due_events"] == REMINDER_TASKS
         and due_watch.dups == 0, f"{lat['due_events']} events, {due_watch.dups} duplicates"),
        ("reminder latency p95 < 1 s", lat["p95"] < 1, f"{lat['p95']:.3f} s"),
        (f"no duplicates on {TOPIC}", watch.dups == 0 and watch.unreadable == 0,
         f"{watch.dups} duplicates, {watch.unreadable} unreadable"),
        ("outbox empty, no dead letters, alive", unsent == 0 and dead == 0 and alive,
         f"{unsent} unsent, {dead} dead letters"),
    ]
    print_checks("kafka-direct", checks, warn)
    print(f"publish latency, outbox created_at -> sent_at (per event): {pub['sent_q']}")
    print(f"  (the relay's /metrics histogram, commit -> delivery report: {pub['outbox_hist']};"
          f" produce() -> delivery report: {pub['produce_hist']})")
    print(f"{BURST_TASKS} at once: all acknowledged {fmt_s(burst['acked_s'])}, all on {TOPIC} "
          f"{fmt_s(burst['on_topic_s'])} after the first was created "
          f"(the add_task calls took {burst['calls_s']:.3f}s)")
    print(f"reminder latency remind_at -> 250 via Kafka: p50 {lat['p50']:.3f}s  "
          f"p95 {lat['p95']:.3f}s  p99 {lat['p99']:.3f}s  max {lat['max']:.3f}s  "
          f"count {lat['count']}")
    print(f"memory (VmRSS): idle {rss_idle} KiB, end {rss_end} KiB, peak (VmHWM) {hwm} KiB")
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/kafka.sh   (PUBLISH_TASKS, "
          f"PUBLISH_RATE, BURST_TASKS, BURST_CONNECTIONS, REMINDER_TASKS, REMINDER_SPREAD, "
          f"KAFKA_LINGER_MS, KAFKA_PARTITIONS, KAFKA_OPTIONS, DB_POOL_SIZE, WARMUP_REQUESTS to vary)")
    print(f"  machine: {os.cpu_count()} cores shared by todod, Kafka, PostgreSQL, the SMTP "
          f"server, kcat and this script (1-min load average {load[0]:.2f} at the start, "
          f"{load[-1]:.2f} at the end); todod db_pool_size {core['db_pool_size']}, "
          f"kafka-direct {', '.join(f'{k} = {v}' for k, v in kafka.items())} (the rest "
          f"its defaults), librdkafka {rdkafka}")
    return 0


def fmt_s(secs):
    return "n/a" if secs is None else f"{secs:.3f}s"


if __name__ == "__main__":
    sys.exit(main())

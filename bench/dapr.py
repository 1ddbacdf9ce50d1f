"""Benchmark the dapr-transport plugin through a real Dapr sidecar, with
Apache Kafka behind it, against the issue's targets.

Started by bench/dapr.sh.  Services as the tests run them
(tests/harness): PostgreSQL, a Kafka 4.x broker, an SMTP server
(aiosmtpd), the Dapr scheduler, then todod (mcp-tools, reminders, email,
dapr-transport with jobs) and its daprd with the component files of
contrib/dapr (pubsub-kafka.yaml, the state store, the secret store, the
Resiliency policy, config.yaml).  Runs, in order:

  publish    PUBLISH_TASKS add_task calls over MCP at PUBLISH_RATE per
             second on one keep-alive connection: outbox created_at (at the
             INSERT, just before the commit) -> sent_at (the relay's UPDATE
             once daprd answered 204 for the batch), per event; and the
             /metrics histograms todod_outbox_publish_latency_seconds
             (commit -> acknowledged) and todod_dapr_publish_latency_seconds
             (POST /v1.0/publish -> 204).
  burst      BURST_TASKS add_task calls at once over BURST_CONNECTIONS
             connections: first event created -> last one acknowledged by
             daprd (and seen on task-events by kcat).
  sustained  SUSTAINED_EVENTS events written to the outbox in one
             transaction: events/s from the first sent_at to the last,
             with the CPU seconds todod, daprd and the broker used meanwhile
             and the mean time inside daprd's publish call.
  reminders  bench/reminders.py's latency run: REMINDER_TASKS reminders
             spread over REMINDER_SPREAD seconds; each fired by its own
             Dapr job (scheduled by dapr-transport from the task.created
             event), the reminder.due event through daprd and Kafka to the
             email plugin; remind_at -> the SMTP server's 250.

daprd's and todod's resident memory (VmRSS) are sampled every 0.2 s over
all runs.  Everything shares the machine's cores with todod.
"""

import contextlib
import os
import shlex
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from harness import KafkaServer, PostgresServer, Todod, builddir, query, scalar  # noqa: E402
from harness.dapr import (Daprd, Scheduler, bindir, start_with_sidecar,  # noqa: E402
                          transport_options)
from harness.smtp import SmtpServer  # noqa: E402

import kafka as kbench  # noqa: E402  (bench/kafka.py: the publish and burst runs)
import reminders  # noqa: E402  (bench/reminders.py: the reminder latency run)
from summary import print_checks, sanitized  # noqa: E402

kbench.PUBLISH_TASKS = int(os.environ.get("PUBLISH_TASKS", "2000"))
kbench.PUBLISH_RATE = float(os.environ.get("PUBLISH_RATE", "200"))
kbench.BURST_TASKS = int(os.environ.get("BURST_TASKS", "1000"))
kbench.BURST_CONNECTIONS = int(os.environ.get("BURST_CONNECTIONS", "50"))
kbench.REMINDER_TASKS = int(os.environ.get("REMINDER_TASKS", "500"))
kbench.REMINDER_SPREAD = float(os.environ.get("REMINDER_SPREAD", "10"))
SUSTAINED_EVENTS = int(os.environ.get("SUSTAINED_EVENTS", "5000"))
APP_ID = "todod"
TOPIC = "task-events"


class RssSampler(threading.Thread):
    """The largest VmRSS seen of each pid, every 0.2 s."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = dict(pids)
        self.peak = {name: 0 for name in self.pids}
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError, StopIteration):
                    self.peak[name] = max(self.peak[name], reminders.vm_kib(pid, "VmRSS"))
            self.stopping.wait(0.2)

    def stop(self):
        self.stopping.set()
        self.join()


def publish_run(t, token, dsn, watch):
    """bench/kafka.py's publish run, with dapr-transport's histogram."""
    mcp = kbench.McpHttp(kbench.KeepAlive(t.port), token)
    families = ("todod_outbox_publish_latency_seconds", "todod_dapr_publish_latency_seconds")
    before = {f: kbench.scrape_buckets(t, f) for f in families}
    ids = []
    t0 = time.monotonic()
    for i in range(kbench.PUBLISH_TASKS):
        ahead = t0 + i / kbench.PUBLISH_RATE - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        ids.append(kbench.task_id(mcp.call("add_task", title=f"pub-{i}")))
    rate = kbench.PUBLISH_TASKS / (time.monotonic() - t0)
    mcp.todod.close()
    events = kbench.wait_sent(dsn, ids)
    seen = watch.wait_for(list(events))
    after = {f: kbench.scrape_buckets(t, f) for f in families}
    sent = [s - c for c, s in events.values() if s is not None]
    return {"rate": rate, "events": len(events), "sent": len(sent), "sent_v": sent,
            "consumed": len(seen), "sent_q": kbench.quantiles(sent),
            "hists": [kbench.hist_summary(before[f], after[f]) for f in families]}


def direct_run(daprd, count, rate):
    """`count` publishes straight to daprd from this script, one at a time
    on one keep-alive connection at `rate` per second, as dapr-transport
    makes them (rawPayload, partitionKey): what daprd and Kafka cost
    without todod."""
    import http.client
    import json
    conn = http.client.HTTPConnection("127.0.0.1", daprd.http_port, timeout=30)
    headers = {"Content-Type": "application/cloudevents+json",
               "dapr-api-token": daprd.api_token}
    took = []
    t0 = time.monotonic()
    for i in range(count):
        ahead = t0 + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        body = json.dumps({"specversion": "1.0", "id": f"direct-{i}", "source": "/bench",
                           "type": "bench.direct", "subject": f"task/{i}",
                           "datacontenttype": "application/json", "data": {"n": i}})
        started = time.monotonic()
        conn.request("POST", f"/v1.0/publish/pubsub/bench-direct?metadata.rawPayload=true"
                             f"&metadata.partitionKey={i}", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 204:
            raise SystemExit(f"direct publish answered {resp.status}")
        took.append(time.monotonic() - started)
    conn.close()
    return kbench.quantiles(took)


def sustained_run(t, daprd, broker, dsn, uid):
    """SUSTAINED_EVENTS task.created events committed at once; how fast the
    relay hands them to daprd, and who spends the CPU."""
    before = {"todod": reminders.cpu_s(t.pid), "daprd": reminders.cpu_s(daprd.pid),
              "kafka": reminders.cpu_s(broker.proc.pid)}
    hist = "todod_dapr_publish_latency_seconds"
    sum_before = t.metric(f"{hist}_sum") or 0.0
    count_before = t.metric(f"{hist}_count") or 0.0
    query(dsn, "SELECT todod_task_create(%s, jsonb_build_object('title', 'sus-' || i), NULL, NULL)"
               "  FROM generate_series(1, %s) AS i", uid, SUSTAINED_EVENTS)
    deadline = time.monotonic() + 120
    while (scalar(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") > 0
           and time.monotonic() < deadline):
        time.sleep(0.05)
    first, last, n = query(dsn, "SELECT extract(epoch FROM min(sent_at))::float8,"
                                " extract(epoch FROM max(sent_at))::float8, count(sent_at)"
                                " FROM outbox o JOIN tasks k ON o.key = k.id::text"
                                " WHERE k.title LIKE 'sus-%%' AND o.type = 'todod.task.created'")[0]
    cpu = {name: (reminders.cpu_s(pid) - before[name])
           for name, pid in (("todod", t.pid), ("daprd", daprd.pid),
                             ("kafka", broker.proc.pid))}
    calls = (t.metric(f"{hist}_count") or 0.0) - count_before
    in_daprd = ((t.metric(f"{hist}_sum") or 0.0) - sum_before) / calls if calls else None
    span = (last - first) if first and last else None
    return {"sent": n, "span_s": span, "rate": n / span if span else None, "cpu": cpu,
            "calls": calls, "in_daprd_ms": in_daprd * 1000 if in_daprd else None}


def main():
    core = {"log_level": "warn", "db_pool_size": os.environ.get("DB_POOL_SIZE", "4")}
    load = [os.getloadavg()[0]]
    broker = KafkaServer()
    with contextlib.ExitStack() as stack:
        stack.callback(broker.destroy)
        broker.start()
        pg = stack.enter_context(PostgresServer())
        smtp = stack.enter_context(SmtpServer())
        sched = stack.enter_context(Scheduler())
        pg.create_database("todod")
        dsn = pg.dsn("todod")
        t = Todod(pg.uri("todod"), core=core,
                  plugins={"mcp-tools": {"auth": "token"}, "reminders": {},
                           "email": {"server": smtp.url, "from": "Todo Bot <todod@example.org>"},
                           "dapr-transport": {}})
        stack.callback(t.close)
        t.daprd = Daprd(APP_ID, t.port, scheduler=sched, pubsub="kafka", kafka=broker,
                        database=pg.uri("todod"), api_token="bench-api", app_token="bench-app",
                        log_level="warn")
        stack.callback(t.daprd.destroy)
        t.plugins["dapr-transport"] = transport_options(t.daprd)
        t.write_config()
        uid, token = t.provision("bench")
        start_with_sidecar(t)
        warn = sanitized(t.pid)
        errlog = os.path.join(t.workdir, "kcat.stderr")
        watch = kbench.TopicWatch(broker.bootstrap, TOPIC, errlog)
        stack.callback(watch.close)
        due_watch = kbench.TopicWatch(broker.bootstrap, kbench.DUE_TOPIC, errlog)
        stack.callback(due_watch.close)
        rss = RssSampler({"todod": t.pid, "daprd": t.daprd.pid})
        rss.start()
        stack.callback(rss.stop)
        time.sleep(0.5)
        idle = {"todod": t.vmrss_kib(), "daprd": t.daprd.rss_kib()}
        print(f"todod pid {t.pid} on :{t.port}, daprd {t.daprd.pid} ({bindir()}/daprd) on "
              f":{t.daprd.http_port}, scheduler :{sched.port}, Kafka {broker.version} on "
              f"{broker.bootstrap}, PostgreSQL :{pg.port}, SMTP {smtp.url}, build {builddir()}, "
              f"{os.cpu_count()} cores", flush=True)
        print(f"  consumers: {shlex.join(watch.cmd)}", flush=True)

        direct = direct_run(t.daprd, 1000, kbench.PUBLISH_RATE)
        print(f"direct: 1000 publishes from this script straight to daprd at "
              f"{kbench.PUBLISH_RATE:.0f}/s, one at a time: {direct}", flush=True)

        pub = publish_run(t, token, dsn, watch)
        print(f"publish: {kbench.PUBLISH_TASKS} add_task at {pub['rate']:.0f}/s: "
              f"{pub['sent']}/{pub['events']} acknowledged, {pub['consumed']} seen by kcat\n"
              f"  outbox created_at -> sent_at (per event): {pub['sent_q']}\n"
              f"  /metrics todod_outbox_publish_latency_seconds: {pub['hists'][0]}\n"
              f"  /metrics todod_dapr_publish_latency_seconds: {pub['hists'][1]}", flush=True)

        burst = kbench.burst_run(t, token, dsn, watch)
        print(f"burst: {burst['created']} add_task over {kbench.BURST_CONNECTIONS} connections in "
              f"{burst['calls_s']:.3f}s ({len(burst['failures'])} failed); first created -> "
              f"all acknowledged {kbench.fmt_s(burst['acked_s'])}, -> all on {TOPIC} "
              f"{kbench.fmt_s(burst['on_topic_s'])}", flush=True)

        sus = sustained_run(t, t.daprd, broker, dsn, uid)
        print(f"sustained: {sus['sent']} events in {kbench.fmt_s(sus['span_s'])}: "
              f"{sus['rate'] or 0:.0f} events/s; CPU s todod {sus['cpu']['todod']:.1f}, daprd "
              f"{sus['cpu']['daprd']:.1f}, Kafka {sus['cpu']['kafka']:.1f}; {sus['calls']:.0f} "
              f"publish calls, {sus['in_daprd_ms'] or 0:.2f} ms each inside daprd", flush=True)

        reminders.LEAD = 8.0  # the jobs are scheduled from the events first
        lat = kbench.reminder_run(dsn, uid, smtp, due_watch)
        jobs = t.metric("todod_dapr_job_callbacks_total") or 0
        print(f"reminders: {lat['count']} messages for {kbench.REMINDER_TASKS} reminders over "
              f"{kbench.REMINDER_SPREAD:g}s: p50 {lat['p50']:.3f}s  p95 {lat['p95']:.3f}s  "
              f"p99 {lat['p99']:.3f}s  max {lat['max']:.3f}s  missing {lat['missing']}  "
              f"duplicates {lat['dups']}; {jobs:.0f} job callbacks", flush=True)

        rss.stop()
        end = {"todod": t.vmrss_kib(), "daprd": t.daprd.rss_kib()}
        unsent = scalar(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        alive = t.alive() and t.daprd.alive()
        load.append(os.getloadavg()[0])

    p95 = reminders.percentile(sorted(pub["sent_v"]), 95) if pub["sent_v"] else None
    rows = [
        ("outbox commit -> daprd 204, p50/p95/p99, 200/s", "p95 < 5 ms",
         pub["sent_q"], p95 is not None and p95 < 0.005),
        (f"{kbench.BURST_TASKS} concurrent add_task -> all acknowledged", "< 1 s",
         f"{kbench.fmt_s(burst['acked_s'])} ({burst['sent']}/{burst['events']}; the calls took "
         f"{burst['calls_s']:.3f}s, the last event acknowledged "
         f"{kbench.fmt_s(burst['acked_s'] - burst['created_span_s'] if burst['acked_s'] else None)}"
         f" after it was created)",
         burst["acked_s"] is not None and burst["acked_s"] < 1
         and burst["sent"] == kbench.BURST_TASKS),
        ("  (daprd alone: a publish to its 204, one at a time, 200/s)", "",
         direct, None),
        ("events/s through daprd to Kafka, sustained", "report",
         f"{sus['rate'] or 0:.0f}/s; {sus['in_daprd_ms'] or 0:.2f} ms per publish in daprd; CPU "
         f"todod {sus['cpu']['todod']:.1f}s daprd {sus['cpu']['daprd']:.1f}s "
         f"Kafka {sus['cpu']['kafka']:.1f}s", sus["sent"] == SUSTAINED_EVENTS),
        (f"remind_at -> SMTP 250 via Dapr job, p95, {kbench.REMINDER_TASKS} over "
         f"{kbench.REMINDER_SPREAD:g} s", "< 1 s", f"{lat['p95']:.3f} s "
         f"(p50 {lat['p50']:.3f}, max {lat['max']:.3f}; {lat['missing']} missing, "
         f"{lat['dups']} twice)", lat["p95"] < 1 and not lat["missing"] and not lat["dups"]),
        ("daprd resident memory during the run", "< 128 MB",
         f"peak {rss.peak['daprd'] / 1024:.0f} MiB (idle {idle['daprd'] / 1024:.0f}, end "
         f"{end['daprd'] / 1024:.0f})", rss.peak["daprd"] < 128 * 1024),
        ("todod resident memory with dapr-transport", "< 32 MB",
         f"peak {rss.peak['todod'] / 1024:.1f} MiB (idle {idle['todod'] / 1024:.1f}, end "
         f"{end['todod'] / 1024:.1f})", rss.peak["todod"] < 32 * 1024),
    ]
    print("\n| figure | goal | measured | |\n|---|---|---|---|")
    for name, goal, got, good in rows:
        mark = "" if good is None else "ok" if good else "MISS"
        print(f"| {name} | {goal} | {got} | {mark} |")
    checks = [(name.strip(), good, got) for name, _, got, good in rows if good is not None]
    checks.append(("outbox empty, todod and daprd alive", unsent == 0 and alive,
                   f"{unsent} unsent"))
    checks.append((f"no duplicates on {TOPIC}", watch.dups == 0, f"{watch.dups} duplicates"))
    print_checks("dapr-transport", checks, warn)
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/dapr.sh   (PUBLISH_TASKS, "
          f"PUBLISH_RATE, BURST_TASKS, BURST_CONNECTIONS, SUSTAINED_EVENTS, REMINDER_TASKS, "
          f"REMINDER_SPREAD, DB_POOL_SIZE to vary)")
    print(f"  machine: {os.cpu_count()} cores shared by todod, daprd, the scheduler, Kafka, "
          f"PostgreSQL, the SMTP server, kcat and this script (1-min load average "
          f"{load[0]:.2f} at the start, {load[-1]:.2f} at the end); todod db_pool_size "
          f"{core['db_pool_size']}, log_level warn")
    return 0


if __name__ == "__main__":
    sys.exit(main())

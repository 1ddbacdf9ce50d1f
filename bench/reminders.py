"""Benchmark reminders + email against a throwaway PostgreSQL, a real SMTP
server and a fresh todod.

Started by bench/reminders.sh.  Two runs against one todod (reminders and
email, server smtp://127.0.0.1:<port>):

  latency     LATENCY_TASKS tasks whose remind_at are spread evenly over
              SPREAD seconds, starting a few seconds ahead; for each the
              time from remind_at to the SMTP server's 250 after DATA;
  throughput  THROUGHPUT_TASKS tasks all due at the same instant; messages
              per second from the first message received to the last.

Tasks are written with SQL (todod_task_create), so their creation events
reach the reminders plugin the way another replica's would.  Each message
is mapped back to its task through the title in its Subject; every task
must be mailed exactly once.  The SMTP server (tests/harness/smtp.py)
notes each message's receive time just before it answers 250; it runs on
the same cores as todod and PostgreSQL, so it is part of what is measured.
"""

import email.parser
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from harness import PostgresServer, Todod, builddir, query, scalar  # noqa: E402
from harness.smtp import SmtpServer  # noqa: E402
from summary import print_checks, sanitized  # noqa: E402

LATENCY_TASKS = int(os.environ.get("LATENCY_TASKS", "1000"))
SPREAD = float(os.environ.get("SPREAD", "15"))
THROUGHPUT_TASKS = int(os.environ.get("THROUGHPUT_TASKS", "2000"))
LEAD = 5.0          # seconds from the end of task creation to the first remind_at
PATIENCE = 60.0     # seconds without a new message before a run gives up


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith(field + ":"))


def cpu_s(pid):
    """User + system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def create_tasks(dsn, uid, prefix, count, first_at, spread):
    """`count` tasks titled <prefix><i>, reminders evenly over `spread`
    seconds from epoch `first_at`, in one transaction.  Returns
    {title: remind_at as epoch seconds, as stored}."""
    step = spread / max(count - 1, 1)
    query(dsn,
          "SELECT todod_task_create(%s, jsonb_build_object("
          "  'title', %s || i,"
          "  'remind_at', to_char(to_timestamp(%s + i * %s) AT TIME ZONE 'UTC',"
          "                       'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')), NULL, NULL)"
          "  FROM generate_series(0, %s - 1) AS i",
          uid, prefix, first_at, step, count)
    rows = query(dsn, "SELECT title, extract(epoch FROM remind_at)::float8 FROM tasks "
                      "WHERE title LIKE %s || '%%'", prefix)
    return {title: float(at) for title, at in rows}


def received(spool, prefix):
    """[(title, receive time)] of every complete message whose subject is
    "Reminder: <prefix>...", in arrival order."""
    out = []
    parser = email.parser.BytesHeaderParser()
    for name in os.listdir(spool):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(spool, name)) as f:
            env = json.load(f)
        with open(os.path.join(spool, env["file"]), "rb") as f:
            subject = str(parser.parse(f)["Subject"] or "")
        title = subject.removeprefix("Reminder: ")
        if title.startswith(prefix):
            out.append((title, env["received"]))
    return sorted(out, key=lambda m: m[1])


def wait_for_mail(smtp, prefix, want):
    """Wait until `want` messages arrived or none came for PATIENCE s."""
    seen, last_change = -1, time.monotonic()
    while True:
        n = sum(1 for x in os.listdir(smtp.spool) if x.endswith(".json"))
        if n != seen:
            seen, last_change = n, time.monotonic()
        msgs = received(smtp.spool, prefix) if n >= want else []
        if len(msgs) >= want or time.monotonic() - last_change > PATIENCE:
            time.sleep(1)  # a duplicate would arrive now, if at all
            return received(smtp.spool, prefix)
        time.sleep(0.5)


def check_once(tasks, msgs):
    """(missing, duplicates, strangers) counts."""
    counts = {}
    for title, _ in msgs:
        counts[title] = counts.get(title, 0) + 1
    missing = sum(1 for t in tasks if t not in counts)
    dups = sum(c - 1 for c in counts.values() if c > 1)
    strangers = sum(1 for t in counts if t not in tasks)
    return missing, dups, strangers


def latency_run(dsn, uid, smtp):
    first_at = time.time() + LEAD
    t0 = time.monotonic()
    tasks = create_tasks(dsn, uid, "lat-", LATENCY_TASKS, first_at, SPREAD)
    created_s = time.monotonic() - t0
    if min(tasks.values()) < time.time():
        sys.exit(f"creating {LATENCY_TASKS} tasks took {created_s:.1f}s, past the first "
                 f"remind_at; raise LEAD in {__file__}")
    msgs = wait_for_mail(smtp, "lat-", len(tasks))
    missing, dups, strangers = check_once(tasks, msgs)
    first = {}
    for title, at in msgs:
        first.setdefault(title, at)
    lat = sorted(at - tasks[title] for title, at in first.items() if title in tasks)
    if not lat:
        sys.exit("latency run: no message arrived")
    return {"count": len(msgs), "missing": missing, "dups": dups, "strangers": strangers,
            "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
            "max": lat[-1], "min": lat[0], "created_s": created_s}


def throughput_run(dsn, uid, smtp, todod_pid):
    """Also the CPU seconds todod and the SMTP server spent on it: on a
    small machine the sink, not todod, may be what sets the pace."""
    due = time.time() + LEAD
    tasks = create_tasks(dsn, uid, "tput-", THROUGHPUT_TASKS, due, 0)
    cpu_before = cpu_s(todod_pid), cpu_s(smtp.proc.pid)
    msgs = wait_for_mail(smtp, "tput-", len(tasks))
    cpu_todod, cpu_smtp = (after - before for after, before in
                           zip((cpu_s(todod_pid), cpu_s(smtp.proc.pid)), cpu_before))
    missing, dups, strangers = check_once(tasks, msgs)
    span = msgs[-1][1] - msgs[0][1] if len(msgs) > 1 else 0.0
    return {"count": len(msgs), "missing": missing, "dups": dups, "strangers": strangers,
            "rate": (len(msgs) - 1) / span if span > 0 else 0.0, "span": span,
            "cpu_todod": cpu_todod, "cpu_smtp": cpu_smtp,
            "first_after": msgs[0][1] - due if msgs else 0.0,
            "last_after": msgs[-1][1] - due if msgs else 0.0}


def main():
    core = {"log_level": "warn", "db_pool_size": os.environ.get("DB_POOL_SIZE", "4")}
    if os.environ.get("OUTBOX_POLL_INTERVAL"):
        core["outbox_poll_interval"] = os.environ["OUTBOX_POLL_INTERVAL"]
    reminders = {}
    if os.environ.get("REMINDERS_BATCH"):
        reminders["batch"] = os.environ["REMINDERS_BATCH"]
    load = [os.getloadavg()[0]]
    with PostgresServer() as pg, SmtpServer() as smtp:
        pg.create_database("todod")
        dsn = pg.dsn("todod")
        t = Todod(pg.uri("todod"), core=core,
                  plugins={"reminders": reminders,
                           "email": {"server": smtp.url, "from": "Todo Bot <todod@example.org>"}})
        try:
            uid, _ = t.provision("bench")
            t.start()
            warn = sanitized(t.pid)
            time.sleep(0.5)
            rss_idle = vm_kib(t.pid, "VmRSS")
            print(f"todod pid {t.pid}, PostgreSQL on port {pg.port}, SMTP {smtp.url}, "
                  f"build {builddir()}, {os.cpu_count()} cores", flush=True)

            lat = latency_run(dsn, uid, smtp)
            print(f"latency: {lat['count']} messages for {LATENCY_TASKS} reminders spread over "
                  f"{SPREAD:g}s: p50 {lat['p50']:.3f}s  p95 {lat['p95']:.3f}s  "
                  f"p99 {lat['p99']:.3f}s  max {lat['max']:.3f}s  min {lat['min']:.3f}s  "
                  f"missing {lat['missing']}  duplicates {lat['dups']}  "
                  f"(tasks created in {lat['created_s']:.2f}s)", flush=True)
            rss_after_latency = vm_kib(t.pid, "VmRSS")

            tput = throughput_run(dsn, uid, smtp, t.pid)
            print(f"throughput: {tput['count']} messages for {THROUGHPUT_TASKS} reminders due at "
                  f"once: {tput['rate']:,.0f} msg/s over {tput['span']:.2f}s; first "
                  f"{tput['first_after']:.3f}s, last {tput['last_after']:.3f}s after remind_at  "
                  f"missing {tput['missing']}  duplicates {tput['dups']}; CPU used: todod "
                  f"{tput['cpu_todod']:.2f}s, SMTP server {tput['cpu_smtp']:.2f}s", flush=True)
            rss_end = vm_kib(t.pid, "VmRSS")
            hwm = vm_kib(t.pid, "VmHWM")
            dead = scalar(dsn, "SELECT count(*) FROM dead_letters")
            alive = t.alive()
            load.append(os.getloadavg()[0])
        finally:
            t.close()

    want = LATENCY_TASKS
    checks = [
        (f"latency: {want} mailed once", lat["count"] == want and not lat["missing"]
         and not lat["dups"] and not lat["strangers"],
         f"{lat['count']} received, {lat['missing']} missing, {lat['dups']} duplicates"),
        ("none before its remind_at", lat["min"] >= 0, f"earliest {lat['min']:.3f} s"),
        ("latency p95 < 1 s", lat["p95"] < 1, f"{lat['p95']:.3f} s"),
        ("latency max < 10 s (original)", lat["max"] < 10, f"{lat['max']:.3f} s"),
        (f"throughput: {THROUGHPUT_TASKS} mailed once",
         tput["count"] == THROUGHPUT_TASKS and not tput["missing"] and not tput["dups"],
         f"{tput['count']} received, {tput['missing']} missing, {tput['dups']} duplicates"),
        ("no dead letters, todod alive", dead == 0 and alive, f"{dead} dead letters"),
    ]
    print_checks("reminders", checks, warn)
    print(f"latency remind_at -> 250: p50 {lat['p50']:.3f}s  p95 {lat['p95']:.3f}s  "
          f"p99 {lat['p99']:.3f}s  max {lat['max']:.3f}s  count {lat['count']}")
    print(f"email throughput: {tput['rate']:,.0f} msg/s ({tput['count']} due at once, "
          f"first->last {tput['span']:.2f}s, last mailed {tput['last_after']:.2f}s after "
          f"remind_at; CPU todod {tput['cpu_todod']:.2f}s, SMTP server {tput['cpu_smtp']:.2f}s)")
    print(f"memory (VmRSS): idle {rss_idle} KiB, after latency run {rss_after_latency} KiB, "
          f"end {rss_end} KiB, peak (VmHWM) {hwm} KiB")
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} bench/reminders.sh   (LATENCY_TASKS, "
          f"SPREAD, THROUGHPUT_TASKS, DB_POOL_SIZE, REMINDERS_BATCH, OUTBOX_POLL_INTERVAL "
          f"to vary)")
    print(f"  machine: {os.cpu_count()} cores shared by todod, PostgreSQL and the SMTP "
          f"server (1-min load average {load[0]:.2f} at the start, {load[1]:.2f} at the end); "
          f"todod db_pool_size {core['db_pool_size']}, reminders "
          f"{reminders or 'defaults'}, outbox_poll_interval "
          f"{core.get('outbox_poll_interval', 'default')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

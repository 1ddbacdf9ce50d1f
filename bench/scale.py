"""The store at a million tasks: todod against a throwaway PostgreSQL
loaded with SQL, then measured over MCP, through reminders into an mbox,
and through the outbox relay in process and to Kafka.

Started by bench/scale.sh.  The phases, one todod process at a time:

  load       USERS users (one of them, "big", with BIG_TASKS tasks), TASKS
             tasks in all, with categories, tags, due dates, pending
             reminders days ahead, a fifth completed, and the last day's
             todod.task.created events (already sent), all written by
             INSERT ... SELECT generate_series in the database, in chunks.
  mcp        wrk, CONNECTIONS keep-alive clients, DURATION s each (bench/
             mcp.py's wrk and pgbench): get_task, list_tasks first page,
             list_tasks 50 cursors deep, search_tasks for a word in 1% of
             big's tasks; then add_task at that size against pgbench
             writing the same rows (bench/task_create.sql).
  reminders  REMINDERS pending tasks get remind_at = one whole minute
             (SQL, while todod is stopped: as after a restart); todod starts
             with reminders and email writing to an mbox; the time from
             that minute to the last message written, and each task mailed
             once (by the task number in its Subject).
  relay      OUTBOX_EVENTS unsent todod.task.updated events put in the
             outbox while todod is stopped; todod starts and drains them:
             in process (reminders subscribed), then to a Kafka broker
             (kafka-direct).  Rate = events / (last sent_at - first sent_at).

todod's VmRSS is sampled every 100 ms in every phase; VmHWM is read before
each stop.  SCALE=small shrinks every count for development.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

SMALL = os.environ.get("SCALE") == "small"


def knob(name, full, small):
    return int(os.environ.get(name, small if SMALL else full))


USERS = knob("USERS", 1000, 50)
TASKS = knob("TASKS", 1_000_000, 20_000)
BIG_TASKS = knob("BIG_TASKS", 100_000, 5_000)
REMINDERS = knob("REMINDERS", 100_000, 2_000)
OUTBOX_EVENTS = knob("OUTBOX_EVENTS", 200_000, 5_000)
CHUNK = 100_000
os.environ.setdefault("DURATION", "3" if SMALL else "10")
WORD = "zephyr"      # in 1% of big's titles and nowhere else
DEEP = 50            # cursors deep
SETTLE = 600.0       # seconds a phase may take before the bench gives up
PATIENCE = 60.0      # seconds without a new reminder written before the bench gives up

from harness import PostgresServer, Todod, builddir, query, scalar  # noqa: E402
from harness.kafka import KafkaNames, KafkaServer, todod_options  # noqa: E402

import mcp  # noqa: E402  (bench/mcp.py: wrk, pgbench, sessions, the RSS sampler)
from reminders import vm_kib  # noqa: E402
from summary import print_checks, sanitized  # noqa: E402


# ---- load --------------------------------------------------------------------

LABELS_SQL = """
INSERT INTO users (name, email, tz)
SELECT 'user' || g, 'user' || g || '@example.org',
       (ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo'])[1 + g %% 4]
  FROM generate_series(2, %(users)s) g;
INSERT INTO categories (user_id, name, color)
SELECT u.id, (ARRAY['work', 'home', 'errands', 'health', 'study'])[k + 1], '#3366cc'
  FROM users u CROSS JOIN generate_series(0, 4) k ORDER BY u.id, k;
INSERT INTO tags (user_id, name)
SELECT u.id, 'tag' || k FROM users u CROSS JOIN generate_series(0, 7) k ORDER BY u.id, k;
"""

# Task g (1-based, global) belongs to big when g <= BIG_TASKS, else to the
# others in turn.  Titles carry g, so a mailed reminder names its task.
# Ids are drawn first so series_id = id, as todod_task_create does.
TASKS_SQL = """
WITH o AS (SELECT array_agg(id ORDER BY id) AS a FROM users WHERE id <> %(big)s),
s AS (
    SELECT nextval('tasks_id_seq') AS id, g,
           CASE WHEN g <= %(big_n)s THEN %(big)s
                ELSE o.a[1 + (g - %(big_n)s - 1) %% cardinality(o.a)] END AS uid,
           g %% 10 IN (3, 7) AS done,
           now() - make_interval(secs => (%(tasks)s - g) * 30.0) AS created
      FROM generate_series(%(lo)s, %(hi)s) g, o),
cat AS (SELECT id, user_id, row_number() OVER (PARTITION BY user_id ORDER BY id) - 1 AS k
          FROM categories)
INSERT INTO tasks (id, user_id, title, description, priority, due_at, remind_at,
                   reminder_state, series_id, occurrence, category_id, completed_at,
                   created_at, updated_at)
    OVERRIDING SYSTEM VALUE
SELECT s.id, s.uid,
       'Task ' || s.g || ' ' ||
           (ARRAY['buy', 'call', 'write', 'fix', 'plan', 'read', 'clean', 'review'])[1 + s.g %% 8] ||
           ' ' || (ARRAY['milk', 'report', 'garden', 'invoice', 'car', 'slides', 'flat'])[1 + s.g %% 7] ||
           CASE WHEN s.g <= %(big_n)s AND s.g %% 100 = 0 THEN ' ' || %(word)s ELSE '' END,
       CASE WHEN s.g %% 3 = 0 THEN 'Notes on task ' || s.g || ': steps, links and who to ask.' END,
       (ARRAY['low', 'medium', 'high', 'urgent'])[1 + s.g %% 4],
       CASE WHEN s.g %% 5 <> 0 THEN s.created + make_interval(hours => 1 + s.g %% 2000) END,
       CASE WHEN s.g %% 10 = 1 THEN now() + make_interval(days => 2, mins => s.g %% 40000) END,
       CASE WHEN s.g %% 10 = 1 THEN 'pending' ELSE 'none' END,
       s.id, 1,
       c.id,
       CASE WHEN s.done THEN s.created + interval '1 day' END,
       s.created, CASE WHEN s.done THEN s.created + interval '1 day' ELSE s.created END
  FROM s LEFT JOIN cat c ON c.user_id = s.uid AND c.k = s.g %% 5 AND s.g %% 4 <> 0;
"""

TAGS_SQL = """
WITH tg AS (SELECT id, user_id, row_number() OVER (PARTITION BY user_id ORDER BY id) - 1 AS k
              FROM tags)
INSERT INTO task_tags (task_id, tag_id)
SELECT t.id, tg.id FROM tasks t JOIN tg ON tg.user_id = t.user_id
                                       AND tg.k IN (t.id %% 8, (t.id + 3) %% 8)
 WHERE t.id BETWEEN %(lo)s AND %(hi)s AND t.id %% 3 <> 0;
"""

# The creation events the outbox still holds: todod deletes sent events
# after outbox_retention (1 day by default), so those of the last day.
CREATED_EVENTS_SQL = """
INSERT INTO outbox (topic, type, subject, key, data, created_at, sent_at)
SELECT 'task-events', 'todod.task.created', 'task/' || t.id, t.id::text,
       jsonb_build_object('user_id', t.user_id, 'task', todod_task_json(t.id)),
       t.created_at, t.created_at
  FROM tasks t WHERE t.id BETWEEN %(lo)s AND %(hi)s AND t.created_at > now() - interval '1 day'
 ORDER BY t.id;
"""


def run_sql(conn, sql, **params):
    with conn.cursor() as cur:
        cur.execute(sql, params or None)


def load(pg, big):
    """Everything but big himself, who came from `todod user add`."""
    t0 = time.monotonic()
    with contextlib.closing(pg.connect("todod")) as conn:
        run_sql(conn, "SET synchronous_commit = off; SET maintenance_work_mem = '256MB'")
        run_sql(conn, LABELS_SQL, users=USERS)
        for lo in range(1, TASKS + 1, CHUNK):
            hi = min(lo + CHUNK - 1, TASKS)
            first = scalar(pg.dsn("todod"), "SELECT coalesce(max(id), 0) + 1 FROM tasks")
            run_sql(conn, TASKS_SQL, big=big, big_n=BIG_TASKS, tasks=TASKS, lo=lo, hi=hi,
                    word=WORD)
            last = scalar(pg.dsn("todod"), "SELECT max(id) FROM tasks")
            run_sql(conn, TAGS_SQL, lo=first, hi=last)
            run_sql(conn, CREATED_EVENTS_SQL, lo=first, hi=last)
            print(f"  loaded {hi:,} tasks ({time.monotonic() - t0:.0f} s)", flush=True)
        run_sql(conn, "VACUUM ANALYZE")
    return time.monotonic() - t0


# ---- MCP latency ---------------------------------------------------------------

def tool(t, token, sid, name, args):
    body = mcp.mcp_post(t, token, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                   "params": {"name": name, "arguments": args}}, sid).json()
    res = body.get("result") or {}
    if res.get("isError") or "structuredContent" not in res:
        sys.exit(f"setup: {name} {args} failed: {body}")
    return res["structuredContent"]


# The store function each tool calls, as mcp-tools calls it.
STORE_OPS = {"get_task": "todod_task_get", "list_tasks": "todod_task_list",
             "search_tasks": "todod_task_search", "add_task": "todod_task_create"}


def db_latency(pg, uid, name, args, n=200):
    """p50/p99 ms of the tool's store function alone, called n times on one
    connection from here: what the database adds at this size."""
    sql = f"SELECT {STORE_OPS[name]}(%s, %s::jsonb, NULL, NULL)"
    args = {"id" if k == "task_id" else k: v for k, v in args.items()}
    times = []
    with contextlib.closing(pg.connect("todod")) as conn, conn.cursor() as cur:
        for _ in range(n):
            t0 = time.perf_counter()
            cur.execute(sql, (uid, json.dumps(args)))
            cur.fetchall()
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99) - 1]


def explain(pg, uid, name, args, out):
    """One call with auto_explain at NOTICE level: the plans of the
    statements inside the store function, with actual times, go to `out`."""
    args = {"id" if k == "task_id" else k: v for k, v in args.items()}
    with contextlib.closing(pg.connect("todod")) as conn, conn.cursor() as cur:
        cur.execute("LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
                    "SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; "
                    "SET auto_explain.log_nested_statements = on; "
                    "SET auto_explain.log_level = notice")
        del conn.notices[:]
        cur.execute(f"SELECT {STORE_OPS[name]}(%s, %s::jsonb, NULL, NULL)",
                    (uid, json.dumps(args)))
        out.write(f"==== {name} {json.dumps(args)}\n" + "".join(conn.notices) + "\n")


def measure(t, pg, base, name, args):
    return mcp.wrk(t, pg, "mcp_call.lua",
                   {**base, "MCP_METHOD": "tools/call",
                    "MCP_PARAMS": json.dumps({"name": name, "arguments": args})})


def mcp_phase(t, pg, token, dsn, big):
    sessions = [mcp.open_session(t, token) for _ in range(mcp.THREADS)]
    base = {"MCP_TOKEN": token, "MCP_SESSIONS": ",".join(sessions)}
    # A task in the middle of big's, with tags and a category.
    task = scalar(dsn, "SELECT id FROM tasks WHERE user_id = %s AND category_id IS NOT NULL "
                       "AND id %% 3 <> 0 ORDER BY id OFFSET %s LIMIT 1", big, BIG_TASKS // 4)
    cursor = None
    for _ in range(DEEP):
        page = tool(t, token, sessions[0], "list_tasks", {"cursor": cursor} if cursor else {})
        cursor = page["next_cursor"]
    matches = scalar(dsn, "SELECT count(*) FROM tasks WHERE user_id = %s "
                          "AND search @@ to_tsquery('simple', %s)", big, WORD)
    figs = {}
    explain_path = os.path.join(os.environ.get("EXPLAIN_DIR", "/tmp"), f"scale-explain-{os.getpid()}.txt")
    explain_out = open(explain_path, "w")
    for key, name, args in (
            ("get_task", "get_task", {"task_id": task}),
            ("list first page", "list_tasks", {}),
            (f"list {DEEP} cursors deep", "list_tasks", {"cursor": cursor}),
            (f"search '{WORD}' ({matches} of {BIG_TASKS})", "search_tasks", {"query": WORD})):
        figs[key] = measure(t, pg, base, name, args)
        mcp.report(f"{key} (user with {BIG_TASKS:,} tasks)", figs[key])
        figs[key]["db_p50"], figs[key]["db_p99"] = db_latency(pg, big, name, args)
        print(f"  the store function alone, one connection: p50 {figs[key]['db_p50']:.2f} ms  "
              f"p99 {figs[key]['db_p99']:.2f} ms", flush=True)
        explain(pg, big, name, args, explain_out)
    explain_out.close()
    print(f"  EXPLAIN ANALYZE of the statements inside each store function: {explain_path}",
          flush=True)
    before = scalar(dsn, "SELECT count(*) FROM tasks")
    add = measure(t, pg, base, "add_task", {"title": "bench", "priority": "medium"})
    mcp.report(f"add_task at {before:,} tasks", add)
    inserts = mcp.pgbench(t, pg, "task_create.sql", "simple", uid=big)
    pg_tps, pg_cmd = inserts["tps"], inserts["command"]
    print(f"same rows via pgbench at {scalar(dsn, 'SELECT count(*) FROM tasks'):,} tasks: "
          f"{pg_tps:,.0f} tx/s\n  command: {pg_cmd}", flush=True)
    return figs, add, pg_tps


# ---- reminders -----------------------------------------------------------------

SUBJECT = re.compile(rb"^Subject: Reminder: Task (\d+) ", re.M)


def count_mbox(path):
    """Task numbers in the Subjects of an mbox, in order."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [int(m) for m in SUBJECT.findall(f.read())]


def reminders_phase(t, dsn, mbox):
    """Returns the figures; todod is stopped on entry and on return."""
    now = scalar(dsn, "SELECT extract(epoch FROM now())::float8")
    minute = (int(now + 45) // 60 + 1) * 60
    titles = query(dsn, """
        WITH pick AS (SELECT id FROM tasks WHERE completed_at IS NULL AND title LIKE 'Task %%'
                       ORDER BY id %% 7, id LIMIT %s)
        UPDATE tasks t SET remind_at = to_timestamp(%s), remind_offset_min = NULL,
                           reminder_state = 'pending', updated_at = now()
          FROM pick WHERE t.id = pick.id
        RETURNING (regexp_match(t.title, '^Task ([0-9]+) '))[1]::bigint""", REMINDERS, minute)
    want = {n for (n,) in titles}
    with mcp.RssSampler(t) as rss:
        t.start()
        t.wait_ready()
        # Quiet for PATIENCE s after the minute (nothing more coming) ends
        # the wait as well as every reminder written does.
        last_size, last_change = -1, time.time()
        while True:
            size = os.path.getsize(mbox) if os.path.exists(mbox) else 0
            if size != last_size:
                last_size, last_change = size, time.time()
            quiet = time.time() - max(last_change, minute)
            if quiet > 2 and len(count_mbox(mbox)) >= len(want):
                break
            if quiet > PATIENCE or time.time() - minute > SETTLE:
                break
            time.sleep(0.5)
        done_at = os.stat(mbox).st_mtime if os.path.exists(mbox) else None
        time.sleep(2)   # a duplicate would be written now, if at all
        hwm = vm_kib(t.pid, "VmHWM")
        t.stop()
    got = count_mbox(mbox)
    seen = {}
    for n in got:
        seen[n] = seen.get(n, 0) + 1
    return {"minute": minute, "count": len(got), "want": len(want),
            "missing": len(want - seen.keys()), "dups": sum(c - 1 for c in seen.values()),
            "strangers": len(seen.keys() - want),
            "last_after": (done_at - minute) if done_at else float("inf"),
            "rss_peak_kib": max(rss.peak_kib, hwm)}


# ---- relay ---------------------------------------------------------------------

UNSENT_SQL = """
INSERT INTO outbox (topic, type, subject, key, data)
SELECT 'task-events', 'todod.task.updated', 'task/' || t.id, t.id::text,
       jsonb_build_object('user_id', t.user_id, 'task', todod_task_json(t.id),
                          'changed', '["priority"]'::jsonb)
  FROM (SELECT id, user_id FROM tasks ORDER BY id %% 11, id LIMIT %s) t
RETURNING id
"""


def relay_phase(t, dsn, what):
    """OUTBOX_EVENTS unsent events, then start `t` and wait until sent."""
    ids = [i for (i,) in query(dsn, UNSENT_SQL, OUTBOX_EVENTS)]
    lo, hi = min(ids), max(ids)
    with mcp.RssSampler(t) as rss:
        started = time.monotonic()
        t.start()
        t.wait_ready()
        while scalar(dsn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND id >= %s", lo):
            if time.monotonic() - started > SETTLE:
                break
            time.sleep(0.2)
        wall = time.monotonic() - started
        cpu = t.cpu_seconds()
        hwm = vm_kib(t.pid, "VmHWM")
        t.stop()
    sent, span = query(dsn, "SELECT count(sent_at), extract(epoch FROM max(sent_at) - "
                            "min(sent_at))::float8 FROM outbox WHERE id BETWEEN %s AND %s",
                       lo, hi)[0]
    rate = sent / span if span else 0.0
    print(f"relay {what}: {sent:,} of {len(ids):,} events sent, {rate:,.0f} events/s "
          f"(first -> last sent_at {span:.2f} s; start -> all sent {wall:.2f} s; todod CPU "
          f"{cpu:.1f} s)  "
          f"peak VmRSS {max(rss.peak_kib, hwm)} KiB", flush=True)
    return {"sent": sent, "events": len(ids), "rate": rate, "span": span, "wall": wall,
            "rss_peak_kib": max(rss.peak_kib, hwm)}


# ---- main ------------------------------------------------------------------------

def main():
    core = {"log_level": "warn", "db_pool_size": os.environ.get("DB_POOL_SIZE", "4")}
    if os.environ.get("OUTBOX_BATCH"):
        core["outbox_batch"] = os.environ["OUTBOX_BATCH"]
    reminders = {}
    if os.environ.get("REMINDERS_BATCH"):
        reminders["batch"] = os.environ["REMINDERS_BATCH"]
    load_avg = [os.getloadavg()[0]]
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(PostgresServer())
        pg.create_database("todod")
        dsn = pg.dsn("todod")
        mbox = os.path.join(pg.tmp, "reminders.mbox")
        t = Todod(pg.uri("todod"), core=core,
                  plugins={"mcp-tools": {"auth": "token"}, "reminders": reminders,
                           "email": {"server": "mbox:" + mbox,
                                     "from": "Todo Bot <todod@example.org>"}})
        stack.callback(t.close)
        big, token = t.provision("big")
        print(f"loading {TASKS:,} tasks over {USERS:,} users (big: {BIG_TASKS:,}) into "
              f"PostgreSQL on port {pg.port}", flush=True)
        load_s = load(pg, big)
        size = scalar(dsn, "SELECT pg_size_pretty(pg_database_size('todod'))")
        print(f"loaded in {load_s:.0f} s; database {size}", flush=True)

        t.start()
        t.wait_ready()
        warn = sanitized(t.pid)
        print(f"todod pid {t.pid}, {t.url('/mcp')}, build {builddir()}, {os.cpu_count()} cores",
              flush=True)
        with mcp.RssSampler(t) as rss_mcp:
            figs, add, pg_tps = mcp_phase(t, pg, token, dsn, big)
        rss_mcp_peak = max(rss_mcp.peak_kib, vm_kib(t.pid, "VmHWM"))
        t.stop()
        load_avg.append(os.getloadavg()[0])

        rem = reminders_phase(t, dsn, mbox)
        print(f"reminders: {rem['count']:,} messages for {rem['want']:,} reminders due at "
              f"{time.strftime('%H:%M:%S', time.gmtime(rem['minute']))}: last written "
              f"{rem['last_after']:.1f} s after the minute; missing {rem['missing']}, "
              f"duplicates {rem['dups']}  peak VmRSS {rem['rss_peak_kib']} KiB", flush=True)
        load_avg.append(os.getloadavg()[0])

        inproc = relay_phase(t, dsn, "in process")
        load_avg.append(os.getloadavg()[0])

        broker = KafkaServer()
        stack.callback(broker.destroy)
        broker.start()
        names = KafkaNames(prefix="", group="scale")
        tk = Todod(pg.uri("todod"), core=core,
                   plugins={"kafka-direct": todod_options(broker, names),
                            "mcp-tools": {"auth": "token"}})
        stack.callback(tk.close)
        kafka = relay_phase(tk, dsn, "to Kafka")
        load_avg.append(os.getloadavg()[0])

    rss_peak = max(rss_mcp_peak, rem["rss_peak_kib"], inproc["rss_peak_kib"],
                   kafka["rss_peak_kib"])
    ratio = add["rps"] / pg_tps if pg_tps else 0.0
    checks = [(f"{k} p99 < 10 ms", f["p99"] < 10,
               f"p50 {f['p50']:.2f} ms  p99 {f['p99']:.2f} ms  ({f['p99'] / 10:.2f} x limit); "
               f"store function alone p50 {f['db_p50']:.2f} p99 {f['db_p99']:.2f} ms")
              for k, f in figs.items()]
    checks += [
        ("add_task >= 0.8 x pgbench", ratio >= 0.8,
         f"{add['rps']:,.0f} / {pg_tps:,.0f} tx/s = {ratio:.2f} ({ratio / 0.8:.2f} x goal)"),
        (f"{REMINDERS:,} reminders mailed < 60 s", rem["last_after"] < 60,
         f"{rem['last_after']:.1f} s ({rem['last_after'] / 60:.2f} x limit)"),
        ("  each once", rem["count"] == rem["want"] and not rem["missing"] and not rem["dups"]
         and not rem["strangers"],
         f"{rem['count']:,} written, {rem['missing']} missing, {rem['dups']} twice"),
        ("relay in process (no goal)", True, f"{inproc['rate']:,.0f} events/s"),
        ("relay to Kafka >= 20,000 events/s", kafka["rate"] >= 20_000 and
         kafka["sent"] == kafka["events"],
         f"{kafka['rate']:,.0f} events/s ({kafka['rate'] / 20_000:.2f} x goal)"),
        ("VmRSS < 32 MB", rss_peak < 32 * 1024,
         f"{rss_peak} KiB peak ({rss_peak / (32 * 1024):.2f} x limit): mcp {rss_mcp_peak}, "
         f"reminders {rem['rss_peak_kib']}, relay {inproc['rss_peak_kib']}, "
         f"kafka {kafka['rss_peak_kib']}"),
        ("no failures", not any(f["failures"] or f["errors"] for f in [*figs.values(), add]),
         ", ".join(str(int(f["failures"] + f["errors"])) for f in [*figs.values(), add])),
    ]
    print_checks(f"scale ({TASKS:,} tasks)", checks, warn)
    knobs = " ".join(f"{k}={v}" for k, v in (("USERS", USERS), ("TASKS", TASKS),
                                              ("BIG_TASKS", BIG_TASKS), ("REMINDERS", REMINDERS),
                                              ("OUTBOX_EVENTS", OUTBOX_EVENTS),
                                              ("OUTBOX_BATCH", core.get("outbox_batch")),
                                              ("REMINDERS_BATCH", reminders.get("batch")),
                                              ("DURATION", mcp.DURATION),
                                              ("CONNECTIONS", mcp.CONNECTIONS)) if v)
    print(f"  reproduce: TODOD_BUILDDIR={builddir()} {knobs} bench/scale.sh")
    print(f"  machine: {os.cpu_count()} cores shared by todod, PostgreSQL, wrk, the broker; "
          f"1-min load average " + ", ".join(f"{x:.2f}" for x in load_avg)
          + " (start, after mcp, reminders, relay, kafka); db_pool_size "
          f"{core['db_pool_size']}, outbox_batch {core.get('outbox_batch', 'default')}, "
          f"reminders {reminders or 'defaults'}; load took {load_s:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

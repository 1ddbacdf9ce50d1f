"""A throwaway PostgreSQL server: initdb into a temp dir, run on loopback.

PostgreSQL refuses to run as root, so as root the temp dir is given to the
`postgres` user and initdb and the server run with its uid; as anyone else
they run as the current user.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile

import psycopg2

from .util import ServiceUnavailable, free_port, tail, wait_until


def _bindir():
    """Where initdb and postgres live: $TODOD_PG_BINDIR, the newest
    /usr/lib/postgresql/*/bin (Debian keeps them off PATH), or PATH."""
    explicit = os.environ.get("TODOD_PG_BINDIR")
    if explicit:
        return explicit
    versions = [v for v in os.listdir("/usr/lib/postgresql") if v.isdigit()] \
        if os.path.isdir("/usr/lib/postgresql") else []
    for v in sorted(versions, key=int, reverse=True):
        d = f"/usr/lib/postgresql/{v}/bin"
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise ServiceUnavailable("PostgreSQL server binaries (initdb, postgres) not found; "
                             "install postgresql or set TODOD_PG_BINDIR")


class PostgresServer:
    """One cluster on 127.0.0.1:<free port>, trust auth, superuser `postgres`.

    Tuned for tests, not durability: fsync and synchronous_commit are off,
    unless `durable` (a benchmark that wants a deployed server's commits)."""

    def __init__(self, durable=False):
        self.durable = durable
        self.bindir = _bindir()
        self.tmp = tempfile.mkdtemp(prefix="todod-pg-")
        self.datadir = os.path.join(self.tmp, "data")
        self.sockdir = os.path.join(self.tmp, "sock")
        self.logfile = os.path.join(self.tmp, "postgres.log")
        self.port = free_port()
        self.proc = None
        # Set on the child processes directly (not through runuser, whose
        # watching parent would turn every signal into SIGTERM + SIGKILL).
        self._ids = {}
        if os.geteuid() == 0:
            try:
                pg_user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ServiceUnavailable("running as root but there is no `postgres` user "
                                         "to run PostgreSQL as") from exc
            self._ids = {"user": pg_user.pw_uid, "group": pg_user.pw_gid, "extra_groups": []}
            os.chown(self.tmp, pg_user.pw_uid, pg_user.pw_gid)
        self._run(["mkdir", "-p", self.sockdir])

    def _run(self, argv):
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             cwd=self.tmp, **self._ids)
        if res.returncode != 0:
            raise ServiceUnavailable(f"{' '.join(argv)} failed ({res.returncode}):\n{res.stdout}")
        return res

    def initdb(self):
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", "postgres",
                   "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])

    # -- lifecycle -----------------------------------------------------

    def start(self, timeout=60):
        if not os.path.exists(os.path.join(self.datadir, "PG_VERSION")):
            self.initdb()
        cmd = [
            os.path.join(self.bindir, "postgres"), "-D", self.datadir,
            "-p", str(self.port), "-k", self.sockdir,
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
        ]
        if not self.durable:
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off"]
        log = open(self.logfile, "ab")
        try:
            # Its own process group: a Ctrl-C meant for pytest must not
            # shut the server down behind the test's back.
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
                                         start_new_session=True, **self._ids)
        finally:
            log.close()
        try:
            wait_until(self._accepts, timeout, interval=0.1, what="PostgreSQL to accept connections")
        except TimeoutError as exc:
            self.stop()
            raise ServiceUnavailable(f"PostgreSQL did not start: {exc}\n{tail(self.logfile)}") from exc
        return self

    def _accepts(self):
        if self.proc.poll() is not None:
            raise ServiceUnavailable(f"postgres exited with {self.proc.returncode}:\n"
                                     f"{tail(self.logfile)}")
        try:
            psycopg2.connect(self.dsn("postgres"), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def stop(self, mode="fast", timeout=30):
        """Stop the server: fast (SIGINT, clients are disconnected),
        smart (SIGTERM) or immediate (SIGQUIT, like a crash).  start()
        brings it back on the same port with the same data."""
        if not self.proc or self.proc.poll() is not None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        self.freeze(False)  # a stopped server would never act on the signal
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def freeze(self, frozen=True):
        """SIGSTOP (or SIGCONT) the server and all its backends: connections
        stay open but nothing answers, as in a network partition."""
        sig = signal.SIGSTOP if frozen else signal.SIGCONT
        # Every backend calls setsid(), so the postmaster's process group
        # holds only itself: its children are found by parent pid.
        for pid in [self.proc.pid, *self._children()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _children(self):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # "pid (comm) state ppid ...": comm may hold spaces.
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid:
                yield int(entry)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- access --------------------------------------------------------

    def dsn(self, dbname="postgres"):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def uri(self, dbname="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname="postgres"):
        conn = psycopg2.connect(self.dsn(dbname), connect_timeout=5)
        conn.autocommit = True
        return conn

    def create_database(self, name):
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        return name

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()


def query(dsn, sql, *params):
    """Run one statement on its own connection; rows as a list of tuples."""
    with contextlib.closing(psycopg2.connect(dsn, connect_timeout=5)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []


def scalar(dsn, sql, *params):
    return query(dsn, sql, *params)[0][0]

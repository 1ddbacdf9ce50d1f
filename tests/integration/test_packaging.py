"""A packager's and an image builder's path, from the release tarball
(`make dist`):

- Debian: contrib/debian copied to debian/ in the unpacked tarball,
  `dpkg-buildpackage -us -uc -b`, the three packages' contents and
  maintainer scripts, lintian, then an install with apt into a Debian root
  made by mmdebstrap (dependencies from Debian's archive, the maintainer
  scripts run for real), todod run there, and a purge.
- RPM: the spec checked with `rpmspec -P` and an SRPM built with
  `rpmbuild -bs` (Debian's rpm package).
- The container image: the runtime root file system built from the same
  package list as contrib/Containerfile (contrib/image-packages.txt) with
  mmdebstrap, plus contrib/image-build.sh's build and user; todod runs in it
  (chroot, in a private mount namespace) against the test PostgreSQL.

Debian roots are cached under ~/.cache/todod-tests: the image's keyed by its
package list, and the archives apt downloads, so a rerun downloads nothing.
"""

import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import urllib.request

import pytest

from harness.pg import scalar
from harness.todod import SRCDIR, binary, builddir
from harness.util import ServiceUnavailable, free_port, wait_until

SUITE = "bookworm"
IMAGE_UID = 10001
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                     "todod-tests")
# The variant and dpkg excludes that make mmdebstrap's root what Debian's
# -slim images are: minbase, no manuals, docs or translations.
IMAGE_MMDEBSTRAP = ["--variant=minbase",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                    "--dpkgopt=path-exclude=/usr/share/locale/*"]

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def run(cmd, timeout=1800, ok=(0,), **kw):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=timeout, **kw)
    assert res.returncode in ok, f"{' '.join(map(str, cmd))} exited {res.returncode}:\n" \
                                 f"{res.stdout[-6000:]}"
    return res.stdout


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise ServiceUnavailable(f"{', '.join(missing)} not found (contrib/install-deps.sh test "
                                 "installs them)")
    if os.geteuid() != 0:
        raise ServiceUnavailable("building and entering a Debian root needs root")


def package_version():
    with open(os.path.join(builddir(), "todod-config.h")) as f:
        return re.search(r'#define PACKAGE_VERSION "([^"]+)"', f.read()).group(1)


# ---- the release tarball -----------------------------------------------

@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The `make dist` tarball, and a fresh unpacked copy of it for each
    build (a build leaves its own files in the tree): (tarball, unpack())."""
    binary()  # a clear failure when there is no build
    name = f"todod-{package_version()}"
    run(["make", "-s", "-C", builddir(), "dist-gzip"], timeout=600)
    tarball = tmp_path_factory.mktemp("dist") / f"{name}.tar.gz"
    shutil.move(os.path.join(builddir(), f"{name}.tar.gz"), tarball)

    def unpacked():
        work = tmp_path_factory.mktemp("src")
        run(["tar", "-C", str(work), "-xzf", str(tarball)])
        return work / name
    return tarball, unpacked


# ---- Debian roots --------------------------------------------------------

def host_sources():
    """The machine's apt sources, handed to mmdebstrap as they are (deb822
    or one-line files): the roots use the archive this machine uses."""
    files = [f for f in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]
             if f.endswith((".list", ".sources")) and os.path.isfile(f)
             and os.path.getsize(f) > 0]
    if not files:
        raise ServiceUnavailable("no apt sources on this machine for mmdebstrap")
    return files


@contextlib.contextmanager
def locked(path):
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def mmdebstrap(target, args):
    """mmdebstrap with apt's downloads kept in the cache between runs."""
    need("mmdebstrap")
    archives = os.path.join(CACHE, "debian-archives")
    os.makedirs(archives, exist_ok=True)
    cmd = ["mmdebstrap", *args, "--skip=essential/unlink",
           "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives",
           f"--setup-hook=sync-in {archives} /var/cache/apt/archives",
           f"--customize-hook=sync-out /var/cache/apt/archives {archives}",
           SUITE, str(target), *host_sources()]
    with locked(archives):
        try:
            run(cmd, timeout=3600)
        except AssertionError as exc:
            raise ServiceUnavailable(f"mmdebstrap could not build a {SUITE} root: {exc}") from exc
        finally:
            for own in glob.glob(os.path.join(archives, "todod*.deb")):
                os.unlink(own)  # only the archive's packages are worth keeping


def unpack(tar, root):
    root.mkdir()
    run(["tar", "-C", str(root), "-xpf", str(tar)])
    return root


def in_root(root, argv, user=None, env=None, **popen):
    """argv inside `root`: chroot in a private mount namespace with /proc and
    /dev, the host's network (the test PostgreSQL is on its loopback), an
    empty environment but PATH and `env`.  Returns the argv to run; without
    a pid namespace, its process is todod itself once it has exec'ed."""
    inner = ('mount -t proc proc "$R/proc" && mount --bind /dev "$R/dev" && '
             'exec chroot ${U:+--userspec="$U"} "$R" "$@"')
    envs = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + [f"{k}={v}" for k, v in (env or {}).items()]
    return ["env", f"R={root}", f"U={user or ''}", "unshare", "--mount", "--propagation",
            "private", "/bin/sh", "-c", inner, "sh", "/usr/bin/env", "-i", *envs, *argv]


def run_in_root(root, argv, user=None, env=None, ok=(0,), timeout=600):
    return run(in_root(root, argv, user=user, env=env), ok=ok, timeout=timeout)


def http_get(port, path):
    with contextlib.suppress(OSError):
        with _opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status
    return None


def serve_briefly(root, config_in_root, env, database_dsn, user):
    """Start todod in `root`, wait for /healthz and /readyz, stop it with
    SIGTERM; returns its stderr."""
    with open(os.path.join(root, config_in_root.lstrip("/"))) as f:
        port = int(re.search(r"^listen = [\d.]+:(\d+)$", f.read(), re.M).group(1))
    log = open(os.path.join(root, "tmp", "todod.stderr"), "w+")
    proc = subprocess.Popen(in_root(root, ["/usr/sbin/todod", "-c", config_in_root], user=user,
                                    env=env), stdout=log, stderr=subprocess.STDOUT)
    try:
        def up():
            if proc.poll() is not None:
                return "exited"  # a failure of the packaging, reported below
            return http_get(port, "/healthz") == 200 and http_get(port, "/readyz") == 200
        wait_until(up, 120, interval=0.2, what="todod in the root to answer /healthz and /readyz")
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"todod exited {proc.returncode} in the root:\n{log.read()[-4000:]}")
        # Migrations ran as the unprivileged user, against the real server.
        assert scalar(database_dsn, "SELECT count(*) FROM users") == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "todod did not exit 0 after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.seek(0)
        text = log.read()
        log.close()
    return text


# ---- Debian packages -------------------------------------------------------

PLUGINS = ["dapr-transport", "email", "mcp-tools", "recurrence", "reminders"]


@pytest.fixture(scope="module")
def debs(dist):
    """dpkg-buildpackage -us -uc -b in the unpacked tarball with
    contrib/debian as debian/: {package name: .deb path}, and the .changes."""
    need("dpkg-buildpackage", "dh", "fakeroot")
    src = dist[1]()
    shutil.copytree(src / "contrib" / "debian", src / "debian")
    env = dict(os.environ, DEB_BUILD_OPTIONS=f"parallel={os.cpu_count() or 1}")
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "CFLAGS", "LDFLAGS", "CPPFLAGS",
                "PKG_CONFIG_PATH"):
        env.pop(var, None)
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env, timeout=3600)
    found = {os.path.basename(p).split("_")[0]: p for p in glob.glob(str(src.parent / "*.deb"))
             if "-dbgsym_" not in os.path.basename(p)}
    changes = glob.glob(str(src.parent / "*.changes"))
    assert sorted(found) == ["todod", "todod-dev", "todod-plugin-kafka"], found
    assert len(changes) == 1
    return found, changes[0]


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field]).strip()


def deb_files(deb):
    """The files and links in `deb` (no directories), absolute."""
    return {line.split(None, 5)[5].split(" -> ")[0].lstrip(".")
            for line in run(["dpkg-deb", "-c", deb]).splitlines() if not line.startswith("d")}


def deb_control(deb, member):
    """A maintainer script or control file of `deb` ("" when it has none)."""
    res = subprocess.run(["dpkg-deb", "--info", deb, member], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    return res.stdout if res.returncode == 0 else ""


def test_debian_version_is_the_tarballs(dist):
    src = dist[1]()
    first = (src / "contrib" / "debian" / "changelog").read_text().splitlines()[0]
    upstream = re.match(r"todod \(([^-)]+)-\d+\)", first).group(1)
    assert upstream == package_version(), \
        f"contrib/debian/changelog is at {upstream}, configure.ac at {package_version()}"


def test_deb_split(debs):
    found, _ = debs
    version = package_version()
    todod, kafka, dev = found["todod"], found["todod-plugin-kafka"], found["todod-dev"]
    for deb in found.values():
        assert deb_field(deb, "Version").startswith(version + "-")
        assert not [f for f in deb_files(deb) if f.endswith(".la")], f"libtool archive in {deb}"

    files = deb_files(todod)
    assert "/usr/sbin/todod" in files
    plugdir = [os.path.dirname(f) for f in files if f.endswith("/mcp-tools.so")]
    assert plugdir and re.fullmatch(r"/usr/lib/[^/]+/todod", plugdir[0]), plugdir
    for p in PLUGINS:
        assert f"{plugdir[0]}/{p}.so" in files, f"{p}.so is not in todod"
    assert not [f for f in files if f.endswith("kafka-direct.so")]
    for f in ("/lib/systemd/system/todod.service", "/etc/todod.conf",
              "/usr/share/man/man8/todod.8.gz", "/usr/share/man/man5/todod.conf.5.gz",
              "/usr/share/todod/migrations/001_events.sql", "/usr/share/doc/todod/copyright",
              "/usr/share/doc/todod/dapr/pubsub-kafka.yaml"):
        assert f in files, f"{f} is not in todod"
    assert not [f for f in files if "/include/" in f or f.endswith(".pc") or "/man3/" in f]
    assert deb_control(todod, "conffiles").split() == ["/etc/todod.conf"]
    depends = deb_field(todod, "Depends")
    for lib in ("libevent-2.1-7", "libjson-c5", "libcurl4", "libpq5", "adduser"):
        assert lib in depends, f"todod does not depend on {lib}: {depends}"
    assert "librdkafka" not in depends

    postinst = deb_control(todod, "postinst")
    assert "adduser --system" in postinst and "dpkg-statoverride" in postinst
    assert "deb-systemd-helper" in postinst, "dh_installsystemd did not enable the unit"
    assert "deb-systemd-helper purge" in deb_control(todod, "postrm")

    assert deb_files(kafka) == {
        f"{plugdir[0]}/kafka-direct.so", "/usr/share/lintian/overrides/todod-plugin-kafka",
        "/usr/share/doc/todod-plugin-kafka/copyright",
        "/usr/share/doc/todod-plugin-kafka/changelog.Debian.gz",
        "/usr/share/doc/todod-plugin-kafka/changelog.gz"}
    kdeps = deb_field(kafka, "Depends")
    assert "librdkafka1" in kdeps and re.search(r"todod \(= [^)]+\)", kdeps), kdeps

    files = deb_files(dev)
    for f in ("/usr/include/todod-plugin.h", "/usr/share/man/man3/todod-plugin.3.gz",
              "/usr/share/doc/todod-dev/examples/example.c",
              "/usr/share/doc/todod-dev/examples/Makefile.standalone"):
        assert f in files, f"{f} is not in todod-dev"
    assert [f for f in files if re.fullmatch(r"/usr/lib/[^/]+/pkgconfig/todod-plugin\.pc", f)]
    assert "libjson-c-dev" in deb_field(dev, "Depends")


def test_lintian(debs):
    need("lintian")
    _, changes = debs
    out = run(["lintian", "--fail-on", "none", "--tag-display-limit", "0", "--display-info",
               changes], timeout=1800)
    print(out)
    problems = [line for line in out.splitlines() if re.match(r"[EW]: ", line)]
    assert not problems, "lintian:\n" + "\n".join(problems)


def test_deb_install_run_purge(debs, pg_server, tmp_path):
    """apt installs the packages into a fresh Debian root (dependencies from
    the archive, maintainer scripts for real); todod runs there as the
    package's user against the test PostgreSQL; a purge leaves no file."""
    found, _ = debs
    tar = tmp_path / "root.tar"
    # The hook makes the .deb files visible to dpkg inside the root.
    mmdebstrap(tar, ["--format=tar", "--variant=apt",
                     "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
                     *(f"--include={found[p]}" for p in sorted(found))])
    root = unpack(tar, tmp_path / "root")

    passwd = (root / "etc" / "passwd").read_text()
    entry = re.search(r"^todod:x:(\d+):(\d+):[^:\n]*:([^:\n]*):([^:\n]*)$", passwd, re.M)
    assert entry, "the package created no todod user"
    uid, gid, home, shell = int(entry[1]), int(entry[2]), entry[3], entry[4]
    assert uid < 1000 and home == "/var/lib/todod" and shell.endswith("nologin")
    st = os.stat(root / "var" / "lib" / "todod")
    assert (st.st_uid, st.st_gid) == (uid, gid)
    conf = os.stat(root / "etc" / "todod.conf")
    assert (conf.st_uid, conf.st_gid, conf.st_mode & 0o777) == (0, gid, 0o640)
    assert os.path.islink(root / "etc/systemd/system/multi-user.target.wants/todod.service")
    unit = (root / "lib/systemd/system/todod.service").read_text()
    assert "ExecStart=/usr/sbin/todod -c /etc/todod.conf" in unit and "User=todod" in unit

    out = run_in_root(root, ["todod", "--version"])
    assert out.startswith(f"todod {package_version()} (plugin ABI 2."), out
    # The Kafka plugin loads with Debian's librdkafka.
    assert "brokers" in run_in_root(root, ["todod", "--help-plugin", "kafka-direct"])
    # The packaged configuration, with a database, as the service runs it.
    dbname = pg_server.create_database(f"todod_deb{os.getpid()}")
    conf_text = (root / "etc" / "todod.conf").read_text()
    port = free_port()
    conf_text = re.sub(r"^listen = .*$", f"listen = 127.0.0.1:{port}", conf_text, flags=re.M)
    conf_text = re.sub(r"^database =.*$", f"database = {pg_server.uri(dbname)}", conf_text,
                       flags=re.M)
    (root / "etc" / "todod.conf").write_text(conf_text)
    user = f"{uid}:{gid}"
    run_in_root(root, ["todod", "-t", "-c", "/etc/todod.conf"], user=user)
    serve_briefly(root, "/etc/todod.conf", {}, pg_server.dsn(dbname), user)

    run_in_root(root, ["dpkg", "--purge", "todod-dev", "todod-plugin-kafka", "todod"])
    left = [p for p in ("usr/sbin/todod", "etc/todod.conf", "lib/systemd/system/todod.service",
                        "etc/systemd/system/multi-user.target.wants/todod.service")
            if os.path.lexists(root / p)]
    assert not left, f"left after purge: {left}"
    assert "/etc/todod.conf" not in run_in_root(root, ["dpkg-statoverride", "--list"], ok=(0, 1))


# ---- RPM ---------------------------------------------------------------------

def test_rpm_spec(dist, tmp_path):
    need("rpmspec", "rpmbuild")
    tarball, src = dist[0], dist[1]()
    spec = src / "contrib" / "rpm" / "todod.spec"
    top = tmp_path / "rpmbuild"
    (top / "SOURCES").mkdir(parents=True)
    shutil.copy(tarball, top / "SOURCES")
    shutil.copy(src / "contrib" / "rpm" / "todod.sysusers", top / "SOURCES")
    define = ["--define", f"_topdir {top}"]

    parsed = run(["rpmspec", "-P", *define, str(spec)])
    assert re.search(rf"^Version:\s+{re.escape(package_version())}$", parsed, re.M), \
        "the spec's Version is not configure.ac's"
    assert "%{_unitdir}" not in parsed and "/usr/lib/systemd/system/todod.service" in parsed
    for section in ("%files", "%files plugin-kafka", "%files devel"):
        assert re.search(rf"^{re.escape(section)}$", parsed, re.M), f"no {section}"
    kafka = parsed.split("%files plugin-kafka")[1].split("%files devel")[0]
    assert "kafka-direct.so" in kafka and "kafka-direct.so" not in parsed.split("%files\n")[1] \
        .split("%files plugin-kafka")[0]
    names = run(["rpmspec", "-q", *define, "--builtrpms", "--qf", "%{name}\n", str(spec)])
    assert sorted(names.split()) == ["todod", "todod-devel", "todod-plugin-kafka"]

    run(["rpmbuild", "-bs", *define, str(spec)])
    srpms = glob.glob(str(top / "SRPMS" / "*.src.rpm"))
    assert [os.path.basename(s) for s in srpms] == [f"todod-{package_version()}-1.src.rpm"]
    contents = run(["rpm", "-qpl", srpms[0]]).split()
    assert sorted(contents) == sorted([tarball.name, "todod.spec", "todod.sysusers"])

    # rpmbuild -ta as doc/packaging.md says: the spec from the tarball, the
    # sysusers file beside it.
    beside = tmp_path / "t"
    beside.mkdir()
    shutil.copy(tarball, beside)
    shutil.copy(src / "contrib" / "rpm" / "todod.sysusers", beside)
    shutil.rmtree(top / "SRPMS")
    run(["rpmbuild", "-ts", *define, str(beside / tarball.name)])
    assert [os.path.basename(s) for s in glob.glob(str(top / "SRPMS" / "*.src.rpm"))] == \
        [f"todod-{package_version()}-1.src.rpm"]


# ---- the container image's root file system ------------------------------

def image_packages(src):
    with open(os.path.join(src, "contrib", "image-packages.txt")) as f:
        return [w for line in f for w in line.split("#", 1)[0].split()]


@pytest.fixture(scope="module")
def image_root_tar(dist):
    """The runtime stage's Debian packages, cached by the list."""
    src = dist[1]()
    pkgs = image_packages(src)
    key = hashlib.sha256(" ".join([SUITE, *IMAGE_MMDEBSTRAP, *pkgs]).encode()).hexdigest()[:16]
    os.makedirs(CACHE, exist_ok=True)
    tar = os.path.join(CACHE, f"image-root-{SUITE}-{key}.tar")
    with locked(tar):
        if not os.path.exists(tar):
            mmdebstrap(tar + ".tmp", ["--format=tar", *IMAGE_MMDEBSTRAP,
                                      "--include=" + ",".join(pkgs)])
            os.rename(tar + ".tmp", tar)
    return tar


def test_containerfile_matches_what_the_test_builds(dist):
    """The image the test proves is the image the Containerfile describes."""
    src = dist[1]()
    text = (src / "contrib" / "Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and stages[-1].endswith("-slim"), stages
    runtime = text.split("\nFROM ")[-1]
    assert "contrib/image-packages.txt" in runtime and "image-build.sh user /" in runtime
    assert "image-build.sh build" in text.split("\nFROM ")[1]
    assert re.search(rf"^USER {IMAGE_UID}:{IMAGE_UID}$", runtime, re.M)
    assert not re.search(r"^HEALTHCHECK", text, re.M)
    conf = (src / "contrib" / "todod-image.conf").read_text()
    port = re.search(r"^listen = 0\.0\.0\.0:(\d+)$", conf, re.M).group(1)
    assert re.search(rf"^EXPOSE {port}$", runtime, re.M)
    assert re.search(r'^ENTRYPOINT \["/usr/sbin/todod", "-c", "/etc/todod/todod.conf"\]$',
                     runtime, re.M)


def test_image_root_runs_todod(dist, image_root_tar, pg_server, tmp_path):
    src = dist[1]()
    stage = tmp_path / "stage"
    # The build stage's step, from the tarball's own script.
    run([str(src / "contrib" / "image-build.sh"), "build", str(src), str(stage),
         str(tmp_path / "build")], timeout=3600)
    plugins = sorted(os.path.basename(p)[:-3] for p in glob.glob(str(stage / "usr/lib/todod/*.so")))
    assert plugins == sorted([*PLUGINS, "kafka-direct"])
    assert not (stage / "usr" / "include").exists() and not (stage / "usr/share/man").exists()

    root = unpack(image_root_tar, tmp_path / "root")
    run([str(src / "contrib" / "image-build.sh"), "user", str(root)])
    run(["cp", "-a", f"{stage}/.", str(root)])  # COPY --from=build /stage/ /
    # Nothing beyond the list: no compiler, no PostgreSQL server.
    assert not (root / "usr/bin/gcc").exists() and not (root / "usr/lib/postgresql").exists()

    user = f"{IMAGE_UID}:{IMAGE_UID}"
    out = run_in_root(root, ["/usr/sbin/todod", "--version"], user=user)
    assert out.startswith(f"todod {package_version()} "), out
    assert "brokers" in run_in_root(root, ["/usr/sbin/todod", "--help-plugin", "kafka-direct"],
                                    user=user)

    dbname = pg_server.create_database(f"todod_img{os.getpid()}")
    env = {"TODOD_DATABASE_URL": pg_server.uri(dbname)}
    run_in_root(root, ["/usr/sbin/todod", "-t", "-c", "/etc/todod/todod.conf"], user=user, env=env)
    # The image's configuration as it is, but on a free loopback port: the
    # test shares the machine's network, a container would have its own.
    conf = (root / "etc/todod/todod.conf").read_text()
    conf = re.sub(r"^listen = .*$", f"listen = 127.0.0.1:{free_port()}", conf, flags=re.M)
    (root / "etc/todod/test.conf").write_text(conf)
    log = serve_briefly(root, "/etc/todod/test.conf", env, pg_server.dsn(dbname), user)
    assert pg_server.uri(dbname) not in log, "the database URL from the environment was logged"

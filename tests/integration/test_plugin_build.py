"""A plugin author's path: install todod, build the example plugin from its
installed source (docdir/examples) against the installed header and
pkg-config file, and load it."""

import os
import shutil
import subprocess

import pytest

from harness.todod import binary, builddir


def run(cmd, **kw):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}"
    return res.stdout


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """`make install` into a staging directory, as a package build would."""
    binary()  # a clear failure when there is no build
    stage = tmp_path_factory.mktemp("stage")
    run(["make", "-s", "-C", builddir(), "install", f"DESTDIR={stage}"])
    return stage


def pkg_env(stage):
    pcdirs = [str(p.parent) for p in stage.rglob("todod-plugin.pc")]
    assert pcdirs, "make install did not install todod-plugin.pc"
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = ":".join(pcdirs)
    env["PKG_CONFIG_SYSROOT_DIR"] = str(stage)
    return env


def installed_examples(stage):
    dirs = [p for p in stage.rglob("examples") if p.parent.name == "todod"
            and p.parent.parent.name == "doc"]
    assert dirs, "make install did not install the example under $(docdir)/examples"
    return dirs[0]


def test_installed_files(staged):
    names = {p.name for p in staged.rglob("*") if p.is_file()}
    for wanted in ("todod", "todod-plugin.h", "todod-plugin.pc", "todod.conf",
                   "001_events.sql", "todod.8", "todod.conf.5"):
        assert wanted in names, f"{wanted} was not installed"
    assert not [n for n in names if n.endswith(".la")], "libtool archives were installed"
    assert "example.so" not in names, "the example plugin was installed beside the real ones"
    examples = installed_examples(staged)
    assert sorted(p.name for p in examples.iterdir()) == ["Makefile.standalone", "example.c"]


def test_example_builds_out_of_tree_and_loads(staged, tmp_path):
    work = tmp_path / "example"
    work.mkdir()
    for name in ("example.c", "Makefile.standalone"):
        shutil.copy(installed_examples(staged) / name, work)
    run(["make", "-f", "Makefile.standalone", "CFLAGS=-O2 -Wall -Wextra -Werror"], cwd=work,
        env=pkg_env(staged))
    assert (work / "example.so").exists()

    conf = tmp_path / "todod.conf"
    conf.write_text(f"[core]\nplugin_dir = {work}\ndatabase = host=/nonexistent\n"
                    "[plugin.example]\ngreeting = built outside\ninterval = 2s\n")
    out = run([binary(), "-t", "-c", str(conf)])
    assert "greeting = built outside" in out

    help_text = run([binary(), "--help-plugin", "example", "-c", str(conf)])
    assert "interval" in help_text and "greeting" in help_text

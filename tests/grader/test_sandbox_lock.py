"""grader/sandbox_lock.py: the machine-wide lock of light isolation (one candidate on the
shared /tmp/<user>/saturnd at a time) and its removal of a killed grade's litter."""

import os
import subprocess
import sys
import threading

import pytest

from grader import sandbox_lock
from testkit import ROOT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lock_path(tmp_path, monkeypatch):
    path = tmp_path / "light.lock"
    monkeypatch.setenv("GRADER_LIGHT_LOCK", str(path))
    return path


def test_a_second_process_waits_for_the_lock(lock_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom grader import sandbox_lock\n"
         "sandbox_lock.acquire()\nprint('held', flush=True)\nsys.stdin.read()\n"
         "sandbox_lock.release()\nprint('released', flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline() == "held\n"
        got = threading.Event()

        def take():
            sandbox_lock.acquire()
            got.set()
        t = threading.Thread(target=take, daemon=True)
        t.start()
        assert not got.wait(0.5), "taken while another process held it"
        holder.stdin.close()
        assert got.wait(20), "not taken once the other process let go"
        assert holder.stdout.readline() == "released\n"
    finally:
        holder.kill()
        holder.wait()
        while sandbox_lock.held():
            sandbox_lock.release()


def test_taken_again_by_the_same_process_it_counts(lock_path):
    sandbox_lock.acquire()
    sandbox_lock.acquire()          # a daemon and a client of one grade
    sandbox_lock.release()
    assert sandbox_lock.held()
    sandbox_lock.release()
    assert not sandbox_lock.held()
    sandbox_lock.release()          # one too many: nothing happens
    assert not sandbox_lock.held()


@pytest.mark.skipif(os.geteuid() != 0, reason="a folder of another uid needs root")
def test_only_the_candidates_stale_folders_are_removed(tmp_path, monkeypatch):
    """clean_stale looks under /tmp; here a fake /tmp stands in (glob on a bytes pattern)."""
    user = "nobody-test-" + os.urandom(4).hex()
    base = tmp_path / "tmp"
    base.mkdir()
    real_join = os.path.join
    monkeypatch.setattr(sandbox_lock.os.path, "join",
                        lambda a, *rest: real_join(bytes(base) if a == b"/tmp" else a, *rest))
    ours = base / user / "saturnd" / "pipes"
    ours.mkdir(parents=True)
    os.mkfifo(ours / "saturnd-request-pipe")
    odd = real_join(bytes(base), os.fsencode(user) + b"\xff\xfe", b"saturnd", b"pipes")
    os.makedirs(odd)
    theirs = base / (user + "-other") / "saturnd"
    theirs.mkdir(parents=True)
    (theirs / "keep").write_bytes(b"x")
    os.chown(theirs, 12345, 12345)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_bytes(b"y")
    (base / (user + "-link")).mkdir()
    (base / (user + "-link") / "saturnd").symlink_to(target)
    sandbox_lock.clean_stale(user, os.geteuid())
    assert not (base / user).exists()
    assert not os.path.lexists(real_join(bytes(base), os.fsencode(user) + b"\xff\xfe"))
    assert (theirs / "keep").read_bytes() == b"x"          # another uid's: kept
    assert (target / "keep").read_bytes() == b"y"          # a link: not followed


def test_a_lock_path_that_is_a_link_is_not_followed(tmp_path, monkeypatch, capfd):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    link = tmp_path / "light.lock"
    link.symlink_to(target)
    monkeypatch.setenv("GRADER_LIGHT_LOCK", str(link))
    sandbox_lock.acquire()
    try:
        assert sandbox_lock.held()
    finally:
        sandbox_lock.release()
    err = capfd.readouterr().err
    assert err.startswith("saturnd-grade: light isolation without the machine-wide lock (")
    assert err.count("\n") == 1


def test_another_users_lock_file_is_used_read_only(tmp_path, monkeypatch):
    path = tmp_path / "light.lock"
    path.write_bytes(b"")
    path.chmod(0o444)
    monkeypatch.setenv("GRADER_LIGHT_LOCK", str(path))
    sandbox_lock.acquire()
    try:
        assert sandbox_lock.held() and sandbox_lock._state["fd"] is not None
    finally:
        sandbox_lock.release()

"""``cassini-lock`` removed or replaced while clients run (a /tmp cleaner): a reply still
reaches only its own client.

The daemon makes the lock file and marks the one in place (saturnd/pipes.py); cassini
talks only while it holds ``flock`` on that marked file, still at the path (cassini/
client.py ``take_client_lock``). Reproduced deterministically (a client holding the old
lock file while it is removed or replaced: the next cassini must wait for it) and under
churn (parallel clients, the lock file removed or replaced every 3 ms).
"""

import fcntl
import os
import stat
import time

import pytest

from killed_clients import LockChurn, spawn, stress
from testkit.waiting import wait_for


def lock_path(d):
    return os.path.join(str(d.pipes), "cassini-lock")


def hold_current_lock(d):
    fd = os.open(lock_path(d), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def plant(path, kind):
    tmp = path + ".planted"
    if kind == "file":
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600))
    elif kind == "symlink":
        os.symlink("/nonexistent/cassini-lock", tmp)
    elif kind == "fifo":
        os.mkfifo(tmp, 0o600)
    if kind == "remove":
        os.unlink(path)
    else:
        os.rename(tmp, path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["remove", "file", "symlink", "fifo"])
def test_no_client_talks_while_the_old_lock_is_held(daemon, kind):
    """A client holds the lock (mid-exchange) when the file is removed or replaced: the
    next cassini neither takes a lock of its own making nor talks before the holder is
    done; then it gets its own answer."""
    d = daemon
    assert d.cassini("-l").returncode == 0      # the lock file exists (whoever made it)
    held = hold_current_lock(d)
    plant(lock_path(d), kind)
    p = spawn(d, "-c", "--", "echo", "late")
    try:
        time.sleep(0.8)     # every chance to (wrongly) talk
        assert p.poll() is None, (p.returncode, p.stdout.read(), p.stderr.read())
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)
        os.close(held)
    out, err = p.communicate(timeout=20)
    assert (p.returncode, err) == (0, b""), err
    tid = int(out)
    assert d.cassini("-l").stdout == b"%d: * * * echo late\n" % tid
    st = os.lstat(lock_path(d))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["remove", "symlink", "fifo"])
def test_the_daemon_makes_the_lock_file_again(daemon, kind):
    """Removed, or replaced by a dangling symlink or a FIFO: the daemon puts a fresh lock
    file (0600) in place, logs it, and cassini goes on (never blocking on a FIFO)."""
    d = daemon
    plant(lock_path(d), kind)
    wait_for(lambda: stat.S_ISREG(os.lstat(lock_path(d)).st_mode)
             if os.path.lexists(lock_path(d)) else False, timeout=5, what="a fresh lock file")
    assert stat.S_IMODE(os.lstat(lock_path(d)).st_mode) == 0o600
    t = time.monotonic()
    res = d.cassini("-l", timeout=20)
    assert res.returncode == 0 and time.monotonic() - t < 5
    wait_for(lambda: "cassini-lock" in d.log(), timeout=5, what="the log line")


@pytest.mark.timeout(60)
def test_a_fifo_lock_file_never_blocks_cassini(daemon):
    """A FIFO at ``cassini-lock`` (here with the daemon stopped, so nobody replaces it):
    cassini gives up within its lock deadline with one line, exit 1, nothing sent."""
    d = daemon
    os.kill(d.pid, 19)      # SIGSTOP
    try:
        plant(lock_path(d), "fifo")
        t = time.monotonic()
        p = spawn(d, "-l", env={"CASSINI_LOCK_TIMEOUT": "0.5", "CASSINI_REPLY_TIMEOUT": "1"})
        out, err = p.communicate(timeout=20)
        took = time.monotonic() - t
    finally:
        os.kill(d.pid, 18)  # SIGCONT
    assert p.returncode == 1 and out == b"", err
    assert err.count(b"\n") == 1 and b"cassini-lock" in err and b"nothing sent" in err, err
    assert took < 5


@pytest.mark.timeout(300)
def test_lock_file_churn_gives_no_wrong_answer(daemon):
    """6 parallel clients while the lock file is removed or replaced every 3 ms: every
    answer given with exit 0 is right (a create prints its own id, listings are exact)."""
    with LockChurn(daemon, period=0.003, seed=19) as churn:
        figures = stress(daemon, clients=6, calls=25, kill_ratio=0.0, seed=19,
                         deadline_s=200)
    assert sum(churn.figures.values()) > 100, churn.figures
    assert figures["ok"] > 0, figures

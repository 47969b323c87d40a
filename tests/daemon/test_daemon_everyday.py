"""Living with saturnd every day: a dead daemon told at once, ``-t`` keeping the fields
left out, status and version, pause/resume, run history, the failure notice."""

import os
import subprocess
import time

import pytest

from testkit.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


# --- a dead daemon is told at once ---------------------------------------------------------
def test_dead_daemon_told_within_half_a_second(daemon):
    daemon.out("-c", "true")
    daemon.kill9()                                   # the pipes and the lock file stay
    assert (daemon.pipes / "saturnd-request-pipe").exists()
    t0 = time.monotonic()
    res = daemon.cassini("-l", check=False)          # CASSINI_TIMEOUT is its default, 5 s
    took = time.monotonic() - t0
    assert res.returncode == 1 and res.stdout == b""
    assert res.stderr.count(b"\n") == 1, res.stderr
    assert b"saturnd is not running" in res.stderr and b"dead" in res.stderr
    assert took < 0.5, took
    daemon.restart()                                 # and a new daemon is found as before
    assert daemon.out("-l").endswith(b"true\n")


def test_live_older_daemon_without_the_lock_still_waited_for(tmp_path):
    """A lock file naming a live process that holds no alive-lock (an older saturnd, or a
    daemon starting): cassini waits for a reader as before."""
    from saturnd import alive
    pipes = tmp_path / "pipes"
    pipes.mkdir(mode=0o700)
    (pipes / "saturnd.lock").write_text(f"running {os.getpid()}\n")
    assert alive.dead_daemon(str(pipes)) is None
    (pipes / "saturnd.lock").write_text("running 999999999\n")     # no such process
    assert "dead" in alive.dead_daemon(str(pipes))
    (pipes / "saturnd.lock").write_text("")                       # being written
    assert alive.dead_daemon(str(pipes)) is None
    os.unlink(pipes / "saturnd.lock")                              # another implementation
    assert alive.dead_daemon(str(pipes)) is None


def test_living_daemon_holds_the_alive_lock(daemon):
    from saturnd import alive
    assert alive.dead_daemon(str(daemon.pipes)) is None
    daemon.terminate()
    assert alive.dead_daemon(str(daemon.pipes)) is not None

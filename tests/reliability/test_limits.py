"""Limits: a `yes` task cannot fill the disk (output cap enforced while it runs), a long
history stays exact, a client killed while reading a big reply does not hurt the daemon."""

import os
import signal
import subprocess
import threading
import time

import pytest

from saturnd import protocol as P
from testkit.daemon import CASSINI
from testkit.waiting import wait_for

CAP = 1 << 20


@pytest.mark.timeout(60)
def test_yes_cannot_fill_the_disk(make_daemon):
    d = make_daemon(extra=["--output-cap", str(CAP)]).start()
    assert d.cassini("-c", "--", "timeout", "2", "yes").returncode == 0
    runs_dir = d.data / "runs"
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            used = 0
            try:
                for e in os.scandir(runs_dir):
                    used += e.stat().st_blocks * 512
            except OSError:
                pass
            peak[0] = max(peak[0], used)
            time.sleep(0.005)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        assert d.advance(1, deadline=30)      # ok: the run ended and was recorded
    finally:
        stop.set()
        t.join(5)
    # the daemon copies at most the cap of each stream into the spool files (saturnd/
    # runner.py): never more than the cap on disk, block rounding aside
    # (test_spool_on_disk.py samples it every 2 ms)
    assert 0 < peak[0] <= 2 * CAP + (64 << 10), peak[0]
    out = d.call(P.Request(P.STDOUT, taskid=0)).output
    assert out == b"y\n" * (CAP // 2)
    assert d.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs == [(d.now(), 124)]


@pytest.mark.timeout(60)
def test_long_history_is_exact(daemon):
    """5,000 recorded runs (written directly in the store format, then a restart): the reply
    carries every record in order; new runs append."""
    d = daemon
    assert d.cassini("-c", "-m", "0", "--", "true").returncode == 0
    d.stop()
    records = b"".join(P.encode_run(1_000_000 + 60 * i, i % 256) for i in range(5000))
    (d.data / "tasks" / "0" / "exit").write_bytes(records)
    d.start()
    got = d.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs
    assert got == P.decode_runs(records)
    assert d.call(P.Request(P.EXEC_TASK, taskid=0)).errcode is None
    wait_for(lambda: len(d.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs) == 5001)
    assert d.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs[:5000] == got


def _writing_reply(pid, reply_path):
    """True while process ``pid`` holds the reply pipe open (it is writing a reply)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == reply_path:
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


@pytest.mark.timeout(90)
def test_cassini_killed_while_reading_a_big_reply(daemon):
    """cassini SIGKILLed while the daemon is in the middle of a 32 MiB reply: the daemon
    gets EPIPE, carries on, and serves the same reply whole to the next client."""
    d = daemon
    size = 32 << 20
    assert d.cassini("-c", "--", "head", "-c", str(size), "/dev/zero").returncode == 0
    d.advance(1)
    reply_path = str(d.pipes / "saturnd-reply-pipe")
    killed_mid_reply = 0
    for _ in range(5):
        p = subprocess.Popen([CASSINI, "-p", str(d.pipes), "-o", "0"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while p.poll() is None and not _writing_reply(d.pid, reply_path):
            assert time.monotonic() < deadline
        p.send_signal(signal.SIGKILL)
        if p.wait(10) == -signal.SIGKILL:
            killed_mid_reply += 1
        assert d.alive()
        out = d.call(P.Request(P.STDOUT, taskid=0), timeout=30).output
        assert out == b"\0" * size
    assert killed_mid_reply >= 3
    assert d.log().count("closed the reply pipe early") >= 3

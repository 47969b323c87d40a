"""``--output-cap`` bounds the bytes on disk at every moment, not only what is recorded.

The daemon reads each run's stdout and stderr through pipes and writes at most the cap of
each into its spool files (saturnd/runner.py), so a `yes` never has more than the cap on
disk: as a run, as the run of a task removed while it runs (it runs on, its output cut
off at the cap, then dropped), and as a background writer left behind by a recorded run
(everything it writes is discarded). The spool files are sampled every ~2 ms while `yes`
writes hundreds of MiB/s (before: up to 99.9 MiB on disk with a 1 MiB cap).
"""

import os
import re
import stat
import time

import pytest

from saturnd import protocol as P
from testkit.waiting import wait_for

CAP = 1 << 20
SLACK = 64 << 10        # block rounding of the two spool files; the bytes are within CAP


def spool_use(d):
    """(largest spool file size, blocks allocated by all spool files) in DATA_DIR/runs."""
    biggest = used = 0
    try:
        entries = list(os.scandir(d.data / "runs"))
    except OSError:
        return 0, 0
    for e in entries:
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        biggest = max(biggest, st.st_size)
        used += st.st_blocks * 512
    return biggest, used


def held_by(pid):
    """(size, blocks) of the regular file ``pid``'s stdout is (an unlinked spool file)."""
    try:
        st = os.stat(f"/proc/{pid}/fd/1")
    except OSError:
        return 0, 0
    if not stat.S_ISREG(st.st_mode):
        return 0, 0         # a pipe (the daemon's): nothing on disk
    return st.st_size, st.st_blocks * 512


def sample(d, seconds, writer=None):
    peak_size = peak_used = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        size, used = spool_use(d)
        if writer is not None:
            held_size, held_used = held_by(writer)
            size, used = max(size, held_size), used + held_used
        peak_size, peak_used = max(peak_size, size), max(peak_used, used)
        time.sleep(0.002)
    return peak_size, peak_used


def started(d, n=1):
    return wait_for(lambda: len(re.findall(r"run: task \d+ started, pid (\d+)", d.log())) >= n,
                    timeout=20, what="the run to start")


def pid_of_run(d):
    return int(re.findall(r"run: task \d+ started, pid (\d+)", d.log())[-1])


@pytest.mark.timeout(90)
def test_a_running_yes_never_has_more_than_the_cap_on_disk(make_daemon):
    d = make_daemon(extra=["--output-cap", str(CAP)]).start()
    assert d.cassini("-c", "--", "timeout", "3", "yes").returncode == 0
    assert d.cassini("-i", "0").returncode == 0
    started(d)
    peak_size, peak_used = sample(d, 2.0)
    assert peak_size <= CAP and peak_used <= 2 * CAP + SLACK, (peak_size, peak_used)
    wait_for(lambda: d.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs, timeout=20,
             what="the run recorded")
    assert d.call(P.Request(P.STDOUT, taskid=0)).output == b"y\n" * (CAP // 2)


@pytest.mark.timeout(90)
def test_the_run_of_a_removed_task_stays_within_the_cap(make_daemon):
    """Removed while it runs: the run goes on (it is not killed), its output is cut off at
    the cap and dropped when it ends; nothing of it is recorded."""
    d = make_daemon(extra=["--output-cap", str(CAP)]).start()
    assert d.cassini("-c", "--", "timeout", "4", "yes").returncode == 0
    assert d.cassini("-i", "0").returncode == 0
    started(d)
    pid = pid_of_run(d)
    assert d.cassini("-r", "0").returncode == 0
    peak_size, peak_used = sample(d, 2.0)
    assert os.path.exists(f"/proc/{pid}"), "the run was stopped"
    assert peak_size <= CAP and peak_used <= 2 * CAP + SLACK, (peak_size, peak_used)
    wait_for(lambda: f"pid {pid} ended" in d.log(), timeout=20, what="the run to end")
    wait_for(lambda: spool_use(d) == (0, 0), timeout=10, what="the spool files gone")
    assert d.out("-l") == b""


@pytest.mark.timeout(90)
def test_an_orphaned_background_yes_writes_nothing_to_disk(make_daemon):
    d = make_daemon(extra=["--output-cap", str(CAP)]).start()
    pidfile = d.home / "yes.pid"
    assert d.cassini("-c", "--", "sh", "-c",
                     f"timeout 4 yes & echo $! > {pidfile}; echo done").returncode == 0
    assert d.cassini("-i", "0").returncode == 0
    wait_for(lambda: d.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs, timeout=20,
             what="the run recorded")
    recorded = d.call(P.Request(P.STDOUT, taskid=0)).output
    assert 0 < len(recorded) <= CAP
    yes_pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10,
                           what="the pid of yes"))
    peak_size, peak_used = sample(d, 2.0, writer=yes_pid)
    assert peak_size <= CAP and peak_used <= 2 * CAP + SLACK, (peak_size, peak_used)
    assert d.call(P.Request(P.STDOUT, taskid=0)).output == recorded

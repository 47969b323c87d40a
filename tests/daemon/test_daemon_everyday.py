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


# --- helpers ---------------------------------------------------------------------------------
from testkit import T0  # noqa: E402


def fmt(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)).encode()


def nruns(daemon, taskid):
    return len(daemon.out("-x", str(taskid)).splitlines())


# --- -t changes only the fields given --------------------------------------------------------
def test_t_keeps_the_fields_left_out(daemon):
    daemon.cassini("-c", "-m", "0", "-H", "8", "-d", "1-5", "true")
    daemon.cassini("-t", "0", "-m", "30")
    assert daemon.out("-l") == b"0: 30 8 1-5 true\n"
    daemon.cassini("-t", "0", "-H", "9-17", "-d", "0")
    assert daemon.out("-l") == b"0: 30 9-17 0 true\n"
    daemon.cassini("-t", "0")                                  # nothing given: nothing changes
    assert daemon.out("-l") == b"0: 30 9-17 0 true\n"
    daemon.cassini("-t", "0", "-m", "*", "-H", "*", "-d", "*")  # all three: as the reference
    assert daemon.out("-l") == b"0: * * * true\n"
    res = daemon.cassini("-t", "5", "-m", "1", check=False)
    assert res.returncode == 1 and b"no task with id 5" in res.stderr
    daemon.terminate()
    daemon.start()                                             # durable
    assert daemon.out("-l") == b"0: * * * true\n"


# --- status and version ----------------------------------------------------------------------
def test_versions():
    from saturnd import __version__
    bin_dir = os.path.dirname(os.path.abspath(__import__("sys").executable))
    out = subprocess.run([os.path.join(bin_dir, "saturnd"), "--version"],
                         capture_output=True, timeout=30)
    assert (out.returncode, out.stdout) == (0, f"saturnd {__version__}\n".encode())
    for opt in ("-V", "--version"):
        out = subprocess.run([os.path.join(bin_dir, "cassini"), opt], capture_output=True,
                             timeout=30)
        assert (out.returncode, out.stdout) == (0, f"cassini {__version__}\n".encode())


def test_version_matches_pyproject():
    import tomllib
    from saturnd import __version__
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        assert tomllib.load(f)["project"]["version"] == __version__


def test_status(daemon):
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "sleep", "60")
    daemon.cassini("-c", "true")
    daemon.cassini("-Z", "1")
    daemon.cassini("-i", "0")
    wait_for(lambda: b"running: 1\n" in daemon.out("-S"), what="the run in flight")
    status = dict(line.split(": ", 1) for line in daemon.out("-S").decode().splitlines())
    assert status["pid"] == str(daemon.pid)
    assert status["version"] == __import__("saturnd").__version__
    assert status["clock"].startswith("manual (now ")
    assert status["data"] == str(daemon.data) and status["pipes"] == str(daemon.pipes)
    assert (status["tasks"], status["paused"], status["running"]) == ("2", "1", "1")
    assert "since" in status


# --- pause and resume ------------------------------------------------------------------------
def test_pause_keeps_the_task_and_stops_its_runs(make_daemon):
    daemon = make_daemon().start()
    daemon.cassini("-c", "true")                      # every minute
    daemon.advance(1)
    wait_for(lambda: nruns(daemon, 0) == 1, what="the first run")
    daemon.cassini("-Z", "0")
    assert daemon.out("-n", "0") == b"task 0 is paused: no run until cassini -U 0\n"
    daemon.advance(3)
    time.sleep(0.3)
    assert nruns(daemon, 0) == 1                      # not run while paused
    assert daemon.out("-l") == b"0: * * * true\n"     # still there, same id
    daemon.terminate()
    daemon.start()                                    # still paused after a restart
    daemon.advance(1)
    time.sleep(0.3)
    assert nruns(daemon, 0) == 1
    daemon.cassini("-i", "0")                         # -i runs it anyway
    wait_for(lambda: nruns(daemon, 0) == 2, what="the -i run")
    daemon.cassini("-U", "0")
    assert len(daemon.out("-n", "0", "-N", "2").splitlines()) == 2
    daemon.advance(1)
    wait_for(lambda: nruns(daemon, 0) == 3, what="a run after resume")
    for opt in ("-Z", "-U"):
        res = daemon.cassini(opt, "9", check=False)
        assert res.returncode == 1 and b"no task with id 9" in res.stderr


# --- run history -----------------------------------------------------------------------------
def test_history_keeps_the_last_n_runs(make_daemon):
    daemon = make_daemon(extra=["--history", "3"]).start()
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "--", "sh", "-c",
                   'n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; '
                   'echo "out $n"; echo "err $n" >&2; exit $n')
    for k in range(1, 6):
        daemon.cassini("-i", "0")
        wait_for(lambda: nruns(daemon, 0) == k, what=f"run {k}")
    hist = daemon.out("-Y", "0")
    assert hist.count(b"== run ") == 3
    for k in (3, 4, 5):
        assert (b"== run %d, %s, exit status %d\n-- stdout\nout %d\n-- stderr\nerr %d\n"
                % (k, fmt(T0), k, k, k)) in hist
    assert daemon.out("-Y", "0", "-K", "1").startswith(b"== run 5,")
    assert daemon.out("-Y", "0", "-F", "4").count(b"== run 4,") == 1
    res = daemon.cassini("-Y", "0", "-F", "1", check=False)    # not kept any more
    assert res.returncode == 1 and b"run number 1 of task 0 is not kept" in res.stderr
    hdir = daemon.data / "tasks" / "0" / "history"
    assert sorted(os.listdir(hdir)) == [f"{k}.{s}" for k in (3, 4, 5)
                                        for s in ("stderr", "stdout")]
    daemon.cassini("-R", "0")                                  # forgotten with the runs
    assert daemon.out("-Y", "0") == b""
    res = daemon.cassini("-Y", "7", check=False)
    assert res.returncode == 1 and b"no task with id 7" in res.stderr


def test_history_is_bounded_per_output(make_daemon):
    daemon = make_daemon(extra=["--history-cap", "4"]).start()
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "printf", "0123456789")
    daemon.cassini("-i", "0")
    wait_for(lambda: nruns(daemon, 0) == 1, what="the run")
    assert daemon.out("-o", "0") == b"0123456789"               # the last output is whole
    assert b"-- stdout\n0123\n" in daemon.out("-Y", "0")         # the kept copy is capped


# --- failure notice --------------------------------------------------------------------------
def test_failure_notice_error_log_and_command(make_daemon, tmp_path):
    seen = tmp_path / "notices"
    cmd = (f'echo "$SATURND_TASKID $SATURND_RUN $SATURND_EXIT_STATUS $SATURND_TIME '
           f'$(cat "$SATURND_STDOUT")" >> {seen}')
    daemon = make_daemon(extra=["--on-failure", cmd]).start()
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "--", "sh", "-c", "echo bad; exit 3")
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "true")
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "no-such-program-xyz")
    for taskid in (0, 1, 2):
        daemon.cassini("-i", str(taskid))
        wait_for(lambda: nruns(daemon, taskid) == 1, what=f"the run of {taskid}")
    wait_for(lambda: seen.exists() and len(seen.read_text().splitlines()) == 2,
             what="two notices")
    lines = sorted(seen.read_text().splitlines())
    assert lines == [f"0 1 3 {T0} bad", f"2 1 127 {T0} "]
    assert daemon.out("-E", "0") == fmt(T0) + b" run of 2026-01-01 00:00 failed: exit status 3\n"
    assert daemon.out("-E", "1") == b""
    assert daemon.out("-E", "2").count(b"\n") == 1             # only its "cannot start"


# --- logs --------------------------------------------------------------------------------------
def test_log_lines_are_text_and_the_log_file_rotates(make_daemon):
    daemon = make_daemon(extra=["--log-max", "2000"]).start()
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "no-such-program-xyz")
    daemon.cassini("-i", "0")
    wait_for(lambda: "cannot start" in daemon.log(), what="the start failure in the log")
    assert "cannot start 'no-such-program-xyz'" in daemon.log()
    daemon.clock_line("now")                         # the control channel's log line
    wait_for(lambda: "control: now -> ok" in daemon.log(), what="the control line")
    assert "b'" not in daemon.log()
    for _ in range(30):
        daemon.cassini("-i", "0")
    wait_for(lambda: nruns(daemon, 0) == 31, what="31 runs")
    rotated = daemon.logfile.with_name(daemon.logfile.name + ".1")
    assert rotated.exists()
    assert daemon.logfile.stat().st_size <= 2000 and rotated.stat().st_size <= 2000


# --- the long listing's fields: paused, last run, next run ----------------------------------
def test_long_listing_shows_paused_last_and_next(daemon):
    daemon.cassini("-c", "-m", "5", "--", "sh", "-c", "exit 4")
    daemon.cassini("-c", "-m", "5", "true")
    assert daemon.out("-L") == (b"0: 5 * * * * [next=2026-01-01 00:05:00] sh -c exit 4\n"
                                b"1: 5 * * * * [next=2026-01-01 00:05:00] true\n")
    daemon.advance(5)
    wait_for(lambda: nruns(daemon, 0) == 1 and nruns(daemon, 1) == 1, what="both runs")
    daemon.cassini("-Z", "1")
    assert daemon.out("-L") == (
        b"0: 5 * * * * [last=2026-01-01 00:05:00 exit 4] [next=2026-01-01 01:05:00] "
        b"sh -c exit 4\n"
        b"1: 5 * * * * [paused] [last=2026-01-01 00:05:00 exit 0] true\n")


def test_paused_reboot_task_does_not_run_at_start_up(make_daemon):
    daemon = make_daemon().start()
    daemon.cassini("-c", "-B", "true")                 # @reboot
    daemon.cassini("-c", "-B", "true")
    daemon.cassini("-Z", "0")
    daemon.terminate()
    daemon.start()
    wait_for(lambda: nruns(daemon, 1) == 1, what="the @reboot run of the task not paused")
    assert nruns(daemon, 0) == 0


def test_a_daemon_starting_on_its_dead_predecessors_pipes_is_not_called_dead(monkeypatch):
    """The lock file still names the dead daemon for the moments a new one takes to claim
    it: "dead" is said only when it holds for cassini.client.DEAD_CONFIRM s."""
    from cassini import client
    from saturnd import alive
    looks = iter(["saturnd (pid 1) is dead", "saturnd (pid 1) is dead", None])
    monkeypatch.setattr(alive, "dead_daemon", lambda pipes_dir: next(looks))
    client._raise_if_dead("/nonexistent")           # the new daemon claimed it: no error
    monkeypatch.setattr(alive, "dead_daemon", lambda pipes_dir: "saturnd (pid 1) is dead")
    t0 = time.monotonic()
    with pytest.raises(client.ClientError, match="is dead"):
        client._raise_if_dead("/nonexistent")
    assert client.DEAD_CONFIRM <= time.monotonic() - t0 < client.DEAD_CONFIRM + 0.3

"""This project's own requests end to end: reset history (-R), clone (-C),
error log (-E TASKID, -D), through the real cassini against a real saturnd."""

import os
import re
import struct
import time

import pytest

from saturnd import protocol as P

from testkit import T0
from testkit.waiting import wait_for

pytestmark = [pytest.mark.timeout(90), pytest.mark.scenario]


def fmt(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)).encode()


def runs(*pairs):
    return b"".join(fmt(t) + b" %d\n" % c for t, c in pairs)


def started_pid(daemon, taskid, nth=1):
    """The pid of the ``nth`` run of ``taskid`` started so far (from the daemon's log)."""
    def find():
        pids = re.findall(rf"run: task {taskid} started, pid (\d+)", daemon.log())
        return int(pids[nth - 1]) if len(pids) >= nth else None
    return wait_for(find, timeout=20, what=f"run {nth} of task {taskid} to start")


def ended(daemon, pid):
    return wait_for(lambda: f"pid {pid} ended" in daemon.log(), timeout=20,
                    what=f"pid {pid} to end")


# --- RESET_HISTORY ---------------------------------------------------------------------
def test_reset_history_clears_runs_and_outputs_durably(make_daemon):
    daemon = make_daemon().start()
    daemon.cassini("-c", "echo", "hi")
    daemon.advance(2)
    assert daemon.out("-x", "0") == runs((T0 + 60, 0), (T0 + 120, 0))
    assert daemon.out("-R", "0") == b""
    assert daemon.out("-x", "0") == b""
    for opt in ("-o", "-e"):            # ER NR: the last run is forgotten too
        res = daemon.cassini(opt, "0", check=False)
        assert res.returncode == 1 and res.stdout == b"", opt
    assert daemon.raw(struct.pack(">HQ", P.STDOUT, 0)) == b"ERNR"
    assert not os.path.exists(daemon.data / "tasks" / "0" / "stdout")
    daemon.advance(1)
    assert daemon.out("-x", "0") == runs((T0 + 180, 0))
    assert daemon.out("-R", "0") == b""
    daemon.terminate()
    daemon.start()                      # durable: still empty after a restart
    assert daemon.out("-x", "0") == b""
    assert daemon.out("-l") == b"0: * * * echo hi\n"


def test_reset_history_unknown_task(daemon):
    res = daemon.cassini("-R", "7", check=False)
    assert res.returncode == 1 and res.stdout == b""
    assert b"no task with id 7" in res.stderr
    assert daemon.raw(struct.pack(">HQ", P.RESET_HISTORY, 7)) == b"ERNF"
    daemon.cassini("-c", "true")
    assert daemon.raw(struct.pack(">HQ", P.RESET_HISTORY, 0)) == b"OK"


def test_reset_history_discards_the_run_in_flight(daemon, tmp_path):
    gate = tmp_path / "gate"
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "--", "sh", "-c",
                   f"while [ ! -e {gate} ]; do sleep 0.02; done; cat {gate}")
    daemon.cassini("-i", "0")
    first = started_pid(daemon, 0, 1)
    assert daemon.out("-R", "0") == b""         # while the first run is still going
    gate.write_bytes(b"first")
    ended(daemon, first)
    gate.write_bytes(b"second")
    daemon.cassini("-i", "0")
    wait_for(lambda: daemon.out("-x", "0"), what="the second run to be recorded")
    # the reaper records runs in the order they end: the first one was handled (and
    # dropped) before the second was recorded
    assert daemon.out("-x", "0") == runs((T0, 0))
    assert daemon.out("-o", "0") == b"second"


# --- CLONE -------------------------------------------------------------------------------
def test_clone_copies_timing_and_command_under_a_new_id(make_daemon):
    daemon = make_daemon().start()
    daemon.cassini("-c", "-m", "5,7", "-H", "1-3", "-d", "2", "--", "echo", "a b", "'q'")
    assert daemon.out("-C", "0") == b"1\n"
    assert daemon.out("-l") == (b"0: 5,7 1-3 2 echo a b 'q'\n"
                                b"1: 5,7 1-3 2 echo a b 'q'\n")
    # same argv bytes on the wire, not just the same text
    listing = P.decode_reply(daemon.raw(b"LS"), P.LIST).tasks
    assert listing[0][1:] == listing[1][1:]
    daemon.terminate()
    daemon.start()                      # durable like CREATE
    assert daemon.out("-l").count(b"echo a b 'q'") == 2
    assert daemon.out("-c", "true") == b"2\n"   # the clone's id is spent


def test_clone_starts_with_an_empty_history(daemon):
    daemon.cassini("-c", "echo", "x")
    daemon.advance(1)
    assert daemon.out("-x", "0") == runs((T0 + 60, 0))
    assert daemon.out("-C", "0") == b"1\n"
    assert daemon.out("-x", "1") == b""
    assert daemon.cassini("-o", "1", check=False).returncode == 1
    daemon.advance(1)
    assert daemon.out("-x", "1") == runs((T0 + 120, 0))
    assert daemon.out("-x", "0") == runs((T0 + 60, 0), (T0 + 120, 0))


def test_clone_unknown_task(daemon):
    res = daemon.cassini("-C", "3", check=False)
    assert res.returncode == 1 and res.stdout == b""
    assert daemon.raw(struct.pack(">HQ", P.CLONE, 3)) == b"ERNF"
    assert daemon.out("-c", "true") == b"0\n"   # no id spent by a failed clone


# --- ERROR_LOG -----------------------------------------------------------------------------
def test_error_log_command_that_cannot_start(make_daemon):
    daemon = make_daemon().start()
    daemon.cassini("-c", "no-such-program-xyz")
    daemon.cassini("-c", "true")
    assert daemon.out("-E", "0") == b""
    daemon.advance(1)
    line = fmt(T0 + 60) + b" cannot start 'no-such-program-xyz': No such file or directory\n"
    assert daemon.out("-E", "0") == line
    assert daemon.out("-E", "1") == b""         # per task
    assert daemon.out("-R", "0") == b""         # reset history keeps the error log
    assert daemon.out("-E", "0") == line
    daemon.terminate()
    daemon.start()                              # survives a restart
    assert daemon.out("-E", "0") == line
    assert daemon.out("-C", "0") == b"2\n"      # a clone starts with an empty log
    assert daemon.out("-E", "2") == b""
    daemon.cassini("-r", "0")                   # a removed task's log goes with it
    res = daemon.cassini("-E", "0", check=False)
    assert res.returncode == 1 and b"no task with id 0" in res.stderr
    assert not os.path.exists(daemon.data / "tasks" / "0")


def test_error_log_local_time(daemon):
    daemon.cassini("-c", "no-such-program-xyz")
    daemon.advance(1)
    paris = daemon.cassini("-E", "0", tz="Europe/Paris").stdout
    assert paris.startswith(b"2026-01-01 01:01:00 cannot start"), paris


def test_error_log_run_killed_at_shutdown(make_daemon):
    daemon = make_daemon().start()
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "sleep", "120")
    daemon.cassini("-i", "0")
    started_pid(daemon, 0)
    daemon.terminate()                  # grace 1 s, then killed
    daemon.start()
    assert daemon.out("-x", "0") == runs((T0, 65535))
    assert daemon.out("-E", "0") == (fmt(T0) + b" run of 2026-01-01 00:00 killed at shutdown "
                                     b"(still running after 1 s)\n")


def test_error_log_output_cut_at_the_cap(make_daemon):
    daemon = make_daemon(extra=["--output-cap", "10"]).start()
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "printf", "0123456789abcdef")
    daemon.cassini("-c", "-m", "7", "-H", "3", "-d", "0", "printf", "0123456789")
    daemon.cassini("-i", "0")
    daemon.cassini("-i", "1")
    wait_for(lambda: daemon.out("-x", "0") and daemon.out("-x", "1"), what="both runs")
    assert daemon.out("-o", "0") == b"0123456789"
    assert daemon.out("-E", "0") == (fmt(T0) + b" run of 2026-01-01 00:00: output cut to "
                                     b"the first 10 bytes (output cap)\n")
    assert daemon.out("-E", "1") == b""         # exactly at the cap: nothing was cut


def test_error_log_clock_changes(daemon):
    assert daemon.out("-D") == b""
    daemon.cassini("-c", "-m", "10", "true")
    daemon.set_time(T0 + 30 * 60)               # forward 30 min: minute 10 runs late
    wait_for(lambda: daemon.out("-x", "0"), what="the late run")
    assert daemon.out("-x", "0") == runs((T0 + 30 * 60, 0))
    daemon.set_time(T0 + 20 * 60)               # back 10 min
    daemon.set_time(T0 + 10 * 3600)             # forward over 3 h: nothing replayed
    assert daemon.out("-D") == (
        fmt(T0 + 1800) + b" clock moved forward by 30 min at 00:30: the tasks due in the "
        b"29 minute(s) skipped over ran late, at 00:30\n"
        + fmt(T0 + 1200) + b" clock moved back by 10 min at 00:20: no task runs until the "
        b"clock passes the last minute already run\n"
        + fmt(T0 + 36000) + b" clock moved forward by 580 min at 10:00: the 579 minute(s) "
        b"skipped over were not run (jump over 3 hours)\n")
    assert daemon.out("-x", "0") == runs((T0 + 30 * 60, 0))


def test_error_log_damaged_entry_and_storage_failure(make_daemon):
    daemon = make_daemon().start()
    daemon.cassini("-c", "true")
    daemon.cassini("-c", "true")
    daemon.terminate()
    # a file edited in place by hand: the start-up index of the clean stop must go too
    # (docs/saturnd.md, Storage), else that task is taken from the index
    (daemon.data / "index").unlink()
    (daemon.data / "tasks" / "1" / "argv").write_bytes(b"\0\0")
    daemon.start()
    assert daemon.out("-l") == b"0: * * * true\n"
    log = daemon.out("-D")
    assert log.startswith(fmt(T0) + b" damaged task 1 skipped at start-up: "), log
    assert log.count(b"\n") == 1
    # a request it cannot honour: the build directory of CREATE is not a directory
    tmp = daemon.data / "tmp"
    tmp.rmdir()
    tmp.write_bytes(b"")
    res = daemon.cassini("-c", "true", check=False)
    assert res.returncode == 1
    tmp.unlink()
    tmp.mkdir()
    log = daemon.out("-D").splitlines()
    assert log[-1].startswith(fmt(T0) + b" CREATE request not honoured (storage): "), log
    assert daemon.out("-c", "true") == b"3\n"   # and the daemon carries on


def test_error_log_unknown_task_and_bad_scope(daemon):
    res = daemon.cassini("-E", "4", check=False)
    assert res.returncode == 1 and res.stdout == b""
    assert daemon.raw(b"EL\x01" + struct.pack(">Q", 4)) == b"ERNF"
    assert daemon.raw(b"EL\x00" + struct.pack(">Q", 4)) == b"OK\0\0\0\0"   # TASKID ignored
    assert daemon.raw(b"EL\x02" + struct.pack(">Q", 0)) == b""   # malformed: empty reply
    assert daemon.out("-l") == b""              # still serving


# --- trailing bytes ----------------------------------------------------------------------
@pytest.mark.parametrize("extra", [b"\0", b"LS", b"\x52\x48" + bytes(8)])
def test_own_requests_with_trailing_bytes_change_nothing(make_daemon, extra):
    """RH, CL, NX, EL followed by trailing bytes (in the same write) are malformed: the
    empty reply, nothing done (no history reset, no clone), and the daemon serves on."""
    daemon = make_daemon().start()
    daemon.cassini("-c", "echo", "hi")
    daemon.advance(1)
    history = daemon.out("-x", "0")
    assert history == runs((T0 + 60, 0))
    tid = struct.pack(">Q", 0)
    for request in (b"RH" + tid, b"CL" + tid, b"NX" + tid + struct.pack(">I", 3),
                    b"EL\x01" + tid, b"EL\x00" + tid):
        assert daemon.raw(request + extra) == b"", request
    assert daemon.out("-x", "0") == history           # RH did nothing
    assert daemon.out("-l") == b"0: * * * echo hi\n"  # CL did nothing
    assert daemon.raw(b"CL" + tid) == b"OK" + struct.pack(">Q", 1)   # whole: carried out
    assert "followed by trailing bytes" in daemon.log()


def test_a_garbage_daemon_error_log_is_told_and_kept_within_its_cap(make_daemon):
    daemon = make_daemon().start()
    daemon.terminate()
    (daemon.data / "errors").write_bytes(os.urandom(100_000))
    daemon.start()
    assert os.path.getsize(daemon.data / "errors") <= 64 << 10
    log = daemon.out("-D")
    assert log.count(b"\n") == 1 and b"100000 bytes" in log and b"dropped" in log, log

"""saturnd end to end: a real daemon (manual clock) driven by the cassini command."""

import os
import select
import struct
import subprocess
import time

import pytest

from saturnd import protocol as P

from testkit import T0
from testkit.daemon import CLOCKCTL, SATURND, cassini_command
from testkit.procs import children_of, pid_alive
from testkit.waiting import wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.scenario]
HOST_LAUNCH = "starts saturnd itself, on the host"


def fmt(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)).encode()


def runs(*pairs):
    return b"".join(fmt(t) + b" %d\n" % c for t, c in pairs)


def test_create_list_run_and_outputs(daemon):
    assert daemon.out("-c", "-m", "0-59/2,1", "-H", "0", "-d", "4", "--",
                      "sh", "-c", r"printf 'out\000bin'; printf 'e r r' >&2") == b"0\n"
    assert daemon.out("-c", "echo", "hi") == b"1\n"
    assert daemon.out("-l") == (
        b"0: 0-2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,38,40,42,44,46,48,50,52,"
        b"54,56,58 0 4 sh -c printf 'out\\000bin'; printf 'e r r' >&2\n"
        b"1: * * * echo hi\n")
    assert daemon.out("-x", "0") == b""
    res = daemon.cassini("-o", "0", check=False)        # never ran: ER NR
    assert res.returncode == 1 and res.stdout == b""
    assert daemon.advance(1) == T0 + 60
    assert daemon.out("-x", "0") == runs((T0 + 60, 0))
    assert daemon.out("-o", "0") == b"out\x00bin"
    assert daemon.out("-e", "0") == b"e r r"
    assert daemon.out("-o", "1") == b"hi\n"
    assert daemon.out("-e", "1") == b""
    daemon.advance(2)
    assert daemon.out("-x", "0") == runs((T0 + 60, 0), (T0 + 120, 0))
    assert daemon.out("-x", "1") == runs((T0 + 60, 0), (T0 + 120, 0), (T0 + 180, 0))


def test_exit_codes(daemon):
    for argv in (["sh", "-c", "exit 1"], ["sh", "-c", "exit 255"], ["sh", "-c", "kill -9 $$"],
                 ["no-such-program-xyz", "a"], ["true"]):
        daemon.cassini("-c", "--", *argv)
    daemon.advance(1)
    got = [daemon.out("-x", str(i)) for i in range(5)]
    assert got == [runs((T0 + 60, c)) for c in (1, 255, 65535, 127, 0)]
    assert daemon.out("-e", "3") == b"saturnd: no-such-program-xyz: No such file or directory\n"
    assert daemon.out("-o", "3") == b""


def test_unknown_ids_get_errors(daemon):
    for opt in ("-r", "-x", "-o", "-e", "-i", "-t"):
        res = daemon.cassini(opt, "7", check=False)
        assert res.returncode == 1 and res.stdout == b"", opt
    res = daemon.cassini("-z", "7", "true", check=False)
    assert res.returncode == 1
    # the same through raw bytes: exact ER NF
    assert daemon.raw(struct.pack(">HQ", P.REMOVE, 7)) == b"ER" + b"NF"
    daemon.cassini("-c", "true")
    assert daemon.raw(struct.pack(">HQ", P.STDOUT, 0)) == b"ERNR"


def test_only_due_minutes_run(daemon):
    daemon.cassini("-c", "-m", "5", "true")
    daemon.cassini("-c", "-H", "1", "true")
    daemon.cassini("-c", "-d", "5", "true")            # Friday; T0 is a Thursday
    daemon.advance(4)
    assert daemon.out("-x", "0") == b""
    daemon.advance(1)
    assert daemon.out("-x", "0") == runs((T0 + 300, 0))
    assert daemon.out("-x", "1") == b""
    daemon.set_time(T0 + 3600 - 60)                    # 00:59
    daemon.advance(2)                                  # 01:00, 01:01
    assert daemon.out("-x", "1") == runs((T0 + 3600, 0), (T0 + 3660, 0))
    assert daemon.out("-x", "2") == b""


def test_forward_jump_runs_each_missed_task_once(daemon):
    daemon.cassini("-c", "-m", "10", "true")
    daemon.cassini("-c", "-m", "20,40", "true")
    daemon.cassini("-c", "true")                       # every minute
    daemon.cassini("-c", "-m", "50", "true")           # not in the skipped range
    daemon.set_time(T0 + 45 * 60 + 30)                 # jump 45.5 minutes forward
    jump = T0 + 45 * 60
    for i in range(3):
        assert daemon.out("-x", str(i)) == runs((jump, 0)), i
    assert daemon.out("-x", "3") == b""
    daemon.advance(1)
    assert daemon.out("-x", "2") == runs((jump, 0), (jump + 60, 0))


def test_big_forward_jump_replays_nothing(daemon):
    daemon.cassini("-c", "true")
    daemon.set_time(T0 + 5 * 3600)
    assert daemon.out("-x", "0") == b""
    daemon.advance(1)
    assert daemon.out("-x", "0") == runs((T0 + 5 * 3600 + 60, 0))


def test_backward_jump_never_reruns_a_fixed_minute_wildcards_run_on(daemon):
    daemon.cassini("-c", "-m", "1-4", "-H", "0", "true")      # fixed times
    daemon.cassini("-c", "true")                              # every minute: a wildcard
    daemon.advance(3)                                  # 00:01 .. 00:03
    daemon.set_time(T0 - 30 * 60)                      # back to 23:30 the day before
    daemon.advance(33)                                 # up to 00:03 again
    assert daemon.out("-x", "0") == runs(*((T0 + 60 * i, 0) for i in (1, 2, 3)))
    # cronie's rule: a wildcard task runs on in each real minute after a step back
    assert daemon.out("-x", "1") == runs(*sorted(
        [(T0 + 60 * i, 0) for i in (1, 2, 3)] + [(T0 - 30 * 60 + 60 * k, 0) for k in range(34)]))
    daemon.advance(1)                                  # 00:04 is new
    assert daemon.out("-x", "0") == runs(*((T0 + 60 * i, 0) for i in (1, 2, 3, 4)))


def test_big_backward_jump_takes_the_new_time(daemon):
    daemon.cassini("-c", "true")
    daemon.advance(1)
    daemon.set_time(T0 - 4 * 3600)
    daemon.advance(1)
    # the minute after the jump runs (new time taken as it is); -x lists by TIME
    assert daemon.out("-x", "0") == runs((T0 - 4 * 3600 + 60, 0), (T0 + 60, 0))


def test_remove_and_ids_never_reused(daemon):
    assert daemon.out("-c", "true") == b"0\n"
    assert daemon.out("-c", "true") == b"1\n"
    daemon.cassini("-r", "1")
    assert daemon.cassini("-r", "1", check=False).returncode == 1
    assert daemon.out("-l") == b"0: * * * true\n"
    assert daemon.out("-c", "true") == b"2\n"
    assert daemon.out("-s") == b"2\n"
    assert daemon.out("-l") == b""
    assert daemon.out("-c", "true") == b"3\n"


def test_extensions(daemon):
    daemon.cassini("-c", "-m", "1", "echo", "old")
    daemon.cassini("-z", "0", "echo", "new", "cmd")
    daemon.cassini("-t", "0", "-m", "2", "-H", "0-3")
    assert daemon.out("-l") == b"0: 2 0-3 * echo new cmd\n"
    daemon.advance(1)
    assert daemon.out("-x", "0") == b""
    daemon.advance(1)
    assert daemon.out("-x", "0") == runs((T0 + 120, 0))
    assert daemon.out("-o", "0") == b"new cmd\n"
    # EXEC_TASK: recorded with the clock's current second
    daemon.set_time(T0 + 150)
    daemon.cassini("-z", "0", "echo", "exec")
    daemon.cassini("-i", "0")
    wait_for(lambda: daemon.out("-x", "0").count(b"\n") == 2, what="the EXEC_TASK run")
    assert daemon.out("-x", "0") == runs((T0 + 120, 0), (T0 + 150, 0))
    assert daemon.out("-o", "0") == b"exec\n"
    # RESET_TASKMAX
    daemon.cassini("-c", "true")
    daemon.cassini("-c", "true")
    daemon.cassini("-r", "2")
    assert daemon.out("-w") == b"2\n"
    assert daemon.out("-c", "true") == b"2\n"
    assert daemon.out("-s") == b"3\n"
    assert daemon.out("-w") == b"0\n"
    assert daemon.out("-c", "true") == b"0\n"


def test_removed_run_never_reappears_under_a_reused_id(daemon):
    daemon.cassini("-c", "--", "sh", "-c", "sleep 1.5; echo late")
    code, out = daemon.clock("advance", 1, 0)          # do not wait for the run
    assert code == 1 and out.startswith("pending %d 0:" % (T0 + 60)), out
    pid = int(out.split()[2].split(":")[1])
    daemon.cassini("-r", "0")
    assert daemon.out("-w") == b"0\n"
    assert daemon.out("-c", "echo", "fresh") == b"0\n"
    wait_for(lambda: not daemon.pid_alive(pid), what="the old run to end")
    wait_for(lambda: "pid %d ended" % pid in daemon.log(), what="the old run to be reaped")
    assert daemon.out("-x", "0") == b""
    assert daemon.cassini("-o", "0", check=False).returncode == 1
    daemon.advance(1)
    assert daemon.out("-o", "0") == b"fresh\n"


def test_set_cmd_while_running_discards_the_old_run(daemon):
    daemon.cassini("-c", "--", "sh", "-c", "sleep 1; echo old")
    code, out = daemon.clock("advance", 1, 0)
    pid = int(out.split()[2].split(":")[1])
    daemon.cassini("-z", "0", "echo", "new")
    wait_for(lambda: "pid %d ended" % pid in daemon.log(), what="the old run to be reaped")
    assert daemon.out("-x", "0") == b""
    daemon.advance(1)
    assert daemon.out("-o", "0") == b"new\n"


def test_run_environment(daemon):
    daemon.cassini("-c", "--", "sh", "-c", "pwd; cat; env | grep -c ^SATURND_ || true; ls /proc/self/fd")
    daemon.advance(1)
    out = daemon.out("-o", "0").split(b"\n")
    assert out[0] == str(daemon.home).encode()        # cwd = the user's home
    assert out[1] == b"0"                             # stdin /dev/null, no SATURND_* variable
    assert sorted(out[2:-1]) == [b"0", b"1", b"2", b"3"]   # no daemon fd leaks (3 = ls's own)


def test_saturnd_variables_are_not_inherited(make_daemon):
    d = make_daemon(env={"SATURND_SECRET": "x", "OTHER_VAR": "kept"}).start()
    d.cassini("-c", "--", "sh", "-c", "echo ${SATURND_SECRET-unset} $OTHER_VAR")
    d.advance(1)
    assert d.out("-o", "0") == b"unset kept\n"


def test_output_cap(make_daemon):
    d = make_daemon(extra=["--output-cap", "1000"]).start()
    d.cassini("-c", "--", "sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a; head -c 3000 /dev/zero >&2")
    d.advance(1)
    assert d.out("-o", "0") == b"a" * 1000
    assert d.out("-e", "0") == b"\0" * 1000


def test_big_binary_output(daemon):
    daemon.cassini("-c", "--", "head", "-c", "3000000", "/dev/urandom")
    daemon.advance(1)
    out = daemon.out("-o", "0")
    assert len(out) == 3000000
    assert out == (daemon.data / "tasks" / "0" / "stdout").read_bytes()


def test_parallel_runs_and_long_runs_do_not_block(daemon):
    for _ in range(20):
        daemon.cassini("-c", "--", "sh", "-c", "sleep 1")
    t = time.monotonic()
    daemon.advance(1)                                  # waits for all 20 runs
    assert time.monotonic() - t < 5                    # they ran in parallel
    daemon.cassini("-c", "sleep", "30")
    code, out = daemon.clock("advance", 1, 0)
    assert out.startswith("pending") and " 20:" in out
    t = time.monotonic()
    assert daemon.out("-l").count(b"\n") == 21         # requests are not delayed
    code, out = daemon.clock("advance", 1, 0)          # nor is the next minute
    assert out.count(" 20:") == 1
    assert time.monotonic() - t < 5
    wait_for(lambda: daemon.out("-x", "0").count(b"\n") == 3, what="the 1-second runs")


MALFORMED = [
    b"\x12\x34",                                              # unknown opcode
    b"\x43\x52" + b"\0" * 13 + b"\0\0\0\0",                   # CREATE with ARGC 0
    b"\x43\x52" + b"\0" * 13 + b"\0\0\0\1\0\0\0\0",           # empty ARGV[0]
    b"\x43\x52" + b"\0" * 13 + b"\0\0\0\1\0\0\0\3a\0b",       # NUL in an argument
    b"\x43\x52" + b"\xff" * 8 + b"\0" * 5 + b"\0\0\0\1\0\0\0\1a",   # minute bits out of range
    b"\x43\x52" + b"\0" * 13 + b"\0\0\0\1\x7f\xff\xff\xff",   # a 2 GiB string
    b"\x52\x4d\0\0",                                          # truncated REMOVE
    b"\x43\x52" + b"\0" * 13 + b"\0\0\0\1" + b"\0\x20\0\1" + b"x" * 70000,   # > 1 MiB, cut
    b"\x43\x52" + P.EVERY_MINUTE.encode() + struct.pack(">I", 100000)
    + (b"\0\0\0\x0c" + b"a" * 12) * 100000,               # 1.6 MB of valid-looking arguments
]


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_request_gets_empty_reply_then_service_goes_on(daemon, data):
    daemon.cassini("-c", "true")
    assert daemon.raw(data) == b""
    assert daemon.raw(struct.pack(">H", P.LIST)) == (
        b"OK\0\0\0\1" + b"\0" * 8 + P.EVERY_MINUTE.encode() + b"\0\0\0\1\0\0\0\4true")
    assert daemon.out("-l") == b"0: * * * true\n"


def test_back_to_back_requests_on_one_open(daemon):
    """Lockless clients (like the reference) may have their requests read in one go."""
    daemon.cassini("-c", "true")
    req = struct.pack(">HQ", P.TIMES_EXITCODES, 0) + struct.pack(">HQ", P.REMOVE, 9)
    fd = os.open(daemon.pipes / "saturnd-request-pipe", os.O_WRONLY)
    os.write(fd, req)
    os.close(fd)
    # one reader kept open across both replies: nothing can be lost between them
    fd = os.open(daemon.pipes / "saturnd-reply-pipe", os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    deadline = time.monotonic() + 10
    while len(data) < 10 and time.monotonic() < deadline:
        select.select([fd], [], [], 0.05)
        try:
            chunk = os.read(fd, 10 - len(data))
        except BlockingIOError:
            continue
        if not chunk:
            time.sleep(0.005)            # between the two replies: no writer for a moment
        data += chunk
    os.close(fd)
    replies = [data[:6], data[6:]]
    assert replies == [b"OK\0\0\0\0", b"ERNF"]


def test_restart_keeps_everything(make_daemon):
    d = make_daemon().start()
    d.cassini("-c", "-m", "1,2", "--", "sh", "-c", "printf 'x\\ny'; exit 4")
    d.cassini("-c", "true")
    d.cassini("-c", "true")
    d.cassini("-r", "2")
    d.advance(2)
    before = [d.out(*a) for a in (["-l"], ["-x", "0"], ["-o", "0"], ["-x", "1"])]
    assert d.terminate() == 0
    d.start_time = T0 + 600
    d.start()
    assert [d.out(*a) for a in (["-l"], ["-x", "0"], ["-o", "0"], ["-x", "1"])] == before
    assert before[2] == b"x\ny"
    assert d.out("-c", "true") == b"3\n"


@pytest.mark.local_only(HOST_LAUNCH)
def test_second_daemon_refused(make_daemon, tmp_path):
    d = make_daemon().start()
    res = subprocess.run(d.argv(), env=d.env, capture_output=True, timeout=30)
    assert res.returncode == 1
    assert b"already running" in res.stderr and b"Traceback" not in res.stderr
    other = make_daemon("other")                       # another pipes dir, same data dir
    argv = other.argv()
    argv[argv.index("--data-dir") + 1] = str(d.data)
    res = subprocess.run(argv, env=d.env, capture_output=True, timeout=30)
    assert res.returncode == 1 and b"already running" in res.stderr
    assert d.out("-l") == b""                          # the first one is unharmed


@pytest.mark.local_only("the command line of the host saturnd, no daemon handle")
def test_bad_options_exit_1(tmp_path):
    for argv in (["--clock", "sundial"], ["--bogus"], ["--grace", "-1"], ["-p"]):
        res = subprocess.run(SATURND + argv, capture_output=True, timeout=30)
        assert res.returncode == 1, argv
        assert res.stderr.startswith(b"usage:") and b"Traceback" not in res.stderr


@pytest.mark.local_only("pgrep of the run's process group on the host")
def test_terminate_kills_stragglers_and_records_them(make_daemon):
    d = make_daemon().start()
    d.cassini("-c", "--", "sh", "-c", "sleep 60 & sleep 61; echo never")
    d.cassini("-c", "echo", "quick")
    code, out = d.clock("advance", 1, 0)
    pid = int(out.split()[2].split(":")[1])
    wait_for(lambda: d.pid_alive(pid))
    t = time.monotonic()
    assert d.terminate() == 0
    assert time.monotonic() - t < 8                    # grace is 1 s
    wait_for(lambda: not pid_alive(pid), timeout=5, what="the run to be gone")
    def group_gone():   # nothing of its process group either (zombies of init aside)
        left = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True).stdout.split()
        return not any(pid_alive(int(p)) for p in left)
    wait_for(group_gone, timeout=5, what="the run's process group to be gone")
    d.start()
    assert d.out("-x", "0") == runs((T0 + 60, 65535))
    assert d.out("-x", "1") == runs((T0 + 60, 0))


def test_sigterm_stops_cleanly(make_daemon):
    d = make_daemon().start()
    d.proc.terminate()
    assert d.wait_exit() == 0
    assert "stopped" in d.log()


def test_terminate_then_restart_at_once(make_daemon):
    d = make_daemon().start()
    d.cassini("-c", "sleep", "30")
    d.clock("advance", 1, 0)
    d.cassini("-q")                                    # the old one is in its grace period
    old = d.proc
    d.start()                                          # waits for it instead of failing
    assert old.wait(10) == 0
    assert d.out("-l") == b"0: * * * sleep 30\n"


@pytest.mark.local_only("daemon mode (detached) on the host")
def test_daemon_mode(tmp_path):
    pipes, data = tmp_path / "p", tmp_path / "d"
    env = dict(os.environ, TZ="UTC", HOME=str(tmp_path))
    res = subprocess.run(SATURND + ["-p", str(pipes), "--data-dir", str(data)], env=env,
                         capture_output=True, timeout=30)
    assert res.returncode == 0, res
    pid = int((data / "saturnd.lock").read_text().split()[1])
    try:
        def run(*a):
            return subprocess.run(cassini_command() + ["-p", str(pipes)] + list(a),
                                  capture_output=True, timeout=30, env=env)
        assert run("-c", "true").stdout == b"0\n"
        assert run("-l").stdout == b"0: * * * true\n"
        t = time.monotonic()                            # no control channel with the system clock
        res = subprocess.run(CLOCKCTL + ["-p", str(pipes), "now"], capture_output=True, timeout=30)
        assert res.returncode == 1 and res.stdout == b"" and time.monotonic() - t < 15
        assert res.stderr.startswith(b"saturnd-clock: ") and res.stderr.count(b"\n") == 1
        assert run("-q").returncode == 0
        wait_for(lambda: not pid_alive(pid), what="the daemon to exit")
        assert "stopped" in (data / "saturnd.log").read_text()
    finally:
        if pid_alive(pid):
            os.kill(pid, 9)


def test_clock_control_channel(daemon):
    assert daemon.clock("now") == (0, f"ok {T0}\n")
    code, out = daemon.clock("set", T0 + 90)
    assert (code, out) == (0, f"ok {T0 + 90}\n")
    assert daemon.clock("advance", 1) == (0, f"ok {T0 + 120}\n")   # to the next boundary
    code, out = daemon.clock("advance", "x")
    assert code == 1 and out.startswith("error ")
    code, out = daemon.clock("advance", -3)
    assert code == 1 and out.startswith("error ")
    assert daemon.clock("now") == (0, f"ok {T0 + 120}\n")           # nothing moved


def test_clock_control_raw_line_protocol(daemon):
    import fcntl
    lock = os.open(daemon.pipes / "clock-lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        for line, expected in ((b"now\n", b"ok %d\n" % T0), (b"fly\n", None)):
            fd = os.open(daemon.pipes / "saturnd-clock-request-pipe", os.O_WRONLY)
            os.write(fd, line)
            os.close(fd)
            fd = os.open(daemon.pipes / "saturnd-clock-reply-pipe", os.O_RDONLY)
            data = b""
            while True:
                chunk = os.read(fd, 100)
                if not chunk:
                    break
                data += chunk
            os.close(fd)
            if expected is None:
                assert data.startswith(b"error ") and data.endswith(b"\n") and data.count(b"\n") == 1
            else:
                assert data == expected
    finally:
        os.close(lock)


@pytest.mark.local_only(HOST_LAUNCH)
def test_daemon_mode_reports_start_errors(make_daemon, tmp_path):
    d = make_daemon().start()
    res = subprocess.run(SATURND + ["-p", str(d.pipes), "--data-dir", str(tmp_path / "x")],
                         env=d.env, capture_output=True, timeout=30)
    assert res.returncode == 1
    assert res.stderr.startswith(b"saturnd: another saturnd") and res.stderr.count(b"\n") == 1


@pytest.mark.local_only(HOST_LAUNCH)
def test_foreground_log_file(make_daemon, tmp_path):
    d = make_daemon(extra=["--log", str(tmp_path / "f.log")])
    d.proc = subprocess.Popen(d.argv(), env=d.env, stderr=subprocess.PIPE)
    wait_for(lambda: (tmp_path / "f.log").exists() and " ready " in (tmp_path / "f.log").read_text(),
             what="the ready line in the log file")
    d.cassini("-q")
    assert d.proc.wait(15) == 0
    assert d.proc.stderr.read() == b""


def test_kill_9_during_creates_leaves_whole_tasks(make_daemon):
    d = make_daemon().start()
    procs = [d.spawn_cassini("-c", "-m", str(i), "--", "echo", "x" * 50 + str(i))
             for i in range(30)]
    wait_for(lambda: len(os.listdir(d.data / "tasks")) >= 3, what="a few tasks")
    d.proc.kill()
    d.proc.wait(10)
    for p in procs:                                     # clients left waiting for a reply
        p.kill()
        p.wait(10)
    d.start()
    lines = d.out("-l").splitlines()
    assert lines                                        # every listed task is whole
    for line in lines:
        taskid, rest = line.split(b": ", 1)
        minute = rest.split()[0]
        assert rest == minute + b" * * echo " + b"x" * 50 + minute
    highest = max(int(line.split(b":")[0]) for line in lines)
    assert int(d.out("-c", "true")) > highest



def test_output_cap_applies_while_running(make_daemon):
    d = make_daemon(extra=["--output-cap", "1000"]).start()
    d.cassini("-c", "--", "sh", "-c", "head -c 30000000 /dev/zero; sleep 30")
    code, out = d.clock("advance", 1, 0)
    assert out.startswith("pending")
    def spool():
        return [d.data / "runs" / n for n in os.listdir(d.data / "runs") if n.endswith(".out")]
    wait_for(lambda: spool(), what="the spool file")
    # the writer writes 30 MB, but the daemon copies only the cap into the spool file: the
    # size seen is either 1000 or a sparse file with (almost) no blocks beyond the cap
    wait_for(lambda: os.stat(spool()[0]).st_size == 1000, timeout=15,
             what="the running spool file to be truncated to the cap")


@pytest.mark.local_only("reads the children of the daemon in the host /proc")
def test_no_zombies(daemon):
    for i in range(10):
        daemon.cassini("-c", "--", "sh", "-c", f"exit {i}")
    daemon.advance(2)
    assert children_of(daemon.proc.pid) == []


def test_spring_forward_in_paris_end_to_end(make_daemon):
    # 2026-03-29 00:58 UTC = 01:58 CET; at 01:00 UTC the clocks jump to 03:00 CEST
    start = T0 + (31 + 28 + 28) * 86400 + 58 * 60
    d = make_daemon(start_time=start, tz="Europe/Paris").start()
    d.cassini("-c", "-m", "30", "-H", "2", "true")      # 02:30 does not exist that day
    d.cassini("-c", "-m", "59", "-H", "1", "true")
    d.advance(3)                                         # 01:59 CET, 03:00 CEST, 03:01 CEST
    assert d.cassini("-x", "0", tz="UTC").stdout == runs((start + 120, 0))
    assert d.cassini("-x", "1", tz="UTC").stdout == runs((start + 60, 0))
    assert d.cassini("-x", "0").stdout == b"2026-03-29 03:00:00 0\n"


def test_stalled_partial_request_gets_empty_reply(daemon):
    fd = os.open(daemon.pipes / "saturnd-request-pipe", os.O_WRONLY)
    try:
        os.write(fd, b"\x43\x52\0\0")                   # a CREATE cut short, fd kept open
        t = time.monotonic()
        rfd = os.open(daemon.pipes / "saturnd-reply-pipe", os.O_RDONLY)   # blocks for the writer
        assert os.read(rfd, 100) == b""                 # the empty reply
        os.close(rfd)
        assert 2 < time.monotonic() - t < 15
    finally:
        os.close(fd)
    assert daemon.out("-c", "true") == b"0\n"
    assert daemon.out("-l") == b"0: * * * true\n"


def test_client_that_never_reads_cannot_block_the_daemon(daemon):
    fd = os.open(daemon.pipes / "saturnd-request-pipe", os.O_WRONLY)
    os.write(fd, struct.pack(">HQ", P.REMOVE, 99))      # and never open the reply pipe
    os.close(fd)
    wait_for(lambda: "no client opened the reply pipe" in daemon.log(), timeout=15,
             what="the daemon to give up on that reply")
    assert daemon.out("-c", "true") == b"0\n"


def test_client_closing_the_reply_early_does_not_hurt(daemon):
    daemon.cassini("-c", "--", "head", "-c", "2000000", "/dev/zero")
    daemon.advance(1)
    fd = os.open(daemon.pipes / "saturnd-request-pipe", os.O_WRONLY)
    os.write(fd, struct.pack(">HQ", P.STDOUT, 0))
    os.close(fd)
    rfd = os.open(daemon.pipes / "saturnd-reply-pipe", os.O_RDONLY)
    assert os.read(rfd, 6) == b"OK\0\x1e\x84\x80"         # OK, 2,000,000 bytes follow
    os.close(rfd)                                         # ... and go away
    wait_for(lambda: "closed the reply pipe early" in daemon.log(), what="the daemon to notice")
    assert daemon.proc.poll() is None
    assert len(daemon.out("-o", "0")) == 2000000


def test_overlapping_runs_are_listed_oldest_first(daemon):
    # The run of the first minute outlives the run of the second one: records are
    # appended as runs end, the reply still lists them by their scheduled time.
    daemon.cassini("-c", "-m", "0,1", "-H", "1", "--", "sh", "-c",
                   "if [ -e first-done ]; then true; else touch first-done; sleep 1; fi")
    daemon.set_time(T0 + 3600 - 60)                    # 00:59
    daemon.advance(2)                                  # 01:00 (sleeps 1 s), 01:01 (quick)
    assert daemon.out("-x", "0") == runs((T0 + 3600, 0), (T0 + 3660, 0))

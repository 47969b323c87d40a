"""cassini against scripted fake daemons: timeouts, truncation, kept-open pipes, the lock,
bad environment values, interrupts.  Every wait is bounded."""

import fcntl
import os
import signal
import stat
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_daemon import FakeDaemon, make_pipes  # noqa: E402

from saturnd import protocol as P  # noqa: E402
from testkit.procs import default_sigint  # noqa: E402

pytestmark = pytest.mark.timeout(30)

_SCRIPT = os.path.join(os.path.dirname(sys.executable), "cassini")
CASSINI = [_SCRIPT] if os.access(_SCRIPT, os.X_OK) else [sys.executable, "-m", "cassini"]


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CASSINI") and k != "POSIXLY_CORRECT"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start(args, env=None, **kw):
    return subprocess.Popen(CASSINI + list(args), env=env or base_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def run(args, env=None, timeout=20):
    t0 = time.monotonic()
    p = start(args, env)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err, time.monotonic() - t0


def assert_one_clean_line(err):
    assert b"Traceback" not in err
    assert err.count(b"\n") == 1 and err.startswith(b"cassini: "), err


@pytest.fixture
def pipes(tmp_path):
    d = str(tmp_path / "pipes")
    make_pipes(d)
    return d


# --- no daemon ---------------------------------------------------------------------------
def test_no_daemon_gives_up_after_cassini_timeout(pipes):
    code, out, err, took = run(["-p", pipes, "-l"], base_env(CASSINI_TIMEOUT=0.5))
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert b"saturnd is not running on " + pipes.encode() in err
    assert 0.4 <= took < 5


def test_missing_pipes_dir_fails_at_once(tmp_path):
    code, out, err, took = run(["-p", str(tmp_path / "nowhere"), "-l"])
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert b"not running" in err
    assert took < 5
    assert not (tmp_path / "nowhere").exists()      # nothing created on the way


def test_dir_without_pipes_fails_at_once_without_creating_the_lock(tmp_path):
    code, _, err, _ = run(["-p", str(tmp_path), "-l"])
    assert code == 1 and b"not running" in err
    assert not (tmp_path / "cassini-lock").exists()


def test_request_pipe_that_is_not_a_fifo(tmp_path):
    (tmp_path / "saturnd-request-pipe").write_bytes(b"")
    code, out, err, _ = run(["-p", str(tmp_path), "-l"])
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert (tmp_path / "saturnd-request-pipe").read_bytes() == b""


def test_daemon_that_opens_the_request_pipe_late(pipes):
    d = FakeDaemon(pipes).start(P.encode_reply(P.CREATE, P.Reply(value=42)), open_late=0.7)
    code, out, err, took = run(["-p", pipes, "-c", "true"], base_env(CASSINI_TIMEOUT=5))
    assert d.join()
    assert (code, out) == (0, b"42\n"), err
    assert took >= 0.6
    assert P.decode_request(d.requests[0]).argv == (b"true",)


# --- the reply -------------------------------------------------------------------------------
def test_late_reply_times_out(pipes):
    d = FakeDaemon(pipes).start(b"OK", delay=5)
    code, out, err, took = run(["-p", pipes, "-q"], base_env(CASSINI_REPLY_TIMEOUT=0.5))
    d.stop.set()
    d.join()
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert b"no reply" in err
    assert took < 4


def test_slow_but_steady_reply_is_fine(pipes):
    # progress resets the reply timeout: 0.4 s pause with a 1 s timeout
    reply = P.encode_reply(P.STDOUT, P.Reply(output=b"x" * 1000))
    d = FakeDaemon(pipes).start(reply, delay=0.4, partial_then_wait=(10, 0.4))
    code, out, err, _ = run(["-p", pipes, "-o", "1"], base_env(CASSINI_REPLY_TIMEOUT=1))
    assert d.join()
    assert (code, out) == (0, b"x" * 1000), err


def test_reply_that_stalls_midway_times_out(pipes):
    reply = P.encode_reply(P.STDOUT, P.Reply(output=b"x" * 1000))
    d = FakeDaemon(pipes).start(reply, partial_then_wait=(10, 5))
    code, out, err, took = run(["-p", pipes, "-o", "1"], base_env(CASSINI_REPLY_TIMEOUT=0.5))
    d.stop.set()
    d.join()
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert took < 4


def test_truncated_reply_fails(pipes):
    reply = P.encode_reply(P.LIST, P.Reply(tasks=[(0, P.EVERY_MINUTE, (b"echo", b"hi"))]))
    d = FakeDaemon(pipes).start(reply[:-2])
    code, out, err, _ = run(["-p", pipes, "-l"])
    assert d.join()
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert b"cut short" in err


def test_empty_reply_fails(pipes):
    d = FakeDaemon(pipes).start(b"")
    code, out, err, _ = run(["-p", pipes, "-r", "1"])
    assert d.join()
    assert code == 1 and out == b""
    assert_one_clean_line(err)


def test_reply_pipe_kept_open_does_not_block(pipes):
    reply = P.encode_reply(P.LIST, P.Reply(tasks=[(3, P.EVERY_MINUTE, (b"true",))]))
    d = FakeDaemon(pipes).start(reply, keep_open=10)
    code, out, err, took = run(["-p", pipes, "-l"])
    d.stop.set()
    d.join()
    assert (code, out) == (0, b"3: * * * true\n"), err
    assert took < 5


def test_lying_output_length_with_eof_fails_fast_and_small(pipes):
    d = FakeDaemon(pipes).start(b"OK" + struct.pack(">I", 0xFFFFFFFF) + b"abc")
    code, out, err, took = run(["-p", pipes, "-o", "1"])
    assert d.join()
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert took < 5


def test_request_is_written_whole_and_closed(pipes):
    """The daemon sees end of file right after the request (one exchange, no leftovers)."""
    got = {}

    def until_eof():
        fd = os.open(os.path.join(pipes, "saturnd-request-pipe"), os.O_RDONLY)
        data, t0 = b"", time.monotonic()
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            data += chunk
        os.close(fd)
        got["data"], got["took"] = data, time.monotonic() - t0
        rep = os.open(os.path.join(pipes, "saturnd-reply-pipe"), os.O_WRONLY)
        os.write(rep, P.encode_reply(P.CREATE, P.Reply(value=1)))
        os.close(rep)

    import threading
    t = threading.Thread(target=until_eof, daemon=True)
    t.start()
    big = ["%d" % i + "a" * 60_000 for i in range(4)]   # bigger than a pipe: several writes
    code, out, err, _ = run(["-p", pipes, "-c", "echo"] + big)
    t.join(10)
    assert (code, out) == (0, b"1\n"), err
    assert P.decode_request(got["data"]).argv == (b"echo",) + tuple(a.encode() for a in big)


# --- the lock ------------------------------------------------------------------------------------
def test_lock_file_created_0600(pipes):
    d = FakeDaemon(pipes).start(b"OK" + struct.pack(">I", 0))
    code, _, err, _ = run(["-p", pipes, "-l"])
    assert d.join() and code == 0, err
    st = os.stat(os.path.join(pipes, "cassini-lock"))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_concurrent_clients_each_get_their_own_reply(pipes):
    n = 8

    def answer(req):
        # reply with the number the client put in its command line
        return P.encode_reply(P.CREATE, P.Reply(value=int(P.decode_request(req).argv[1])))

    d = FakeDaemon(pipes).start(answer, count=n)
    procs = [start(["-p", pipes, "-c", "echo", str(1000 + i)]) for i in range(n)]
    results = [p.communicate(timeout=25) + (p.returncode,) for p in procs]
    assert d.join()
    for i, (out, err, code) in enumerate(results):
        assert (code, out) == (0, b"%d\n" % (1000 + i)), err
    assert sorted(P.decode_request(r).argv[1] for r in d.requests) == \
        [b"%d" % (1000 + i) for i in range(n)]


def test_waits_for_the_lock_holder(pipes):
    lock = os.open(os.path.join(pipes, "cassini-lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    d = FakeDaemon(pipes).start(b"OK")
    p = start(["-p", pipes, "-q"])
    time.sleep(0.5)     # give it every chance to (wrongly) talk to the daemon
    assert d.requests == [] and p.poll() is None
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    out, err = p.communicate(timeout=10)
    assert d.join()
    assert p.returncode == 0, err
    assert d.requests == [b"TM"]


def test_lock_wait_is_bounded(pipes):
    lock = os.open(os.path.join(pipes, "cassini-lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        code, out, err, took = run(["-p", pipes, "-l"], base_env(CASSINI_LOCK_TIMEOUT=0.5))
    finally:
        os.close(lock)
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert took < 5


@pytest.mark.parametrize("kind", ["dangling symlink", "symlink to a file", "fifo",
                                  "mode 0622", "directory"])
def test_refuses_a_lock_file_that_is_not_proper(pipes, kind):
    """A daemon that makes no lock file of its own (this fake, other implementations):
    cassini refuses a lock file it cannot trust at once -- one line, exit 1, not a byte
    on the request pipe -- and never blocks on a FIFO there."""
    lock = os.path.join(pipes, "cassini-lock")
    if kind == "dangling symlink":
        os.symlink("/nonexistent/dir/lock", lock)
    elif kind == "symlink to a file":
        target = os.path.join(os.path.dirname(pipes), "elsewhere")
        open(target, "w").close()
        os.symlink(target, lock)
    elif kind == "fifo":
        os.mkfifo(lock, 0o600)
    elif kind == "directory":
        os.mkdir(lock, 0o700)
    else:
        os.close(os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(lock, 0o622)
    listener = os.open(os.path.join(pipes, "saturnd-request-pipe"),
                       os.O_RDONLY | os.O_NONBLOCK)        # cassini could write at once
    try:
        code, out, err, took = run(["-p", pipes, "-r", "2"],
                                   base_env(CASSINI_LOCK_TIMEOUT=10))
        try:
            sent = os.read(listener, 100)
        except BlockingIOError:
            sent = b""
    finally:
        os.close(listener)
    assert code == 1 and out == b"", err
    assert_one_clean_line(err)
    assert b"cassini-lock" in err and b"nothing sent" in err, err
    assert sent == b""
    assert took < 5


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_skip_check_does_not_look_at_the_lock_file_owner(pipes):
    """``CASSINI_SKIP_PIPES_CHECK=1`` (a grader talking to a daemon of another uid): the
    lock file's owner and mode are not checked, like the pipes'; otherwise refused."""
    lock = os.path.join(pipes, "cassini-lock")
    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chown(lock, 65534, 65534)
    code, out, err, _ = run(["-p", pipes, "-l"], base_env(CASSINI_TIMEOUT=1))
    assert code == 1 and b"belongs to uid 65534" in err, err
    d = FakeDaemon(pipes).start(b"OK" + struct.pack(">I", 0))
    code, out, err, _ = run(["-p", pipes, "-l"], base_env(CASSINI_SKIP_PIPES_CHECK=1))
    assert d.join()
    assert (code, out) == (0, b""), err


def test_lock_file_replaced_while_waiting_is_taken_afresh(pipes):
    """The lock file removed while a cassini waits for it: the waiter sees that the file
    it locked is no longer at the path and locks the one that is (never the old one)."""
    path = os.path.join(pipes, "cassini-lock")
    lock = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    d = FakeDaemon(pipes).start(b"OK")
    p = start(["-p", pipes, "-q"])
    time.sleep(0.3)
    os.unlink(path)
    fresh = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fresh, fcntl.LOCK_EX)     # the one at the path is held by someone else
    fcntl.flock(lock, fcntl.LOCK_UN)
    time.sleep(0.5)
    assert d.requests == [] and p.poll() is None
    os.close(fresh)
    out, err = p.communicate(timeout=10)
    assert d.join()
    assert p.returncode == 0, err
    os.close(lock)


def test_a_reply_of_another_shape_is_never_printed(pipes):
    """A CREATE answered with a LIST reply (1 task): its first 8 bytes would read as an
    id; the bytes after the expected end show the reply is not this request's answer."""
    from saturnd import busy
    listing = P.encode_reply(P.LIST, P.Reply(tasks=[
        (7, P.Timing(P.MINUTES_MASK, 0xFFFFFF, 0x7F), (b"echo", b"x"))]))
    # the fake passes for our daemon: it publishes (busy.PUBLISHER on the request FIFO)
    # and marks its lock file (busy.LOCK_MARK), as saturnd does
    marker = os.open(os.path.join(pipes, "saturnd-request-pipe"), os.O_RDONLY | os.O_NONBLOCK)
    lock = os.open(os.path.join(pipes, "cassini-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    busy.hold(marker, busy.PUBLISHER, True)
    busy.hold(lock, busy.LOCK_MARK, True)
    try:
        d = FakeDaemon(pipes).start(listing)
        code, out, err, _ = run(["-p", pipes, "-c", "echo", "mine"])
        assert d.join()
    finally:
        os.close(marker)
        os.close(lock)
    assert code == 1 and out == b"", err
    assert_one_clean_line(err)
    assert b"shape" in err


@pytest.mark.parametrize("value", ["0.2", ".2", "1.", "0"])
def test_plain_decimal_timeouts_are_accepted(pipes, value):
    code, out, err, took = run(["-p", pipes, "-l"], base_env(CASSINI_TIMEOUT=value))
    assert code == 1 and b"not running" in err, err
    assert took < 5


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_failed_write_of_the_output_says_what_failed(pipes):
    """`cassini -l > /dev/full`: one line naming the failed write, exit 1; not an
    "internal error"."""
    listing = P.encode_reply(P.LIST, P.Reply(tasks=[
        (7, P.Timing(P.MINUTES_MASK, 0xFFFFFF, 0x7F), (b"echo", b"x"))]))
    d = FakeDaemon(pipes).start(listing)
    with open("/dev/full", "wb") as full:
        p = subprocess.run(CASSINI + ["-p", pipes, "-l"], env=base_env(), stdout=full,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=20)
    assert d.join()
    assert p.returncode == 1, p.stderr
    assert_one_clean_line(p.stderr)
    assert b"internal error" not in p.stderr
    assert b"cannot write the output" in p.stderr and b"No space left" in p.stderr, p.stderr


# --- environment, default dir, signals, output --------------------------------------------------
@pytest.mark.parametrize("name", ["CASSINI_TIMEOUT", "CASSINI_REPLY_TIMEOUT",
                                  "CASSINI_LOCK_TIMEOUT"])
@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "", "1e9", "1_0", "-0", "+1",
                                   " 1", "1e0", "0x1", ".", "1.2.3", "\u0661"])
def test_bad_timeout_values_are_a_clear_error(pipes, name, value):
    code, out, err, took = run(["-p", pipes, "-l"], base_env(**{name: value}))
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert name.encode() in err
    assert took < 5


def test_default_pipes_dir_uses_user(tmp_path):
    user = f"cassini-test-{os.getpid()}"
    d_dir = f"/tmp/{user}/saturnd/pipes"
    try:
        d = FakeDaemon(d_dir).start(b"OK" + struct.pack(">I", 0))
        code, out, err, _ = run(["-l"], base_env(USER=user))
        assert d.join()
        assert (code, out) == (0, b""), err
        assert d.requests == [b"LS"]
    finally:
        import shutil
        shutil.rmtree(f"/tmp/{user}", ignore_errors=True)


def test_default_pipes_dir_without_user_uses_the_password_database():
    import pwd
    env = base_env(CASSINI_TIMEOUT=0.2)
    env.pop("USER", None)
    name = pwd.getpwuid(os.geteuid()).pw_name
    code, _, err, _ = run(["-l"], env)
    assert code == 1       # no daemon there, but the message names the right directory
    assert f"/tmp/{name}/saturnd/pipes".encode() in err


def test_interrupt_exits_130_quietly(pipes):
    d = FakeDaemon(pipes).start(b"OK", delay=10)
    p = start(["-p", pipes, "-q"], preexec_fn=default_sigint)
    deadline = time.monotonic() + 10
    while not d.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert d.requests, "the request never arrived"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    d.stop.set()
    d.join()
    assert p.returncode == 130
    assert out == b"" and b"Traceback" not in err


def test_closed_stdout_exits_quietly(pipes):
    big = b"y" * (1 << 20)
    d = FakeDaemon(pipes).start(P.encode_reply(P.STDOUT, P.Reply(output=big)))
    r, w = os.pipe()
    p = subprocess.Popen(CASSINI + ["-p", pipes, "-o", "1"], env=base_env(),
                         stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    os.read(r, 10)
    os.close(r)                      # like `cassini -o 1 | head -c 10`
    _, err = p.communicate(timeout=10)
    d.join()
    assert p.returncode != 0
    assert err == b""


def test_error_replies_print_one_line_and_nothing_on_stdout(pipes):
    d = FakeDaemon(pipes).start(b"ERNF")
    code, out, err, _ = run(["-p", pipes, "-x", "60"])
    assert d.join()
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert b"60" in err
    d = FakeDaemon(pipes).start(b"ERNR")
    code, out, err, _ = run(["-p", pipes, "-e", "61"])
    assert d.join()
    assert code == 1 and out == b""
    assert_one_clean_line(err)
    assert b"never run" in err


def test_times_respect_tz(pipes):
    reply = P.encode_reply(P.TIMES_EXITCODES, P.Reply(runs=[(1767258000, 0)]))
    for tz, text in (("UTC", b"2026-01-01 09:00:00 0\n"),
                     ("America/New_York", b"2026-01-01 04:00:00 0\n"),
                     ("Asia/Kolkata", b"2026-01-01 14:30:00 0\n")):
        d = FakeDaemon(pipes).start(reply)
        code, out, err, _ = run(["-p", pipes, "-x", "0"], base_env(TZ=tz))
        assert d.join()
        assert (code, out) == (0, text), (tz, err)


def test_usage_errors_send_nothing(pipes):
    d = FakeDaemon(pipes).start(b"OK")
    for args in (["-k"], ["-r", "x"], ["-c"], ["-c", "-m", "60", "ls"], ["-m"]):
        code, out, err, _ = run(["-p", pipes] + args)
        assert code == 1 and out == b""
        assert b"usage: cassini" in err and b"Traceback" not in err
    time.sleep(0.1)
    assert d.requests == []
    d.stop.set()
    # unblock the fake daemon's wait for a request
    fd = os.open(os.path.join(pipes, "saturnd-request-pipe"), os.O_WRONLY | os.O_NONBLOCK)
    os.close(fd)
    d.join()


def test_help_goes_to_stdout_and_exits_0():
    code, out, err, _ = run(["-h"])
    assert code == 0 and err == b""
    assert out.startswith(b"   usage: cassini [OPTIONS] -l -> list all tasks\n")
    assert out.endswith(b"(default: /tmp/<USERNAME>/saturnd/pipes)\n")


# --- start-up cost -------------------------------------------------------------------------------
def test_no_heavy_imports_on_the_list_path(pipes):
    """cassini -l imports nothing heavy (run with -S -I so only cassini's own imports count)."""
    d = FakeDaemon(pipes).start(b"OK" + struct.pack(">I", 0))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; sys.path.insert(0, {root!r}); before = set(sys.modules)\n"
            f"from cassini.__main__ import main\n"
            f"status = main(['-p', {pipes!r}, '-l'])\n"
            f"print(' '.join(sorted(set(sys.modules) - before)))\n"
            f"sys.exit(status)\n")
    p = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True,
                       timeout=20)
    assert d.join()
    assert p.returncode == 0, p.stderr
    loaded = set(p.stdout.split())
    heavy = {b"re", b"dataclasses", b"typing", b"argparse", b"datetime", b"enum", b"json",
             b"pathlib", b"subprocess", b"threading", b"logging", b"signal", b"pwd",
             b"inspect", b"collections", b"functools"}
    assert not loaded & heavy, loaded & heavy


# --- a writer left over from an earlier exchange ----------------------------------------------
def _stale_writer(pipes, junk):
    """A writing end on the reply pipe, as a daemon that has not closed it yet, with junk."""
    path = os.path.join(pipes, "saturnd-reply-pipe")
    r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    os.write(w, junk)
    os.close(r)                  # the pipe (and the junk) live on while w is open
    return w


def test_stale_writer_closing_late_is_not_taken_for_our_reply(pipes):
    w = _stale_writer(pipes, b"OK\x00\x00\x00\x63")
    d = FakeDaemon(pipes).start(P.encode_reply(P.CREATE, P.Reply(value=7)), delay=0.3)
    p = start(["-p", pipes, "-c", "true"])
    time.sleep(0.15)
    os.close(w)                  # the earlier exchange's writer goes away mid-wait
    out, err = p.communicate(timeout=10)
    assert d.join()
    assert (p.returncode, out) == (0, b"7\n"), err


def test_stale_writer_that_stays_open(pipes):
    w = _stale_writer(pipes, b"junk")
    try:
        d = FakeDaemon(pipes).start(P.encode_reply(P.CREATE, P.Reply(value=8)))
        code, out, err, took = run(["-p", pipes, "-c", "true"])
        assert d.join()
    finally:
        os.close(w)
    assert (code, out) == (0, b"8\n"), err


# --- the client module used from a thread (no SIGALRM there: polling instead) -------------------
def test_exchange_from_a_thread_waits_for_a_late_reader_and_gives_up(pipes):
    import threading
    from cassini import client

    result = {}

    def call(key, timeout):
        try:
            result[key] = client.exchange(pipes.encode(), b"TM", P.TERMINATE, timeout=timeout,
                                          reply_timeout=5)
        except client.ClientError as e:
            result[key] = e

    t = threading.Thread(target=call, args=("none", 0.3))
    t.start()
    t.join(10)
    assert isinstance(result["none"], client.ClientError)
    assert "not running" in str(result["none"])

    d = FakeDaemon(pipes).start(b"OK", open_late=0.4)
    t = threading.Thread(target=call, args=("late", 5))
    t.start()
    t.join(10)
    assert d.join()
    assert result["late"] == P.Reply()
    assert d.requests == [b"TM"]

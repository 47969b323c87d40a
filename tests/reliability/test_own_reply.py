"""A reply reaches only the client that sent the request (clients that take
``cassini-lock``, i.e. ours).

A client that dies or gives up after writing its request leaves a reply owed; the next
cassini must never print that reply as its own: it gets its own reply, or fails (exit 1,
one line). Reproduced with the daemon stopped (``kill -STOP``) while the first client
writes and gives up, then without stopping anything: parallel clients a quarter of which
are SIGKILLed 0-80 ms after they start (every create has a unique argument, so an id
printed by the wrong create is caught).
"""

import fcntl
import os
import signal
import struct
import subprocess
import termios
import time

import pytest

from killed_clients import spawn, stress
from cassini import client
from saturnd import busy
from saturnd import protocol as P
from testkit.daemon import CASSINI
from testkit.pipes import call
from testkit.waiting import wait_for


def pending_request_bytes(d):
    """How many bytes wait in the request FIFO (FIONREAD on a reader of our own)."""
    fd = os.open(os.path.join(str(d.pipes), "saturnd-request-pipe"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
    finally:
        os.close(fd)


def daemon_idle(d):
    """True when the daemon is not between reading a request and closing its reply."""
    fd = os.open(os.path.join(str(d.pipes), "saturnd-request-pipe"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        return not busy.held(fd, busy.BUSY)
    finally:
        os.close(fd)


def stop_when_idle(d):
    """SIGSTOP the daemon once it is idle (it turns idle just after closing a reply)."""
    wait_for(lambda: daemon_idle(d), 20, what="the daemon to be idle")
    os.kill(d.pid, signal.SIGSTOP)


def has_open(pid, path):
    """True when process ``pid`` has ``path`` open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            pass
    return False


def one_line_error(err):
    text = err.decode(errors="replace")
    assert text.count("\n") == 1 and "Traceback" not in text, text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("first_client", ["gives-up", "killed"])
def test_stale_reply_of_a_client_gone_before_the_daemon_read(daemon, first_client):
    """A reply left for a client that is gone: the daemon is stopped; client X writes a CREATE and goes
    (reply timeout, or SIGKILL once its request is in the FIFO); client Y (``-l``) starts
    and opens the reply pipe; the daemon resumes, reads X's request and answers it. Y must
    print its own listing (which holds X's task, created meanwhile), not X's reply."""
    d = daemon
    assert d.cassini("-c", "--", "echo", "a").stdout == b"0\n"
    reply_path = os.path.join(str(d.pipes), "saturnd-reply-pipe")
    stop_when_idle(d)
    try:
        if first_client == "gives-up":
            x = subprocess.run(
                [CASSINI, "-p", str(d.pipes), "-c", "--", "echo", "hello"],
                env=dict(d.env, CASSINI_REPLY_TIMEOUT="1"), stdin=subprocess.DEVNULL,
                capture_output=True, timeout=30)
            assert x.returncode == 1, x
            one_line_error(x.stderr)
        else:
            x = spawn(d, "-c", "--", "echo", "hello")
            wait_for(lambda: pending_request_bytes(d) > 0, 20, what="X's request in the FIFO")
            x.kill()
            x.communicate(timeout=20)
        assert pending_request_bytes(d) > 0
        y = spawn(d, "-l")
        wait_for(lambda: has_open(y.pid, reply_path) or y.poll() is not None, 20,
                 what="Y to open the reply pipe")
    finally:
        os.kill(d.pid, signal.SIGCONT)
    out, err = y.communicate(timeout=30)
    assert (y.returncode, out, err) == (0, b"0: * * * echo a\n1: * * * echo hello\n", b"")
    # and the exchange after it is in step too
    assert d.cassini("-c", "--", "echo", "b").stdout == b"2\n"


@pytest.mark.timeout(60)
def test_large_stale_reply_is_drained_and_dropped(daemon):
    """The stale reply is bigger than a pipe's buffer (a LIST of 300 long tasks): the next
    client reads and drops it while it waits for the daemon, then gets its own reply."""
    d = daemon
    argv = [b"echo", b"y" * 400]
    for _ in range(300):
        call(d.bpipes, P.Request(P.CREATE, timing=P.Timing(1, 1, 1), argv=argv))
    reply_path = os.path.join(str(d.pipes), "saturnd-reply-pipe")
    stop_when_idle(d)
    try:
        x = spawn(d, "-l")
        wait_for(lambda: pending_request_bytes(d) > 0, 20, what="X's request in the FIFO")
        x.kill()
        x.communicate(timeout=20)
        y = spawn(d, "-c", "--", "echo", "mine")
        wait_for(lambda: has_open(y.pid, reply_path) or y.poll() is not None, 20,
                 what="Y to open the reply pipe")
    finally:
        os.kill(d.pid, signal.SIGCONT)
    out, err = y.communicate(timeout=30)
    assert (y.returncode, out, err) == (0, b"300\n", b"")
    tasks = call(d.bpipes, P.Request(P.LIST)).tasks
    assert [(t[0], tuple(t[2])) for t in tasks[-1:]] == [(300, (b"echo", b"mine"))]


@pytest.mark.timeout(240)
def test_killed_clients_under_concurrency(daemon):
    """30 parallel clients x 12 calls, 25 % SIGKILLed 0-80 ms after they start, two rounds:
    0 wrong answers with exit 0; every acknowledged create holds its own command."""
    d = daemon
    assert d.cassini("-c", "--", "echo", "seed").stdout == b"0\n"
    totals = {}
    for seed in (1, 2):
        figures = stress(d, clients=30, calls=12, kill_ratio=0.25, seed=seed)
        for k, v in figures.items():
            totals[k] = totals.get(k, 0) + v
    assert totals["killed"] > 0 and totals["ok"] > 300, totals
    print(totals)


# --- the client's wait, against FIFOs played by the test --------------------------------
@pytest.fixture
def fifos(tmp_path):
    req, rep = tmp_path / "saturnd-request-pipe", tmp_path / "saturnd-reply-pipe"
    os.mkfifo(req, 0o600)
    os.mkfifo(rep, 0o600)
    daemon_end = os.open(req, os.O_RDONLY | os.O_NONBLOCK)     # the "daemon's" reading end
    stuffer = os.open(req, os.O_WRONLY | os.O_NONBLOCK)
    os.write(stuffer, b"\0\x4c\x53")                           # a request nobody reads
    reader = [os.open(rep, os.O_RDONLY | os.O_NONBLOCK)]
    yield os.fsencode(req), os.fsencode(rep), daemon_end, reader
    for fd in (daemon_end, stuffer, reader[0]):
        os.close(fd)


@pytest.mark.timeout(20)
def test_a_daemon_that_publishes_nothing_is_not_waited_for(fifos):
    """Other implementations hold no lock on their request FIFO: cassini writes at once,
    whatever the FIFO holds (as before)."""
    req, rep, _, reader = fifos
    fd = reader[0]
    t = time.monotonic()
    client.wait_until_idle(req, reader, rep, 5.0)
    assert time.monotonic() - t < 1.0 and reader[0] == fd


@pytest.mark.timeout(20)
def test_a_busy_daemon_is_waited_for_within_the_deadline(fifos):
    """Our daemon busy (publisher + busy locks held) with a request in the FIFO: cassini
    waits, then gives up after its deadline with one line, having sent nothing."""
    req, rep, daemon_end, reader = fifos
    busy.hold(daemon_end, busy.PUBLISHER, True)
    busy.hold(daemon_end, busy.BUSY, True)
    t = time.monotonic()
    with pytest.raises(client.ClientError) as e:
        client.wait_until_idle(req, reader, rep, 0.5)
    assert 0.5 <= time.monotonic() - t < 5.0
    assert "busy" in str(e.value) and "\n" not in str(e.value)
    os.read(daemon_end, 64)                # the daemon reads it: still busy
    with pytest.raises(client.ClientError):
        client.wait_until_idle(req, reader, rep, 0.3)
    busy.hold(daemon_end, busy.BUSY, False)
    t = time.monotonic()
    client.wait_until_idle(req, reader, rep, 5.0)   # empty and idle: at once
    assert time.monotonic() - t < 1.0

"""The reply waits for its reader without sleeping (saturnd/server.py, send_reply).

A client in the reference order writes its request, then opens the reply pipe: the
daemon is woken the instant it does, not after a fixed sleep; and a reply whose reader
never comes leaves nothing behind (no thread, no descriptor, no stray writer that would
hand the next client an empty reply).
"""

import os
import threading
import time

import pytest

from saturnd import server as server_mod
from saturnd.protocol import REPLY_PIPE, REQUEST_PIPE
from testkit.waiting import wait_for

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv(tmp_path, monkeypatch):
    for name in (REQUEST_PIPE, REPLY_PIPE):
        os.mkfifo(tmp_path / name, 0o600)

    class NoSleep:                      # the server's `time`, without sleep()
        def __getattr__(self, name):
            return getattr(time, name)

        def sleep(self, seconds):
            raise AssertionError(f"the reply path slept {seconds} s")

    monkeypatch.setattr(server_mod, "time", NoSleep())
    log = []
    s = server_mod.Server(str(tmp_path), ctx=None, log=log.append, stop=None)
    s.log_lines = log
    return s


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


def _reply_threads():
    return [t for t in threading.enumerate() if t.name == "reply-open"]


def test_a_reader_that_comes_late_gets_the_reply_without_a_sleep(srv):
    result = []
    sender = threading.Thread(target=lambda: result.append(srv.send_reply(b"OK\0\0")))
    sender.start()
    wait_for(lambda: _reply_threads(), 5, "the daemon waits for the reader")
    fd = os.open(srv.reply_path, os.O_RDONLY)         # the client, after its request
    try:
        data = b""
        while len(data) < 4:
            chunk = os.read(fd, 4)
            assert chunk, "end of file before the reply"
            data += chunk
        assert data == b"OK\0\0"
        assert os.read(fd, 1) == b""                   # the daemon closed its end
    finally:
        os.close(fd)
    sender.join(5)
    assert result == [True]
    assert not _reply_threads()


def test_a_reader_that_never_comes_leaves_no_writer_no_thread_no_descriptor(srv):
    before = _open_fds()
    t0 = time.monotonic()
    assert srv._open_reply(0.2) is None
    assert time.monotonic() - t0 < 3
    assert any("no client opened the reply pipe" in line for line in srv.log_lines)
    wait_for(lambda: not _reply_threads(), 5, "the reply-open thread ends")
    assert _open_fds() == before
    # no writer left on the reply pipe: a reader sees end of file at once, not EAGAIN
    fd = os.open(srv.reply_path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(fd, 1) == b""
    finally:
        os.close(fd)


def test_a_new_request_while_waiting_drops_the_reply(srv):
    srv.fd = os.open(srv.request_path, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(srv.request_path, os.O_WRONLY)
    try:
        result = []
        sender = threading.Thread(target=lambda: result.append(srv.send_reply(b"OK")))
        sender.start()
        wait_for(lambda: _reply_threads(), 5, "the daemon waits for the reader")
        os.write(w, b"LS")                              # another client's request
        sender.join(5)
        assert result == [False]
        assert bytes(srv.buf) == b"LS"                  # kept for the next round
        assert any("a new request came" in line for line in srv.log_lines)
        wait_for(lambda: not _reply_threads(), 5, "the reply-open thread ends")
    finally:
        os.close(w)
        os.close(srv.fd)


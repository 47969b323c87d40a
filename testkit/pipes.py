"""Talking to a daemon through its FIFOs, without the cassini command.

- :func:`raw_exchange`: the one raw client: bytes in, the raw reply bytes out (read to end
  of file), under the client lock or without it, the reply pipe opened after the request
  is written (like the reference C client) or before it (like cassini); bounded.
- :func:`call`: one well-formed ``Request`` through cassini's own library -> ``Reply``.
- :class:`Client`: the benchmark's lean client (no lock, no process start-up).
"""

import array
import fcntl
import os
import select
import termios
import time
from collections.abc import Callable, Iterable
from typing import Any

from cassini.client import REPLY_PIPE, REQUEST_PIPE, exchange, open_reply_pipe
from saturnd import fifo
from saturnd import protocol as P

REQUEST = os.fsdecode(REQUEST_PIPE)
REPLY = os.fsdecode(REPLY_PIPE)
LOCK = "cassini-lock"


def call(pipes: "str | bytes | os.PathLike[str]", req: P.Request,
         timeout: float = 10.0) -> P.Reply:
    """One exchange with a well-formed ``Request``; returns the decoded ``Reply``."""
    return exchange(os.fsencode(pipes), P.encode_request(req), req.opcode, timeout=timeout,
                    reply_timeout=timeout, lock_timeout=timeout)


def _take_lock(pipes: str, deadline: float) -> int:
    fd = os.open(os.path.join(pipes, LOCK), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if not fifo.flock(fd, deadline):
        os.close(fd)
        raise AssertionError("client lock held too long")
    return fd


def _open_request(pipes: str, deadline: float) -> int:
    try:
        return fifo.open_writer(os.path.join(pipes, REQUEST), deadline, missing_deadline=deadline)
    except OSError as e:
        raise AssertionError(f"nobody reads the request pipe ({e.strerror})") from None


def _write_request(fd: int, data: bytes, deadline: float) -> None:
    try:
        fifo.write_all(fd, data, max(0.0, deadline - time.monotonic()))
    except BrokenPipeError:
        pass
    except fifo.Stalled:
        raise AssertionError("the daemon stopped reading the request") from None
    finally:
        os.close(fd)


def _read_to_eof(rfd: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        chunk = fifo.read_some(rfd, left + 0.001)
        if chunk is None:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def raw_exchange(pipes: "str | os.PathLike[str]", data: bytes, timeout: float = 10.0,
                 lock: bool = True, reply_first: bool = False) -> bytes | None:
    """Write ``data`` on the request pipe, then read one raw reply (until end of file).

    With ``lock`` the client lock is held (like cassini). The reply pipe is opened after
    the request is written (like the reference C client), or with ``reply_first`` before
    it, clear of the previous exchange's writer (like cassini). Returns the reply bytes,
    or None when no reply came within ``timeout`` (after the request was sent)."""
    pipes = str(pipes)
    deadline = time.monotonic() + timeout
    lock_fd = _take_lock(pipes, deadline) if lock else None
    deadline = time.monotonic() + timeout
    try:
        rfd: int | None = None
        if reply_first:
            rfd = open_reply_pipe(os.path.join(pipes, REPLY), 0.5)
        try:
            _write_request(_open_request(pipes, deadline), data, deadline + timeout)
            if rfd is None:
                rfd = fifo.open_reader(os.path.join(pipes, REPLY))
            return _read_to_eof(rfd, deadline + timeout)
        finally:
            if rfd is not None:
                os.close(rfd)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


class _FdReader:
    """``read_exact`` on a non-blocking FIFO descriptor, with a deadline."""

    def __init__(self, fd: int, timeout: float,
                 error: Callable[[str], BaseException]) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.deadline = time.monotonic() + timeout
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)
        self.error = error

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise self.error("timed out waiting for the reply")
            if not self.poller.poll(int(left * 1000) + 1):
                continue
            try:
                data = os.read(self.fd, max(65536, min(n - len(self.buf), 1 << 20)))
            except BlockingIOError:
                continue
            if not data:
                raise P.Truncated("end of file in the reply")
            self.buf += data
        chunk = bytes(self.buf[:n])
        del self.buf[:n]
        return chunk


class Client:
    """One request, one reply, with ``saturnd.protocol``: what cassini does minus its
    process start-up and its lock. Same order as cassini and protocol.md: write the whole
    request, close, then open the reply pipe and read one reply by its lengths.
    ``error``: the exception class for a deadline missed."""

    def __init__(self, pipes_dir: "str | os.PathLike[str]", timeout: float = 60.0,
                 wait_consumed: bool = True,
                 error: Callable[[str], BaseException] = AssertionError) -> None:
        self.request_path = os.path.join(str(pipes_dir), REQUEST)
        self.reply_path = os.path.join(str(pipes_dir), REPLY)
        self.timeout = timeout
        self.wait_consumed = wait_consumed
        self.error = error

    def _wait_consumed(self, wfd: int) -> None:
        """Wait until the daemon has read the whole request (FIONREAD of the FIFO is 0).

        The daemon reads a request only once it has closed its end of the previous
        reply; opening the reply pipe before that would attach this reader to the previous
        reply's writer (which then closes: end of file, the reply is lost). See
        ``bench/README.md``, finding 6."""
        buf = array.array("i", [0])
        deadline = time.monotonic() + self.timeout
        spins = 0
        while True:
            fcntl.ioctl(wfd, termios.FIONREAD, buf, True)
            if buf[0] == 0:
                return
            spins += 1
            if spins > 200:     # spin briefly (the daemon is usually quick), then yield
                if time.monotonic() > deadline:
                    raise self.error("the daemon did not read the request in time")
                time.sleep(0.00005)

    def raw(self, data: bytes, opcode: int) -> P.Reply:
        wfd = os.open(self.request_path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(wfd, view):]
            if self.wait_consumed:
                self._wait_consumed(wfd)
        finally:
            os.close(wfd)
        rfd = fifo.open_reader(self.reply_path)
        try:
            return P.read_reply(_FdReader(rfd, self.timeout, self.error), opcode)
        finally:
            os.close(rfd)

    def request(self, req: P.Request) -> P.Reply:
        return self.raw(P.encode_request(req), req.opcode)

    def create(self, argv: Iterable[bytes], timing: P.Timing = P.EVERY_MINUTE) -> int:
        return self.request(P.Request(P.CREATE, timing=timing, argv=tuple(argv))).value

    def list(self) -> Any:
        return self.request(P.Request(P.LIST)).tasks

    def terminate(self) -> P.Reply:
        return self.request(P.Request(P.TERMINATE))

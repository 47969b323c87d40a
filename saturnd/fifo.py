"""What every user of a FIFO here does the same way: open an end, wait for it under a
deadline, read, write everything, take a lock within a deadline.

Used by the daemon's request loop (``server.py``), the manual clock's channel and its
client (``control.py``, ``clockctl.py``), cassini (``cassini/client.py``), the golden
vectors' fake daemon (``grader/golden.py``) and the test kit (``testkit/pipes.py``).  Each
keeps its own policy (what a missed deadline means, what it says); this module only does
the system calls.  Deadlines are ``time.monotonic()`` values, waits are in seconds.

Standard library only, and cheap to import: cassini loads it on every run.
"""

import errno
import os
import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only: nothing more to import at start-up
    from collections.abc import Callable

RETRY = 0.005       # seconds between two tries of an open that found no reader
CHUNK = 1 << 16


def open_reader(path: str, nofollow: bool = False) -> int:
    """The reading end of the FIFO ``path``, non-blocking (never waits for a writer)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    return os.open(path, flags | os.O_NOFOLLOW if nofollow else flags)


def try_open_writer(path: str) -> int | None:
    """The writing end of the FIFO ``path`` (non-blocking), or None when no reader has it
    open (ENXIO)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENXIO:
            return None
        raise


def open_writer(path: str, deadline: float, missing_deadline: float | None = None,
                give_up: "Callable[[], bool] | None" = None, retry: float = RETRY) -> int:
    """The writing end of the FIFO ``path`` (non-blocking) once a reader has it open.

    Tries again every ``retry`` s while there is no reader (ENXIO) until ``deadline``, and
    while there is no FIFO (ENOENT) until ``missing_deadline`` (None: not at all), or until
    ``give_up()`` is true.  Then raises the last ``OSError``, as any other error at once.
    """
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ENXIO:
                limit = deadline
            elif e.errno == errno.ENOENT and missing_deadline is not None:
                limit = missing_deadline
            else:
                raise
            if time.monotonic() >= limit or (give_up is not None and give_up()):
                raise
        time.sleep(retry)


def wait(fd: int, events: int, seconds: float | None) -> int:
    """``poll`` ``fd`` for ``events`` up to ``seconds`` (None: forever); the events seen
    (0: none within the time)."""
    poller = select.poll()
    poller.register(fd, events)
    if seconds is None:
        return poller.poll()[0][1]
    ms = int(seconds * 1000) if seconds > 0 else 0
    while True:
        step = min(ms, 1 << 30)
        got = poller.poll(step)
        if got:
            return got[0][1]
        ms -= step
        if ms <= 0:
            return 0


def wait_readable(fd: int, seconds: float | None) -> bool:
    """True when ``fd`` has bytes (or an end of file, an error) within ``seconds``."""
    return bool(wait(fd, select.POLLIN, seconds))


def wait_writable(fd: int, seconds: float | None) -> bool:
    """True when ``fd`` takes bytes (or its reader is gone) within ``seconds``."""
    return bool(wait(fd, select.POLLOUT, seconds))


def read_some(fd: int, seconds: float | None, size: int = CHUNK) -> bytes | None:
    """What ``fd`` has within ``seconds``: bytes, ``b""`` at end of file, None when nothing
    came (or the read would block after all)."""
    if not wait_readable(fd, seconds):
        return None
    try:
        return os.read(fd, size)
    except BlockingIOError:
        return None


class Stalled(TimeoutError):
    """:func:`write_all` made no progress in time; ``written`` bytes went out before."""

    def __init__(self, written: int) -> None:
        super().__init__(f"no progress after {written} bytes")
        self.written = written


def write_all(fd: int, data: bytes, stall: float,
              give_up: "Callable[[], bool] | None" = None, step: float | None = None) -> None:
    """Write all of ``data`` on the non-blocking ``fd``.

    Raises :class:`Stalled` when the reader takes nothing for ``stall`` s (or once
    ``give_up()`` is true, looked at every ``step`` s), ``BrokenPipeError`` when the
    reader closed its end (its ``written``: the bytes that went out before).
    """
    view = memoryview(data)
    written = 0
    while written < len(view):
        try:
            written += os.write(fd, view[written:])
            continue
        except BlockingIOError:
            pass
        except BrokenPipeError as e:
            e.written = written  # type: ignore[attr-defined]  # read by the caller
            raise
        if give_up is None:
            if not wait_writable(fd, stall):
                raise Stalled(written)
            continue
        end = time.monotonic() + stall
        while not wait_writable(fd, step):
            if give_up() or time.monotonic() >= end:
                raise Stalled(written)


def flock(fd: int, deadline: float, retry: float = 0.002) -> bool:
    """Take ``flock(LOCK_EX)`` on ``fd`` before ``deadline``; False when it stays held."""
    import fcntl
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
        time.sleep(retry)

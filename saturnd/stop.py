"""The daemon's stop request: a flag with its reason, and a wake-up pipe.

Whoever must stop the daemon (a signal handler, the TERMINATE handler, the daemon's own
error path) calls :meth:`StopFlag.request`; the request loop (``saturnd/server.py``)
polls :attr:`StopFlag.fd` along with its FIFO, so a request wakes it at once, and asks
:meth:`StopFlag.is_set` before it waits again.  The write end is also the signals' wake-up
fd (``signal.set_wakeup_fd``): a signal wakes the poll even before its handler runs.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable


class StopFlag:
    """``on_stop(reason)`` runs once, at the first request, before the wake-up."""

    def __init__(self, on_stop: "Callable[[str], object] | None" = None) -> None:
        self.reason: str | None = None
        self.on_stop = on_stop
        self._set = False
        self.fd: int | None = None          # the read end (poll it, then drain())
        self.write_fd: int | None = None

    def open(self) -> int:
        """Make the wake-up pipe (non-blocking, close-on-exec); returns its write end."""
        self.fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        return self.write_fd

    def is_set(self) -> bool:
        return self._set

    def request(self, reason: str) -> None:
        """Ask the daemon to stop (the first reason is kept); wakes the request loop."""
        if not self._set:
            self._set = True
            self.reason = reason
            if self.on_stop is not None:
                self.on_stop(reason)
        if self.write_fd is not None:
            try:
                os.write(self.write_fd, b"\0")
            except OSError:
                pass

    def drain(self) -> None:
        """Empty the wake-up pipe (after a poll saw it readable)."""
        assert self.fd is not None, "drain() before open()"
        try:
            while os.read(self.fd, 512):
                pass
        except OSError:
            pass

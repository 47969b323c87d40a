"""The daemon's only source of "now".

:class:`SystemClock` reads the system time; :class:`ManualClock` stands still
until told to move (``--clock manual``, driven through :mod:`saturnd.control`).
"""

import threading
import time

# The time-jump bound, in minutes: a clock step of at most this much is caught up (forward)
# or waited out (back) by the scheduler; a larger one is taken as the new time
# (saturnd/scheduler.py).  Here so that the scheduler and the error log share it.
MAX_JUMP = 3 * 60


def floor_minute(t: float) -> int:
    """The start (seconds = 0) of the epoch minute containing ``t``."""
    return int(t // 60) * 60


class Clock:
    """Interface: ``now()`` returns seconds since the epoch (float or int)."""

    manual = False

    def now(self) -> float:
        raise NotImplementedError


class SystemClock(Clock):
    def now(self) -> float:
        return time.time()


class ManualClock(Clock):
    """A clock that stands still at ``start`` until :meth:`set` moves it."""

    manual = True

    def __init__(self, start: float) -> None:
        self._lock = threading.Lock()
        self._now = int(start)

    def now(self) -> float:
        with self._lock:
            return self._now

    def set(self, t: float) -> None:
        with self._lock:
            self._now = int(t)

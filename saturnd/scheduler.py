"""Which tasks are due at a minute; the minute loop; the time-jump rules.

Scheduling works in local wall-clock minutes (``time.localtime``, so ``TZ`` is
respected).  A *wall ordinal* is the local date and time of a minute counted
as minutes since 1970-01-01 00:00 as if it were UTC: consecutive local minutes
have consecutive ordinals, and a DST change shows up as a jump.

The state is the last wall minute processed (``last``).  At each epoch-minute
boundary ``M`` (``wall = ordinal(M)``, ``delta = wall - last``):

- ``delta == 1``: the tasks due at ``wall`` run;
- ``1 < delta <= 3 h``: (DST spring-forward, suspend, NTP step) every task due
  in at least one wall minute of ``(last, wall]`` runs once;
- ``-3 h <= delta <= 0``: nothing runs and ``last`` is kept, so no minute runs
  twice; scheduling resumes once the clock passes ``last``;
- ``|delta| > 3 h``: the new time is taken as it is, nothing is replayed.

Every run started at boundary ``M`` is recorded with time ``M``.  Start-up in the
middle of a minute does not run that minute.
"""

import calendar
import threading
import time

from . import errlog
from .clock import floor_minute

MAX_JUMP = 3 * 60          # minutes


def wall_ordinal(epoch):
    """The local wall-clock minute of ``epoch`` as a minute count (see module doc)."""
    return calendar.timegm(time.localtime(floor_minute(epoch))[:6]) // 60


def wall_fields(ordinal):
    """``(minute, hour, weekday)`` of a wall ordinal; weekday 0 = Sunday."""
    t = time.gmtime(ordinal * 60)
    return t.tm_min, t.tm_hour, (t.tm_wday + 1) % 7


def is_due(timing, ordinal):
    return timing.matches(*wall_fields(ordinal))


def minutes_to_run(last, wall):
    """Apply the time-jump rules: returns ``(wall ordinals to consider, new last)``."""
    delta = wall - last
    if delta == 1:
        return [wall], wall
    if 1 < delta <= MAX_JUMP:
        return list(range(last + 1, wall + 1)), wall
    if -MAX_JUMP <= delta <= 0:
        return [], last
    return [], wall


def due_tasks(tasks, ordinals):
    """The tasks due in at least one of ``ordinals`` (each task once)."""
    fields = [wall_fields(o) for o in ordinals]
    return [t for t in tasks if any(t.timing.matches(*f) for f in fields)]


def next_boundary(now):
    """The first minute boundary strictly after ``now``."""
    return floor_minute(now) + 60


class Scheduler:
    """Processes minute boundaries; shared by the system loop and the manual clock."""

    def __init__(self, store, runner, clock, log):
        self.store = store
        self.runner = runner
        self.clock = clock
        self.log = log
        self.lock = threading.Lock()
        now = clock.now()
        self.last_epoch = floor_minute(now)
        self.last_wall = wall_ordinal(self.last_epoch)
        self.stopped = threading.Event()

    def tick(self):
        """Process the clock's current minute if it is a new one; returns the runs started."""
        with self.lock:
            if self.stopped.is_set():
                return []
            minute = floor_minute(self.clock.now())
            if minute == self.last_epoch:
                return []
            previous, self.last_epoch = self.last_epoch, minute
            wall = wall_ordinal(minute)
            ordinals, new_last = minutes_to_run(self.last_wall, wall)
            if minute - previous != 60 or wall - wall_ordinal(previous) != 1:
                self.log(f"scheduler: clock step or time change: wall clock moved by "
                         f"{wall - wall_ordinal(previous)} min at {minute}; "
                         f"{len(ordinals)} minute(s) to consider")
                errlog.clock_change(wall - wall_ordinal(previous), len(ordinals), minute)
            self.last_wall = new_last
            if not ordinals:
                return []
            tasks = due_tasks(self.store.list_tasks(), ordinals)
            return [self.runner.start(task, minute) for task in tasks]

    def loop(self, interval=0.25):
        """System-clock loop: wake at least every ``interval`` s, recompute from the clock.

        It sleeps with ``time.sleep`` rather than waiting on ``self.stopped``: a
        condition-variable wait is not scaled by libfaketime, which graders use to run
        daemons in accelerated time; ``stop()`` is noticed within ``interval``.
        """
        while not self.stopped.is_set():
            now = self.clock.now()
            time.sleep(min(interval, max(0.0, next_boundary(now) - now)) + 0.0005)
            if self.stopped.is_set():
                break
            try:
                self.tick()
            except Exception as e:   # the loop must go on
                self.log(f"scheduler: {type(e).__name__}: {e}")

    def stop(self):
        with self.lock:
            self.stopped.set()

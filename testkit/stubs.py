"""Stand-ins for the scheduler's collaborators, and the process's time zone switch."""

import os
import time
from contextlib import contextmanager

from saturnd.protocol import Timing
from saturnd.store import Task
from saturnd.timing import timing_from_strings


class StubStore:
    """The store as the scheduler sees it: a fixed list of tasks."""

    def __init__(self, tasks=()):
        self.tasks = list(tasks)

    def list_tasks(self):
        return list(self.tasks)


class StubRunner:
    """Records each start as (task id, scheduled time)."""

    def __init__(self):
        self.started = []

    def start(self, t, when):
        self.started.append((t.taskid, when))
        return (t.taskid, when)

    def times(self):
        """The scheduled times of the starts, in order."""
        return [when for _, when in self.started]


def stub_task(taskid, minutes="*", hours="*", days="*", argv=(b"true",)):
    """A stored task with the given timing fields (cassini's syntax)."""
    return Task(taskid, Timing(*timing_from_strings(minutes, hours, days)), tuple(argv), taskid)


@contextmanager
def time_zone():
    """Yields ``set_tz(name)``, which sets ``TZ`` for this process; restored on exit."""
    saved = os.environ.get("TZ")

    def set_tz(name):
        os.environ["TZ"] = name
        time.tzset()

    try:
        yield set_tz
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def utc(text):
    """``YYYY-MM-DD HH:MM`` in UTC -> epoch seconds."""
    import calendar
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M"))


def spool(store, out=b"", err=b""):
    """A run's spool files (``store.spool_paths()``) holding ``out`` and ``err``."""
    o, e = store.spool_paths()
    with open(o, "wb") as f:
        f.write(out)
    with open(e, "wb") as f:
        f.write(err)
    return o, e

"""Stand-ins for the scheduler's collaborators, and the process's time zone switch."""

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from saturnd.protocol import Timing
from saturnd.store import Store, Task
from saturnd.timing import timing_from_strings


class StubStore:
    """The store as the scheduler sees it: a fixed list of tasks."""

    def __init__(self, tasks: "Iterable[Task]" = ()) -> None:
        self.tasks = list(tasks)

    def list_tasks(self) -> list[Task]:
        return list(self.tasks)


class StubRunner:
    """Records each start as (task id, scheduled time)."""

    def __init__(self) -> None:
        self.started: list[tuple[int, float]] = []

    def start(self, t: Task, when: float) -> tuple[int, float]:
        self.started.append((t.taskid, when))
        return (t.taskid, when)

    def times(self) -> list[float]:
        """The scheduled times of the starts, in order."""
        return [when for _, when in self.started]


def stub_task(taskid: int, minutes: str = "*", hours: str = "*", days: str = "*",
              argv: "Iterable[bytes]" = (b"true",)) -> Task:
    """A stored task with the given timing fields (cassini's syntax)."""
    return Task(taskid, Timing(*timing_from_strings(minutes, hours, days)), tuple(argv), taskid)


@contextmanager
def time_zone() -> "Iterator[Callable[[str], None]]":
    """Yields ``set_tz(name)``, which sets ``TZ`` for this process; restored on exit."""
    saved = os.environ.get("TZ")

    def set_tz(name: str) -> None:
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


def utc(text: str) -> int:
    """``YYYY-MM-DD HH:MM`` in UTC -> epoch seconds."""
    import calendar
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M"))


def spool(store: "Store", out: bytes = b"", err: bytes = b"") -> tuple[str, str]:
    """A run's spool files (``store.spool_paths()``) holding ``out`` and ``err``."""
    o, e = store.spool_paths()
    with open(o, "wb") as f:
        f.write(out)
    with open(e, "wb") as f:
        f.write(err)
    return o, e

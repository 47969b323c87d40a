"""NEXT_RUNS is the scheduler's own rule replayed: the times ``next_runs`` announces are
exactly the minutes at which ``Scheduler.tick`` starts the task when the clock runs on
(no daemon here; the end-to-end version is in test_daemon_next_import.py)."""

import random
import time

import pytest

from saturnd.clock import ManualClock
from saturnd.protocol import Timing
from saturnd.scheduler import MAX_NEXT_RUNS, Scheduler, next_runs
from saturnd.store import Task
from saturnd.timing import timing_from_strings
from testkit.stubs import StubRunner, StubStore, utc

pytestmark = pytest.mark.timeout(120)


def timing(minutes="*", hours="*", days="*"):
    return Timing(*timing_from_strings(minutes, hours, days))


def ticked_runs(tim, start, minutes):
    """Run a scheduler minute by minute from ``start`` and return the start times."""
    runner = StubRunner()
    clock = ManualClock(start)
    sched = Scheduler(StubStore([Task(0, tim, (b"true",), 0)]), runner, clock, lambda msg: None)
    for k in range(1, minutes + 1):
        clock.set(start + 60 * k)
        sched.tick()
    return runner.times()


def announced(tim, start, count):
    sched = Scheduler(StubStore(), StubRunner(), ManualClock(start), lambda msg: None)
    return sched.next_runs(tim, count)


@pytest.mark.parametrize("zone, start, fields", [
    # Paris spring forward 2026-03-29 01:00 UTC (01:59 CET -> 03:00 CEST)
    ("Europe/Paris", "2026-03-28 23:00", ("30", "2", "*")),       # 02:30 does not exist
    ("Europe/Paris", "2026-03-28 23:00", ("*/20", "1-3", "*")),
    ("Europe/Paris", "2026-03-28 23:00", ("0", "3", "sun")),
    ("Europe/Paris", "2026-03-28 23:00", ("*", "*", "*")),
    # Paris fall back 2026-10-25 01:00 UTC (02:59 CEST -> 02:00 CET): no minute twice
    ("Europe/Paris", "2026-10-24 23:00", ("30", "2", "*")),
    ("Europe/Paris", "2026-10-24 23:00", ("*/7", "2", "*")),
    ("Europe/Paris", "2026-10-24 23:00", ("*", "*", "*")),
    ("Europe/Paris", "2026-10-24 23:00", ("0,59", "1-3", "0")),
    ("America/New_York", "2026-03-08 05:00", ("15", "2", "*")),
    ("UTC", "2026-01-01 00:00", ("5", "*/6", "mon-fri")),
])
def test_announced_times_are_the_ticked_runs(tz, zone, start, fields):
    tz(zone)
    t0 = utc(start)
    minutes = 3 * 24 * 60
    ticked = ticked_runs(timing(*fields), t0, minutes)
    want = ticked[:MAX_NEXT_RUNS]
    got = announced(timing(*fields), t0, len(want))
    assert got == want and want


def test_random_timings_across_both_paris_changes(tz):
    tz("Europe/Paris")
    rnd = random.Random(2026)
    for start in ("2026-03-28 22:00", "2026-10-24 22:00"):
        t0 = utc(start)
        for _ in range(6):
            tim = Timing(rnd.getrandbits(60) & rnd.getrandbits(60) | 1 << rnd.randrange(60),
                         rnd.getrandbits(24) | 1 << rnd.randrange(24),
                         rnd.getrandbits(7) | 1 << rnd.randrange(7))
            ticked = ticked_runs(tim, t0, 2 * 24 * 60)
            assert announced(tim, t0, len(ticked)) == ticked, tim


def test_state_after_a_fall_back_is_respected(tz):
    """After the clock went back, the minutes already run are not announced again."""
    tz("Europe/Paris")
    t0 = utc("2026-10-25 00:00")                  # 02:00 CEST
    clock = ManualClock(t0)
    sched = Scheduler(StubStore(), StubRunner(), clock, lambda msg: None)
    for k in range(1, 75):                        # to 01:14 UTC = 02:14 CET (repeated hour)
        clock.set(t0 + 60 * k)
        sched.tick()
    # 02:30 ran at 00:30 UTC; it is not due again at 02:30 CET (01:30 UTC), next day instead
    assert sched.next_runs(timing("30", "2"), 2) == [utc("2026-10-26 01:30"),
                                                       utc("2026-10-27 01:30")]
    # 02:40 (neither field every value) waits for the next day too
    assert sched.next_runs(timing("40", "2"), 1) == [utc("2026-10-26 01:40")]
    # every minute, minute 20 of every hour (wildcards): on through the repeated hour
    assert sched.next_runs(timing(), 2) == [utc("2026-10-25 01:15"), utc("2026-10-25 01:16")]
    assert sched.next_runs(timing("20"), 2) == [utc("2026-10-25 01:20"), utc("2026-10-25 02:20")]


def test_weekly_far_ahead_is_quick_and_capped(tz):
    tz("Europe/Paris")
    t0 = utc("2026-01-01 00:00")
    began = time.monotonic()
    sched = Scheduler(StubStore(), StubRunner(), ManualClock(t0), lambda msg: None)
    got = next_runs(timing("0", "3", "sun"), sched.last_epoch, sched.last_wall, 10 ** 9)
    assert time.monotonic() - began < 10
    assert len(got) == MAX_NEXT_RUNS
    for when in got:
        local = time.localtime(when)
        assert (local.tm_wday, local.tm_hour, local.tm_min) == (6, 3, 0)
    assert all(b - a in (7 * 86400 - 3600, 7 * 86400, 7 * 86400 + 3600)
               for a, b in zip(got, got[1:]))


def test_empty_field_never_runs(tz):
    tz("UTC")
    t0 = utc("2026-01-01 00:00")
    assert announced(Timing(0, (1 << 24) - 1, 127), t0, 5) == []
    assert announced(Timing(1, 0, 127), t0, 5) == []
    assert announced(Timing(1, 1, 0), t0, 5) == []
    assert announced(timing(), t0, 0) == []

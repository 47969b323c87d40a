"""Due-minute computation and the time-jump rules (freezegun + TZ, no daemon)."""

import time

import pytest
from freezegun import freeze_time

from saturnd.clock import ManualClock, SystemClock, floor_minute
from saturnd.scheduler import (Scheduler, is_due, minutes_to_run, next_boundary, wall_fields,
                               wall_ordinal)
from testkit.stubs import StubRunner, StubStore, stub_task, utc

pytestmark = pytest.mark.timeout(20)


task = stub_task


def make(tasks, clock=None):
    runner = StubRunner()
    sched = Scheduler(StubStore(tasks), runner, clock or SystemClock(), lambda msg: None)
    return sched, runner


def test_weekday_zero_is_sunday(tz):
    tz("UTC")
    sunday = wall_ordinal(utc("2026-01-04 12:34"))
    assert wall_fields(sunday) == (34, 12, 0)
    assert wall_fields(sunday - 24 * 60) == (34, 12, 6)      # Saturday
    assert wall_fields(sunday + 24 * 60) == (34, 12, 1)      # Monday
    assert is_due(task(0, "34", "12", "sun").timing, sunday)
    assert not is_due(task(0, "34", "12", "mon-sat").timing, sunday)


def test_local_time_zone_is_respected(tz):
    tz("Asia/Kolkata")                                       # UTC+05:30
    ordinal = wall_ordinal(utc("2026-01-03 20:00"))          # Sunday 01:30 local
    assert wall_fields(ordinal) == (30, 1, 0)


@pytest.mark.parametrize("last, wall, expected", [
    (100, 101, ([101], 101)),                       # the ordinary next minute
    (100, 105, (list(range(101, 106)), 105)),       # a skip: every skipped minute considered
    (100, 280, (list(range(101, 281)), 280)),       # exactly 3 h
    (100, 281, ([], 281)),                          # more than 3 h: nothing replayed
    (100, 100, ([], 100)),                          # the same minute again
    (100, 40, ([], 100)),                           # backwards: keep last
    (100, 100 - 180, ([], 100)),                    # exactly 3 h back
    (100, 100 - 181, ([], 100 - 181)),              # more than 3 h back: take the new time
])
def test_time_jump_rules(last, wall, expected):
    assert minutes_to_run(last, wall) == expected


@pytest.mark.parametrize("now, boundary", [
    ("2026-01-01 10:00:30", "2026-01-01 10:01:00"),
    ("2026-01-01 10:00:00", "2026-01-01 10:01:00"),
    ("2026-01-01 23:59:59.9", "2026-01-02 00:00:00"),
])
def test_next_boundary(now, boundary):
    with freeze_time(now):
        assert next_boundary(SystemClock().now()) == utc(boundary[:16])


def test_startup_mid_minute_does_not_run_that_minute(tz):
    tz("UTC")
    with freeze_time("2026-01-01 10:00:30") as frozen:
        sched, runner = make([task(0)])
        frozen.move_to("2026-01-01 10:00:59")
        assert sched.tick() == []
        frozen.move_to("2026-01-01 10:01:00")
        assert sched.tick() == [(0, utc("2026-01-01 10:01"))]
        frozen.move_to("2026-01-01 10:01:30")
        assert sched.tick() == []                            # a minute is processed once


def test_spring_forward_in_paris_runs_skipped_tasks_once(tz):
    tz("Europe/Paris")
    # 2026-03-29: 02:00 CET does not exist, clocks go from 01:59 CET (00:59 UTC) to 03:00 CEST
    tasks = [task(0, "30", "2"), task(1, "0", "3"), task(2), task(3, "0", "4"),
             task(4, "59", "1")]
    with freeze_time("2026-03-29 00:58:00") as frozen:
        sched, runner = make(tasks)
        frozen.move_to("2026-03-29 00:59:00")
        assert sched.tick() == [(2, utc("2026-03-29 00:59")), (4, utc("2026-03-29 00:59"))]
        frozen.move_to("2026-03-29 01:00:00")               # 03:00 CEST
        m = utc("2026-03-29 01:00")
        assert sched.tick() == [(0, m), (1, m), (2, m)]      # 02:30 ran once, at 03:00
        frozen.move_to("2026-03-29 01:01:00")
        assert sched.tick() == [(2, m + 60)]


def test_fall_back_in_paris_runs_fixed_times_once_and_wildcards_in_every_real_minute(tz):
    tz("Europe/Paris")
    # 2026-10-25: 03:00 CEST (01:00 UTC) becomes 02:00 CET; 02:00-02:59 happens twice
    tasks = [task(0, "30", "2"), task(1), task(2, "30"), task(3, "*", "2"), task(4, "*/20", "2")]
    with freeze_time("2026-10-25 00:00:00") as frozen:
        sched, runner = make(tasks)
        t = utc("2026-10-25 00:00")
        for _ in range(130):                                 # to 02:10 UTC = 03:10 CET
            t += 60
            frozen.move_to(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)))
            sched.tick()
    started = runner.started

    def runs(i):
        return [w for j, w in started if j == i]
    assert runs(0) == [utc("2026-10-25 00:30")]                 # 02:30 CEST only: fixed time
    # every minute (cronie's wildcard): each of the 130 real minutes, the repeated hour too
    assert runs(1) == [utc("2026-10-25 00:00") + 60 * k for k in range(1, 131)]
    # minute 30 of every hour (hour field every value): 02:30 CEST and 02:30 CET
    assert runs(2) == [utc("2026-10-25 00:30"), utc("2026-10-25 01:30")]
    # every minute of hour 2 (minute field every value): both passes of 02:xx
    assert runs(3) == [utc("2026-10-25 00:00") + 60 * k for k in range(1, 120)]
    # 02:00, 02:20, 02:40: neither field every value: once each
    assert runs(4) == [utc("2026-10-25 00:20"), utc("2026-10-25 00:40")]


def test_manual_clock_and_backward_step(tz):
    tz("UTC")
    start = utc("2026-01-01 10:00")
    clock = ManualClock(start)
    sched, runner = make([task(0, "1-59", "10"), task(1)], clock)
    clock.set(start + 60)
    assert sched.tick() == [(0, start + 60), (1, start + 60)]
    clock.set(start - 600)                                   # 10 minutes back
    assert sched.tick() == [(1, start - 600)]                # the wildcard task runs on
    for k in range(-9, 2):
        clock.set(start + 60 * k)
        # up to 10:01 again: the fixed-time task waits, the every-minute one runs
        assert sched.tick() == [(1, start + 60 * k)]
    clock.set(start + 120)
    assert sched.tick() == [(0, start + 120), (1, start + 120)]


def test_floor_minute_of_negative_times():
    assert floor_minute(-1) == -60
    assert floor_minute(59.9) == 0

"""Clock jumps not covered by tests/daemon: the repeated autumn hour in Europe/Paris end to
end (manual clock, real runs), and system-clock steps (freezegun on the system clock)
forward/backward, small and large."""

import pytest
from freezegun import freeze_time

from saturnd.clock import SystemClock
from saturnd import protocol as P
from saturnd.scheduler import Scheduler
from testkit.stubs import StubRunner, StubStore, stub_task, utc


@pytest.mark.timeout(120)
def test_fall_back_in_paris_end_to_end(make_daemon):
    """2026-10-25: 03:00 CEST (01:00 UTC) becomes 02:00 CET. As cronie: a task at a fixed
    time runs once (02:30), a wildcard task (minute or hour field every value) runs in each
    real minute of the repeated hour: an every-minute task 180 times in 180 real minutes."""
    start = utc("2026-10-24 23:00")                   # 01:00 CEST
    d = make_daemon(start_time=start, tz="Europe/Paris").start()
    assert d.cassini("-c", "-m", "30", "-H", "2", "true").returncode == 0
    assert d.cassini("-c", "-H", "2", "true").returncode == 0
    assert d.cassini("-c", "-m", "0", "-H", "3", "true").returncode == 0
    assert d.cassini("-c", "true").returncode == 0
    d.advance(180, deadline=60)                       # to 02:00 UTC = 03:00 CET
    runs = [[t for t, _ in d.call(P.Request(P.TIMES_EXITCODES, taskid=i)).runs] for i in range(4)]
    assert runs[0] == [utc("2026-10-25 00:30")]                       # 02:30 CEST only
    assert runs[1] == ([utc("2026-10-25 00:00") + 60 * k for k in range(60)]     # 02:xx CEST
                       + [utc("2026-10-25 01:00") + 60 * k for k in range(60)])  # 02:xx CET
    assert runs[2] == [utc("2026-10-25 02:00")]                       # 03:00 CET, once
    assert runs[3] == [start + 60 * k for k in range(1, 181)]         # 180 in 180 minutes
    assert d.cassini("-x", "0").stdout == b"2026-10-25 02:30:00 0\n"


@pytest.mark.timeout(20)
def test_system_clock_steps(tz):
    tz("UTC")
    tasks = [stub_task(0, "15", "10"), stub_task(1, "45", "10"), stub_task(2)]
    runner = StubRunner()
    with freeze_time("2026-01-01 10:00:00") as frozen:
        sched = Scheduler(StubStore(tasks), runner, SystemClock(), lambda m: None)

        def at(text):
            frozen.move_to(text)
            runner.started.clear()
            sched.tick()
            return sorted(runner.started)
        m = utc
        assert at("2026-01-01 10:01:00") == [(2, m("2026-01-01 10:01"))]
        # NTP step forward 1 h: tasks due in the skipped minutes run once each
        assert at("2026-01-01 11:01:30") == [(0, m("2026-01-01 11:01")),
                                             (1, m("2026-01-01 11:01")),
                                             (2, m("2026-01-01 11:01"))]
        # step back 30 min: fixed times wait until the clock passes 11:01 again; the
        # every-minute task (cronie's wildcard) runs on in each real minute
        assert at("2026-01-01 10:31:10") == [(2, m("2026-01-01 10:31"))]
        assert at("2026-01-01 10:45:00") == [(2, m("2026-01-01 10:45"))]   # 10:45 already ran
        assert at("2026-01-01 11:01:00") == [(2, m("2026-01-01 11:01"))]
        assert at("2026-01-01 11:02:00") == [(2, m("2026-01-01 11:02"))]
        # a jump of more than 3 h forward: taken as it is, nothing replayed
        assert at("2026-01-02 09:00:00") == []
        assert at("2026-01-02 09:01:00") == [(2, m("2026-01-02 09:01"))]
        # more than 3 h backward: taken as it is; scheduling goes on from there
        assert at("2026-01-01 10:14:00") == []
        assert at("2026-01-01 10:15:00") == [(0, m("2026-01-01 10:15")),
                                             (2, m("2026-01-01 10:15"))]

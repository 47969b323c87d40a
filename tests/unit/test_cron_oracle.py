"""Next runs of cron timings with a day of month and a month, checked against an oracle of
this test's own: a second implementation of cron's rules, written differently from the
scheduler's (calendar days and ``zoneinfo`` instead of wall ordinals and ``localtime``;
the timing drawn as sets, its text made from them; the time-change rules as cronie states
them: a time skipped by a forward change runs at the first minute after it, a repeated time
runs once, or in both passes for a wildcard task).  Several hundred random timings, start
times around the DST changes of four zones (half a zone's clock through ``TZ``, half
through ``CRON_TZ``)."""

import datetime
import random
import zoneinfo

import pytest

from saturnd.clock import ManualClock
from saturnd.protocol import Timing
from saturnd.scheduler import Scheduler
from saturnd.store import Task
from saturnd.timing import (CronSpec, days_from_string, hours_from_string, mdays_from_string,
                            minutes_from_string, months_from_string)
from testkit.stubs import StubRunner, StubStore, utc

pytestmark = pytest.mark.timeout(300)

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Europe/Dublin"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


# --- random fields: (text, set of values) -----------------------------------------------
def random_field(rnd, lo, hi, star_chance, names=None):
    full = set(range(lo, hi + 1))
    if rnd.random() < star_chance:
        return "*", full
    items, values = [], set()
    for _ in range(rnd.randint(1, 3)):
        kind = rnd.random()
        a = rnd.randint(lo, hi)
        if kind < 0.5:
            text, vals = str(a), {a}
            if names and rnd.random() < 0.5:
                text = names[a - lo]
        elif kind < 0.8:
            b = rnd.randint(a, hi)
            text, vals = f"{a}-{b}", set(range(a, b + 1))
            if names and rnd.random() < 0.5:
                text = f"{names[a - lo]}-{names[b - lo].upper()}"
        elif kind < 0.9:
            b, s = rnd.randint(a, hi), rnd.randint(1, 5)
            text, vals = f"{a}-{b}/{s}", set(range(a, b + 1, s))
        else:
            s = rnd.randint(2, 9)
            text, vals = f"*/{s}", set(range(lo, hi + 1, s))
        items.append(text)
        values |= vals
    return ",".join(items), values


def random_timing(rnd):
    fields = [random_field(rnd, 0, 59, 0.25), random_field(rnd, 0, 23, 0.3),
              random_field(rnd, 1, 31, 0.3), random_field(rnd, 1, 12, 0.4, MONTHS),
              random_field(rnd, 0, 6, 0.5)]
    if rnd.random() < 0.3 and fields[4][0] != "*":      # Sunday written 7
        text, values = fields[4]
        if 0 in values and text == "0":
            fields[4] = ("7", values)
    return fields


# --- the oracle -----------------------------------------------------------------------
def day_ok(date, mdays, months, dows):
    if date.month not in months:
        return False
    dom = date.day in mdays
    dow = (date.isoweekday() % 7) in dows
    if mdays != set(range(1, 32)) and dows != set(range(7)):
        return dom or dow
    return dom and dow


def first_minute_after(naive, zone, lo, hi):
    """The first epoch minute in (lo, hi] whose wall time in ``zone`` is after ``naive``."""
    t = lo - lo % 60 + 60
    while t <= hi + 60:
        if datetime.datetime.fromtimestamp(t, zone).replace(tzinfo=None) > naive:
            return t
        t += 60
    raise AssertionError("no minute after a gap")


def oracle(fields, zone_name, start, count):
    (_, minutes), (_, hours), (_, mdays), (_, months), (_, dows) = fields
    zone = zoneinfo.ZoneInfo(zone_name)
    wild = minutes == set(range(60)) or hours == set(range(24))
    day = datetime.datetime.fromtimestamp(start, zone).date()
    found = []
    idle = 0                        # days since the last one the task runs on
    while idle < 8 * 366 + 10:      # 29 February comes within 8 years
        idle += 1
        if day_ok(day, mdays, months, dows) and hours and minutes:
            idle = 0
            for h in sorted(hours):
                for m in sorted(minutes):
                    naive = datetime.datetime(day.year, day.month, day.day, h, m)
                    e0 = int(naive.replace(tzinfo=zone, fold=0).timestamp())
                    e1 = int(naive.replace(tzinfo=zone, fold=1).timestamp())
                    real = [e for e in sorted({e0, e1}) if datetime.datetime.fromtimestamp(
                        e, zone).replace(tzinfo=None) == naive]
                    if not real:                            # skipped by a forward change
                        found.append(first_minute_after(naive, zone, min(e0, e1),
                                                        max(e0, e1)))
                    elif len(real) == 1 or not wild:        # once (the first pass)
                        found.append(real[0])
                    else:                                   # repeated: wildcards run twice
                        found.extend(real)
            if len([t for t in found if t > start]) >= count:
                break
        day += datetime.timedelta(days=1)
    return sorted({t for t in found if t > start})[:count]


# --- the daemon's side --------------------------------------------------------------------
def parsed(fields):
    (mi, _), (h, _), (dom, _), (mon, _), (dow, _) = fields
    timing = Timing(minutes_from_string(mi), hours_from_string(h), days_from_string(dow))
    return timing, CronSpec(mdays=mdays_from_string(dom), months=months_from_string(mon))


def announced(timing, cron, start, count):
    sched = Scheduler(StubStore(), StubRunner(), ManualClock(start), lambda msg: None)
    return sched.next_runs(timing, count, cron)


TRANSITIONS = {     # each zone's DST changes (UTC), spring and autumn
    "Europe/Paris": ["2026-03-29 01:00", "2026-10-25 01:00", "2027-03-28 01:00"],
    "Europe/Dublin": ["2026-03-29 01:00", "2026-10-25 01:00", "2027-10-31 01:00"],
    "America/New_York": ["2026-03-08 07:00", "2026-11-01 06:00", "2027-11-07 06:00"],
    "Australia/Lord_Howe": ["2026-04-04 15:00", "2026-10-03 15:30", "2027-04-03 15:00"],
}


def start_times(rnd, zone_name):
    """A start time (not in a repeated hour's second pass: a daemon started there cannot
    know the first) and how many runs to compare: many when it is just before a change."""
    zone = zoneinfo.ZoneInfo(zone_name)
    while True:
        r = rnd.random()
        count = 6
        if r < 0.35:
            t = utc(rnd.choice(TRANSITIONS[zone_name])) - rnd.randint(0, 150) * 60
            count = 150
        elif r < 0.7:
            t = utc(rnd.choice(TRANSITIONS[zone_name])) + rnd.randint(-3 * 86400, 86400)
        else:
            t = utc("2026-01-01 00:00") + rnd.randint(0, 4 * 365 * 86400)
        t -= t % 60
        if datetime.datetime.fromtimestamp(t, zone).fold == 0:
            return t, count


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("via", ["TZ", "CRON_TZ"])
def test_next_runs_match_the_oracle(tz, zone_name, via):
    rnd = random.Random(f"{zone_name}-{via}")
    tz(zone_name if via == "TZ" else "UTC")
    compared = 0
    for _ in range(60):
        fields = random_timing(rnd)
        start, count = start_times(rnd, zone_name)
        timing, cron = parsed(fields)
        if via == "CRON_TZ":
            cron = cron.replace(tz=zone_name)
        want = oracle(fields, zone_name, start, count)
        got = announced(timing, cron, start, count)
        assert got == want, ([f[0] for f in fields], zone_name, via, start)
        compared += len(want)
    assert compared > 200          # the timings ran, most of them several times


@pytest.mark.parametrize("fields, start, want", [
    # the 31st: months without one are skipped
    (("0", "12", "31", "*", "*"), "2026-04-01 00:00",
     ["2026-05-31 12:00", "2026-07-31 12:00", "2026-08-31 12:00"]),
    # 29 February: leap years only
    (("0", "0", "29", "feb", "*"), "2026-01-01 00:00",
     ["2028-02-29 00:00", "2032-02-29 00:00"]),
    # day of month OR day of week when both are restricted (cron's rule)
    (("0", "9", "1", "*", "mon"), "2026-06-01 00:00",      # 2026-06-01 is a Monday
     ["2026-06-01 09:00", "2026-06-08 09:00", "2026-06-15 09:00", "2026-06-22 09:00",
      "2026-06-29 09:00", "2026-07-01 09:00"]),
    # day of week restricted, day of month every value: the weekday only
    (("0", "9", "1-31", "jun", "sun"), "2026-06-01 00:00",
     ["2026-06-07 09:00", "2026-06-14 09:00"]),
    # @yearly, @monthly
    (("0", "0", "1", "1", "*"), "2026-05-05 00:00", ["2027-01-01 00:00", "2028-01-01 00:00"]),
    (("0", "0", "1", "*", "*"), "2026-12-15 00:00", ["2027-01-01 00:00", "2027-02-01 00:00"]),
])
def test_known_dates(tz, fields, start, want):
    tz("UTC")
    sets = [(text, None) for text in fields]
    timing, cron = parsed(sets)
    assert announced(timing, cron, utc(start), len(want)) == [utc(w) for w in want]


def test_a_date_that_never_comes_gets_no_time_quickly(tz):
    tz("Europe/Paris")
    timing, cron = parsed([("0", None), ("0", None), ("30", None), ("feb", None), ("*", None)])
    assert announced(timing, cron, utc("2026-01-01 00:00"), 1000) == []


@pytest.mark.parametrize("zone_name", ["Europe/Paris", "Australia/Lord_Howe"])
def test_dated_ticked_runs_are_the_announced_ones(tz, zone_name):
    """The scheduler's minute loop starts a dated task exactly at the announced times,
    across a DST change, in the daemon's zone and in a CRON_TZ zone."""
    tz("UTC")
    start = utc("2026-10-24 00:00") if zone_name == "Europe/Paris" else utc("2026-04-03 12:00")
    tasks = []
    specs = [("*/15", "*", "3-6,24-26", "oct,apr", "*"), ("30", "1-3", "25,5", "*", "sun"),
             ("0", "2", "*", "10,4", "*")]
    for i, fields in enumerate(specs):
        timing, cron = parsed([(f, None) for f in fields])
        tasks.append(Task(i, timing, (b"true",), i, cron.replace(tz=zone_name)))
    runner = StubRunner()
    clock = ManualClock(start)
    sched = Scheduler(StubStore(tasks), runner, clock, lambda msg: None)
    want = {t.taskid: sched.next_runs(t.timing, 1000, t.cron) for t in tasks}
    for k in range(1, 3 * 1440 + 1):
        clock.set(start + 60 * k)
        sched.tick()
    end = start + 3 * 1440 * 60
    for t in tasks:
        got = [w for i, w in runner.started if i == t.taskid]
        assert got == [w for w in want[t.taskid] if w <= end] and got, t.taskid


# --- a second oracle: croniter, when installed (pip install croniter) -----------------------
def test_next_runs_match_croniter(tz):
    """Plain UTC (croniter's time-change rules are its own): the day of month, month and
    day-of-week rule against croniter's, on 300 random timings, each field written as the
    plain list of its values (croniter, like cronie, counts a field written '*/N' as
    unrestricted, and croniter 7 misreads a one-value range such as '4-4' in the day of
    week: the lists keep to what both read alike)."""
    croniter = pytest.importorskip("croniter").croniter
    tz("UTC")
    rnd = random.Random(7)
    compared = 0
    ranges = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
    for _ in range(300):
        fields = []
        for (_, values), (lo, hi) in zip(random_timing(rnd), ranges):
            values = {0 if v == 7 and hi == 6 else v for v in values}
            full = values == set(range(lo, hi + 1))
            fields.append(("*" if full else ",".join(map(str, sorted(values))), values))
        start = utc("2026-01-01 00:00") + rnd.randint(0, 3 * 365 * 1440) * 60
        timing, cron = parsed(fields)
        expr = " ".join(text for text, _ in fields)
        it = croniter(expr, datetime.datetime.fromtimestamp(start, datetime.timezone.utc))
        want = [int(it.get_next(float)) for _ in range(5)]
        assert announced(timing, cron, start, 5) == want, expr
        compared += 5
    assert compared == 1500

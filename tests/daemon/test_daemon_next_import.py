"""This project's own requests end to end, real cassini against a real saturnd on a manual
clock: NEXT_RUNS (``cassini -n``) announces exactly the runs the daemon then records, also
across the Paris DST changes; crontab import (``-I``) and export (``-X``)."""

import calendar
import struct
import time

import pytest

from saturnd import protocol as P

from testkit import T0
from testkit.stubs import utc

pytestmark = [pytest.mark.timeout(120), pytest.mark.scenario]


def parse_times(out):
    """``YYYY-MM-DD HH:MM:SS`` lines printed with TZ=UTC -> epoch seconds."""
    return [calendar.timegm(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
            for line in out.decode().splitlines()]


def announced(d, taskid, count):
    return parse_times(d.cassini("-n", str(taskid), "-N", str(count), tz="UTC").stdout)


def recorded(d, taskid):
    return parse_times(d.cassini("-x", str(taskid), tz="UTC").stdout)


def advance_to(d, epoch):
    now = int(d.clock("now")[1].split()[1])
    while now < epoch:
        now = d.advance(min(240, (epoch - now) // 60), 60)


TIMINGS = [
    ("30", "2", "*"),          # 02:30: skipped in spring, repeated in autumn
    ("*/20", "0-4", "*"),
    ("59", "1", "*"),
    ("0", "3", "*"),
    ("0,30", "*", "sun"),
    ("15", "2-3", "*"),
]


@pytest.mark.parametrize("start", ["2026-03-28 23:00", "2026-10-24 22:00"],
                         ids=["paris-spring-forward", "paris-fall-back"])
def test_next_runs_are_exactly_the_runs_recorded(make_daemon, start):
    d = make_daemon(start_time=utc(start), tz="Europe/Paris").start()
    for fields in TIMINGS:
        m, h, days = fields
        d.cassini("-c", "-m", m, "-H", h, "-d", days, "true")
    count = 3
    want = [announced(d, i, count) for i in range(len(TIMINGS))]
    assert all(len(w) == count for w in want), want
    assert d.cassini("-n", "1").stdout.count(b"\n") == 5          # -N defaults to 5
    end = max(w[-1] for w in want)
    assert end - utc(start) <= 3 * 86400
    advance_to(d, end)
    for i, w in enumerate(want):
        got = [t for t in recorded(d, i) if t <= w[-1]]
        assert got == w, (TIMINGS[i], got, w)


def test_next_runs_output_local_time_and_errors(make_daemon):
    # 2026-03-29 00:58 UTC = 01:58 CET; 02:30 does not exist that day: it runs at 03:00 CEST
    start = utc("2026-03-29 00:58")
    d = make_daemon(start_time=start, tz="Europe/Paris").start()
    d.cassini("-c", "-m", "30", "-H", "2", "true")
    assert d.out("-n", "0", "-N", "2") == b"2026-03-29 03:00:00\n2026-03-30 02:30:00\n"
    assert d.cassini("-n", "0", "-N", "2", tz="UTC").stdout == (
        b"2026-03-29 01:00:00\n2026-03-30 00:30:00\n")
    assert d.out("-n", "0", "-N", "0") == b""
    res = d.cassini("-n", "5", check=False)
    assert (res.returncode, res.stdout) == (1, b"")
    assert b"5" in res.stderr and b"Traceback" not in res.stderr
    assert d.raw(struct.pack(">HQI", P.NEXT_RUNS, 5, 3)) == b"ERNF"
    # a huge COUNT is capped (1000 times), an empty field gives no time at all
    reply = d.raw(struct.pack(">HQI", P.NEXT_RUNS, 0, 2**32 - 1))
    assert reply[:6] == b"OK" + struct.pack(">I", 1000) and len(reply) == 6 + 8 * 1000
    d.cassini("-c", "-m", "0", "-H", "0", "true")
    d.cassini("-t", "1", "-m", "0", "-H", "0", "-d", "1")
    assert d.raw(P.encode_request(P.Request(P.SW_TIME, taskid=1, timing=P.Timing(0, 1, 1)))) \
        == b"OK"
    assert d.raw(struct.pack(">HQI", P.NEXT_RUNS, 1, 5)) == b"OK\0\0\0\0"
    # the daemon is still serving
    assert d.out("-l").startswith(b"0: 30 2 * true\n")


def test_next_runs_follow_the_manual_clock(daemon):
    daemon.cassini("-c", "-m", "5", "true")
    assert announced(daemon, 0, 2) == [T0 + 300, T0 + 3900]
    daemon.set_time(T0 + 600)
    assert announced(daemon, 0, 1) == [T0 + 3900]


# --- crontab import / export ------------------------------------------------------------
CRONTAB = b"""\
# a crontab as people write them
SHELL=/bin/sh
*/15 * * * * printf '[\\%s]' 'a b' "it's" 50\\%
@hourly printf hourly
0 9 * * mon-fri  echo weekday
"""


def test_import_all_or_nothing_then_partial(daemon, tmp_path):
    path = tmp_path / "crontab"
    path.write_bytes(CRONTAB + b"@often nope\n")
    res = daemon.cassini("-I", str(path), check=False)
    assert res.returncode == 1 and res.stdout == b""
    assert f"{path}:6: refused: unknown special".encode() in res.stderr
    assert b"nothing created" in res.stderr and b"Traceback" not in res.stderr
    assert daemon.out("-l") == b""
    res = daemon.cassini("-P", "-I", str(path), check=False)
    assert (res.returncode, res.stdout) == (1, b"0\n1\n2\n")
    assert res.stderr.count(b"refused") == 1
    assert daemon.out("-l") == (
        b"0: 0,15,30,45 * * /bin/sh -c printf '[%s]' 'a b' \"it's\" 50%\n"
        b"1: 0 * * /bin/sh -c printf hourly\n"
        b"2: 0 9 1-5 /bin/sh -c echo weekday\n")
    daemon.advance(15)
    assert daemon.out("-o", "0") == b"[a b][it's][50%]"
    assert daemon.out("-x", "1") == b""


def test_import_from_stdin_and_bad_files(daemon, tmp_path):
    res = daemon.cassini("-I", "-", input=b"# only this\n@daily true\n\n", check=False)
    assert (res.returncode, res.stdout) == (0, b"0\n")
    res = daemon.cassini("-I", str(tmp_path / "missing"), check=False)
    assert res.returncode == 1 and b"cannot read" in res.stderr
    res = daemon.cassini("-I", str(tmp_path), check=False)          # a directory
    assert res.returncode == 1 and b"cannot read" in res.stderr
    (tmp_path / "empty").write_bytes(b"")
    assert daemon.cassini("-I", str(tmp_path / "empty")).stdout == b""
    assert daemon.out("-l") == b"0: 0 0 * /bin/sh -c true\n"


def test_export_round_trip(make_daemon, tmp_path):
    d = make_daemon().start()
    tricky = ["a b", "it's", '"q"', "", "50%", "back\\slash", "$HOME", "h\u00e9llo"]
    d.cassini("-c", "-m", "*/2", "-H", "0-3", "-d", "4", "--", "printf", "[%s]", *tricky)
    (tmp_path / "in").write_bytes(CRONTAB.replace(b"SHELL=/bin/sh\n", b""))
    d.cassini("-I", str(tmp_path / "in"))
    d.cassini("-c", "-m", "1", "true")
    d.cassini("-t", "4", "-m", "1")
    d.raw(b"ST" + struct.pack(">Q", 4) + P.Timing(1, 0, 1).encode())   # never runs
    res = d.cassini("-X", check=False)
    assert res.returncode == 1 and b"task 4 not exported" in res.stderr
    exported = res.stdout
    lines = exported.splitlines()
    assert len(lines) == 5 and lines[4].startswith(b"# task 4 not exported")
    assert lines[0].startswith(b"0,2,4,6,8,")
    assert lines[1:4] == CRONTAB.replace(b"SHELL=/bin/sh\n", b"").replace(
        b"*/15", b"0,15,30,45").replace(b"@hourly", b"0 * * * *").replace(
        b"0 9 * * mon-fri  echo", b"0 9 * * 1-5 echo").splitlines()[1:]
    # imported again into an empty daemon: same timings, same commands, same outputs
    e = make_daemon("e").start()
    (tmp_path / "out").write_bytes(exported)
    assert e.out("-I", str(tmp_path / "out")) == b"0\n1\n2\n3\n"
    assert e.cassini("-X", check=False).stdout == b"".join(line + b"\n" for line in lines[:4])
    listed_d = d.out("-l").splitlines()
    listed_e = e.out("-l").splitlines()
    assert [t.split(b" ")[1:4] for t in listed_e] == [t.split(b" ")[1:4] for t in listed_d[:4]]
    assert listed_e[1:] == listed_d[1:4]               # tasks made by import: same argv
    d.advance(2)
    e.advance(2)
    assert d.out("-o", "0") == e.out("-o", "0") == b"".join(
        b"[%s]" % a.encode() for a in tricky)

"""Cron's other fields end to end, through the real cassini against a real saturnd: the
long listing (-L), day of month and month (-j, -M), catch-up (-a), environment (-y),
@reboot (-B)."""

import re
import struct

import pytest

from saturnd import protocol as P
from saturnd.timing import ALL_MDAYS, ALL_MONTHS

from testkit import T0

pytestmark = [pytest.mark.timeout(90), pytest.mark.scenario]


def without_next(listing):
    """``-L`` without its ``[next=...]`` marks (the next run: shown for every task)."""
    return re.sub(rb"\[next=[^]]*\] ", b"", listing)


def test_long_list_shows_every_field(make_daemon):
    daemon = make_daemon().start()
    assert daemon.out("-L") == b""
    assert daemon.out("-c", "echo", "plain") == b"0\n"
    assert daemon.out("-c", "-m", "0", "-H", "4", "-j", "1,15", "-M", "jan-mar", "-a",
                      "-y", "PATH=/usr/bin:/bin", "-y", "MAILTO=", "-y", "CRON_TZ=Europe/Paris",
                      "--", "sh", "-c", "echo dated") == b"1\n"
    assert daemon.out("-c", "-B", "echo", "boot") == b"2\n"
    assert daemon.out("-L") == (
        b"0: * * * * * [next=2026-01-01 00:01:00] echo plain\n"
        b"1: 0 4 1,15 1-3 * [catch-up] [tz=Europe/Paris] [env=PATH,MAILTO] "
        b"[next=2026-01-01 03:00:00] sh -c echo dated\n"
        b"2: @reboot echo boot\n")
    # the reference LIST still carries what its TIMING can: minutes, hours, days of week
    assert daemon.out("-l") == (b"0: * * * echo plain\n1: 0 4 * sh -c echo dated\n"
                                b"2:    echo boot\n")
    # the raw reply: LIST's entry, then NBATTRS and (KEY, VALUE) pairs
    reply = daemon.raw(struct.pack(">H", P.LONG_LIST))
    tasks = P.decode_reply(reply, P.LONG_LIST).tasks
    assert [t[0] for t in tasks] == [0, 1, 2]
    nxt = (b"next", b"%d" % (T0 + 60))              # the next run (everyday-use fields)
    assert tasks[0][3] == [nxt] and tasks[2][3] == [(b"reboot", b"1")]
    assert tasks[1][3] == [(b"mdays", b"1,15"), (b"months", b"1-3"), (b"catchup", b"1"),
                           (b"env", b"PATH=/usr/bin:/bin"), (b"env", b"MAILTO="),
                           (b"tz", b"Europe/Paris"), (b"next", b"%d" % (T0 + 3 * 3600))]
    assert reply.startswith(b"OK\0\0\0\3" + struct.pack(">Q", 0) + P.EVERY_MINUTE.encode()
                            + P.encode_commandline((b"echo", b"plain")) + b"\0\0\0\1"
                            + P.encode_string(b"next") + P.encode_string(nxt[1]))
    # durable: the same after a restart
    daemon.terminate()
    daemon.start()
    assert P.decode_reply(daemon.raw(struct.pack(">H", P.LONG_LIST)), P.LONG_LIST).tasks \
        == tasks


def test_set_cron_replaces_named_attributes_keeps_others(make_daemon):
    daemon = make_daemon().start()
    daemon.out("-c", "-j", "13", "-a", "-y", "A=1", "true")
    assert daemon.out("-t", "0", "-m", "5", "-M", "6") == b""
    assert without_next(daemon.out("-L")) == b"0: 5 * 13 6 * [catch-up] [env=A] true\n"
    assert daemon.out("-t", "0", "-j", "*", "-y", "B=2") == b""
    # -t changes only the fields given: the minutes (5) are kept
    assert without_next(daemon.out("-L")) == b"0: 5 * * 6 * [catch-up] [env=B] true\n"
    # without a cron option (SET_FIELDS) the TIMING only, again the fields given only
    assert daemon.out("-t", "0", "-H", "3") == b""
    assert without_next(daemon.out("-L")) == b"0: 5 3 * 6 * [catch-up] [env=B] true\n"
    res = daemon.cassini("-t", "9", "-j", "1", check=False)
    assert res.returncode == 1 and b"no task with id 9" in res.stderr


@pytest.mark.parametrize("args, why", [
    (["-c", "-j", "0", "true"], b"out of range (1-31)"),
    (["-c", "-j", "32", "true"], b"out of range (1-31)"),
    (["-c", "-M", "13", "true"], b"out of range (1-12)"),
    (["-c", "-M", "foo", "true"], b"unknown month name"),
    (["-c", "-y", "NOEQUALS", "true"], b"NAME=VALUE"),
    (["-c", "-y", "CRON_TZ=Not/AZone", "true"], b"unknown time zone"),
    (["-c", "-B", "-m", "1", "true"], b"-B"),
])
def test_bad_cron_options_are_refused_before_sending(make_daemon, args, why):
    daemon = make_daemon().start()
    res = daemon.cassini(*args, check=False)
    assert res.returncode == 1 and why in res.stderr and b"Traceback" not in res.stderr
    assert daemon.out("-L") == b""


def test_bad_attributes_on_the_wire_get_the_empty_reply(make_daemon):
    daemon = make_daemon().start()
    timing = P.EVERY_MINUTE.encode()
    cmd = P.encode_commandline((b"true",))
    for attrs in ([(b"mdays", b"0")], [(b"months", b"1-13")], [(b"env", b"=x")],
                  [(b"reboot", b"2")], [(b"tz", b"Nowhere/City")]):
        assert daemon.raw(struct.pack(">H", P.CREATE_CRON) + timing + cmd
                          + P.encode_attrs(attrs)) == b"", attrs
    assert daemon.out("-L") == b""     # alive, nothing created
    ok = daemon.raw(struct.pack(">H", P.CREATE_CRON) + timing + cmd
                    + P.encode_attrs([(b"mdays", b"2"), (b"future", b"kept out")]))
    assert ok == b"OK" + struct.pack(">Q", 0)
    assert without_next(daemon.out("-L")) == b"0: * * 2 * * true\n"
    assert ALL_MDAYS == sum(1 << d for d in range(1, 32))
    assert ALL_MONTHS == sum(1 << m for m in range(1, 13))
    assert T0 % 60 == 0

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
    """``-L`` without its ``[next=...]`` and ``[last=...]`` marks (the next and the last run
    of each task: the everyday-use fields)."""
    return re.sub(rb"\[(next|last)=[^]]*\] ", b"", listing)


def without_runs(attrs):
    """LONG_LIST attributes without ``next`` and ``last``."""
    return [(k, v) for k, v in attrs if k not in (b"next", b"last")]


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
    again = P.decode_reply(daemon.raw(struct.pack(">H", P.LONG_LIST)), P.LONG_LIST).tasks
    assert [t[:3] + (without_runs(t[3]),) for t in again] == \
        [t[:3] + (without_runs(t[3]),) for t in tasks]


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


# --- runs: environment, HOME, SHELL, MAILTO; @reboot; catch-up ----------------------------
def wait_runs(daemon, taskid, n):
    from testkit.waiting import wait_for
    def runs():
        got = daemon.call(P.Request(P.TIMES_EXITCODES, taskid=taskid)).runs
        return got if len(got) >= n else None
    return wait_for(runs, timeout=20, what=f"{n} run(s) of task {taskid}")


def test_environment_settings_reach_the_command(make_daemon, tmp_path):
    daemon = make_daemon().start()
    home = tmp_path / "elsewhere"
    home.mkdir()
    daemon.out("-c", "-y", "GREETING=hello world", "-y", "PATH=/usr/bin:/bin",
               "-y", "GREETING=bonjour", "--", "sh", "-c", 'echo "$GREETING|$PATH"; pwd')
    daemon.out("-c", "-y", f"HOME={home}", "--", "sh", "-c", 'pwd; echo "$HOME"')
    daemon.out("-c", "--", "sh", "-c", 'echo "${GREETING-unset}"')
    daemon.advance(1)
    for i in range(3):
        wait_runs(daemon, i, 1)
    assert daemon.out("-o", "0") == b"bonjour|/usr/bin:/bin\n" + str(daemon.home).encode() + b"\n"
    assert daemon.out("-o", "1") == (str(home) + "\n" + str(home) + "\n").encode()
    assert daemon.out("-o", "2") == b"unset\n"      # one task's settings are its own


def test_reboot_runs_once_per_daemon_start_not_per_client(make_daemon):
    daemon = make_daemon().start()
    daemon.out("-c", "-B", "echo", "booted")
    for _ in range(3):
        daemon.out("-L")            # clients come and go: no run
    daemon.advance(5)               # the clock: no run either
    assert daemon.out("-x", "0") == b""
    daemon.terminate()
    daemon.start()
    wait_runs(daemon, 0, 1)
    daemon.advance(3)
    daemon.terminate()
    daemon.start_time = T0 + 3600
    daemon.start()
    runs = wait_runs(daemon, 0, 2)
    assert [t for t, _ in runs] == [T0, T0 + 3600] and daemon.out("-o", "0") == b"booted\n"


def test_catch_up_runs_once_after_downtime_only_when_asked(make_daemon):
    daemon = make_daemon().start()          # 2026-01-01 00:00 UTC
    daemon.out("-c", "-a", "-m", "30", "-H", "*/2", "true")    # catch-up
    daemon.out("-c", "-m", "30", "-H", "*/2", "true")          # not
    daemon.out("-c", "-a", "-m", "0", "-H", "12", "-j", "15", "true")  # not missed
    assert without_next(daemon.out("-L")).splitlines()[0] == b"0: 30 */2 * * * [catch-up] true".replace(
        b"*/2", b"0,2,4,6,8,10,12,14,16,18,20,22")
    daemon.advance(10)
    daemon.terminate()
    daemon.start_time = T0 + 5 * 3600        # down from 00:10 to 05:00: 00:30, 02:30, 04:30
    daemon.start()
    runs = wait_runs(daemon, 0, 1)
    assert [t for t, _ in runs] == [T0 + 5 * 3600]        # once, at start-up
    assert daemon.out("-x", "1") == b"" and daemon.out("-x", "2") == b""
    daemon.terminate()                      # a restart without missed runs: nothing
    daemon.start()
    daemon.advance(1)
    assert len(daemon.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs) == 1


# --- an ordinary user crontab, moved over whole ------------------------------------------
USER_CRONTAB = b"""\
# m h  dom mon dow   command
SHELL=/bin/bash
PATH=/usr/local/bin:/usr/bin:/bin
MAILTO=""
GREETING = "hello there"
*/1 * * * * echo "$GREETING from $SHELL" > /dev/null
15 0 1-31 1-12 * echo all days
30 0 1,15 * * echo "twice a month"
0 1 * jan,jul mon-fri echo winter and summer weekdays
0 2 1 * sun echo first of month or sunday
@monthly echo monthly
@yearly echo yearly
@annually echo annually
@reboot echo "booted: $GREETING"
CRON_TZ=America/New_York
0 12 * * * echo noon in New York
SATURND_CATCHUP=1
45 3 * * 0-7/7 echo sundays, caught up
"""


def test_an_ordinary_user_crontab_imports_whole_runs_as_cron_and_round_trips(make_daemon,
                                                                              tmp_path):
    daemon = make_daemon(start_time=T0 - 60).start()    # 2025-12-31 23:59 UTC, a Wednesday
    (tmp_path / "crontab").write_bytes(USER_CRONTAB.replace(b"\n", b"\r\n"))   # CRLF too
    res = daemon.cassini("-I", str(tmp_path / "crontab"), check=False)
    assert (res.returncode, res.stderr) == (0, b"")
    assert res.stdout == b"".join(b"%d\n" % i for i in range(11))
    listing = without_next(daemon.out("-L")).splitlines()
    env = b"[env=SHELL,PATH,MAILTO,GREETING] /bin/bash -c "
    assert listing[:3] == [b"0: * * * * * " + env + b'echo "$GREETING from $SHELL" > /dev/null',
                           b"1: 15 0 * * * " + env + b"echo all days",
                           b"2: 30 0 1,15 * * " + env + b'echo "twice a month"']
    assert listing[4] == b"4: 0 2 1 * 0 " + env + b"echo first of month or sunday"
    assert listing[7].startswith(b"7: 0 0 1 1 * ") and listing[8].startswith(b"8: @reboot ")
    assert listing[9] == b"9: 0 12 * * * [tz=America/New_York] " + env + b"echo noon in New York"
    assert listing[10].startswith(b"10: 45 3 * * 0 [catch-up] [tz=America/New_York] ")
    # what runs in the first day of 2026 (a Thursday, the 1st of January), as cron runs it
    daemon.advance(24 * 60 + 1, deadline=120)
    for taskid, times in {1: [T0 + 15 * 60], 2: [T0 + 30 * 60], 3: [T0 + 3600],
                          4: [T0 + 2 * 3600], 5: [T0], 6: [T0], 7: [T0],
                          9: [T0 + 17 * 3600]}.items():
        got = [t for t, _ in daemon.call(P.Request(P.TIMES_EXITCODES, taskid=taskid)).runs]
        assert got == times, taskid
    assert len(daemon.call(P.Request(P.TIMES_EXITCODES, taskid=0)).runs) == 24 * 60 + 1
    assert daemon.out("-o", "2") == b"twice a month\n"
    assert daemon.out("-x", "8") == b"" and daemon.out("-x", "10") == b""
    # export -> import -> export: the same text
    exported = daemon.out("-X")
    assert exported.startswith(b"SHELL=/bin/bash\nPATH=/usr/local/bin:/usr/bin:/bin\n"
                               b"MAILTO=\nGREETING=hello there\n* * * * * echo")
    other = make_daemon("other").start()
    (tmp_path / "exported").write_bytes(exported)
    assert other.cassini("-I", str(tmp_path / "exported")).returncode == 0
    assert other.out("-X") == exported
    assert without_next(other.out("-L")) == without_next(daemon.out("-L"))
    # @reboot: at the next start of the daemon, with the crontab's environment
    daemon.terminate()
    daemon.start()
    wait_runs(daemon, 8, 1)
    assert daemon.out("-o", "8") == b"booted: hello there\n"


def test_mailto_mails_the_output_through_sendmail(make_daemon, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    mailbox = tmp_path / "mailbox"
    sendmail = bindir / "sendmail"
    sendmail.write_text(f'#!/bin/sh\n{{ echo "ARGS: $*"; cat; }} >> {mailbox}\n')
    sendmail.chmod(0o755)
    import os
    import shutil
    if shutil.which("sendmail") or os.path.exists("/usr/sbin/sendmail") \
            or os.path.exists("/usr/lib/sendmail"):
        pytest.skip("this machine has a sendmail of its own")
    daemon = make_daemon(env={"PATH": f"{bindir}:{os.environ['PATH']}"}).start()
    crontab = (b"MAILTO=ops@example.org\n* * * * * echo out; echo err >&2\n"
               b"* * * * * true\nMAILTO=\"\"\n* * * * * echo not mailed\n")
    res = daemon.cassini("-I", "-", input=crontab, check=False)
    assert (res.returncode, res.stderr) == (0, b"")
    daemon.advance(1)
    from testkit.waiting import wait_for
    text = wait_for(lambda: mailbox.exists() and b"err" in mailbox.read_bytes()
                    and mailbox.read_bytes(), timeout=20, what="the mail")
    assert text.startswith(b"ARGS: -i -- ops@example.org\nTo: ops@example.org\n")
    assert text.endswith(b"\n\nout\nerr\n") and text.count(b"ARGS:") == 1   # no output: no mail
    assert b"not mailed" not in text


def test_mailto_without_sendmail_is_said_at_import_and_the_task_kept(make_daemon):
    import os
    if any(os.access(os.path.join(d, "sendmail"), os.X_OK)
           for d in ["/usr/sbin", "/usr/lib"] + os.environ["PATH"].split(":")):
        pytest.skip("this machine has a sendmail")
    daemon = make_daemon().start()
    res = daemon.cassini("-I", "-", input=b"MAILTO=me\n0 * * * * a\n1 * * * * b\n", check=False)
    assert res.returncode == 0 and res.stdout == b"0\n1\n"
    assert res.stderr == b"cassini: <stdin>:2: MAILTO: no sendmail on this machine: the output " \
                         b"of 2 task(s) will not be mailed (the tasks are created)\n"
    daemon.advance(2)
    wait_runs(daemon, 1, 1)
    from testkit.waiting import wait_for
    wait_for(lambda: b"no sendmail" in daemon.out("-E", "1"), timeout=20,
             what="the error log entry")


def test_next_runs_preview_dated_tasks(make_daemon):
    daemon = make_daemon().start()                   # 2026-01-01 00:00 UTC
    daemon.out("-c", "-m", "0", "-H", "0", "-j", "1", "true")                 # @monthly
    daemon.out("-c", "-m", "0", "-H", "0", "-j", "29", "-M", "feb", "true")   # leap days
    daemon.out("-c", "-m", "0", "-H", "0", "-j", "30", "-M", "2", "true")     # never
    daemon.out("-c", "-m", "0", "-H", "12", "-y", "CRON_TZ=Asia/Tokyo", "true")
    assert daemon.out("-n", "0", "-N", "3") == (b"2026-02-01 00:00:00\n2026-03-01 00:00:00\n"
                                                b"2026-04-01 00:00:00\n")
    assert daemon.out("-n", "1", "-N", "2") == b"2028-02-29 00:00:00\n2032-02-29 00:00:00\n"
    assert daemon.out("-n", "2") == b""
    assert daemon.out("-n", "3", "-N", "1") == b"2026-01-01 03:00:00\n"    # noon in Tokyo
    daemon.advance(180)
    assert daemon.out("-x", "3") == b"2026-01-01 03:00:00 0\n"


def test_a_timing_change_cut_short_after_its_commit_point_completes_at_start_up(make_daemon):
    """The cron file (attributes and the TIMING they go with) is the commit point of a
    change; time_exec follows.  A crash between the two: the change is completed."""
    daemon = make_daemon().start()
    daemon.out("-c", "-j", "15", "true")
    daemon.out("-t", "0", "-m", "7", "-j", "16")
    daemon.out("-t", "0", "-H", "3")             # the reference SW_TIME: the same commit point
    task_dir = daemon.data / "tasks" / "0"
    daemon.kill9()
    # as if the daemon died after writing the cron file of "-m 9 -j 20" but not time_exec
    from saturnd.store import CRON_TIMING_KEY
    new = P.Timing(1 << 9, P.HOURS_MASK, P.DAYS_MASK)
    (task_dir / "cron").write_bytes(P.encode_attrs([(b"mdays", b"20"),
                                                    (CRON_TIMING_KEY, new.encode())]))
    daemon.start()
    assert without_next(daemon.out("-L")) == b"0: 9 * 20 * * true\n"
    assert (task_dir / "time_exec").read_bytes() == new.encode()
    daemon.out("-t", "0", "-j", "*")             # back to no attribute: the file goes
    assert not (task_dir / "cron").exists()
    # (-t changes only the fields given: the minute stays)
    assert without_next(daemon.out("-L")) == b"0: 9 * * * * true\n"


def test_the_daemon_survives_damaged_cron_requests(make_daemon):
    import random
    daemon = make_daemon().start()
    daemon.out("-c", "-j", "3", "-y", "A=1", "true")
    good = {
        P.CREATE_CRON: P.EVERY_MINUTE.encode() + P.encode_commandline((b"x",))
        + P.encode_attrs([(b"mdays", b"1-5"), (b"env", b"B=2"), (b"tz", b"UTC")]),
        P.SET_CRON: struct.pack(">Q", 0) + P.EVERY_MINUTE.encode()
        + P.encode_attrs([(b"months", b"jan"), (b"catchup", b"1")]),
        P.LONG_LIST: b"",
    }
    rnd = random.Random(23)
    for _ in range(60):
        opcode = rnd.choice(sorted(good))
        body = bytearray(good[opcode])
        for _ in range(rnd.randint(1, 4)):
            if body and rnd.random() < 0.7:
                body[rnd.randrange(len(body))] = rnd.randrange(256)
            else:
                body = body[:rnd.randrange(len(body) + 1)] if body else bytearray(b"\xff" * 9)
        reply = daemon.raw(struct.pack(">H", opcode) + bytes(body) + b"\0" * rnd.randint(0, 1))
        assert reply == b"" or reply.startswith((b"OK", b"ERNF")), reply[:20]
    listing = daemon.out("-L")          # alive, and what it lists it can list again
    assert listing.startswith(b"0: ") and daemon.out("-L") == listing
    daemon.terminate()
    daemon.start()
    assert daemon.out("-L") == listing  # and what it stored loads again


def test_catch_up_turned_off_again(make_daemon):
    daemon = make_daemon().start()
    daemon.out("-c", "-a", "-m", "5", "true")
    assert without_next(daemon.out("-L")) == b"0: 5 * * * * [catch-up] true\n"
    daemon.out("-t", "0", "-m", "5", "-y", "SATURND_CATCHUP=0")
    assert without_next(daemon.out("-L")) == b"0: 5 * * * * true\n"
    res = daemon.cassini("-t", "0", "-y", "SATURND_CATCHUP=yes", check=False)
    assert res.returncode == 1 and b"catchup must be 0 or 1" in res.stderr


def test_a_reboot_task_given_a_timing_becomes_a_timed_task(make_daemon):
    daemon = make_daemon().start()
    daemon.out("-c", "-B", "-y", "A=1", "true")
    daemon.out("-c", "-B", "true")
    daemon.out("-t", "0", "-m", "5")                 # the reference SW_TIME
    daemon.out("-t", "1", "-m", "6", "-j", "2")      # SET_CRON without -B
    assert without_next(daemon.out("-L")) == b"0: 5 * * * * [env=A] true\n1: 6 * 2 * * true\n"
    assert daemon.out("-X") == b"A=1\n5 * * * * exec true\n6 * 2 * * exec true\n"
    daemon.out("-t", "1", "-B")
    assert without_next(daemon.out("-L")).splitlines()[1] == b"1: @reboot true"

"""crontab import/export (cassini/crontab.py): the line syntax, what is refused and why,
cron's % escape, and the round trip (exported lines imported again run the same argv)."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cassini import crontab as C
from saturnd.protocol import Timing
from saturnd.timing import timing_from_strings

pytestmark = pytest.mark.timeout(60)

SH = b"/bin/sh"


def timing(m="*", h="*", d="*"):
    return Timing(*timing_from_strings(m, h, d))


@pytest.mark.parametrize("line, fields, command", [
    (b"*/15 8-18 * * mon-fri backup.sh --fast", ("*/15", "8-18", "mon-fri"),
     b"backup.sh --fast"),
    (b"0,30 * * * * echo  two  spaces ", ("0,30", "*", "*"), b"echo  two  spaces "),
    (b"\t 5\t4 *\t*  7   true", ("5", "4", "0"), b"true"),
    (b"0 0 * * SUN,sat,1-3 x", ("0", "0", "0,6,1-3"), b"x"),
    (b"59 23 * * 5-7 x", ("59", "23", "0,5,6"), b"x"),
    (b"@hourly date", ("0", "*", "*"), b"date"),
    (b"@daily date", ("0", "0", "*"), b"date"),
    (b"@midnight  date", ("0", "0", "*"), b"date"),
    (b"@weekly\tdate -u", ("0", "0", "0"), b"date -u"),
    (b"* * * * * printf '50\\%'", ("*", "*", "*"), b"printf '50%'"),
    (b"* * * * * a\\b\\\\c", ("*", "*", "*"), b"a\\b\\\\c"),
])
def test_accepted_lines(line, fields, command):
    assert C.parse_line(line) == (timing(*fields), (SH, b"-c", command))


@pytest.mark.parametrize("line", [b"", b"   ", b"\t", b"# a comment", b"   # indented",
                                  b"#0 * * * * x"])
def test_skipped_lines(line):
    assert C.parse_line(line) is None


@pytest.mark.parametrize("line, why", [
    (b"0 0 1 * * x", "day of month"),
    (b"0 0 * 1 * x", "month"),
    (b"0 0 */2 * * x", "day of month"),
    (b"0 0 * jan * x", "month"),
    (b"@reboot x", "@reboot"),
    (b"@monthly x", "@monthly"),
    (b"@yearly x", "@yearly"),
    (b"@annually x", "@annually"),
    (b"@often x", "unknown special"),
    (b"@daily", "no command"),
    (b"* * * * * echo 50%", "'%'"),
    (b"* * * * * echo \\\\%", "'%'"),           # \\ is a pair: the % is unescaped
    (b"MAILTO=me", "environment"),
    (b"  PATH = /bin:/usr/bin", "environment"),
    (b"'A B'=c", "environment"),
    (b"* * * * *", "no command"),
    (b"* * * * * ", "no command"),
    (b"* * * *", "five time fields"),
    (b"60 * * * * x", "minute"),
    (b"* 24 * * * x", "hour"),
    (b"* * * * funday x", "day-of-week"),
    (b"*/0 * * * * x", "minute"),
    (b"* * * * * a\0b", "NUL"),
])
def test_refused_lines_say_why(line, why):
    with pytest.raises(C.Refused, match=why):
        C.parse_line(line)


def test_parse_crontab_numbers_lines():
    data = (b"# header\n\nMAILTO=x\n*/5 * * * * a\n0 0 1 * * b\n@weekly c\n@reboot d")
    accepted, refused = C.parse_crontab(data)
    assert [n for n, *_ in accepted] == [4, 6]
    assert [n for n, _ in refused] == [3, 5, 7]


@pytest.mark.parametrize("text", [b"a%b", b"%", b"%%", b"\\\\%", b"x\\y%z", b"\\\\\\\\%%"])
def test_cron_escape_inverts_unescape(text):
    assert C.cron_unescape(C.cron_escape(text)) == text


@pytest.mark.parametrize("text", [b"\\%", b"a\\\\\\%"])
def test_cron_escape_refuses_what_cron_cannot_yield(text):
    with pytest.raises(C.NotExpressible):
        C.cron_escape(text)


PRINTER = (b"import sys; sys.stdout.buffer.write(repr([a.encode('utf-8', 'surrogateescape') "
           b"for a in sys.argv[1:]]).encode())")
TRICKY = [b"a b", b"it's", b'"double"', b"", b"50%", b"%", b"%%x%", b"back\\slash",
          b"end\\", b"\\%", b"$HOME", b"`id`", b"*", b"tab\there", b"semi;colon",
          "h\u00e9llo \u2603".encode(), b"\xff\xfe", b"-n", b"'", b"\\'%"]


def run_argv(argv):
    return subprocess.run(list(argv), capture_output=True, timeout=30).stdout


def test_round_trip_runs_the_same_argv_and_is_stable():
    argv = (sys.executable.encode(), b"-c", PRINTER) + tuple(TRICKY)
    tim = timing("*/15", "8-18", "1-5")
    line = C.task_line(3, tim, argv)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line.startswith(b"0,15,30,45 8-18 * * 1-5 exec ")
    got_timing, got_argv = C.parse_line(line[:-1])
    assert got_timing == tim and got_argv[:2] == (SH, b"-c")
    assert run_argv(got_argv) == run_argv(argv) == repr(list(TRICKY)).encode()
    # a task made by import exports as its own text: importing again gives the same argv
    line2 = C.task_line(4, got_timing, got_argv)
    assert line2 == line
    assert C.parse_line(line2[:-1]) == (got_timing, got_argv)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=8).filter(lambda b: b"\0" not in b
                                                         and b"\n" not in b), max_size=4))
def test_round_trip_any_arguments(args):
    argv = (sys.executable.encode(), b"-c", PRINTER) + tuple(args)
    line = C.task_line(0, timing(), argv)
    _, got = C.parse_line(line[:-1])
    assert run_argv(got) == run_argv(argv)


def test_import_form_round_trip_is_exact():
    for text in (b"echo 'a b' \"c d\" | tr a-z A-Z > /dev/null", b"printf '50%%\\n'",
                 b"x\\\\%y", b"trailing blanks  "):
        argv = (SH, b"-c", text)
        line = C.task_line(1, timing("5", "4", "0"), argv)
        assert C.parse_line(line[:-1]) == (timing("5", "4", "0"), argv)


def test_unexportable_tasks_become_comments():
    tasks = [(0, Timing(0, 1, 1), (b"true",)), (1, timing(), (b"echo", b"a\nb")),
             (2, timing(), (b"true",)), (3, Timing(1, 0, 1), (b"x",))]
    data, skipped = C.export_lines(tasks)
    assert data == (b"# task 0 not exported: its minute field is empty (it never runs)\n"
                    b"# task 1 not exported: an argument holds a newline\n"
                    b"* * * * * exec true\n"
                    b"# task 3 not exported: its hour field is empty (it never runs)\n")
    assert [t for t, _ in skipped] == [0, 1, 3]
    # the comments are skipped by import, the rest comes back
    accepted, refused = C.parse_crontab(data)
    assert refused == [] and [n for n, *_ in accepted] == [3]


def test_argv0_with_a_dash_has_no_exec():
    assert C.command_text((b"-weird", b"a b")) == b"-weird 'a b'"
    assert C.command_text((b"ls", b"-la")) == b"exec ls -la"

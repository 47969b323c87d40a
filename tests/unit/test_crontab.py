"""crontab import/export (cassini/crontab.py): the line syntax, what is refused and why,
cron's % escape, and the round trip (exported lines imported again run the same argv)."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cassini import crontab as C
from saturnd.protocol import Timing
from saturnd.timing import PLAIN, timing_from_strings

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
    assert C.parse_line(line) == (timing(*fields), (SH, b"-c", command), PLAIN)


@pytest.mark.parametrize("line", [b"", b"   ", b"\t", b"# a comment", b"   # indented",
                                  b"#0 * * * * x"])
def test_skipped_lines(line):
    assert C.parse_line(line) is None


@pytest.mark.parametrize("line, why", [
    (b"@often x", "unknown special"),
    (b"@daily", "no command"),
    (b"@reboot", "no command"),
    (b"* * * * * echo 50%", "'%'"),
    (b"* * * * * echo \\\\%", "'%'"),           # \\ is a pair: the % is unescaped
    (b"* * * * *", "no command"),
    (b"* * * * * ", "no command"),
    (b"* * * *", "four fields"),
    (b"* * * * echo hello", "four time fields before the command 'echo'"),
    (b"* * *", "five time fields"),
    (b"60 * * * * x", "minute"),
    (b"* 24 * * * x", "hour"),
    (b"* * * * funday x", "day-of-week"),
    (b"* * * * 8 x", "out of range \\(0-7\\)"),
    (b"* * 0 * * x", "day-of-month.*out of range \\(1-31\\)"),
    (b"* * 32 * * x", "day-of-month"),
    (b"* * * 13 * x", "month.*out of range \\(1-12\\)"),
    (b"* * * foo * x", "unknown month name"),
    (b"*/0 * * * * x", "minute"),
    (b"* * * * * a\0b", "NUL"),
    (b"CRON_TZ=Nowhere/Land", "unknown time zone"),
    (b"SATURND_CATCHUP=yes", "0 or 1"),
    (b"=value", "empty name"),
    (b"* * * * * root /usr/bin/backup", "system crontab line"),
])
def test_refused_lines_say_why(line, why):
    with pytest.raises(C.Refused, match=why):
        C.parse_line(line)


def test_parse_crontab_numbers_lines():
    data = (b"# header\n\nMAILTO=x\n*/5 * * * * a\n0 0 1 * * b\n@often c\n@reboot d\n"
            b"* * * * x")
    accepted, refused = C.parse_crontab(data)
    assert [n for n, *_ in accepted] == [4, 5, 7]
    assert [n for n, _ in refused] == [6, 8]


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
    got_timing, got_argv, _ = C.parse_line(line[:-1])
    assert got_timing == tim and got_argv[:2] == (SH, b"-c")
    assert run_argv(got_argv) == run_argv(argv) == repr(list(TRICKY)).encode()
    # a task made by import exports as its own text: importing again gives the same argv
    line2 = C.task_line(4, got_timing, got_argv)
    assert line2 == line
    assert C.parse_line(line2[:-1]) == (got_timing, got_argv, PLAIN)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=8).filter(lambda b: b"\0" not in b
                                                         and b"\n" not in b), max_size=4))
def test_round_trip_any_arguments(args):
    argv = (sys.executable.encode(), b"-c", PRINTER) + tuple(args)
    line = C.task_line(0, timing(), argv)
    _, got, _ = C.parse_line(line[:-1])
    assert run_argv(got) == run_argv(argv)


def test_import_form_round_trip_is_exact():
    for text in (b"echo 'a b' \"c d\" | tr a-z A-Z > /dev/null", b"printf '50%%\\n'",
                 b"x\\\\%y", b"trailing blanks  "):
        argv = (SH, b"-c", text)
        line = C.task_line(1, timing("5", "4", "0"), argv)
        assert C.parse_line(line[:-1]) == (timing("5", "4", "0"), argv, PLAIN)


def test_unexportable_tasks_become_comments():
    tasks = [(0, Timing(0, 1, 1), (b"true",)), (1, timing(), (b"echo", b"a\nb")),
             (2, timing(), (b"true",)), (3, Timing(1, 0, 1), (b"x",))]
    data, skipped, _ = C.export_lines(tasks)
    assert data == (b"# task 0 not exported: its minute field is empty (it never runs)\n"
                    b"# task 1 not exported: an argument holds a newline\n"
                    b"* * * * * exec true\n"
                    b"# task 3 not exported: its hour field is empty (it never runs)\n")
    assert [t for t, _ in skipped] == [0, 1, 3]
    # the comments are skipped by import, the rest comes back
    accepted, refused = C.parse_crontab(data)
    assert refused == [] and [n for n, *_ in accepted] == [3]


def test_argv0_with_a_dash_is_run_by_the_shell():
    """Neither "exec -weird" (an option of exec) nor a text starting with "-" (an option of
    sh: "Illegal option -w"): an empty quoted string before the word."""
    assert C.command_text((b"-weird", b"a b")) == b"''-weird 'a b'"
    assert C.command_text((b"ls", b"-la")) == b"exec ls -la"
    line = C.task_line(0, timing("*", "*", "0"), (b"-weird",))
    assert line == b"* * * * 0 ''-weird\n"
    _, argv, _ = C.parse_line(line[:-1])
    res = subprocess.run(list(argv), capture_output=True, timeout=30)
    assert b"-weird" in res.stderr and b"llegal option" not in res.stderr   # sh ran it


def test_crlf_line_ends_are_stripped():
    accepted, refused = C.parse_crontab(b"A=1\r\n0 1 * * * echo hi\r\n@reboot x\r\n")
    assert refused == []
    assert [(argv, cron.environ()) for _, _, argv, cron in accepted] == [
        ((SH, b"-c", b"echo hi"), {b"A": b"1"}), ((SH, b"-c", b"x"), {b"A": b"1"})]


@pytest.mark.parametrize("line, same_as", [
    (b"*/1 * * * * x", b"* * * * * x"),
    (b"0 0 1-31 * * x", b"0 0 * * * x"),
    (b"0 0 * 1-12 * x", b"0 0 * * * x"),
    (b"0 0 */1 jan-dec 0-7 x", b"0 0 * * * x"),
    (b"@monthly x", b"0 0 1 * * x"),
    (b"@yearly x", b"0 0 1 1 * x"),
    (b"@annually x", b"0 0 1 jan * x"),
    (b"@weekly x", b"0 0 * * sun x"),
])
def test_every_value_spellings(line, same_as):
    assert C.parse_line(line) == C.parse_line(same_as)
    assert C.parse_line(b"0 0 1-31 * 1 x")[2].plain       # every day of month: weekday only


def test_system_crontab_lines_are_refused_with_a_hint():
    accepted, refused = C.parse_crontab(b"17 * * * * nobody cd / && run-parts x\n",
                                        "/etc/crontab")
    assert accepted == [] and "remove the user field" in refused[0][1]
    accepted, refused = C.parse_crontab(b"17 * * * * nobody x\n", "/etc/cron.d/job")
    assert accepted == [] and "user field 'nobody'" in refused[0][1]
    # in a user's crontab, "nobody" may be a command
    accepted, refused = C.parse_crontab(b"17 * * * * nobody x\n", "mine")
    assert refused == [] and accepted[0][2] == (SH, b"-c", b"nobody x")


def test_environment_lines_apply_to_the_lines_after_them():
    data = (b"SHELL=/bin/bash\nPATH = /a:/b\n'Q N'=\" spaced \" \n0 * * * * one\n"
            b"PATH=/c\nMAILTO=\"\"\nCRON_TZ=Europe/Paris\nSATURND_CATCHUP=1\n@reboot two\n"
            b"CRON_TZ=\nSATURND_CATCHUP=0\n1 * * * * three\n")
    accepted, refused = C.parse_crontab(data)
    assert refused == []
    (_, _, argv1, c1), (_, t2, argv2, c2), (_, _, _, c3) = accepted
    assert argv1 == (b"/bin/bash", b"-c", b"one") and argv2[0] == b"/bin/bash"
    assert c1.env == ((b"SHELL", b"/bin/bash"), (b"PATH", b"/a:/b"), (b"Q N", b" spaced "))
    assert c2.environ() == {b"SHELL": b"/bin/bash", b"PATH": b"/c", b"Q N": b" spaced ",
                            b"MAILTO": b""}
    assert (c1.tz, c2.tz, c3.tz) == (None, "Europe/Paris", None)
    assert (c1.catchup, c2.catchup, c3.catchup) == (False, True, False)
    assert c2.reboot and t2 == Timing(0, 0, 0) and not c1.reboot


def test_export_import_export_is_the_same_text():
    data = (b"# mine\nSHELL=/bin/bash\nPATH=/usr/local/bin:/usr/bin:/bin\nMAILTO=\"\"\n"
            b"HELLO=' two words '\n*/5 9-17 * * mon-fri echo a\n30 2 1,15 * * echo b\n"
            b"0 0 1 1 * echo c\n@reboot echo d\nCRON_TZ=America/New_York\n"
            b"SATURND_CATCHUP=1\n0 12 * jun-aug sat echo e\nPATH=/bin\n@monthly echo f\n")
    accepted, refused = C.parse_crontab(data)
    assert refused == [] and len(accepted) == 6

    def export(accepted):
        tasks = [(i, t, argv, cron.attributes()) for i, (_, t, argv, cron) in enumerate(accepted)]
        text, skipped, notes = C.export_lines(tasks)
        assert skipped == [] and notes == []
        return text
    first = export(accepted)
    again, refused = C.parse_crontab(first)
    assert refused == []
    assert [a[1:] for a in again] == [a[1:] for a in accepted]     # the same tasks
    assert export(again) == first
    assert first.startswith(b"SHELL=/bin/bash\nPATH=/usr/local/bin:/usr/bin:/bin\nMAILTO=\n"
                            b"HELLO=' two words '\n0,5,10,15,20,25,30,35,40,45,50,55 9-17 * * 1-5 "
                            b"echo a\n30 2 1,15 * * echo b\n")
    assert b"@reboot echo d\nCRON_TZ=America/New_York\nSATURND_CATCHUP=1\n0 12 * 6-8 6 echo e\n" \
        in first


def test_export_says_when_a_variable_cannot_be_unset():
    tasks = [(0, timing(), (SH, b"-c", b"a"), [(b"env", b"X=1")]),
             (1, timing(), (SH, b"-c", b"b"), [])]
    text, skipped, notes = C.export_lines(tasks)
    assert text == b"X=1\n* * * * * a\n* * * * * b\n" and skipped == []
    assert notes and notes[0][0] == 1 and "cannot unset" in notes[0][1]


def test_export_asks_list_when_the_daemon_has_no_long_list():
    from saturnd import protocol as P
    asked, out, err = [], [], []

    def talk(request, opcode):
        asked.append(opcode)
        if opcode == P.LONG_LIST:
            raise ValueError("saturnd could not honour the request (empty reply)")
        return P.Reply(tasks=[(0, timing("5"), (SH, b"-c", b"x"))])
    assert C.export_crontab(talk, out.append, err.append) == 0
    assert asked == [P.LONG_LIST, P.LIST] and out == [b"5 * * * * x\n"] and err == []

    def broken(request, opcode):
        asked.append(opcode)
        raise ValueError("no reply from saturnd for 10 s")
    asked.clear()
    with pytest.raises(ValueError, match="no reply"):
        C.export_crontab(broken, out.append, err.append)
    assert asked == [P.LONG_LIST]          # not asked twice: the daemon is not answering


def test_a_user_name_that_is_a_command_is_not_a_user_field(monkeypatch):
    monkeypatch.setenv("USER", "git")
    accepted, refused = C.parse_crontab(b"*/5 * * * * git -C /srv/repo pull\n", "mine")
    assert refused == [] and accepted[0][2] == (SH, b"-c", b"git -C /srv/repo pull")

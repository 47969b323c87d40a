#!/usr/bin/env python3
"""Writes the shipped golden cases (the folders beside this file) from the hand-written
table below.

The expected bytes come from the spec (``docs/protocol.md`` and
``docs/cassini.md``), written here by hand with a tiny encoder of its own (plain
``struct``; it deliberately does not import the project's protocol or timing
modules, and nothing here ever runs our cassini).  Re-run after editing the
table: ``python -m grader.cases.make_cases`` (it rewrites every case folder; the names
starting with ``_`` or ``.`` -- this package's own files -- are left alone).
See ``README.md`` beside this file for the meaning of each file.
"""

import calendar
import os
import shutil
import struct
import sys

CASES = os.path.dirname(os.path.abspath(__file__))


# --- a minimal, independent encoder -------------------------------------------------
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def i64(v): return struct.pack(">q", v)
def string(b): return u32(len(b)) + b
def cmdline(*argv): return u32(len(argv)) + b"".join(string(a) for a in argv)
def bits(*values): return sum(1 << v for v in set(values))
def timing(minutes, hours, days): return u64(minutes) + u32(hours) + bytes([days])


ALL_MIN = bits(*range(60))
ALL_HOURS = bits(*range(24))
ALL_DAYS = bits(*range(7))
EVERY = timing(ALL_MIN, ALL_HOURS, ALL_DAYS)
MAX64 = 2**64 - 1

LS, CR, RM, TX, SO, SE, TM = b"LS", b"CR", b"RM", b"TX", b"SO", b"SE", b"TM"
CX, DL, ST, EX, RT = u16(0x43FF), b"DL", b"ST", u16(0x48ED), b"RT"
OK, ER, NF, NR = b"OK", b"ER", b"NF", b"NR"
SF, PA, UP, SS, HI, NX = b"SF", b"PA", b"UP", b"SS", b"HI", b"NX"


def task(taskid, tim, *argv):
    return u64(taskid) + tim + cmdline(*argv)


def list_reply(*tasks):
    return OK + u32(len(tasks)) + b"".join(tasks)


def runs_reply(*runs):
    return OK + u32(len(runs)) + b"".join(i64(t) + u16(c) for t, c in runs)


def utc(y, mo, d, h, mi, s=0):
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


USAGE = b"""\
   usage: cassini [OPTIONS] -l -> list all tasks
      or: cassini [OPTIONS]    -> same
      or: cassini [OPTIONS] -q -> terminate the daemon
      or: cassini [OPTIONS] -c [-m MINUTES] [-H HOURS] [-d DAYSOFWEEK] COMMAND_NAME [ARG_1] ... [ARG_N]
          -> add a new task and print its TASKID
             format & semantics of the "timing" fields defined here:
             https://pubs.opengroup.org/onlinepubs/9699919799/utilities/crontab.html
             default value for each field is "*"
      or: cassini [OPTIONS] -r TASKID -> remove a task
      or: cassini [OPTIONS] -x TASKID -> get info (time + exit code) on all the past runs of a task
      or: cassini [OPTIONS] -o TASKID -> get the standard output of the last run of a task
      or: cassini [OPTIONS] -e TASKID -> get the standard error
      or: cassini [OPTIONS] -s -> remove every task and print how many were removed
      or: cassini [OPTIONS] -t TASKID [-m MINUTES] [-H HOURS] [-d DAYSOFWEEK] -> give a task a new timing
      or: cassini [OPTIONS] -z TASKID COMMAND_NAME [ARG_1] ... [ARG_N] -> give a task a new command line
      or: cassini [OPTIONS] -i TASKID -> run a task once, now
      or: cassini [OPTIONS] -w -> let the next new task take the id after the highest existing one, and print it
      or: cassini [OPTIONS] -R TASKID -> forget the past runs and the last outputs of a task
      or: cassini [OPTIONS] -C TASKID -> copy a task (same timing and command line) and print the new TASKID
      or: cassini [OPTIONS] -E TASKID -> get the error log (time + message) of a task
      or: cassini [OPTIONS] -D -> get the daemon's error log (time + message)
      or: cassini [OPTIONS] -n TASKID [-N COUNT] -> print the next COUNT start times of a task (default 5)
      or: cassini [OPTIONS] -I FILE [-P] -> create one task per line of a crontab FILE ("-": stdin); nothing unless every line is accepted, or with -P the accepted ones
      or: cassini [OPTIONS] -X -> print every task as a crontab line
      or: cassini [OPTIONS] -Z TASKID -> pause a task (kept, not run until resumed)
      or: cassini [OPTIONS] -U TASKID -> resume a paused task
      or: cassini [OPTIONS] -Y TASKID [-K COUNT | -F RUN] -> print the kept runs of a task with their outputs (the last COUNT, or run number RUN)
      or: cassini [OPTIONS] -S -> print the daemon's status
      or: cassini -V -> print cassini's version (also --version)
      or: cassini [OPTIONS] -L -> list all tasks with every field (day of month, month, @reboot, catch-up, environment, zone)
          with -c or -t: -j DAYSOFMONTH, -M MONTHS (1-12 or jan-dec), -a (catch up a run missed while saturnd was stopped),
          -y NAME=VALUE (environment of the command, repeatable; CRON_TZ=ZONE: the time zone of its timing),
          -B (run once each time saturnd starts, instead of -m -H -d -j -M)
      or: cassini -h -> display this message

   options:
     -p PIPES_DIR -> look for the pipes in PIPES_DIR (default: /tmp/<USERNAME>/saturnd/pipes)
"""

CASES_TABLE: list[tuple] = []


def case(name, args, request=b"", reply=b"", stdout=b"", exitcode=0, tag="reference",
         env=(), markers=()):
    CASES_TABLE.append(dict(name=name, args=args, request=request, reply=reply,
                            stdout=stdout, exitcode=exitcode, tag=tag, env=env,
                            markers=markers))


def usage_error(name, args, tag="reference", env=()):
    """A command line that must send nothing, print nothing on stdout and exit 1."""
    case(name, args, exitcode=1, tag=tag, env=env)


# --- LIST ------------------------------------------------------------------------------
case("001-list-empty", [b"-l"], LS, list_reply())
case("002-list-no-option", [], LS, list_reply())
case("003-list-one-task", [b"-l"], LS, list_reply(task(0, EVERY, b"echo", b"hello")),
     b"0: * * * echo hello\n")
case("004-list-spec-example", [b"-l"], LS,
     list_reply(task(4, timing(bits(4, 10), ALL_HOURS, bits(1, 3)), b"ls", b"NONEXISTENT")),
     b"4: 4,10 * 1,3 ls NONEXISTENT\n")
thousand = [task(i, timing(bits(i % 60), bits(i % 24), ALL_DAYS), b"echo", b"task%d" % i)
            for i in range(1000)]
case("005-list-1000-tasks", [b"-l"], LS, list_reply(*thousand),
     b"".join(b"%d: %d %d * echo task%d\n" % (i, i % 60, i % 24, i) for i in range(1000)))
case("006-list-runs-and-singles", [b"-l"], LS,
     list_reply(task(1, timing(bits(*range(4, 11), 45), bits(1, 3, 5, 7), ALL_DAYS), b"true")),
     b"1: 4-10,45 1,3,5,7 * true\n")
case("007-list-empty-fields", [b"-l"], LS,
     list_reply(task(7, timing(0, ALL_HOURS, ALL_DAYS), b"true"),
                task(8, timing(0, 0, 0), b"false")),
     b"7:  * * true\n8:    false\n")
case("008-list-bounds", [b"-l"], LS,
     list_reply(task(0, timing(bits(59), bits(23), bits(6)), b"a"),
                task(1, timing(bits(0), bits(0), bits(0)), b"b")),
     b"0: 59 23 6 a\n1: 0 0 0 b\n")
case("009-list-almost-full-ranges", [b"-l"], LS,
     list_reply(task(3, timing(ALL_MIN & ~bits(30), bits(*range(23)), bits(*range(1, 7))),
                     b"x")),
     b"3: 0-29,31-59 0-22 1-6 x\n")
case("010-list-args-space-utf8-empty", [b"-l"], LS,
     list_reply(task(2, EVERY, b"printf", b"a b", b"", "h\u00e9llo \u2603".encode(), b"z")),
     b"2: * * * printf a b  " + "h\u00e9llo \u2603".encode() + b" z\n")
case("011-list-raw-arg-bytes", [b"-l"], LS,
     list_reply(task(5, EVERY, b"echo", b"\xff\xfe\t\x01")),
     b"5: * * * echo \xff\xfe\t\x01\n")
case("012-list-max-id", [b"-l"], LS, list_reply(task(MAX64, EVERY, b"x")),
     b"18446744073709551615: * * * x\n")
case("013-list-pairs", [b"-l"], LS,
     list_reply(task(9, timing(bits(0, 1), bits(0, 2), bits(0, 1, 2, 3, 4, 5)), b"y")),
     b"9: 0-1 0,2 0-5 y\n")

# --- CREATE ----------------------------------------------------------------------------
case("020-create-defaults", [b"-c", b"echo", b"hello"],
     CR + EVERY + cmdline(b"echo", b"hello"), OK + u64(0), b"0\n")
worked = bytes.fromhex("4352 0000 0000 4000 0001 0003 ff00 3e00"
                       "0000 0200 0000 0962 6163 6b75 702e 7368"
                       "0000 0006 2d2d 6661 7374")
case("021-create-worked-example",
     [b"-c", b"-m", b"0,30", b"-H", b"8-17", b"-d", b"1-5", b"--", b"backup.sh", b"--fast"],
     worked, bytes.fromhex("4f4b 0000 0000 0000 0007"), b"7\n")
case("022-create-spec-example", [b"-c", b"-d", b"1,3", b"-m", b"4,10", b"ls", b"NONEXISTENT"],
     CR + timing(bits(4, 10), ALL_HOURS, bits(1, 3)) + cmdline(b"ls", b"NONEXISTENT"),
     OK + u64(4), b"4\n")
case("023-create-attached-args", [b"-c", b"-m5", b"-H0", b"-d6", b"true"],
     CR + timing(bits(5), bits(0), bits(6)) + cmdline(b"true"), OK + u64(1), b"1\n")
case("024-create-bounds", [b"-c", b"-m", b"59", b"-H", b"23", b"-d", b"0", b"true"],
     CR + timing(bits(59), bits(23), bits(0)) + cmdline(b"true"), OK + u64(2), b"2\n")
case("025-create-lists-and-ranges",
     [b"-c", b"-m", b"0-4,10,58-59", b"-H", b"0-23", b"-d", b"0-6", b"true"],
     CR + timing(bits(0, 1, 2, 3, 4, 10, 58, 59), ALL_HOURS, ALL_DAYS) + cmdline(b"true"),
     OK + u64(3), b"3\n")
case("026-create-explicit-stars", [b"-c", b"-m", b"*", b"-H", b"*", b"-d", b"*", b"true"],
     CR + EVERY + cmdline(b"true"), OK + u64(3), b"3\n")
case("027-create-args-space-utf8-empty",
     [b"-c", b"--", b"printf", b"%s|", b"a b", b"", "h\u00e9llo".encode()],
     CR + EVERY + cmdline(b"printf", b"%s|", b"a b", b"", "h\u00e9llo".encode()),
     OK + u64(11), b"11\n")
case("028-permutation-c-ls-l-is-list", [b"-c", b"ls", b"-l"], LS, list_reply())
case("029-dashdash-c-ls-l-is-create", [b"-c", b"--", b"ls", b"-l"],
     CR + EVERY + cmdline(b"ls", b"-l"), OK + u64(5), b"5\n")
case("030-posixly-correct-stops-at-operand", [b"-c", b"ls", b"-l"],
     CR + EVERY + cmdline(b"ls", b"-l"), OK + u64(6), b"6\n", env=[b"POSIXLY_CORRECT=1"])
case("031-permutation-options-after-command", [b"-c", b"echo", b"-m", b"5", b"hi"],
     CR + timing(bits(5), ALL_HOURS, ALL_DAYS) + cmdline(b"echo", b"hi"), OK + u64(0), b"0\n")
case("032-create-max-id", [b"-c", b"x"], CR + EVERY + cmdline(b"x"), OK + u64(MAX64),
     b"18446744073709551615\n")
case("033-create-lone-dash-is-operand", [b"-c", b"-", b"x"],
     CR + EVERY + cmdline(b"-", b"x"), OK + u64(0), b"0\n")
case("034-cluster-with-attached-arg", [b"-cm5", b"ls"],
     CR + timing(bits(5), ALL_HOURS, ALL_DAYS) + cmdline(b"ls"), OK + u64(1), b"1\n")
case("035-cluster-last-op-wins", [b"-cl", b"ls"], LS, list_reply())
case("036-m-takes-dash-l-as-argument", [b"-m", b"-l"], LS, list_reply())
case("037-list-ignores-bad-timing", [b"-m", b"99", b"-l"], LS, list_reply())
case("038-last-operation-wins", [b"-r", b"3", b"-x", b"4"], TX + u64(4), runs_reply())
case("039-operand-ignored-by-list", [b"-l", b"foo"], LS, list_reply())
case("040-posixly-correct-options-after-operand-are-operands", [b"foo", b"-q"], LS,
     list_reply(), env=[b"POSIXLY_CORRECT=1"])
case("041-attached-pipes-dir", [b"-p{pipes}", b"-l"], LS, list_reply())
usage_error("042-create-missing-command", [b"-c"])
usage_error("043-create-missing-command-after-dashdash", [b"-c", b"-m", b"5", b"--"])
usage_error("044-create-minute-60", [b"-c", b"-m", b"60", b"ls"])
usage_error("045-create-hour-24", [b"-c", b"-H", b"24", b"ls"])
usage_error("046-create-day-8", [b"-c", b"-d", b"8", b"ls"])
usage_error("047-create-empty-field", [b"-c", b"-m", b"", b"ls"])
usage_error("048-create-backwards-range", [b"-c", b"-H", b"5-3", b"ls"])
usage_error("049-create-unknown-option", [b"-c", b"-k", b"ls"])
usage_error("050-create-missing-option-argument", [b"-c", b"ls", b"-m"])
usage_error("051-create-star-in-list", [b"-c", b"-m", b"1,*", b"ls"])
# beyond the reference (deviation: the reference reads these differently or not at all)
case("052-create-step-star", [b"-c", b"-m", b"*/15", b"ls"],
     CR + timing(bits(0, 15, 30, 45), ALL_HOURS, ALL_DAYS) + cmdline(b"ls"), OK + u64(0),
     b"0\n", tag="deviation")
case("053-create-step-range", [b"-c", b"-H", b"8-18/2", b"ls"],
     CR + timing(ALL_MIN, bits(8, 10, 12, 14, 16, 18), ALL_DAYS) + cmdline(b"ls"),
     OK + u64(0), b"0\n", tag="deviation")
case("054-create-day-names", [b"-c", b"-d", b"mon-FRI", b"ls"],
     CR + timing(ALL_MIN, ALL_HOURS, bits(1, 2, 3, 4, 5)) + cmdline(b"ls"), OK + u64(0),
     b"0\n", tag="deviation")
case("055-create-day-7-is-sunday", [b"-c", b"-d", b"5-7", b"ls"],
     CR + timing(ALL_MIN, ALL_HOURS, bits(5, 6, 0)) + cmdline(b"ls"), OK + u64(0), b"0\n",
     tag="deviation")
usage_error("056-create-trailing-garbage", [b"-c", b"-m", b"5x", b"ls"], tag="deviation")
usage_error("057-create-step-zero", [b"-c", b"-m", b"*/0", b"ls"], tag="deviation")
usage_error("058-create-empty-command-name", [b"-c", b""], tag="deviation")

# --- TASKID forms (REMOVE) -------------------------------------------------------------
case("060-remove-ok", [b"-r", b"3"], RM + u64(3), OK)
case("061-remove-not-found", [b"-r", b"60"], RM + u64(60), ER + NF, exitcode=1)
case("062-taskid-leading-space", [b"-r", b" 7"], RM + u64(7), OK)
case("063-taskid-plus-sign", [b"-r", b"+7"], RM + u64(7), OK)
case("064-taskid-minus-one-wraps", [b"-r", b"-1"], RM + u64(MAX64), OK)
case("065-taskid-overflow-saturates", [b"-r", b"99999999999999999999999"], RM + u64(MAX64), OK)
case("066-taskid-leading-tab-and-zeros", [b"-r", b"\t0012"], RM + u64(12), OK)
usage_error("067-taskid-trailing-garbage", [b"-r", b"7x"])
usage_error("068-taskid-empty", [b"-r", b""])
usage_error("069-taskid-hex", [b"-x", b"0x10"])
usage_error("070-taskid-missing", [b"-r"])
usage_error("071-taskid-trailing-space", [b"-o", b"7 "])
usage_error("072-taskid-sign-only", [b"-e", b"-"])
usage_error("073-taskid-bad-stops-before-help", [b"-r", b"x", b"-h"])

# --- TIMES_EXITCODES -------------------------------------------------------------------
case("080-times-none", [b"-x", b"2"], TX + u64(2), runs_reply())
case("081-times-worked-example-paris", [b"-x", b"1"], TX + u64(1),
     bytes.fromhex("4f4b 0000 0002 0000 0000 6956 3790 0000"
                   "0000 0000 6957 8910 ffff"),
     b"2026-01-01 10:00:00 0\n2026-01-02 10:00:00 65535\n", env=[b"TZ=Europe/Paris"])
case("082-times-across-dst-paris", [b"-x", b"3"], TX + u64(3),
     runs_reply((utc(2026, 3, 29, 0, 30), 0), (utc(2026, 3, 29, 1, 30), 1),
                (utc(2026, 10, 25, 0, 30), 2), (utc(2026, 10, 25, 1, 30), 255)),
     b"2026-03-29 01:30:00 0\n2026-03-29 03:30:00 1\n"
     b"2026-10-25 02:30:00 2\n2026-10-25 02:30:00 255\n", env=[b"TZ=Europe/Paris"])
case("083-times-utc-exitcode-65535", [b"-x", b"0"], TX + u64(0),
     runs_reply((utc(2026, 1, 1, 9, 0), 0xFFFF), (utc(2026, 1, 1, 9, 1, 7), 127)),
     b"2026-01-01 09:00:00 65535\n2026-01-01 09:01:07 127\n")
case("084-times-not-found", [b"-x", b"9"], TX + u64(9), ER + NF, exitcode=1)
case("085-times-before-epoch", [b"-x", b"0"], TX + u64(0), runs_reply((-1, 1)),
     b"1969-12-31 23:59:59 1\n")

# --- STDOUT / STDERR -------------------------------------------------------------------
case("090-stdout-ok", [b"-o", b"1"], SO + u64(1), OK + string(b"hello\n"), b"hello\n")
case("091-stdout-empty", [b"-o", b"1"], SO + u64(1), OK + string(b""), b"")
mib = bytes((i * 7 + i // 256) % 256 for i in range(1 << 20))
# NUL bytes in an output go beyond what the course's reference fixes (a C client
# printing with printf("%s") stops at the first one): tag "strict", scored apart
case("092-stdout-1mib", [b"-o", b"2"], SO + u64(2), OK + string(mib), mib, tag="strict")
binary = bytes(range(256)) * 3
case("093-stdout-binary", [b"-o", b"3"], SO + u64(3), OK + string(binary), binary,
     tag="strict")
case("094-stdout-not-found", [b"-o", b"60"], SO + u64(60), ER + NF, exitcode=1)
case("095-stdout-never-run", [b"-o", b"1"], SO + u64(1), ER + NR, exitcode=1)
case("096-stderr-ok", [b"-e", b"4"], SE + u64(4), OK + string(b"oops\x00\n"), b"oops\x00\n",
     tag="strict")
case("097-stderr-never-run", [b"-e", b"4"], SE + u64(4), ER + NR, exitcode=1)
case("098-stderr-not-found", [b"-e", b"5"], SE + u64(5), ER + NF, exitcode=1)

# --- TERMINATE -------------------------------------------------------------------------
case("100-terminate", [b"-q"], TM, OK)

# --- extensions ------------------------------------------------------------------------
case("110-delete-all", [b"-s"], DL, OK + u32(3), b"3\n", tag="extension")
case("111-delete-all-none", [b"-s"], DL, OK + u32(0), b"0\n", tag="extension")
case("112-sw-time", [b"-t", b"2", b"-m", b"0", b"-H", b"12", b"-d", b"1-5"],
     ST + u64(2) + timing(bits(0), bits(12), bits(1, 2, 3, 4, 5)), OK, tag="extension")
# -t with fields left out keeps them (SET_FIELDS, this project's own): the seed project's
# cassini reset them to "*" with SW_TIME, hence "deviation" (not run against other clients)
case("113-sw-time-defaults", [b"-t", b"2"], SF + u64(2) + b"\x00" + EVERY, OK, tag="deviation")
case("114-sw-time-not-found", [b"-t", b"8", b"-m", b"1"],
     SF + u64(8) + b"\x01" + timing(bits(1), ALL_HOURS, ALL_DAYS), ER + NF, exitcode=1,
     tag="deviation")
usage_error("115-sw-time-bad-hour", [b"-t", b"2", b"-H", b"25"], tag="extension")
case("116-set-cmd", [b"-z", b"4", b"echo", b"new cmd"], CX + u64(4) + cmdline(b"echo", b"new cmd"),
     OK, tag="extension")
case("117-set-cmd-dashdash", [b"-z", b"4", b"--", b"ls", b"-la"],
     CX + u64(4) + cmdline(b"ls", b"-la"), OK, tag="extension")
case("118-set-cmd-not-found", [b"-z", b"40", b"true"], CX + u64(40) + cmdline(b"true"),
     ER + NF, exitcode=1, tag="extension")
usage_error("119-set-cmd-missing-command", [b"-z", b"4"], tag="extension")
case("120-exec-task", [b"-i", b"5"], EX + u64(5), OK, tag="extension")
case("121-exec-task-not-found", [b"-i", b"6"], EX + u64(6), ER + NF, exitcode=1,
     tag="extension")
case("122-reset-taskmax", [b"-w"], RT, OK + u64(8), b"8\n", tag="extension")
case("123-reset-taskmax-empty", [b"-w"], RT, OK + u64(0), b"0\n", tag="extension")
case("124-ext-taskid-minus-one", [b"-i", b"-1"], EX + u64(MAX64), OK, tag="extension")
usage_error("125-ext-bad-taskid", [b"-t", b"abc"], tag="extension")

# --- help and usage ------------------------------------------------------------------
# the text carries the extension lines, so a reference client prints another text
case("130-help", [b"-h"], stdout=USAGE, tag="extension")
case("131-help-stops-option-parsing", [b"-h", b"-k"], stdout=USAGE, tag="extension")
case("132-help-after-an-operation", [b"-l", b"-h"], stdout=USAGE, tag="extension")
case("133-help-in-a-cluster", [b"-lh"], stdout=USAGE, tag="extension")
usage_error("134-bad-option-before-help", [b"-k", b"-h"])
usage_error("135-unknown-option", [b"-k"])
usage_error("136-pipes-dir-missing-argument", [b"-l", b"-p"])
usage_error("137-colon-is-not-an-option", [b"-:"])

# --- talking to the daemon -------------------------------------------------------------
case("150-empty-reply", [b"-l"], LS, b"", exitcode=1)
case("151-reply-cut-short", [b"-l"], LS,
     list_reply(task(0, EVERY, b"echo", b"hello"))[:-3], exitcode=1, tag="deviation")
case("152-reply-pipe-kept-open", [b"-l"], LS, list_reply(task(0, EVERY, b"true")),
     b"0: * * * true\n", tag="deviation", markers=["keep-open"])
case("153-unknown-reptype", [b"-r", b"1"], RM + u64(1), b"XX", exitcode=1, tag="deviation")
case("154-no-daemon", [b"-l"], exitcode=1, tag="deviation", env=[b"CASSINI_TIMEOUT=0.3"],
     markers=["no-daemon"])
case("155-default-pipes-dir", [b"-l"], LS, list_reply(task(1, EVERY, b"x")),
     b"1: * * * x\n", env=[b"USER={user}"], markers=["default-pipes"])
case("156-unknown-error-code", [b"-r", b"1"], RM + u64(1), ER + b"ZZ", exitcode=1,
     tag="deviation")
case("157-output-cut-short", [b"-o", b"1"], SO + u64(1), OK + u32(100) + b"0123456789",
     exitcode=1, tag="deviation")
case("158-big-output-pipe-kept-open", [b"-o", b"2"], SO + u64(2), OK + string(mib[:300000]),
     mib[:300000],
     tag="deviation", markers=["keep-open"])
case("159-bytes-after-the-reply-ignored", [b"-c", b"x"], CR + EVERY + cmdline(b"x"),
     OK + u64(5) + b"junk", b"5\n", tag="deviation")
case("160-error-reply-cut-short", [b"-r", b"1"], RM + u64(1), ER + b"N", exitcode=1,
     tag="deviation")

# --- this project's own requests: reset history, clone, error log ---------------------
# RH = 0x5248 TASKID -> OK | ER NF;  CL = 0x434c TASKID -> OK TASKID | ER NF;
# EL = 0x454c SCOPE(uint8: 0 daemon, 1 task) TASKID -> OK NBENTRIES (TIME int64, MESSAGE)*
RH, CL, EL = b"RH", b"CL", b"EL"


def el_reply(*entries):
    return OK + u32(len(entries)) + b"".join(i64(t) + string(m) for t, m in entries)


case("170-reset-history", [b"-R", b"3"], RH + u64(3), OK, tag="extension")
case("171-reset-history-missing", [b"-R", b"9"], RH + u64(9), ER + NF, exitcode=1,
     tag="extension")
usage_error("172-reset-history-bad-taskid", [b"-R", b"3x"], tag="extension")
usage_error("173-reset-history-missing-taskid", [b"-R"], tag="extension")
case("174-clone", [b"-C", b"2"], CL + u64(2), OK + u64(7), b"7\n", tag="extension")
case("175-clone-missing", [b"-C", b"9"], CL + u64(9), ER + NF, exitcode=1, tag="extension")
case("176-clone-big-ids", [b"-C", b"-1"], CL + u64(MAX64), OK + u64(MAX64 - 1),
     b"%d\n" % (MAX64 - 1), tag="extension")
case("177-error-log-task-empty", [b"-E", b"4"], EL + b"\x01" + u64(4), el_reply(),
     tag="extension")
case("178-error-log-task", [b"-E", b"4"], EL + b"\x01" + u64(4),
     el_reply((utc(2026, 1, 1, 0, 1), b"cannot start 'nope': No such file or directory"),
              (utc(2026, 1, 2, 13, 5, 7), b"run of 2026-01-02 13:05 killed at shutdown")),
     b"2026-01-01 00:01:00 cannot start 'nope': No such file or directory\n"
     b"2026-01-02 13:05:07 run of 2026-01-02 13:05 killed at shutdown\n", tag="extension")
case("179-error-log-task-missing", [b"-E", b"9"], EL + b"\x01" + u64(9), ER + NF,
     exitcode=1, tag="extension")
case("180-error-log-daemon", [b"-D"], EL + b"\x00" + u64(0),
     el_reply((utc(2026, 3, 29, 1, 0), b"clock moved forward by 61 min")),
     b"2026-03-29 03:00:00 clock moved forward by 61 min\n", env=[b"TZ=Europe/Paris"],
     tag="extension")
case("181-error-log-daemon-empty", [b"-D"], EL + b"\x00" + u64(0), el_reply(),
     tag="extension")
case("182-error-log-last-option-wins", [b"-E", b"5", b"-D"], EL + b"\x00" + u64(0),
     el_reply(), tag="extension")
case("183-error-log-daemon-then-task", [b"-D", b"-E", b"5"], EL + b"\x01" + u64(5),
     el_reply(), tag="extension")
case("184-error-log-newline-in-message", [b"-D"], EL + b"\x00" + u64(0),
     el_reply((0, b"a\nb\rc")), b"1970-01-01 00:00:00 a\\nb\\rc\n", tag="extension")
case("185-error-log-reply-cut-short", [b"-D"], EL + b"\x00" + u64(0),
     OK + u32(2) + i64(0) + string(b"one"), exitcode=1, tag="extension")
usage_error("186-error-log-bad-taskid", [b"-E", b""], tag="extension")
case("187-error-log-unknown-error-code", [b"-E", b"1"], EL + b"\x01" + u64(1), ER + b"ZZ",
     exitcode=1, tag="extension")
case("188-clone-then-list-last-wins", [b"-C", b"1", b"-l"], LS, list_reply(), tag="extension")


# --- this project's own requests: next runs (NX), crontab import/export (190-209) ---------
NX = b"NX"


def times_reply(*times):
    return OK + u32(len(times)) + b"".join(i64(t) for t in times)


case("190-next-runs", [b"-n", b"3"], NX + u64(3) + u32(5),
     times_reply(utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 1, 5)),
     b"2026-01-01 00:05:00\n2026-01-01 01:05:00\n", tag="extension")
case("191-next-runs-count", [b"-n", b"0", b"-N", b"2"], NX + u64(0) + u32(2),
     times_reply(utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)),
     b"2026-03-29 01:00:00\n2026-03-30 00:30:00\n", tag="extension")
case("192-next-runs-local-time", [b"-N2", b"-n0"], NX + u64(0) + u32(2),
     times_reply(utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)),
     b"2026-03-29 03:00:00\n2026-03-30 02:30:00\n", env=[b"TZ=Europe/Paris"], tag="extension")
case("193-next-runs-none", [b"-n", b"4", b"-N", b"0"], NX + u64(4) + u32(0), times_reply(),
     tag="extension")
case("194-next-runs-empty-timing", [b"-n", b"4"], NX + u64(4) + u32(5), times_reply(),
     tag="extension")
case("195-next-runs-not-found", [b"-n", b"60"], NX + u64(60) + u32(5), ER + NF, exitcode=1,
     tag="extension")
case("196-next-runs-count-max", [b"-n", b"1", b"-N", b"4294967295"],
     NX + u64(1) + u32(2**32 - 1), times_reply(utc(2026, 1, 1, 0, 1)),
     b"2026-01-01 00:01:00\n", tag="extension")
case("197-next-runs-taskid-minus-one", [b"-n", b"-1"], NX + u64(MAX64) + u32(5),
     ER + NF, exitcode=1, tag="extension")
usage_error("198-next-runs-bad-count", [b"-n", b"1", b"-N", b"five"], tag="extension")
usage_error("199-next-runs-count-too-big", [b"-n", b"1", b"-N", b"4294967296"],
            tag="extension")
usage_error("200-next-runs-bad-taskid", [b"-n", b"x"], tag="extension")
case("201-next-runs-reply-cut-short", [b"-n", b"1"], NX + u64(1) + u32(5),
     times_reply(utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2))[:-3], exitcode=1,
     tag="extension")
# -X asks LONG_LIST (every field of each task), LIST only after the empty reply to it
case("202-export", [b"-X"], b"LL",
     OK + u32(3)
     + task(0, timing(bits(*range(0, 60, 15)), bits(*range(8, 19)), bits(*range(1, 6))),
            b"/bin/sh", b"-c", b"printf '50%' | tr 5 6") + u32(0)
     + task(3, EVERY, b"printf", b"[%s]", b"a b", b"it's", b"") + u32(0)
     + task(4, timing(bits(0), bits(0), bits(0)), b"-dash") + u32(0),
     b"0,15,30,45 8-18 * * 1-5 printf '50\\%' | tr 5 6\n"
     b"* * * * * exec printf '['\\%'s]' 'a b' 'it'\\''s' ''\n"
     b"0 0 * * 0 ''-dash\n", tag="extension")
case("203-export-empty", [b"-X"], b"LL", OK + u32(0), tag="extension")
case("204-export-unexportable", [b"-X"], b"LL",
     OK + u32(3) + task(1, timing(0, ALL_HOURS, ALL_DAYS), b"true") + u32(0)
     + task(2, EVERY, b"echo", b"a\nb") + u32(0)
     + task(5, EVERY, b"true") + u32(0),
     b"# task 1 not exported: its minute field is empty (it never runs)\n"
     b"# task 2 not exported: an argument holds a newline\n"
     b"* * * * * exec true\n", exitcode=1, tag="extension")
case("205-import-empty-stdin", [b"-I", b"-"], tag="extension")
case("206-import-dev-null", [b"-I", b"/dev/null"], tag="extension")
case("207-import-missing-file", [b"-I", b"/nonexistent/crontab"], exitcode=1,
     tag="extension")
usage_error("208-import-missing-argument", [b"-I"], tag="extension")
case("209-export-error-reply-cut-short", [b"-X"], b"LL",
     (OK + u32(1) + task(0, EVERY, b"x") + u32(0))[:-1], exitcode=1, tag="extension")

# --- this project's own requests for everyday use ---------------------------------------
case("240-set-fields-hours-days", [b"-t", b"3", b"-H", b"8", b"-d", b"1-5"],
     SF + u64(3) + b"\x06" + timing(ALL_MIN, bits(8), bits(1, 2, 3, 4, 5)), OK,
     tag="extension")
case("241-pause", [b"-Z", b"3"], PA + u64(3), OK, tag="extension")
case("242-pause-missing", [b"-Z", b"9"], PA + u64(9), ER + NF, exitcode=1, tag="extension")
case("243-resume", [b"-U", b"3"], UP + u64(3), OK, tag="extension")
case("244-status", [b"-S"], SS, OK + string(b"pid: 7\nversion: 0.1.0\n"),
     b"pid: 7\nversion: 0.1.0\n", tag="extension")
case("245-history-all", [b"-Y", b"2"], HI + u64(2) + u64(0) + u32(0),
     OK + u32(2) + u64(4) + i64(utc(2026, 1, 1, 0, 1)) + u16(1) + string(b"out") + string(b"")
     + u64(5) + i64(utc(2026, 1, 1, 0, 2)) + u16(0) + string(b"a\n") + string(b"b"),
     b"== run 4, 2026-01-01 00:01:00, exit status 1\n-- stdout\nout\n-- stderr\n"
     b"== run 5, 2026-01-01 00:02:00, exit status 0\n-- stdout\na\n-- stderr\nb\n",
     tag="extension")
case("246-history-last", [b"-Y", b"2", b"-K", b"1"], HI + u64(2) + u64(0) + u32(1),
     OK + u32(0), tag="extension")
case("247-history-run", [b"-Y", b"2", b"-F", b"4"], HI + u64(2) + u64(4) + u32(0),
     ER + NR, exitcode=1, tag="extension")
case("248-next-runs-paused", [b"-n", b"3"], NX + u64(3) + u32(5), ER + b"PS",
     b"task 3 is paused: no run until cassini -U 3\n", tag="extension")
case("249-version", [b"-V"], stdout=b"cassini 0.1.0\n", tag="extension")
case("250-version-long", [b"--version"], stdout=b"cassini 0.1.0\n", tag="extension")
usage_error("251-create-then-delete-all-refused", [b"-c", b"backup.sh", b"-s"],
            tag="extension")
usage_error("252-create-then-terminate-refused", [b"-c", b"backup.sh", b"-q"],
            tag="extension")


# --- this project's own requests: cron's other fields (LL, CC, TC; 210-229) --------------
LL, CC, TC = b"LL", b"CC", b"TC"


def attrs(*pairs):
    return u32(len(pairs)) + b"".join(string(k) + string(v) for k, v in pairs)


def long_reply(*tasks):
    return OK + u32(len(tasks)) + b"".join(tasks)


def long_task(taskid, tim, argv, *pairs):
    return task(taskid, tim, *argv) + attrs(*pairs)


NO_TIME = timing(0, 0, 0)
case("210-long-list-empty", [b"-L"], LL, long_reply(), tag="extension")
case("211-long-list", [b"-L"], LL,
     long_reply(long_task(0, EVERY, [b"echo", b"plain"]),
                long_task(1, timing(bits(0), bits(4), ALL_DAYS), [b"sh", b"-c", b"echo dated"],
                          (b"mdays", b"1,15"), (b"months", b"1-3"), (b"catchup", b"1"),
                          (b"env", b"PATH=/usr/bin:/bin"), (b"env", b"MAILTO="),
                          (b"tz", b"Europe/Paris")),
                long_task(2, NO_TIME, [b"echo", b"boot"], (b"reboot", b"1")),
                long_task(3, timing(bits(5), ALL_HOURS, bits(1, 2)), [b"x"],
                          (b"paused", b"1"), (b"months", b"6"))),
     b"0: * * * * * echo plain\n"
     b"1: 0 4 1,15 1-3 * [catch-up] [tz=Europe/Paris] [env=PATH,MAILTO] sh -c echo dated\n"
     b"2: @reboot echo boot\n"
     b"3: 5 * * 6 1-2 [paused] x\n", tag="extension")
case("212-long-list-not-a-reply", [b"-L"], LL, long_reply(long_task(0, EVERY, [b"x"]))[:-1],
     exitcode=1, tag="extension")
case("213-create-day-of-month", [b"-c", b"-m", b"0", b"-H", b"3", b"-j", b"1,15", b"backup"],
     CC + timing(bits(0), bits(3), ALL_DAYS) + cmdline(b"backup") + attrs((b"mdays", b"1,15")),
     OK + u64(7), b"7\n", tag="extension")
case("214-create-month-names", [b"-c", b"-M", b"jan-mar,Dec", b"-j", b"*/10", b"x"],
     CC + EVERY + cmdline(b"x") + attrs((b"mdays", b"*/10"), (b"months", b"jan-mar,Dec")),
     OK + u64(0), b"0\n", tag="extension")
case("215-create-catchup-env-tz", [b"-c", b"-a", b"-y", b"A=1", b"-y", b"MAILTO=",
                                   b"-y", b"CRON_TZ=UTC", b"x"],
     CC + EVERY + cmdline(b"x") + attrs((b"catchup", b"1"), (b"env", b"A=1"),
                                        (b"env", b"MAILTO="), (b"tz", b"UTC")),
     OK + u64(1), b"1\n", tag="extension")
case("216-create-reboot", [b"-c", b"-B", b"x"], CC + NO_TIME + cmdline(b"x")
     + attrs((b"reboot", b"1")), OK + u64(2), b"2\n", tag="extension")
case("217-set-cron", [b"-t", b"4", b"-H", b"2", b"-M", b"2"],
     TC + u64(4) + timing(ALL_MIN, bits(2), ALL_DAYS) + attrs((b"months", b"2"),
                                                              (b"fields", b"2")), OK,
     tag="extension")
case("218-set-cron-not-found", [b"-t", b"9", b"-j", b"*"],
     TC + u64(9) + EVERY + attrs((b"mdays", b"*"), (b"fields", b"0")), ER + NF, exitcode=1,
     tag="extension")
usage_error("219-bad-day-of-month", [b"-c", b"-j", b"0", b"x"], tag="extension")
usage_error("220-bad-month", [b"-c", b"-M", b"13", b"x"], tag="extension")
usage_error("221-bad-month-name", [b"-c", b"-M", b"jun-foo", b"x"], tag="extension")
usage_error("222-bad-environment", [b"-c", b"-y", b"NOVALUE", b"x"], tag="extension")
usage_error("223-reboot-with-timing", [b"-c", b"-B", b"-m", b"5", b"x"], tag="extension")
usage_error("224-bad-zone", [b"-c", b"-y", b"CRON_TZ=Nowhere/Atall", b"x"], tag="extension")
case("226-export-every-field", [b"-X"], LL,
     long_reply(long_task(0, timing(bits(30), bits(2), ALL_DAYS), [b"/bin/bash", b"-c", b"a"],
                          (b"mdays", b"1,15"), (b"env", b"SHELL=/bin/bash"),
                          (b"env", b"MAILTO=")),
                long_task(1, NO_TIME, [b"/bin/bash", b"-c", b"b"], (b"reboot", b"1"),
                          (b"env", b"SHELL=/bin/bash"), (b"env", b"MAILTO=")),
                long_task(2, timing(bits(0), bits(4), bits(0)), [b"/bin/sh", b"-c", b"c"],
                          (b"months", b"1-3"), (b"catchup", b"1"), (b"tz", b"Europe/Paris"),
                          (b"env", b"SHELL=/bin/sh"), (b"env", b"MAILTO="))),
     b"SHELL=/bin/bash\nMAILTO=\n30 2 1,15 * * a\n@reboot b\nSHELL=/bin/sh\n"
     b"CRON_TZ=Europe/Paris\nSATURND_CATCHUP=1\n0 4 * 1-3 0 c\n", tag="extension")
case("225-create-without-cron-options-is-reference", [b"-c", b"-m", b"1", b"x"],
     CR + timing(bits(1), ALL_HOURS, ALL_DAYS) + cmdline(b"x"), OK + u64(3), b"3\n",
     tag="extension")


# the long listing's fields of everyday use (paused, last run, next run)
case("253-long-list-everyday-fields", [b"-L"], LL,
     long_reply(long_task(0, EVERY, [b"true"], (b"last", b"%d 3" % utc(2026, 1, 1, 0, 1)),
                          (b"next", b"%d" % utc(2026, 1, 1, 0, 2))),
                long_task(1, EVERY, [b"x"], (b"paused", b"1"), (b"last", b"bad"))),
     b"0: * * * * * [last=2026-01-01 00:01:00 exit 3] [next=2026-01-01 00:02:00] true\n"
     b"1: * * * * * [paused] [last=bad] x\n", tag="extension")


def is_case_name(name):
    """Whether a folder name in a cases directory is a case (``_`` and ``.`` names are not:
    ``__pycache__``, a teacher's ``_drafts``, ``.git``)."""
    return not name.startswith(("_", "."))


def write_cases(dest=CASES):
    os.makedirs(dest, exist_ok=True)
    for name in os.listdir(dest):       # the old case folders go; this package's files stay
        if is_case_name(name) and os.path.isdir(os.path.join(dest, name)):
            shutil.rmtree(os.path.join(dest, name))
    names = set()
    for c in CASES_TABLE:
        assert c["name"] not in names, c["name"]
        names.add(c["name"])
        d = os.path.join(dest, c["name"])
        os.makedirs(d)

        def put(fname, data):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(data)

        for a in c["args"]:
            assert b"\n" not in a, "an argument cannot hold a newline in this format"
        put("arguments", b"".join(a + b"\n" for a in c["args"]))
        put("request", c["request"])
        put("reply", c["reply"])
        put("stdout", c["stdout"])
        put("exitcode", b"%d\n" % c["exitcode"])
        put("tag", c["tag"].encode() + b"\n")
        if c["env"]:
            put("env", b"".join(e + b"\n" for e in c["env"]))
        for m in c["markers"]:
            put(m, b"")
    return len(CASES_TABLE)


if __name__ == "__main__":
    n = write_cases(sys.argv[1] if len(sys.argv) > 1 else CASES)
    print(f"wrote {n} cases")

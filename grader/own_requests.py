"""Daemon conformance for this project's own requests (graded only with ``--extensions``).

RESET_HISTORY ``RH`` 0x5248, CLONE ``CL`` 0x434c and ERROR_LOG ``EL`` 0x454c exist in no
reference and in no seed project: they are this project's (README, "This project's own
requests").  Each scenario drives a fresh candidate daemon with our cassini (``-R``,
``-C``, ``-E``, ``-D``) and with raw requests; the wording of error log messages is the
daemon's own, so only their line format and subject are checked.
"""

import re
import struct
import time

from saturnd import protocol as P

from .daemon import NEVER, NEVER_TEXT, Failed

WAIT = 10.0                 # seconds for a run started by -i to be recorded
_LINE = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [^\n]+\n")


def _wait_recorded(ctx, taskid, count=1):
    deadline = time.monotonic() + WAIT
    while True:
        r = ctx.cassini("-x", str(taskid))
        if r.code == 0 and r.out.count(b"\n") >= count:
            return r.out
        if time.monotonic() > deadline:
            raise Failed(f"task {taskid}: {count} run(s) not recorded {WAIT:g} s after "
                         "EXEC_TASK", f"last cassini -x: exit {r.code}, {r.out[:200]!r}")
        time.sleep(0.1)


def _log_lines(ctx, args, what):
    r = ctx.cassini(*args)
    ctx.check(r.code == 0, f"{r.show()} ({what}): exit status {r.code}, expected 0",
              "client stderr: " + r.err.decode("utf-8", "replace").strip()[:300])
    bad = [line for line in r.out.splitlines(keepends=True) if not _LINE.fullmatch(line)]
    ctx.check(not bad, f"{r.show()}: a line is not 'YYYY-MM-DD HH:MM:SS message'",
              f"{bad[0][:200]!r}" if bad else "")
    return r.out


def sc_own_reset_history(ctx):
    ctx.cassini("-c", *NEVER, "echo", "ran")
    ctx.expect(["-i", "0"], b"")
    _wait_recorded(ctx, 0)
    ctx.expect(["-o", "0"], b"ran\n")
    ctx.expect(["-R", "0"], b"", why="RESET_HISTORY")
    ctx.expect(["-x", "0"], b"", why="after RESET_HISTORY")
    ctx.expect(["-o", "0"], b"", 1, why="after RESET_HISTORY the task has never run")
    ctx.expect(["-l"], b"0: " + NEVER_TEXT + b" echo ran\n", why="the task itself stays")
    ctx.expect(["-R", "9"], b"", 1, why="no task 9")
    ctx.expect_error(struct.pack(">HQ", P.RESET_HISTORY, 9), P.RESET_HISTORY, P.NF,
                     "RESET_HISTORY of a missing task")


def sc_own_clone(ctx):
    ctx.cassini("-c", *NEVER, "--", "echo", "-n", "x y")
    ctx.expect(["-C", "0"], b"1\n", why="CLONE prints the new id")
    line = NEVER_TEXT + b" echo -n x y\n"
    ctx.expect(["-l"], b"0: " + line + b"1: " + line)
    ctx.expect(["-x", "1"], b"", why="a clone has no runs")
    ctx.expect(["-c"] + NEVER + ["true"], b"2\n", why="the clone's id is spent")
    ctx.expect(["-C", "9"], b"", 1, why="no task 9")
    ctx.expect_error(struct.pack(">HQ", P.CLONE, 9), P.CLONE, P.NF, "CLONE of a missing task")


def sc_own_error_log(ctx):
    ctx.cassini("-c", *NEVER, "no-such-program-for-the-grader")
    ctx.expect(["-E", "0"], b"", why="no error yet")
    ctx.expect(["-i", "0"], b"")
    _wait_recorded(ctx, 0)
    out = _log_lines(ctx, ["-E", "0"], "after a command that could not start")
    ctx.check(out.count(b"\n") == 1 and b"no-such-program-for-the-grader" in out,
              "cassini -E 0: expected one line naming the command that could not start",
              f"got {out[:300]!r}")
    ctx.expect(["-R", "0"], b"")
    ctx.expect(["-E", "0"], out, why="RESET_HISTORY keeps the error log")
    _log_lines(ctx, ["-D"], "the daemon-wide log")
    ctx.expect(["-E", "9"], b"", 1, why="no task 9")
    ctx.expect_error(b"EL\x01" + struct.pack(">Q", 9), P.ERROR_LOG, P.NF,
                     "ERROR_LOG of a missing task")
    ctx.cassini("-r", "0")
    ctx.expect(["-E", "0"], b"", 1, why="a removed task's log goes with it")


SCENARIOS = [
    ("own-reset-history", sc_own_reset_history),
    ("own-clone", sc_own_clone),
    ("own-error-log", sc_own_error_log),
]

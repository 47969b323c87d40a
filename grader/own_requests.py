"""Daemon conformance for this project's own requests (graded only with ``--extensions``).

RESET_HISTORY ``RH`` 0x5248, CLONE ``CL`` 0x434c and ERROR_LOG ``EL`` 0x454c exist in no
reference and in no seed project: they are this project's (``docs/own-requests.md``).  Each scenario drives a fresh candidate daemon with our cassini (``-R``,
``-C``, ``-E``, ``-D``) and with raw requests; the wording of error log messages is the
daemon's own, so only their line format and subject are checked.
"""

import re
import time

from saturnd import protocol as P

from .candidate import Failed
from .scenarios import NEVER, NEVER_TEXT, list_line, parse_id, taskid_request, unknown_id

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
    t = ctx.create(*NEVER, "echo", "ran")
    ctx.expect(["-i", str(t)], b"")
    _wait_recorded(ctx, t)
    ctx.expect(["-o", str(t)], b"ran\n")
    ctx.expect(["-R", str(t)], b"", why="RESET_HISTORY")
    ctx.expect(["-x", str(t)], b"", why="after RESET_HISTORY")
    ctx.expect(["-o", str(t)], b"", 1, why="after RESET_HISTORY the task has never run")
    ctx.expect_lines(["-l"], [list_line(t, NEVER_TEXT + b" echo ran")],
                     why="the task itself stays")
    gone = str(unknown_id(t))
    ctx.expect(["-R", gone], b"", 1, why=f"no task {gone}")
    ctx.expect_error(taskid_request(P.RESET_HISTORY, int(gone)), P.RESET_HISTORY, P.NF,
                     "RESET_HISTORY of a missing task")


def sc_own_clone(ctx):
    t = ctx.create(*NEVER, "--", "echo", "-n", "x y")
    r = ctx.cassini("-C", str(t))
    clone = parse_id(r.out) if r.code == 0 else None
    ctx.check(clone is not None and clone != t,
              f"{r.show()}: expected a new task id and exit 0 (CLONE prints the new id), "
              f"got {r.out[:60]!r} (exit {r.code})")
    line = NEVER_TEXT + b" echo -n x y"
    ctx.expect_lines(["-l"], [list_line(t, line), list_line(clone, line)])
    ctx.expect(["-x", str(clone)], b"", why="a clone has no runs")
    other = ctx.create(*NEVER, "true")
    ctx.check(other not in (t, clone), f"cassini -c after CLONE returned id {other}, "
              f"already used (source {t}, clone {clone}): the clone's id must be spent")
    gone = str(unknown_id(t, clone, other))
    ctx.expect(["-C", gone], b"", 1, why=f"no task {gone}")
    ctx.expect_error(taskid_request(P.CLONE, int(gone)), P.CLONE, P.NF,
                     "CLONE of a missing task")


def sc_own_error_log(ctx):
    t = ctx.create(*NEVER, "no-such-program-for-the-grader")
    ctx.expect(["-E", str(t)], b"", why="no error yet")
    ctx.expect(["-i", str(t)], b"")
    _wait_recorded(ctx, t)
    out = _log_lines(ctx, ["-E", str(t)], "after a command that could not start")
    ctx.check(out.count(b"\n") == 1 and b"no-such-program-for-the-grader" in out,
              f"cassini -E {t}: expected one line naming the command that could not start",
              f"got {out[:300]!r}")
    ctx.expect(["-R", str(t)], b"")
    ctx.expect(["-E", str(t)], out, why="RESET_HISTORY keeps the error log")
    _log_lines(ctx, ["-D"], "the daemon-wide log")
    gone = str(unknown_id(t))
    ctx.expect(["-E", gone], b"", 1, why=f"no task {gone}")
    ctx.expect_error(P.encode_request(P.Request(P.ERROR_LOG, taskid=int(gone),
                                                 scope=P.ERROR_LOG_TASK)), P.ERROR_LOG, P.NF,
                     "ERROR_LOG of a missing task")
    ctx.cassini("-r", str(t))
    ctx.expect(["-E", str(t)], b"", 1, why="a removed task's log goes with it")


SCENARIOS = [
    ("own-reset-history", sc_own_reset_history),
    ("own-clone", sc_own_clone),
    ("own-error-log", sc_own_error_log),
]

"""A reply -> the exact bytes cassini prints (``cassini.md``, "Standard output")."""

from saturnd import protocol as P
from saturnd.timing import timing_to_string


def list_output(tasks):
    """``ID: MIN HOUR DAYS ARGV0 ARGV1 ...`` per task, raw argument bytes."""
    cache = {}
    lines = []
    for taskid, timing, argv in tasks:
        key = (timing.minutes, timing.hours, timing.days)
        text = cache.get(key)
        if text is None:
            text = cache[key] = timing_to_string(*key).encode("ascii")
        lines.append(b"%d: %s %s\n" % (taskid, text, b" ".join(argv)))
    return b"".join(lines)


def runs_output(runs):
    """``YYYY-MM-DD HH:MM:SS CODE`` per run, in the local time zone (``TZ``)."""
    import time
    lines = []
    for when, code in runs:
        try:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"run time {when} cannot be shown as a local date") from None
        lines.append(b"%s %d\n" % (stamp.encode("ascii", "replace"), code))
    return b"".join(lines)


def stdout_bytes(opcode, reply):
    """What an ``OK`` reply prints (raises ValueError when it cannot be shown)."""
    if opcode == P.LIST:
        return list_output(reply.tasks)
    if opcode in (P.CREATE, P.RESET_TASKMAX, P.DELETE_ALL):
        return b"%d\n" % reply.value
    if opcode == P.TIMES_EXITCODES:
        return runs_output(reply.runs)
    if opcode in (P.STDOUT, P.STDERR):
        return reply.output
    if opcode == P.CLONE:           # this project's own requests
        return b"%d\n" % reply.value
    if opcode == P.ERROR_LOG:
        return error_log_output(reply.entries)
    if opcode == P.NEXT_RUNS:
        return times_output(reply.times)
    return b""


def error_log_output(entries):
    """``YYYY-MM-DD HH:MM:SS MESSAGE`` per entry, local time (``TZ``), like ``-x``;
    a line break inside a message is shown as ``\\n`` (one line per entry)."""
    import time
    lines = []
    for when, message in entries:
        try:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"error log time {when} cannot be shown as a local date") from None
        message = message.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
        lines.append(b"%s %s\n" % (stamp.encode("ascii", "replace"), message))
    return b"".join(lines)


def error_message(opcode, taskid, errcode):
    """The one line an ``ER`` reply prints on stderr."""
    if errcode == P.NF:
        if taskid is not None:
            return f"there is no task with id {taskid}"
        return "saturnd answered: no such task"
    if errcode == P.NR:
        if taskid is not None:
            return f"task {taskid} has never run"
        return "saturnd answered: the task has never run"
    return f"saturnd answered with the unknown error code {errcode:#06x}"


# --- this project's own requests ---------------------------------------------------------
def times_output(times):
    """NEXT_RUNS: ``YYYY-MM-DD HH:MM:SS`` per time, in the local time zone (``TZ``), like -x."""
    import time
    lines = []
    for when in times:
        try:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"time {when} cannot be shown as a local date") from None
        lines.append(stamp.encode("ascii", "replace") + b"\n")
    return b"".join(lines)

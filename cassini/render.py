"""A reply -> the exact bytes cassini prints (``cassini.md``, "Standard output")."""

import struct

from saturnd import protocol as P

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable, Iterator
    from typing import Any, Protocol

    class PeekReader(Protocol):
        """A protocol reader that also shows its buffer (``protocol.BufferReader``,
        ``cassini.client.PipeReader``)."""

        def read_exact(self, n: int, /) -> bytes: ...
        def peek(self, n: int, /) -> tuple[bytes, int]: ...
        def consume_to(self, pos: int, /) -> None: ...


def list_output(tasks: "list[tuple[int, P.Timing, tuple[bytes, ...]]] | bytes") -> bytes:
    """``ID: MIN HOUR DAYS ARGV0 ARGV1 ...`` per task, raw argument bytes (``tasks`` may
    be that text already: a payload read by :func:`read_list_output`)."""
    if isinstance(tasks, bytes):
        return tasks
    from saturnd.timing import timing_to_string
    cache: dict[tuple[int, int, int], bytes] = {}
    lines = []
    for taskid, timing, argv in tasks:
        key = (timing.minutes, timing.hours, timing.days)
        text = cache.get(key)
        if text is None:
            text = cache[key] = timing_to_string(*key).encode("ascii")
        lines.append(b"%d: %s %s\n" % (taskid, text, b" ".join(argv)))
    return b"".join(lines)


# LIST read straight into what ``cassini -l`` prints (the bulk path of ``cassini -l``):
# one walk over the reply's bytes with precompiled ``unpack_from``, no object per task, the
# text of each distinct TIMING computed once, and a task whose bytes after its TASKID are
# those of the task before it (the same timing and command line) printed from that one's
# text.  Same checks, same errors and in the same order as ``saturnd.protocol``'s LIST
# decoder followed by :func:`list_output` (``tests/client/test_list_text.py``).
_LIST_HEAD = struct.Struct(">Q13sII")   # TASKID, TIMING (its 13 bytes), ARGC, len(ARGV[0])
_HEAD_SIZE = _LIST_HEAD.size
_LIST_HEAD_SHORT = struct.Struct(">Q13sI")   # the same without len(ARGV[0])
_ARG_LEN = struct.Struct(">I")


def _timing_text(timing: bytes) -> bytes:
    """The printed ``MIN HOUR DAYS`` of the 13 TIMING bytes (ProtocolError when out of range)."""
    from saturnd.timing import timing_to_string
    t = P.decode_timing(timing)
    return timing_to_string(t.minutes, t.hours, t.days).encode("ascii")


def read_list_output(reader: "PeekReader") -> bytes:
    """The payload of an ``OK`` LIST reply (NBTASKS, then the tasks), read from ``reader``
    (it must offer ``peek``/``consume_to`` over ``bytes``, like ``protocol.BufferReader``
    and ``cassini.client.PipeReader``), as the bytes :func:`list_output` prints for it.
    Raises ``ProtocolError`` (``Truncated``) as ``protocol.read_reply`` would."""
    n = P.read_u32(reader)
    head = _LIST_HEAD.unpack_from
    arg_len = _ARG_LEN.unpack_from
    runs: dict[int, "Callable[[memoryview], Iterator[tuple[int, bytes]]]"] = {}
    short = struct.error
    texts: dict[bytes, bytes] = {}
    lines: list[bytes] = []
    append = lines.append
    buf, pos = reader.peek(0)
    end = len(buf)
    view = memoryview(buf)
    start = pos
    left = n
    same = b""          # the bytes after the TASKID of the last task decoded in full
    same_text = b""     # what follows ``ID: `` on its line
    wait = 0            # tasks to decode in full before looking for equal ones again
    backoff = 1
    while left:
        try:
            while left:
                start = pos
                if same:
                    if buf.startswith(same, pos + 8):
                        # a run of such tasks: their TASKIDs and tails in one unpack
                        size = 8 + len(same)
                        run = runs.get(size)
                        if run is None:
                            run = runs[size] = struct.Struct(">Q%ds" % (size - 8)).iter_unpack
                        count = 0
                        for taskid, tail in run(view[pos:pos + min(left, (end - pos) // size)
                                                     * size]):
                            if tail != same:
                                break
                            append(b"%d: %s" % (taskid, same_text))
                            count += 1
                        pos += count * size
                        left -= count
                        backoff = 1
                        continue
                    same = b""          # tasks that differ: look again later, less often
                    wait = backoff
                    backoff = min(backoff * 2, 1024)
                taskid, timing, argc, size = head(buf, pos)
                text = texts.get(timing)
                if text is None:
                    text = texts[timing] = _timing_text(timing)
                if not argc:
                    raise P.ProtocolError("ARGC is 0")
                first = pos + _HEAD_SIZE
                pos = first + size
                if argc == 1:
                    argv = buf[first:pos]
                else:
                    args = [buf[first:pos]]
                    for _ in range(argc - 1):
                        (length,) = arg_len(buf, pos)
                        pos += 4
                        args.append(buf[pos:pos + length])
                        pos += length
                    argv = b" ".join(args)
                if pos > end:
                    pos -= 4            # this task ends at pos + 4: read that far (below)
                    raise short
                if not size:
                    raise P.ProtocolError("empty ARGV[0]")
                append(b"%d: %s %s\n" % (taskid, text, argv))
                left -= 1
                if wait:
                    wait -= 1
                else:
                    same, same_text = buf[start + 8:pos], b"%s %s\n" % (text, argv)
        except short:
            # the buffer ends inside this task: read on and take it again from its start
            # (it holds 4 bytes at least from ``pos`` on: a length or the head's first)
            if pos == start and end - start >= _HEAD_SIZE - 4:
                # TASKID, TIMING and ARGC are here: checked before reading on, as by the
                # per-task decoder
                _, timing, argc = _LIST_HEAD_SHORT.unpack_from(buf, pos)
                _timing_text(timing)
                if not argc:
                    raise P.ProtocolError("ARGC is 0") from None
            need = max(pos + 4, end + 1) - start
            reader.consume_to(start)
            buf, pos = reader.peek(need)
            end = len(buf)
            view = memoryview(buf)
    reader.consume_to(pos)
    return b"".join(lines)


def _stamper(what):
    """A function: epoch seconds -> ``YYYY-MM-DD HH:MM:SS`` in the local time zone (``TZ``),
    as bytes; ValueError naming ``what`` when the time cannot be shown."""
    import time
    strftime, localtime = time.strftime, time.localtime

    def stamp(when):
        try:
            return strftime("%Y-%m-%d %H:%M:%S", localtime(when)).encode("ascii", "replace")
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{what} {when} cannot be shown as a local date") from None
    return stamp


def runs_output(runs: list[tuple[int, int]]) -> bytes:
    """``YYYY-MM-DD HH:MM:SS CODE`` per run, in the local time zone (``TZ``)."""
    stamp = _stamper("run time")
    return b"".join([b"%s %d\n" % (stamp(when), code) for when, code in runs])


def number_output(value: int) -> bytes:
    """A task id or a count: the number and a newline."""
    return b"%d\n" % value


def output_output(output: bytes) -> bytes:
    """STDOUT, STDERR: the bytes as they are."""
    return output


def error_log_output(entries: list[tuple[int, bytes]]) -> bytes:
    """``YYYY-MM-DD HH:MM:SS MESSAGE`` per entry, local time (``TZ``), like ``-x``;
    a line break inside a message is shown as ``\\n`` (one line per entry)."""
    stamp = _stamper("error log time")
    lines = []
    for when, message in entries:
        message = message.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
        lines.append(b"%s %s\n" % (stamp(when), message))
    return b"".join(lines)


def times_output(times: list[int]) -> bytes:
    """NEXT_RUNS: ``YYYY-MM-DD HH:MM:SS`` per time, in the local time zone (``TZ``), like -x."""
    stamp = _stamper("time")
    return b"".join([stamp(when) + b"\n" for when in times])


_EVERYDAY_KEYS = (b"paused", b"last", b"next")


def _everyday_mark(key: bytes, value: bytes) -> bytes:
    """``[paused]``, ``[last=YYYY-MM-DD HH:MM:SS exit CODE]``, ``[next=YYYY-MM-DD
    HH:MM:SS]`` (local time, ``TZ``); a value that does not parse is shown as it is."""
    try:
        if key == b"paused":
            return b"[paused]" if value == b"1" else b"[paused=%s]" % value
        stamp = _stamper(key.decode())
        if key == b"last":
            when, code = value.split(b" ")
            return b"[last=%s exit %d]" % (stamp(int(when)), int(code))
        return b"[next=%s]" % stamp(int(value))
    except ValueError:
        return b"[%s=%s]" % (key, value)


def long_list_output(tasks: "list[tuple[int, P.Timing, tuple[bytes, ...], list[tuple[bytes, bytes]]]]") -> bytes:
    """LONG_LIST: ``ID: MIN HOUR DAYOFMONTH MONTH DAYOFWEEK [ATTR]... ARGV0 ARGV1 ...`` per
    task (``@reboot`` instead of the five fields for a task run at each start), the
    attributes between brackets: ``[catch-up]``, ``[tz=ZONE]``, ``[env=NAME,NAME...]`` (the
    names of its environment settings), ``[KEY=VALUE]`` for any other."""
    from saturnd.timing import timing_to_string
    lines = []
    for taskid, timing, argv, attrs in tasks:
        values = {}
        env = []
        extra = []
        for key, value in attrs:
            value = value.replace(b"\n", b"\\n")      # one line per task
            if key == b"env":
                env.append(value.partition(b"=")[0])
            elif key in (b"mdays", b"months", b"reboot", b"catchup", b"tz"):
                values[key] = value
            elif key in _EVERYDAY_KEYS:
                extra.append(_everyday_mark(key, value))
            else:
                extra.append(b"[%s=%s]" % (key, value))
        if values.get(b"reboot") == b"1":
            when = b"@reboot"
        else:
            minutes, hours, days = timing_to_string(timing.minutes, timing.hours,
                                                    timing.days).split(" ")
            when = b"%s %s %s %s %s" % (minutes.encode(), hours.encode(),
                                        values.get(b"mdays", b"*"), values.get(b"months", b"*"),
                                        days.encode())
        marks = []
        if values.get(b"catchup") == b"1":
            marks.append(b"[catch-up]")
        if b"tz" in values:
            marks.append(b"[tz=%s]" % values[b"tz"])
        if env:
            marks.append(b"[env=%s]" % b",".join(env))
        marks.extend(extra)
        lines.append(b"%d: %s %s%s\n" % (taskid, when, b"".join(m + b" " for m in marks),
                                          b" ".join(argv)))
    return b"".join(lines)


# reply shape (the table of operations, saturnd/protocol.py) -> what its payload prints
RENDERERS: "dict[P.Shape, Callable[[Any], bytes]]" = {
    P.SHAPE_LIST: list_output,
    P.SHAPE_U64: number_output,
    P.SHAPE_COUNT: number_output,
    P.SHAPE_RUNS: runs_output,
    P.SHAPE_OUTPUT: output_output,
    P.SHAPE_ERROR_LOG: error_log_output,
    P.SHAPE_TIMES: times_output,
    P.SHAPE_LONG_LIST: long_list_output,
}


def history_output(runs: list[tuple[int, int, int, bytes, bytes]]) -> bytes:
    """HISTORY (``-Y``): per run, a header line ``== run N, YYYY-MM-DD HH:MM:SS, exit
    status CODE`` (local time, ``TZ``), then ``-- stdout`` and its bytes, ``-- stderr`` and
    its bytes (each followed by a line break when it does not end with one)."""
    stamp = _stamper("run time")
    parts = []
    for run, when, code, out, err in runs:
        parts.append(b"== run %d, %s, exit status %d\n" % (run, stamp(when), code))
        for name, data in ((b"stdout", out), (b"stderr", err)):
            parts.append(b"-- %s\n" % name)
            if data:
                parts.append(data if data.endswith(b"\n") else data + b"\n")
    return b"".join(parts)


RENDERERS[P.SHAPE_HISTORY] = history_output


def stdout_bytes(opcode: int, reply: P.Reply) -> bytes:
    """What an ``OK`` reply prints (raises ValueError when it cannot be shown)."""
    shape = P.operation(opcode).reply
    render = RENDERERS.get(shape)
    if render is None:          # OK only: nothing
        return b""
    return render(getattr(reply, shape.attr))


def error_message(opcode: int, taskid: int | tuple[int, int] | None, errcode: int) -> str:
    """The one line an ``ER`` reply prints on stderr."""
    if isinstance(taskid, tuple):       # HISTORY: (TASKID, RUN)
        if errcode == P.NR:
            return f"run number {taskid[1]} of task {taskid[0]} is not kept"
        taskid = taskid[0]
    if errcode == P.NF:
        if taskid is not None:
            return f"there is no task with id {taskid}"
        return "saturnd answered: no such task"
    if errcode == P.NR:
        if taskid is not None:
            return f"task {taskid} has never run"
        return "saturnd answered: the task has never run"
    return f"saturnd answered with the unknown error code {errcode:#06x}"

"""The saturnd <-> cassini wire protocol (byte by byte: ``docs/protocol.md``).

This module is the only place where the wire format exists, and where the
names both sides agree on are defined (the FIFOs, the lock files, the default
pipes directory).  It is shared by the client, the daemon, ``saturnd-clock``
and the grader, so it imports nothing but :mod:`os` (always loaded) and
:mod:`struct` to keep ``cassini`` quick to start.

Decoding is stream-oriented: every ``read_*`` function takes a *reader*, an
object with a ``read_exact(n)`` method that returns exactly ``n`` bytes or
raises :class:`Truncated` (a reader over a pipe must grow its buffer as bytes
arrive, not allocate ``n`` bytes up front).  A reader may also offer
``peek(n)`` -> ``(buffer, offset)`` and ``consume_to(offset)`` (see
:class:`BufferReader`), which lets the LIST decoder parse in place.  :class:`BufferReader` reads from ``bytes``; the
client and the daemon provide readers over their pipes.  Allocation follows
the bytes actually received, never a length announced by the peer.
"""

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only: nothing more to import at start-up
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any, AnyStr, Protocol

    class Reader(Protocol):
        """What every ``read_*`` function takes (see above)."""

        def read_exact(self, n: int, /) -> bytes: ...

    Task = tuple[int, "Timing", tuple[bytes, ...]]   # one task of a LIST reply

# --- names (``docs/protocol.md``, "Transport") ---------------------------------
# in the pipes directory
REQUEST_PIPE = "saturnd-request-pipe"               # client -> daemon
REPLY_PIPE = "saturnd-reply-pipe"                   # daemon -> client
CASSINI_LOCK = "cassini-lock"                       # a client's flock: one exchange at a time
CLOCK_REQUEST_PIPE = "saturnd-clock-request-pipe"   # the manual clock's control channel
CLOCK_REPLY_PIPE = "saturnd-clock-reply-pipe"
CLOCK_LOCK = "clock-lock"                           # saturnd-clock's flock
# in the pipes directory and in the data directory: one daemon per directory
DAEMON_LOCK = "saturnd.lock"


def current_user() -> bytes | None:
    """``$USER``, else the effective user's login name (bytes); None when the uid has none."""
    user = os.environb.get(b"USER")
    if user:
        return user
    import pwd
    try:
        return os.fsencode(pwd.getpwuid(os.geteuid()).pw_name)
    except KeyError:
        return None


def default_pipes_dir(user: "AnyStr") -> "AnyStr":
    """``/tmp/<user>/saturnd/pipes`` (bytes for a bytes ``user``, else str)."""
    if isinstance(user, bytes):
        return b"/tmp/" + user + b"/saturnd/pipes"
    return "/tmp/" + user + "/saturnd/pipes"


def own_pipes_dir() -> str:
    """The daemon's and saturnd-clock's default (str): :func:`default_pipes_dir` of
    :func:`current_user`, or of the uid's number when it has no name (cassini refuses
    that case instead: it asks for USER or -p)."""
    user = current_user()
    return default_pipes_dir(os.fsdecode(user) if user else str(os.geteuid()))

# --- request opcodes -------------------------------------------------------
LIST = 0x4C53             # 'LS'
CREATE = 0x4352           # 'CR'
REMOVE = 0x524D           # 'RM'
TIMES_EXITCODES = 0x5458  # 'TX'
STDOUT = 0x534F           # 'SO'
STDERR = 0x5345           # 'SE'
TERMINATE = 0x544D        # 'TM'
# extensions of the seed project (values kept for compatibility)
SET_CMD = 0x43FF
DELETE_ALL = 0x444C       # 'DL'
SW_TIME = 0x5354          # 'ST'
EXEC_TASK = 0x48ED
RESET_TASKMAX = 0x5254    # 'RT'

# this project's own requests (``docs/own-requests.md``): next-run preview
NEXT_RUNS = 0x4E58        # 'NX': TASKID uint64, COUNT uint32 -> OK NBTIMES uint32, N x TIME int64

# --- this project's own requests: reset history, clone, error log -----------
# (not in the seed project nor the reference; layouts and rules in
# ``docs/own-requests.md``)
RESET_HISTORY = 0x5248    # 'RH': TASKID uint64 -> OK | ER NF
CLONE = 0x434C            # 'CL': TASKID uint64 -> OK TASKID uint64 | ER NF
ERROR_LOG = 0x454C        # 'EL': SCOPE uint8, TASKID uint64 -> OK NBENTRIES (TIME, MESSAGE)* | ER NF
ERROR_LOG_DAEMON = 0      # SCOPE: the daemon-wide log (TASKID ignored, sent as 0)
ERROR_LOG_TASK = 1        # SCOPE: one task's log
# --- this project's own requests: cron's other fields (docs/own-requests.md) -----------
LONG_LIST = 0x4C4C        # 'LL': -> OK NBTASKS uint32, N x (TASKID, TIMING, COMMANDLINE, ATTRS)
CREATE_CRON = 0x4343      # 'CC': TIMING, COMMANDLINE, ATTRS -> OK TASKID uint64
SET_CRON = 0x5443         # 'TC': TASKID uint64, TIMING, ATTRS -> OK | ER NF
MAX_ATTRS = 4096          # attributes of one task
MAX_ATTR_KEY = 64         # bytes of one attribute's KEY
# --- end of this project's own requests --------------------------------------
# what each request carries and what its reply looks like: OPERATIONS (the table, below)

# --- replies ---------------------------------------------------------------
OK = 0x4F4B   # 'OK'
ER = 0x4552   # 'ER'
NF = 0x4E46   # 'NF': no task with that id
NR = 0x4E52   # 'NR': the task has never run

ERRCODE_NAMES = {NF: "NF", NR: "NR"}

# --- limits ----------------------------------------------------------------
MAX_REQUEST = 1 << 20          # a request over 1 MiB is malformed
MINUTES_MASK = (1 << 60) - 1
HOURS_MASK = (1 << 24) - 1
DAYS_MASK = (1 << 7) - 1
TIMING_SIZE = 13
RUN_RECORD_SIZE = 10           # TIME int64 + EXITCODE uint16
EXIT_SIGNALED = 0xFFFF

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TIMING = struct.Struct(">QIB")
_RUN = struct.Struct(">qH")
_OK_U32 = struct.Struct(">HI")
_OK_U64 = struct.Struct(">HQ")
_ER = struct.Struct(">HH")
_I64 = struct.Struct(">q")
_TASK_HEAD = struct.Struct(">QQIBI")   # TASKID, TIMING (13 bytes), ARGC
_EL_HEAD = struct.Struct(">qI")        # one error log entry: TIME, MESSAGE length


class ProtocolError(ValueError):
    """Bytes that do not follow the protocol (one clear sentence)."""


class Truncated(ProtocolError):
    """End of input before a complete message."""


# --- readers ---------------------------------------------------------------
class BufferReader:
    """A reader over a bytes-like object."""

    __slots__ = ("data", "pos", "limit")

    def __init__(self, data: "bytes | bytearray | memoryview", limit: int | None = None) -> None:
        self.data = data if type(data) is bytes else bytes(data)
        self.pos = 0
        self.limit = limit  # maximum number of bytes this reader may hand out

    def read_exact(self, n: int) -> bytes:
        end = self.pos + n
        if self.limit is not None and end > self.limit:
            raise ProtocolError(f"message longer than the {self.limit}-byte limit")
        if end > len(self.data):
            raise Truncated(f"truncated: needed {end} bytes, got {len(self.data)}")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def peek(self, n: int) -> tuple[bytes, int]:
        """``(buffer, offset)`` where the next ``n`` unconsumed bytes start (nothing consumed)."""
        end = self.pos + n
        if self.limit is not None and end > self.limit:
            raise ProtocolError(f"message longer than the {self.limit}-byte limit")
        if end > len(self.data):
            raise Truncated(f"truncated: needed {end} bytes, got {len(self.data)}")
        return self.data, self.pos

    def consume_to(self, pos: int) -> None:
        """Mark the bytes before offset ``pos`` of the last ``peek`` buffer as read."""
        self.pos = pos

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def check_limit(self, n: int) -> None:
        """Refuse before reading when ``n`` more bytes cannot fit the limit."""
        if self.limit is not None and self.pos + n > self.limit:
            raise ProtocolError(f"message longer than the {self.limit}-byte limit")


def _check_limit(reader: "Reader", n: int) -> None:
    check = getattr(reader, "check_limit", None)
    if check is not None:
        check(n)


def read_u16(reader: "Reader") -> int:
    return _U16.unpack(reader.read_exact(2))[0]


def read_u32(reader: "Reader") -> int:
    return _U32.unpack(reader.read_exact(4))[0]


def read_u64(reader: "Reader") -> int:
    return _U64.unpack(reader.read_exact(8))[0]


def read_string(reader: "Reader", max_len: int | None = None) -> bytes:
    n = read_u32(reader)
    if max_len is not None and n > max_len:
        raise ProtocolError(f"string of {n} bytes exceeds {max_len}")
    _check_limit(reader, n)
    return reader.read_exact(n)


# --- timing ----------------------------------------------------------------
class Timing:
    """Three bit sets: minutes (bits 0-59), hours (0-23), days of week (0-6, 0 = Sunday)."""

    __slots__ = ("minutes", "hours", "days")

    def __init__(self, minutes: int, hours: int, days: int) -> None:
        if not (0 <= minutes <= MINUTES_MASK):
            raise ProtocolError(f"minute bits out of range: {minutes:#x}")
        if not (0 <= hours <= HOURS_MASK):
            raise ProtocolError(f"hour bits out of range: {hours:#x}")
        if not (0 <= days <= DAYS_MASK):
            raise ProtocolError(f"day-of-week bits out of range: {days:#x}")
        self.minutes = minutes
        self.hours = hours
        self.days = days

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timing) and self.as_tuple() == other.as_tuple()

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __repr__(self) -> str:
        return f"Timing({self.minutes:#x}, {self.hours:#x}, {self.days:#x})"

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.minutes, self.hours, self.days)

    def encode(self) -> bytes:
        return _TIMING.pack(self.minutes, self.hours, self.days)

    def matches(self, minute: int, hour: int, weekday: int) -> bool:
        """True when the task is due at that local minute (weekday 0 = Sunday)."""
        return bool((self.minutes >> minute) & (self.hours >> hour) & (self.days >> weekday) & 1)


EVERY_MINUTE = Timing(MINUTES_MASK, HOURS_MASK, DAYS_MASK)


def read_timing(reader: "Reader") -> Timing:
    return Timing(*_TIMING.unpack(reader.read_exact(TIMING_SIZE)))


def decode_timing(data: bytes) -> Timing:
    return _decode_all(data, read_timing)


# --- command lines ---------------------------------------------------------
def encode_string(s: bytes) -> bytes:
    return _U32.pack(len(s)) + s


def encode_commandline(argv: "Sequence[bytes]") -> bytes:
    """``argv`` is a sequence of bytes; ARGV[0] must be non-empty."""
    if not argv:
        raise ProtocolError("a command line needs at least one argument")
    if not argv[0]:
        raise ProtocolError("the program name (ARGV[0]) is empty")
    parts = [_U32.pack(len(argv))]
    for arg in argv:
        parts.append(_U32.pack(len(arg)))
        parts.append(arg)
    return b"".join(parts)


def read_commandline(reader: "Reader", forbid_nul: bool = False) -> tuple[bytes, ...]:
    argc = read_u32(reader)
    if argc == 0:
        raise ProtocolError("ARGC is 0")
    _check_limit(reader, 4 * argc)   # each argument takes at least its length field
    argv = []
    for _ in range(argc):
        arg = read_string(reader)
        if forbid_nul and b"\0" in arg:
            raise ProtocolError("NUL byte in an argument")
        argv.append(arg)
    if not argv[0]:
        raise ProtocolError("empty ARGV[0]")
    return tuple(argv)


def decode_commandline(data: bytes, forbid_nul: bool = False) -> tuple[bytes, ...]:
    return _decode_all(data, lambda r: read_commandline(r, forbid_nul))


# --- requests --------------------------------------------------------------
class Request:
    """One request.  ``taskid``, ``timing``, ``argv``, ``count``, ``attrs`` and ``scope``
    are None when unused."""

    __slots__ = ("opcode", "taskid", "timing", "argv", "count", "attrs", "scope")

    # which fields are set depends on the opcode (the table, OPERATIONS, says); one it
    # does not set is None.  A hint names the type of a set field, joined with Any for that
    # None: a handler reads only the fields of its opcode, without a None check at each use,
    # and mypy still refuses a field used as another type.  ``count`` also carries
    # SET_FIELDS's FIELDS (an int); ``argv`` also HISTORY's RUN (an int), so its type is
    # left to the table.
    def __init__(self, opcode: int, taskid: "int | Any" = None, timing: "Timing | Any" = None,
                 argv: "Any" = None, count: "int | Any" = None,
                 attrs: "list[tuple[bytes, bytes]] | Any" = None,
                 scope: int | None = None) -> None:
        self.opcode = opcode
        self.taskid = taskid
        self.timing = timing
        self.argv = argv
        self.count = count     # NEXT_RUNS
        self.attrs = attrs     # CREATE_CRON, SET_CRON: a list of (KEY, VALUE) byte strings
        self.scope = scope     # ERROR_LOG: ERROR_LOG_DAEMON or ERROR_LOG_TASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Request) and self._key() == other._key()

    def __repr__(self) -> str:
        name = OPCODE_NAMES.get(self.opcode, hex(self.opcode))
        return (f"Request({name}, taskid={self.taskid}, timing={self.timing}, argv={self.argv}"
                + (f", count={self.count}" if self.count is not None else "")
                + (f", scope={self.scope}" if self.scope is not None else "") + ")")

    def _key(self) -> tuple:
        return (self.opcode, self.taskid, self.timing, self.argv, self.count,
                None if self.attrs is None else tuple(self.attrs), self.scope)

    @property
    def name(self) -> str:
        return OPCODE_NAMES.get(self.opcode, hex(self.opcode))


def decode_request(data: bytes) -> Request:
    """Decode exactly one request from ``data`` (strict: no trailing bytes, 1 MiB at most)."""
    return _decode_all(data, read_request, limit=MAX_REQUEST)


# --- replies ---------------------------------------------------------------
class Reply:
    """One reply.

    ``errcode`` is set for an ``ER`` reply, else None.  For an ``OK`` reply the
    payload is in the attribute that the request's reply shape names
    (:data:`OPERATIONS`):

    - ``tasks`` (LIST): a sequence of ``(taskid, Timing, argv)``; the daemon's
      is an :class:`EncodedTasks` (the same sequence, its entries already encoded)
    - ``value``: a task id (CREATE, RESET_TASKMAX, CLONE) or a count (DELETE_ALL)
    - ``runs`` (TIMES_EXITCODES): a list of ``(time, exitcode)``
    - ``output`` (STDOUT, STDERR): bytes
    - ``entries`` (ERROR_LOG): a list of ``(time, message)`` (int, bytes), oldest first
    - ``times`` (NEXT_RUNS): a list of epoch seconds
    """

    __slots__ = ("errcode", "value", "tasks", "runs", "output", "entries", "times")

    # the payload's attribute is the one its shape names (OPERATIONS), set on an OK reply
    def __init__(self, errcode: int | None = None, value: "Any" = None, tasks: "Any" = None,
                 runs: "Any" = None, output: "Any" = None, entries: "Any" = None,
                 times: "Any" = None) -> None:
        self.errcode = errcode
        self.value = value
        self.tasks = tasks
        self.runs = runs
        self.output = output
        self.entries = entries
        self.times = times

    @property
    def ok(self) -> bool:
        return self.errcode is None

    def _key(self) -> tuple:
        return (self.errcode, self.value, self.tasks, self.runs, self.output, self.entries,
                self.times)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and self._key() == other._key()

    def __repr__(self) -> str:
        if self.errcode is not None:
            return f"Reply(ER {ERRCODE_NAMES.get(self.errcode, hex(self.errcode))})"
        return (f"Reply(OK value={self.value} tasks={self.tasks} runs={self.runs} "
                f"output={self.output!r:.60})")


def error_reply(errcode: int) -> Reply:
    return Reply(errcode=errcode)


def encode_list_entry(taskid: int, timing: Timing, argv: "Sequence[bytes]") -> bytes:
    """One task of a LIST reply: TASKID, TIMING, COMMANDLINE."""
    return _U64.pack(taskid) + timing.encode() + encode_commandline(argv)


class EncodedTasks:
    """The tasks of a LIST reply, each one already encoded (:func:`encode_list_entry`).

    What the daemon's LIST handler answers from its cache: a sequence of
    ``(taskid, Timing, argv)`` like any other ``Reply.tasks`` (decoded on demand),
    whose ``entries`` the encoder joins as they are, once: the whole ``OK`` reply is kept
    (:meth:`reply`), so a LIST answered again from the same object costs no copy.
    """

    __slots__ = ("entries", "_reply")

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self._reply: bytes | None = None

    def reply(self) -> bytes:
        """The whole ``OK`` reply (count, then the entries), joined at the first call."""
        if self._reply is None:
            self._reply = _OK_U32.pack(OK, len(self.entries)) + b"".join(self.entries)
        return self._reply

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> "Iterator[Task]":
        return iter(_read_tasks(BufferReader(b"".join(self.entries)), len(self.entries)))

    def __eq__(self, other: "Any") -> bool:
        try:
            return list(self) == list(other)
        except TypeError:
            return NotImplemented

    def __repr__(self) -> str:
        return f"EncodedTasks({list(self)!r})"


def encode_runs_reply(records: "bytes | bytearray") -> bytes:
    """A TIMES_EXITCODES ``OK`` reply from already-encoded run records (the ``exit`` file)."""
    if len(records) % RUN_RECORD_SIZE:
        raise ProtocolError("run records are not a whole number of 10-byte records")
    return _OK_U32.pack(OK, len(records) // RUN_RECORD_SIZE) + bytes(records)


def encode_run(time: int, exitcode: int) -> bytes:
    return _RUN.pack(time, exitcode)


def decode_runs(records: bytes) -> list[tuple[int, int]]:
    """Decode the concatenated 10-byte run records of an ``exit`` file."""
    if len(records) % RUN_RECORD_SIZE:
        raise ProtocolError("run records are not a whole number of 10-byte records")
    return list(_RUN.iter_unpack(records))


def _read_tasks(reader: "Any", n: int) -> "list[Task]":
    """N x (TASKID, TIMING, COMMANDLINE) of a LIST reply.

    The hot loop of ``cassini -l``: it parses in place with ``unpack_from``
    over the reader's buffer (``peek``/``consume_to``, see :class:`BufferReader`;
    ``peek`` enforces the reader's limit, if any) and goes back to the reader
    only when the buffer runs out.  Same checks and errors as ``read_u64`` +
    ``read_timing`` + ``read_commandline``.  The buffer must be ``bytes`` (its
    slices are the arguments).
    """
    if not hasattr(reader, "peek"):
        reader = _Peekable(reader)
    head_size = _TASK_HEAD.size
    unpack_head = _TASK_HEAD.unpack_from
    unpack_u32 = _U32.unpack_from
    buf, pos = reader.peek(0)
    end = len(buf)
    tasks = []
    for _ in range(n):
        if pos + head_size > end:
            reader.consume_to(pos)
            buf, pos = reader.peek(head_size)
            end = len(buf)
        taskid, minutes, hours, days, argc = unpack_head(buf, pos)
        pos += head_size
        timing = Timing(minutes, hours, days)
        if argc == 0:
            raise ProtocolError("ARGC is 0")
        argv = []
        for _ in range(argc):
            if pos + 4 > end:
                reader.consume_to(pos)
                buf, pos = reader.peek(4)
                end = len(buf)
            (length,) = unpack_u32(buf, pos)
            pos += 4
            if pos + length > end:
                reader.consume_to(pos)
                buf, pos = reader.peek(length)
                end = len(buf)
            argv.append(buf[pos:pos + length])
            pos += length
        if not argv[0]:
            raise ProtocolError("empty ARGV[0]")
        tasks.append((taskid, timing, tuple(argv)))
    reader.consume_to(pos)
    return tasks


class _Peekable:
    """``peek``/``consume_to`` over a reader that only has ``read_exact``."""

    __slots__ = ("reader", "buf", "pos")

    def __init__(self, reader: "Reader") -> None:
        self.reader = reader
        self.buf = b""
        self.pos = 0

    def peek(self, n: int) -> tuple[bytes, int]:
        missing = n - (len(self.buf) - self.pos)
        if missing > 0:
            self.buf = self.buf[self.pos:] + self.reader.read_exact(missing)
            self.pos = 0
        return self.buf, self.pos

    def consume_to(self, pos: int) -> None:
        self.pos = pos



def decode_reply(data: bytes, opcode: int) -> Reply:
    """Decode exactly one reply from ``data`` (strict: no trailing bytes)."""
    return _decode_all(data, lambda r: read_reply(r, opcode))


def _decode_all(data: bytes, read: "Callable[[BufferReader], Any]",
                limit: int | None = None) -> "Any":
    reader = BufferReader(data, limit)
    value = read(reader)
    if reader.remaining():
        raise ProtocolError(f"{reader.remaining()} trailing bytes after the message")
    return value


# --- this project's own requests: ERROR_LOG's entries --------------------------------
# The reply is ``OK NBENTRIES(uint32)`` then NBENTRIES x (``TIME int64``, ``MESSAGE
# string``), oldest first, or ``ER NF``; the request's fields: ARG_SCOPE, below.
MAX_ERROR_MESSAGE = 1024       # bytes of one message on the wire and on disk


def encode_error_log_entry(when: int, message: bytes) -> bytes:
    return _EL_HEAD.pack(when, len(message)) + message


def encode_error_log_reply(entries: "Sequence[tuple[int, bytes]]") -> bytes:
    return (_OK_U32.pack(OK, len(entries))
            + b"".join(encode_error_log_entry(t, m) for t, m in entries))


def read_error_log_entries(reader: "Reader") -> list[tuple[int, bytes]]:
    n = read_u32(reader)
    entries = []
    for _ in range(n):      # a lying NBENTRIES ends in Truncated, allocating nothing
        when, length = _EL_HEAD.unpack(reader.read_exact(_EL_HEAD.size))
        if length > MAX_ERROR_MESSAGE:
            raise ProtocolError(f"error log message of {length} bytes exceeds "
                                f"{MAX_ERROR_MESSAGE}")
        entries.append((when, reader.read_exact(length)))
    return entries


# --- the operations: one table ---------------------------------------------------
# Each request's argument fields, the shape of its OK reply and the error codes it may
# answer.  Encoding and decoding below, cassini's option mapping and its rendering
# (``cassini/__main__.py``, ``cassini/render.py``) all read it; the daemon's handlers
# are in ``saturnd/commands/``.
class _Part:
    """A named piece of the table: the attribute that holds its value, how it is written
    and read."""

    __slots__ = ("name", "attr", "encode", "read")

    # ``attr``, ``encode``, ``read``: None for a Shape without payload (SHAPE_OK)
    def __init__(self, name: str, attr: "Any", encode: "Any", read: "Any") -> None:
        self.name, self.attr, self.encode, self.read = name, attr, encode, read

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class Field(_Part):
    """One argument of a request: its name in ``docs/protocol.md``, the
    :class:`Request` attribute that holds it, how it is written and read."""

    __slots__ = ()


def _encode_scope(scope: int) -> bytes:
    return bytes((scope,))


def _read_scope(reader: "Reader") -> int:
    return reader.read_exact(1)[0]


def _encode_scoped_taskid(taskid: int | None) -> bytes:
    return _U64.pack(taskid or 0)     # the daemon-wide scope sends 0


def _read_request_commandline(reader: "Reader") -> tuple[bytes, ...]:
    return read_commandline(reader, forbid_nul=True)


ARG_TASKID = Field("TASKID", "taskid", _U64.pack, read_u64)
ARG_TIMING = Field("TIMING", "timing", Timing.encode, read_timing)
ARG_COMMANDLINE = Field("COMMANDLINE", "argv", encode_commandline, _read_request_commandline)
ARG_COUNT = Field("COUNT", "count", _U32.pack, read_u32)
# ERROR_LOG (this project's own): ``EL SCOPE(uint8) TASKID(uint64)``; the SCOPE is kept in
# ``Request.scope`` (ERROR_LOG_DAEMON or ERROR_LOG_TASK), the TASKID in ``taskid``
# (None for the daemon-wide scope, sent as 0)
ARG_SCOPE = Field("SCOPE", "scope", _encode_scope, _read_scope)
ARG_SCOPED_TASKID = Field("TASKID", "taskid", _encode_scoped_taskid, read_u64)


# ATTRS (this project's own: CREATE_CRON, SET_CRON, and each task of LONG_LIST):
# ``NBATTRS uint32`` then NBATTRS x (``KEY string``, ``VALUE string``), in order; the
# keys are documented in docs/own-requests.md ("Attributes"); a reader keeps the ones
# it does not know as they are.
def encode_attrs(attrs: "Sequence[tuple[bytes, bytes]]") -> bytes:
    return _U32.pack(len(attrs)) + b"".join(
        _U32.pack(len(k)) + k + _U32.pack(len(v)) + v for k, v in attrs)


def read_attrs(reader: "Reader") -> list[tuple[bytes, bytes]]:
    n = read_u32(reader)
    if n > MAX_ATTRS:
        raise ProtocolError(f"{n} attributes: more than {MAX_ATTRS}")
    attrs = []
    for _ in range(n):
        key = read_string(reader, MAX_ATTR_KEY)
        if not key:
            raise ProtocolError("empty attribute KEY")
        attrs.append((key, read_string(reader)))
    return attrs


ARG_ATTRS = Field("ATTRS", "attrs", encode_attrs, read_attrs)


class Shape(_Part):
    """The shape of an OK reply: its name, the :class:`Reply` attribute of its payload
    (None: no payload), how the whole ``OK`` reply is written from the payload, how
    the payload is read (after ``OK``)."""

    __slots__ = ()


def _encode_u64(value: int) -> bytes:
    return _OK_U64.pack(OK, value)


def _encode_count(value: int) -> bytes:
    return _OK_U32.pack(OK, value)


def _encode_tasks(tasks: "EncodedTasks | Iterable[Task]") -> bytes:
    if type(tasks) is EncodedTasks:
        return tasks.reply()
    entries = [encode_list_entry(*task) for task in tasks]
    return _OK_U32.pack(OK, len(entries)) + b"".join(entries)


def _read_tasks_payload(reader: "Reader") -> "list[Task]":
    return _read_tasks(reader, read_u32(reader))


def _encode_runs(runs: "Iterable[tuple[int, int]]") -> bytes:
    return encode_runs_reply(b"".join(_RUN.pack(t, c) for t, c in runs))


def _read_runs(reader: "Reader") -> list[tuple[int, int]]:
    n = read_u32(reader)
    # read_exact allocates as bytes arrive, so a lying NBRUNS costs nothing
    return list(_RUN.iter_unpack(reader.read_exact(n * RUN_RECORD_SIZE)))


def encode_output_head(length: int) -> bytes:
    """The head of an OK reply carrying a string of ``length`` bytes (STDOUT, STDERR,
    STATUS): ``OK`` then the uint32 length; the bytes follow (the server streams a large
    stored output after it)."""
    return _OK_U32.pack(OK, length)


def _encode_output(output: bytes) -> bytes:
    return encode_output_head(len(output)) + output


def _encode_times(times: "Sequence[int]") -> bytes:
    return _OK_U32.pack(OK, len(times)) + b"".join(_I64.pack(t) for t in times)


def _read_times(reader: "Reader") -> list[int]:
    n = read_u32(reader)
    # read_exact allocates as bytes arrive, so a lying NBTIMES costs nothing
    return [t for (t,) in _I64.iter_unpack(reader.read_exact(8 * n))]


SHAPE_OK = Shape("OK", None, None, None)
SHAPE_U64 = Shape("OK u64", "value", _encode_u64, read_u64)
SHAPE_COUNT = Shape("OK u32 count", "value", _encode_count, read_u32)
SHAPE_LIST = Shape("LIST", "tasks", _encode_tasks, _read_tasks_payload)
SHAPE_RUNS = Shape("runs", "runs", _encode_runs, _read_runs)
SHAPE_OUTPUT = Shape("string output", "output", _encode_output, read_string)
SHAPE_ERROR_LOG = Shape("error log entries", "entries", encode_error_log_reply,
                        read_error_log_entries)
SHAPE_TIMES = Shape("times", "times", _encode_times, _read_times)


def encode_long_entry(taskid: int, timing: Timing, argv: "Sequence[bytes]",
                      attrs: "Sequence[tuple[bytes, bytes]]") -> bytes:
    """One task of a LONG_LIST reply: TASKID, TIMING, COMMANDLINE, ATTRS."""
    return encode_list_entry(taskid, timing, argv) + encode_attrs(attrs)


def _encode_long_tasks(tasks: "Sequence[Any]") -> bytes:
    return _OK_U32.pack(OK, len(tasks)) + b"".join(
        entry if type(entry) is bytes else encode_long_entry(*entry) for entry in tasks)


def _read_long_tasks(reader: "Reader") -> list[tuple[int, Timing, tuple[bytes, ...], list[tuple[bytes, bytes]]]]:
    n = read_u32(reader)
    tasks = []
    for _ in range(n):      # a lying NBTASKS ends in Truncated
        taskid = read_u64(reader)
        timing = read_timing(reader)
        argv = read_commandline(reader)
        tasks.append((taskid, timing, argv, read_attrs(reader)))
    return tasks


# LONG_LIST's payload (Reply.tasks): ``(taskid, Timing, argv, attrs)`` per task (the daemon
# may give already-encoded entries, bytes, instead)
SHAPE_LONG_LIST = Shape("long list", "tasks", _encode_long_tasks, _read_long_tasks)


def _check_cron_attrs(req: Request) -> None:
    """CREATE_CRON, SET_CRON: attributes the daemon can take (saturnd.timing.CronSpec)."""
    from saturnd.timing import CronSpec, TimingError
    try:
        CronSpec.from_attributes(req.attrs)
    except TimingError as e:
        raise ProtocolError(f"bad attribute: {e}") from None


def _check_error_log(req: Request) -> None:
    """ERROR_LOG: a known SCOPE; no TASKID for the daemon-wide log."""
    if req.scope == ERROR_LOG_DAEMON:
        req.taskid = None
    elif req.scope != ERROR_LOG_TASK:
        raise ProtocolError(f"unknown error log scope {req.scope}")


class Operation:
    """One row of the table: ``args`` (Fields, in wire order), ``reply`` (a Shape),
    ``errors`` (the ``ER`` codes it may answer), ``check`` (a further test of a
    decoded request, or None)."""

    __slots__ = ("opcode", "name", "args", "reply", "errors", "check")

    def __init__(self, opcode: int, name: str, args: tuple[Field, ...], reply: Shape,
                 errors: tuple[int, ...] = (),
                 check: "Callable[[Request], None] | None" = None) -> None:
        self.opcode, self.name, self.args, self.reply = opcode, name, args, reply
        self.errors, self.check = errors, check

    def __repr__(self) -> str:
        return f"Operation({self.name})"


OPERATIONS = {op.opcode: op for op in (
    Operation(LIST, "LIST", (), SHAPE_LIST),
    Operation(CREATE, "CREATE", (ARG_TIMING, ARG_COMMANDLINE), SHAPE_U64),
    Operation(REMOVE, "REMOVE", (ARG_TASKID,), SHAPE_OK, (NF,)),
    Operation(TIMES_EXITCODES, "TIMES_EXITCODES", (ARG_TASKID,), SHAPE_RUNS, (NF,)),
    Operation(STDOUT, "STDOUT", (ARG_TASKID,), SHAPE_OUTPUT, (NF, NR)),
    Operation(STDERR, "STDERR", (ARG_TASKID,), SHAPE_OUTPUT, (NF, NR)),
    Operation(TERMINATE, "TERMINATE", (), SHAPE_OK),
    # extensions of the seed project
    Operation(SET_CMD, "SET_CMD", (ARG_TASKID, ARG_COMMANDLINE), SHAPE_OK, (NF,)),
    Operation(DELETE_ALL, "DELETE_ALL", (), SHAPE_COUNT),
    Operation(SW_TIME, "SW_TIME", (ARG_TASKID, ARG_TIMING), SHAPE_OK, (NF,)),
    Operation(EXEC_TASK, "EXEC_TASK", (ARG_TASKID,), SHAPE_OK, (NF,)),
    Operation(RESET_TASKMAX, "RESET_TASKMAX", (), SHAPE_U64),
    # this project's own requests
    Operation(RESET_HISTORY, "RESET_HISTORY", (ARG_TASKID,), SHAPE_OK, (NF,)),
    Operation(CLONE, "CLONE", (ARG_TASKID,), SHAPE_U64, (NF,)),
    Operation(ERROR_LOG, "ERROR_LOG", (ARG_SCOPE, ARG_SCOPED_TASKID), SHAPE_ERROR_LOG, (NF,),
              _check_error_log),
    Operation(NEXT_RUNS, "NEXT_RUNS", (ARG_TASKID, ARG_COUNT), SHAPE_TIMES, (NF,)),
    # this project's own requests: cron's other fields
    Operation(LONG_LIST, "LONG_LIST", (), SHAPE_LONG_LIST),
    Operation(CREATE_CRON, "CREATE_CRON", (ARG_TIMING, ARG_COMMANDLINE, ARG_ATTRS), SHAPE_U64,
              (), _check_cron_attrs),
    Operation(SET_CRON, "SET_CRON", (ARG_TASKID, ARG_TIMING, ARG_ATTRS), SHAPE_OK, (NF,),
              _check_cron_attrs),
)}
OPCODE_NAMES = {opcode: op.name for opcode, op in OPERATIONS.items()}


def operation(opcode: int) -> Operation:
    """The table's row for ``opcode`` (:class:`ProtocolError` when there is none)."""
    op = OPERATIONS.get(opcode)
    if op is None:
        raise ProtocolError(f"unknown opcode {opcode:#06x}")
    return op


def encode_request(req: Request) -> bytes:
    parts = [_U16.pack(req.opcode)]
    for field in operation(req.opcode).args:
        parts.append(field.encode(getattr(req, field.attr)))
    return b"".join(parts)


def read_request(reader: "Reader") -> Request:
    """Read one request.  Raises :class:`ProtocolError` (or :class:`Truncated`)."""
    opcode = read_u16(reader)
    op = operation(opcode)
    req = Request(opcode)
    for field in op.args:
        setattr(req, field.attr, field.read(reader))
    if op.check is not None:
        op.check(req)
    return req


def encode_reply(opcode: int, reply: Reply) -> bytes:
    """Encode the reply to a request of kind ``opcode``."""
    if reply.errcode is not None:
        return _ER.pack(ER, reply.errcode)
    shape = operation(opcode).reply
    if shape.attr is None:
        return _OK_BYTES
    return shape.encode(getattr(reply, shape.attr))


def read_reply(reader: "Reader", opcode: int,
               read_payload: "Callable[[Any], Any] | None" = None) -> Reply:
    """Read the reply to a request of kind ``opcode`` (``read_payload``: read an ``OK``
    reply's payload with it instead of the shape's own reader; cassini reads LIST's
    straight into its printed text so)."""
    rep = read_u16(reader)
    if rep == ER:
        return Reply(errcode=read_u16(reader))
    if rep != OK:
        raise ProtocolError(f"unknown reply type {rep:#06x}")
    shape = operation(opcode).reply
    reply = Reply()
    if shape.attr is not None:
        setattr(reply, shape.attr, (read_payload or shape.read)(reader))
    return reply


_OK_BYTES = _U16.pack(OK)


# --- this project's own requests: everyday use (``docs/own-requests.md``) -------------
# -t with some fields left out, pause and resume, the daemon's status, the run history
SET_FIELDS = 0x5346       # 'SF': TASKID uint64, FIELDS uint8, TIMING -> OK | ER NF
PAUSE = 0x5041            # 'PA': TASKID uint64 -> OK | ER NF
RESUME = 0x5550           # 'UP': TASKID uint64 -> OK | ER NF
STATUS = 0x5353           # 'SS': -> OK STATUS string ("name: value" lines)
HISTORY = 0x4849          # 'HI': TASKID uint64, RUN uint64, COUNT uint32 -> OK NBRUNS
#                           N x (RUN uint64, TIME int64, EXITCODE uint16, STDOUT string,
#                           STDERR string) | ER NF | ER NR (that run is not kept)
PS = 0x5053               # 'PS': NEXT_RUNS of a paused task (it has no next run)
ERRCODE_NAMES[PS] = "PS"
FIELD_MINUTES, FIELD_HOURS, FIELD_DAYS = 1, 2, 4     # SET_FIELDS's FIELDS bits
FIELDS_ALL = FIELD_MINUTES | FIELD_HOURS | FIELD_DAYS
# SET_CRON's attribute naming the TIMING fields to replace (the others keep their values),
# as SET_FIELDS's FIELDS, in decimal; absent: all three
ATTR_FIELDS = b"fields"

# (RUN of HISTORY is kept in ``Request.argv``; FIELDS in ``count``)
_U8 = struct.Struct(">B")
_HI_HEAD = struct.Struct(">QqH")      # RUN, TIME, EXITCODE


def _check_fields(req: Request) -> None:
    if req.count & ~FIELDS_ALL:
        raise ProtocolError(f"unknown timing field bits {req.count:#04x}")


ARG_FIELDS = Field("FIELDS", "count", _U8.pack, lambda r: r.read_exact(1)[0])
ARG_RUN = Field("RUN", "argv", lambda run: _U64.pack(run or 0), read_u64)


def encode_history_reply(runs: "Sequence[tuple[int, int, int, bytes, bytes]]") -> bytes:
    """``runs``: (run, time, exitcode, stdout bytes, stderr bytes), oldest first."""
    parts = [_OK_U32.pack(OK, len(runs))]
    for run, when, code, out, err in runs:
        parts += [_HI_HEAD.pack(run, when, code), _U32.pack(len(out)), out,
                  _U32.pack(len(err)), err]
    return b"".join(parts)


def _read_history(reader: "Reader") -> list[tuple[int, int, int, bytes, bytes]]:
    n = read_u32(reader)
    runs = []
    for _ in range(n):      # a lying NBRUNS ends in Truncated, allocating nothing
        run, when, code = _HI_HEAD.unpack(reader.read_exact(_HI_HEAD.size))
        runs.append((run, when, code, read_string(reader), read_string(reader)))
    return runs


SHAPE_HISTORY = Shape("history", "runs", encode_history_reply, _read_history)

OPERATIONS.update({op.opcode: op for op in (
    Operation(SET_FIELDS, "SET_FIELDS", (ARG_TASKID, ARG_FIELDS, ARG_TIMING), SHAPE_OK, (NF,),
              _check_fields),
    Operation(PAUSE, "PAUSE", (ARG_TASKID,), SHAPE_OK, (NF,)),
    Operation(RESUME, "RESUME", (ARG_TASKID,), SHAPE_OK, (NF,)),
    Operation(STATUS, "STATUS", (), SHAPE_OUTPUT),
    Operation(HISTORY, "HISTORY", (ARG_TASKID, ARG_RUN, ARG_COUNT), SHAPE_HISTORY, (NF, NR)),
)})
OPERATIONS[NEXT_RUNS].errors = (NF, PS)
OPCODE_NAMES.update({opcode: op.name for opcode, op in OPERATIONS.items()})

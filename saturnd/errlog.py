"""The error log (this project's own ERROR_LOG request, ``cassini -E`` / ``-D``).

What a user otherwise never learns, with its time: a command that could not
start, a run killed at shutdown, output cut at the cap, minutes run late or
skipped after a clock change, a damaged entry skipped at start-up, a request
the daemon could not honour.  Per task where it concerns a task, daemon-wide
otherwise::

    DATA_DIR/errors              the daemon-wide log
    DATA_DIR/tasks/<ID>/errors   one task's log (removed with the task; kept by
                                 RESET_HISTORY, which clears runs, not errors)

Each file is a sequence of entries ``LENGTH uint32, CRC32 uint32, TIME int64,
MESSAGE`` (LENGTH counts TIME and MESSAGE; CRC32 covers them), appended with
one ``write`` and fsynced.  Reading stops at the first entry that is incomplete
or fails its CRC (a crash in the middle of an append, or a file overwritten),
so a torn entry is never shown as an entry -- but never dropped silently: a
reader gets a last entry saying how many bytes could not be read, and the
next append, which cuts them off, records how many it dropped.  A file is
bounded: when an append would take it past its cap (``TASK_CAP`` /
``DAEMON_CAP`` bytes), the oldest entries are dropped so that the newest fit
in half the cap, and the file is replaced atomically (temporary file, fsync,
rename); at start-up the daemon-wide file is brought back within its cap the
same way when it is over it or damaged (e.g. filled with garbage).  A message
is cut to ``protocol.MAX_ERROR_MESSAGE`` bytes.

The files are the store's (``Store.errors_path``, ``Store.task_errors_path``) and are
written through the store's :class:`~saturnd.fsio.FileOps` (``store.fs``), so a fault
injected there reaches the error log too.  The daemon makes one :class:`ErrorLog` and
hands it to its users (the store, the runner, the scheduler, the failure notice, the
mailer, the request handlers through ``ctx.errors``); a part made without one gets
:data:`NONE`, which keeps nothing.  Recording never raises (a log that cannot be written
is reported in the daemon's text log only).
"""

import binascii
import os
import struct
import threading
import time

from . import protocol
from .clock import MAX_JUMP
from .fsio import DEFAULT as _DEFAULT_FS

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable

    from .clock import Clock
    from .fsio import FileOps
    from .store import Store

TASK_CAP = 16 << 10         # bytes per task log (about 150 typical entries)
DAEMON_CAP = 64 << 10       # bytes of the daemon-wide log
FILE_NAME = "errors"

_HEAD = struct.Struct(">IIq")     # LENGTH, CRC32, TIME
_TIME = struct.Struct(">q")

# --- the file format -----------------------------------------------------------------
def encode_entry(when: float, message: bytes) -> bytes:
    body = _TIME.pack(int(when)) + message
    return struct.pack(">II", len(body), binascii.crc32(body)) + body


def parse(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """``(entries, valid_length)``: the whole entries of ``data``, and where they end."""
    entries = []
    pos = 0
    end = len(data)
    while pos + _HEAD.size <= end:
        length, crc, when = _HEAD.unpack_from(data, pos)
        stop = pos + 8 + length
        if length < 8 or stop > end or length - 8 > protocol.MAX_ERROR_MESSAGE:
            break
        if binascii.crc32(data[pos + 8:stop]) != crc:
            break
        entries.append((when, bytes(data[pos + 16:stop])))
        pos = stop
    return entries, pos


def damage_text(nbytes: int, where: str) -> bytes:
    return (f"error log damaged: {nbytes} byte(s) {where} are not whole entries "
            "(torn by a crash, or overwritten)").encode()


def _newest_within(entries: list[tuple[int, bytes]], room: int) -> list[bytes]:
    kept = []
    for when_, msg in reversed(entries):
        room -= 16 + len(msg)
        if room < 0:
            break
        kept.append(encode_entry(when_, msg))
    kept.reverse()
    return kept


def read_file(path: str, fs: "FileOps" = _DEFAULT_FS) -> list[tuple[int, bytes]]:
    """The entries of the log file ``path``, oldest first ([] when missing)."""
    try:
        data = fs.read_file(path)
    except FileNotFoundError:
        return []
    return parse(data)[0]


def append(path: str, when: int, message: bytes, cap: int, fs: "FileOps" = _DEFAULT_FS) -> None:
    """Append one entry to ``path``, keeping the file within ``cap`` bytes (every file
    operation through ``fs``, a :class:`saturnd.fsio.FileOps`)."""
    record = encode_entry(when, message)
    fd = fs.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        data = b""
        size = fs.fstat(fd).st_size
        if size:
            data = fs.pread(fd, size, 0)
        entries, valid = parse(data)
        if valid < len(data):               # a torn entry goes first, but is told
            record = encode_entry(when, damage_text(len(data) - valid, "dropped")) + record
        if valid + len(record) <= cap:
            if valid < len(data):
                fs.ftruncate(fd, valid)
            fs.write(fd, record)
            fs.fsync(fd)
            return
    finally:
        fs.close(fd)
    # full: keep the newest entries that fit in half the cap, then the new one
    kept = _newest_within(entries, cap // 2 - len(record))
    kept.append(record)
    fs.write_atomic(path, b"".join(kept))


def bring_within(path: str, when: int, cap: int, fs: "FileOps" = _DEFAULT_FS) -> str | None:
    """At start-up: a file over ``cap`` or with bytes that are not whole entries is
    rewritten with its newest whole entries (half the cap) and an entry telling what was
    dropped.  Returns that text, or None when the file was fine."""
    try:
        data = fs.read_file(path)
    except FileNotFoundError:
        return None
    entries, valid = parse(data)
    if valid == len(data) and len(data) <= cap:
        return None
    kept = _newest_within(entries, cap // 2 - 16 - 200)
    text = (f"error log over its cap or damaged at start-up ({len(data)} bytes): "
            f"{len(data) - valid} damaged byte(s) and {len(entries) - len(kept)} older "
            f"entries dropped").encode()
    fs.write_atomic(path, b"".join(kept) + encode_entry(when, text))
    return text.decode()


class ErrorLog:
    """The daemon's error log in ``store``'s data directory, written through ``store.fs``
    (task logs need the store's lock, so that a log never lands in a task directory being
    removed or cloned)."""

    def __init__(self, store: "Store", clock: "Clock", log: "Callable[[str], object]") -> None:
        self.daemon_path = store.errors_path
        self.clock = clock
        self.store = store
        self.fs = store.fs
        self.log = log
        self.lock = threading.Lock()
        try:
            text = bring_within(self.daemon_path, int(clock.now()), DAEMON_CAP, self.fs)
        except OSError as e:
            text = f"cannot check it: {e.strerror or e}"
        if text:
            log(f"errlog: {self.daemon_path}: {text}")

    def task_path(self, taskid: int) -> str:
        return self.store.task_errors_path(taskid)

    def _message(self, message: str | bytes) -> bytes:
        if isinstance(message, str):
            message = message.encode("utf-8", "backslashreplace")
        return message[:protocol.MAX_ERROR_MESSAGE]

    def add_daemon(self, message: str | bytes) -> None:
        """Record ``message`` in the daemon-wide log."""
        self._add(self.daemon_path, message, DAEMON_CAP)

    def add_task(self, taskid: int, message: str | bytes) -> None:
        """Record ``message`` in task ``taskid``'s log (dropped if the task does not exist)."""
        with self.store.lock:
            if taskid not in self.store.tasks:
                return
            self._add(self.task_path(taskid), message, TASK_CAP)

    def clock_change(self, moved: int, considered: int, minute: int) -> None:
        """The scheduler saw the wall clock move by ``moved`` minutes at boundary ``minute``
        and considers ``considered`` wall minutes (see scheduler.minutes_to_run)."""
        text = clock_change_text(moved, considered, minute)
        if text is not None:
            self.add_daemon(text)

    def _add(self, path: str, message: str | bytes, cap: int) -> None:
        try:
            when = int(self.clock.now())
            with self.lock:
                append(path, when, self._message(message), cap, self.fs)
        except Exception as e:     # never fail the caller because of the error log
            self.log(f"errlog: cannot record in {path!r}: "
                     f"{getattr(e, 'strerror', None) or e}")

    def entries(self, taskid: int | None = None) -> list[tuple[int, bytes]]:
        """The entries of the daemon log (``taskid`` None) or of one task's log."""
        path = self.daemon_path if taskid is None else self.task_path(taskid)
        with self.lock:
            try:
                fd = self.fs.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return []
            try:
                mtime = self.fs.fstat(fd).st_mtime
                data = _read_fd(self.fs, fd)
            finally:
                self.fs.close(fd)
        entries, valid = parse(data)
        if valid < len(data):       # told, not dropped silently (cut at the next append)
            entries.append((int(mtime), damage_text(len(data) - valid, "at the end")))
        return entries


class NoErrorLog(ErrorLog):
    """An error log that keeps nothing: what a part made without the daemon's gets."""

    def __init__(self) -> None:   # no store, no file
        pass

    def add_daemon(self, message: str | bytes) -> None:
        pass

    def add_task(self, taskid: int, message: str | bytes) -> None:
        pass

    def clock_change(self, moved: int, considered: int, minute: int) -> None:
        pass

    def entries(self, taskid: int | None = None) -> list[tuple[int, bytes]]:
        return []


NONE = NoErrorLog()


def _read_fd(fs: "FileOps", fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = fs.read(fd, 1 << 16)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def clock_change_text(moved: int, considered: int, minute: int) -> str | None:
    """The entry for a clock move of ``moved`` minutes (None: a plain minute step)."""
    if moved == 1:
        return None
    at = time.strftime("%H:%M", time.localtime(minute))
    if moved > 1 and considered:
        return (f"clock moved forward by {moved} min at {at}: the tasks due in the "
                f"{moved - 1} minute(s) skipped over ran late, at {at}")
    if moved > 1:
        return (f"clock moved forward by {moved} min at {at}: the {moved - 1} minute(s) "
                f"skipped over were not run (jump over 3 hours)")
    if moved < -MAX_JUMP:
        return (f"clock moved back by {-moved} min at {at}: taken as the new time; "
                f"minutes already run may run again")
    return (f"clock moved back by {-moved} min at {at}: no task runs until the "
            f"clock passes the last minute already run")


# --- message texts (kept here so that the hooks stay one line) ---------------------------
def _hhmm(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def over_cap(cap: int, *paths: str) -> bool:
    """True when one of the spool files ``paths`` holds more than ``cap`` bytes."""
    for path in paths:
        try:
            if os.stat(path).st_size > cap:
                return True
        except OSError:
            pass
    return False


def cut_text(when: float, cap: int) -> str:
    return f"run of {_hhmm(when)}: output cut to the first {cap} bytes (output cap)"


def killed_text(when: float, grace: float) -> str:
    return f"run of {_hhmm(when)} killed at shutdown (still running after {grace:g} s)"

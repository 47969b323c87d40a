"""The on-disk task store (the C project's layout; docs/saturnd.md, "Storage").

::

    DATA_DIR/taskid_max             next id to hand out (uint64, big-endian)
    DATA_DIR/tasks/<ID>/argv        command line (wire encoding)
    DATA_DIR/tasks/<ID>/time_exec   timing (wire encoding, 13 bytes)
    DATA_DIR/tasks/<ID>/exit        10-byte (TIME int64, EXITCODE uint16) records
    DATA_DIR/tasks/<ID>/stdout      stdout of the last finished run
    DATA_DIR/tasks/<ID>/stderr      stderr of the last finished run
    DATA_DIR/tasks/<ID>/cron        cron attributes beyond TIMING (this project's own;
                                    absent for a task that never had any): ATTRS wire
                                    encoding, plus a "timing" key: the TIMING they go with
    DATA_DIR/last_minute            last minute the scheduler processed (int64; catch-up)
    DATA_DIR/errors                 the daemon-wide error log (saturnd/errlog.py)
    DATA_DIR/tasks/<ID>/errors      one task's error log (kept by reset_history)
    DATA_DIR/tmp/    tasks being built      (cleared at start-up)
    DATA_DIR/trash/  tasks being removed    (cleared at start-up)
    DATA_DIR/runs/   spool files of runs    (cleared at start-up)

Durability: whole files are written to a temporary name, fsynced, renamed and
the directory fsynced; a new task is built in ``tmp/`` and renamed into
``tasks/`` last; a task is removed by renaming it into ``trash/`` first; a
finished run is published by staging its outputs in the task's directory as
``.stdout.new.N`` / ``.stderr.new.N`` (N: the size of ``exit`` before), then
appending its ``exit`` record (the commit point), then renaming the outputs
into place.  When descendants of the run still hold the spool files open (its
process group lives on), the outputs are *copies* of their first ``cap`` bytes
instead, so that what they write later never reaches a recorded output.  A
record is written whole or not at all: a short or failed append is cut back to the previous size and
logged, and the staged outputs go with it.  At start-up a torn record is
dropped (also one torn in the middle by an older daemon: the whole records
around it are kept), and staged outputs take their place if their record made
it (``exit`` longer than N), else go: after a crash, stdout/stderr always
belong to the last recorded run.  Every in-memory change happens only after
the disk change succeeded, so a storage failure (``OSError``) leaves the store
as it was and the caller answers with the empty reply.

DELETE_ALL moves the whole ``tasks/`` directory into ``trash/`` in one rename
(every task goes, or none does) and clears it afterwards; a leftover is cleared
at start-up like the rest of ``trash/``.  A ``taskid_max`` that is not 8 bytes
or holds an id no daemon could have reached (>= 2**63) is damaged: logged and
rebuilt from the highest task id.

The store knows nothing about requests; it is guarded by one re-entrant lock.  Every
file operation goes through ``store.fs`` (a :class:`saturnd.fsio.FileOps`, the I/O seam
that fault tests replace).
"""

import errno
import itertools
import marshal
import os
import struct
import threading
import time
import zlib

from . import errlog, protocol
from .fsio import FileOps
from .timing import PLAIN, CronSpec, TimingError

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable, Iterator
    from typing import Any

    # an entry of the start-up index: the folder's name, its task id, inode, mtime_ns, the
    # TIMING's three fields, argv, the cron file (or None), paused, the LIST entry
    IndexEntry = tuple[Any, ...]

_U64 = struct.Struct(">Q")
_RUN = struct.Struct(">qH")
RECORD = protocol.RUN_RECORD_SIZE
CRON_TIMING_KEY = b"timing"  # in the cron file: the TIMING its attributes go with
ID_DAMAGED = 1 << 63        # no daemon hands out that many ids one by one
TIME_PLAUSIBLE = 1 << 36    # |TIME| of a real record (year 4147); for torn-record repair
SMALL_OUTPUT = 1 << 16      # outputs up to this size are served from memory, others streamed
COPY_CHUNK = 1 << 20
SWEEP_QUIET = 0.05          # s without a change before removed tasks are deleted (trash/)
INDEX_MAGIC = b"saturnd index 4\n"   # then CRC-32 of the rest, then marshal'ed entries
PAUSED = "paused"           # DATA_DIR/tasks/<ID>/paused: the task is paused (PAUSE/RESUME)


class NotFound(LookupError):
    """No task with that id."""


class NeverRan(LookupError):
    """The task has never finished a run."""


def kept_fields(task: "Task", fields: int, timing: protocol.Timing) -> protocol.Timing:
    """The timing ``task`` gets when only the fields of ``timing`` that ``fields`` names
    (protocol.FIELD_*) change: the others keep their values (every value, for a @reboot
    task, which has none: given a timing, it becomes a timed task)."""
    old = protocol.EVERY_MINUTE if task.cron.reboot else task.timing
    return protocol.Timing(
        timing.minutes if fields & protocol.FIELD_MINUTES else old.minutes,
        timing.hours if fields & protocol.FIELD_HOURS else old.hours,
        timing.days if fields & protocol.FIELD_DAYS else old.days)


class Task:
    """One task in memory.  Every change gives it a new ``token``, unique in the store."""

    __slots__ = ("taskid", "timing", "argv", "token",
                 "cron",        # a timing.CronSpec: day of month, month, @reboot, env...
                 "paused")      # kept, not run by the scheduler (``paused`` file)

    def __init__(self, taskid: int, timing: protocol.Timing, argv: tuple[bytes, ...], token: int,
                 cron: CronSpec = PLAIN, paused: bool = False) -> None:
        self.taskid = taskid
        self.timing = timing
        self.argv = argv
        self.token = token
        self.cron = cron
        self.paused = paused

    def snapshot(self) -> "Task":
        return Task(self.taskid, self.timing, self.argv, self.token, self.cron, self.paused)


def _is_canonical_id(name: str) -> bool:
    return name.isascii() and name.isdigit() and str(int(name)) == name and int(name) < 1 << 64


class _Tokens:
    """Task tokens, 1, 2, 3...: an iterator that remembers the latest it handed out."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = 0

    def __iter__(self) -> "_Tokens":
        return self

    def __next__(self) -> int:
        self.last += 1
        return self.last


class Store:
    def __init__(self, data_dir: str, log: "Callable[[str], object]",
                 fs: FileOps | None = None) -> None:
        self.root = os.path.abspath(data_dir)
        self.tasks_dir = os.path.join(self.root, "tasks")
        self.tmp_dir = os.path.join(self.root, "tmp")
        self.trash_dir = os.path.join(self.root, "trash")
        self.runs_dir = os.path.join(self.root, "runs")
        self.taskid_max_path = os.path.join(self.root, "taskid_max")
        self.index_path = os.path.join(self.root, "index")
        self._index_on_disk = False     # DATA_DIR/index may exist: delete before a change
        self._stored_max = -1           # taskid_max as on disk (-1: unknown)
        self.list_seed: dict[object, bytes] | None = {}   # token -> LIST entry, from the index (commands/list.py)
        self._sweep_queue: list[str] = []   # removed tasks in trash/ to delete (background)
        self._last_change = 0.0             # time.monotonic() of the last change
        self._sweep_cond = threading.Condition()
        self._sweeper: threading.Thread | None = None
        self.log = log
        self.fs = fs if fs is not None else FileOps()   # the I/O seam (saturnd/fsio.py)
        self.lock = threading.RLock()
        self.tasks: dict[int, Task] = {}
        self.next_id = 0
        self._tokens = _Tokens()
        self._spool = itertools.count(1)
        # (taskid, run number, task dir), after a run is recorded
        self.on_published: Callable[[int, int, str], object] | None = None
        self.errors_path = os.path.join(self.root, errlog.FILE_NAME)
        self.errors: errlog.ErrorLog = errlog.NONE    # the error log (Store.open), told of damage found

    # --- start-up ---------------------------------------------------------
    def open(self, errors: "errlog.ErrorLog | None" = None) -> None:
        """Create the layout if missing, clean leftovers, load every task; damage found is
        recorded in ``errors`` (a :class:`saturnd.errlog.ErrorLog`, kept as ``self.errors``)."""
        if errors is not None:
            self.errors = errors
        with self.lock:
            self.fs.makedirs(self.root, mode=0o700, exist_ok=True)
            for d in (self.tasks_dir, self.tmp_dir, self.trash_dir, self.runs_dir):
                self.fs.makedirs(d, mode=0o700, exist_ok=True)
            for d in (self.tmp_dir, self.trash_dir, self.runs_dir):
                self._clear(d)
            stored_max = self._read_taskid_max()
            self._stored_max = -1 if stored_max is None else stored_max
            index, index_mtime = self._read_index()
            highest = -1
            self.tasks = {}
            names = self.fs.listdir(self.tasks_dir)
            if index and index_mtime is not None:     # a whole index has its mtime
                names = self._indexed_tasks(names, index, index_mtime)
                if self.tasks:
                    highest = max(self.tasks)
            for name in sorted(names):
                path = os.path.join(self.tasks_dir, name)
                if not _is_canonical_id(name):
                    self.log(f"store: skipping foreign entry {path!r}")
                    continue
                taskid = int(name)
                highest = max(highest, taskid)
                task = self._load_task(taskid, path)
                if task is not None:
                    self.tasks[taskid] = task
            self._drop_index(index_mtime is not None)
            if stored_max is None or stored_max >= ID_DAMAGED:
                self.next_id = highest + 1
                if stored_max is not None:
                    self.log(f"store: taskid_max {stored_max} is damaged (beyond any id handed "
                             f"out); rebuilt from the highest task id: next id {self.next_id}")
                try:
                    self.fs.write_atomic(self.taskid_max_path, _U64.pack(self.next_id))
                    self._stored_max = self.next_id
                except OSError as e:
                    self.log(f"store: cannot rewrite taskid_max: {e.strerror}")
            else:
                self.next_id = max(stored_max, highest + 1)

    # --- the start-up index (DATA_DIR/index) --------------------------------
    # Written at a clean stop (:meth:`save_index`), read and deleted at the next start
    # before anything is served: a crash never leaves one that is behind the folders.  It
    # holds what loading a task reads from 3-4 files (argv, timing, cron attributes,
    # paused), with the inode and mtime of the task's folder when it was written; a folder
    # whose entry differs, or was changed no earlier than the index was written, or that
    # the index does not name, is read from its files.  A damaged index (its CRC, its
    # shape) is ignored: every folder is read.  Editing a file *inside* a task folder by hand
    # (which changes no folder mtime) needs the index deleted first.
    def _read_index(self) -> "tuple[dict[str, IndexEntry], int | None]":
        """``({taskid: entry}, index mtime_ns)``; ``({}, None)`` when there is none,
        ``({}, mtime)`` when it is damaged (logged)."""
        try:
            fd = self.fs.open(self.index_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}, None
        except OSError as e:
            self.log(f"store: cannot open the index: {e.strerror}; reading every task")
            return {}, None
        try:
            mtime = self.fs.fstat(fd).st_mtime_ns
            chunks = []
            while True:
                data = self.fs.read(fd, 1 << 20)
                if not data:
                    break
                chunks.append(data)
        except OSError as e:
            self.log(f"store: cannot read the index: {e.strerror}; reading every task")
            return {}, 0
        finally:
            self.fs.close(fd)
        data = b"".join(chunks)
        head = len(INDEX_MAGIC) + 4
        try:
            if (data[:len(INDEX_MAGIC)] != INDEX_MAGIC
                    or zlib.crc32(data[head:]) != int.from_bytes(data[head - 4:head], "big")):
                raise ValueError("bad magic or CRC")
            entries = marshal.loads(data[head:])
            # the CRC says these are the bytes a clean stop wrote: only the shape is checked
            index = {e[0]: e for e in entries if len(e) == 11}
            if len(index) != len(entries):
                raise ValueError("an entry of the wrong shape")
        except (ValueError, TypeError, EOFError) as e:
            self.log(f"store: the index is damaged ({e}); reading every task")
            return {}, 0
        return index, mtime

    def _indexed_tasks(self, names: list[str], index: "dict[str, IndexEntry]",
                       index_mtime: int) -> list[str]:
        """Put in ``self.tasks`` the tasks of ``names`` (entries of ``tasks/``) that the
        index has for the very folder it saw; returns the other names (to read)."""
        rest: list[str] = []
        tasks = self.tasks
        tokens = self._tokens
        stat = self.fs.stat
        Timing = protocol.Timing
        timings: dict[object, protocol.Timing] = {}
        seed = self.list_seed
        if seed is None:         # LIST took the seed already: keep a fresh one
            seed = self.list_seed = {}
        dir_fd = self.fs.open(self.tasks_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in names:
                entry = index.get(name)
                if entry is None:
                    rest.append(name)
                    continue
                (_, taskid, ino, mtime_ns, minutes, hours, days, argv, cron_file, paused,
                 list_entry) = entry
                try:
                    st = stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if (st.st_ino != ino or st.st_mtime_ns != mtime_ns
                            or mtime_ns >= index_mtime):
                        rest.append(name)
                        continue
                    cron = PLAIN
                    if cron_file is not None:
                        cron = CronSpec.from_attributes(
                            protocol._decode_all(cron_file, protocol.read_attrs))
                    if type(argv) is not tuple or not argv:
                        raise ValueError("a command line of the wrong shape")
                    key = (minutes, hours, days)
                    timing = timings.get(key)
                    if timing is None:      # one Timing per distinct value (never mutated)
                        timing = timings[key] = Timing(minutes, hours, days)
                    task = Task(taskid, timing, argv, next(tokens), cron, paused is True)
                except (OSError, TimingError, ValueError, TypeError):
                    rest.append(name)
                    continue
                tasks[taskid] = task
                if type(list_entry) is bytes:
                    seed[task.token] = list_entry
        finally:
            self.fs.close(dir_fd)
        return rest

    def _drop_index(self, present: bool) -> None:
        """Delete the index (durably) before anything changes; else :meth:`_changing`
        tries again before the first change."""
        self._index_on_disk = present
        if present:
            try:
                self._changing()
            except OSError as e:
                self.log(f"store: cannot delete the index: {e.strerror}; "
                         f"every change tries again first")

    def _changing(self) -> None:
        """Called before every change of what the index holds: no index may outlive it."""
        self._last_change = time.monotonic()
        if self._index_on_disk:
            try:
                self.fs.unlink(self.index_path)
            except FileNotFoundError:
                pass
            self.fs.fsync_dir(self.root)
            self._index_on_disk = False

    def save_index(self) -> None:
        """Write the index of every task (at a clean stop).  Failure: logged, no index
        (the next start reads every folder)."""
        with self.lock:
            try:
                entries = []
                for taskid in sorted(self.tasks):
                    task = self.tasks[taskid]
                    st = self.fs.stat(os.path.join(self.tasks_dir, str(taskid)),
                                      follow_symlinks=False)
                    timing = task.timing
                    entries.append((str(taskid), taskid, st.st_ino, st.st_mtime_ns,
                                    timing.minutes,
                                    timing.hours, timing.days, tuple(task.argv),
                                    None if task.cron.plain
                                    else self._cron_file(task.timing, task.cron),
                                    bool(task.paused),
                                    protocol.encode_list_entry(taskid, timing, task.argv)))
                payload = marshal.dumps(entries)
                self.fs.write_atomic(self.index_path, INDEX_MAGIC
                                     + zlib.crc32(payload).to_bytes(4, "big") + payload)
                self._index_on_disk = True
            except OSError as e:
                self.log(f"store: cannot write the index: {e.strerror or e}")
                self.fs.unlink_quiet(self.index_path)

    def _clear(self, directory: str) -> None:
        for name in self.fs.listdir(directory):
            path = os.path.join(directory, name)
            try:
                if self.fs.isdir(path) and not self.fs.islink(path):
                    self.fs.rmtree(path)
                else:
                    self.fs.unlink(path)
            except OSError as e:
                self.log(f"store: cannot clear {path!r}: {e.strerror}")

    def _read_taskid_max(self) -> int | None:
        try:
            data = self.fs.read_file(self.taskid_max_path)
        except FileNotFoundError:
            return 0
        except OSError as e:
            self.log(f"store: cannot read taskid_max: {e.strerror}")
            return 0
        if len(data) != 8:
            self.log(f"store: taskid_max has {len(data)} bytes, expected 8: damaged; "
                     f"rebuilt from the highest task id")
            return None
        return _U64.unpack(data)[0]

    def _load_task(self, taskid: int, path: str) -> Task | None:
        try:
            if not self.fs.isdir(path) or self.fs.islink(path):
                raise ValueError("not a directory")
            def read(file: str) -> bytes:     # a symlink in the data folder is never followed
                if self.fs.islink(file):
                    raise ValueError(f"{os.path.basename(file)} is a symlink (not followed)")
                return self.fs.read_file(file)
            if self.fs.islink(os.path.join(path, "exit")):
                raise ValueError("exit is a symlink (not followed)")
            argv = protocol.decode_commandline(read(os.path.join(path, "argv")), forbid_nul=True)
            timing = protocol.decode_timing(read(os.path.join(path, "time_exec")))
            cron, cron_timing = self._load_cron(path)
            if cron_timing is not None and cron_timing != timing:
                # a change cut short between its commit point (the cron file) and time_exec
                self.log(f"store: task {taskid}: completing a timing change cut short")
                timing = cron_timing
                self.fs.write_atomic(os.path.join(path, "time_exec"), timing.encode())
            exit_path = os.path.join(path, "exit")
            try:
                size = self.fs.stat(exit_path).st_size
            except FileNotFoundError:
                self.fs.write_file(exit_path, b"")
                size = 0
            if size % RECORD:
                size = self._repair_records(taskid, exit_path)
                self.errors.add_daemon(f"task {taskid}: a torn run record was dropped at start-up")
            self._finish_publish(taskid, path, size)
        except (OSError, ValueError) as e:   # ProtocolError is a ValueError
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self.log(f"store: skipping damaged task {path!r}: {reason}")
            self.errors.add_daemon(f"damaged task {taskid} skipped at start-up: {reason}")
            return None
        return Task(taskid, timing, argv, next(self._tokens), cron,
                    paused=self.fs.exists(os.path.join(path, PAUSED)))

    def _load_cron(self, path: str) -> tuple[CronSpec, protocol.Timing | None]:
        """The task's cron attributes (``cron`` file; none: a reference task's) and the
        TIMING written with them (None: none)."""
        try:
            data = self.fs.read_file(os.path.join(path, "cron"))
        except FileNotFoundError:
            return PLAIN, None
        try:
            attrs = protocol._decode_all(data, protocol.read_attrs)
            timing = dict(attrs).get(CRON_TIMING_KEY)
            return (CronSpec.from_attributes(attrs),
                    None if timing is None else protocol.decode_timing(timing))
        except TimingError as e:
            raise ValueError(f"cron attributes: {e}") from None

    def _cron_file(self, timing: protocol.Timing, cron: CronSpec) -> bytes:
        """The ``cron`` file's bytes: the attributes, and the TIMING they go with (so that a
        change of both has one commit point: this file; ``time_exec`` follows)."""
        return protocol.encode_attrs(cron.attributes() + [(CRON_TIMING_KEY, timing.encode())])

    def _repair_records(self, taskid: int, exit_path: str) -> int:
        """Drop the torn record of an ``exit`` file whose size is not whole records; keep
        every whole record around it.  Returns the new size."""
        data = self.fs.read_file(exit_path)
        torn = len(data) % RECORD
        at, kept = whole_records(data)
        self.log(f"store: task {taskid}: dropping a torn run record ({torn} bytes at offset "
                 f"{at}); {len(kept) // RECORD} whole records kept")
        if at == len(kept):         # at the end: cut it off
            fd = self.fs.open(exit_path, os.O_WRONLY)
            try:
                self.fs.ftruncate(fd, len(kept))
                self.fs.fsync(fd)
            finally:
                self.fs.close(fd)
        else:
            self.fs.write_atomic(exit_path, kept)
        return len(kept)

    def _finish_publish(self, taskid: int, path: str, size: int) -> None:
        """Settle a publication cut short by a crash (see :meth:`publish`).

        ``.stdout.new.N`` / ``.stderr.new.N`` are a run's outputs staged while the ``exit``
        file had N bytes: its record was appended (committed) when the file is now longer,
        so they take their place; otherwise the run never finished and they go.
        """
        for name in self.fs.listdir(path):
            for stream in ("stdout", "stderr"):
                prefix = f".{stream}.new."
                if not name.startswith(prefix):
                    continue
                staged = os.path.join(path, name)
                tail = name[len(prefix):]
                try:
                    if tail.isdigit() and size > int(tail):
                        self.log(f"store: task {taskid}: completing the publication of a run")
                        self.fs.replace(staged, os.path.join(path, stream))
                    else:
                        self.fs.unlink(staged)
                except OSError as e:
                    self.log(f"store: task {taskid}: cannot settle {staged!r}: {e.strerror}")

    # --- queries ------------------------------------------------------------
    def list_key(self) -> tuple[int, int]:
        """A value that differs whenever the tasks' ids, timings or command lines may differ
        (call it holding ``lock``): how many tasks there are, and the latest token handed out.
        Every task put in place or changed gets a new token, which raises the second number;
        removals alone lower the first.  LIST answers from memory while it stays the same
        (commands/list.py)."""
        return (len(self.tasks), self._tokens.last)

    def list_tasks(self) -> list[Task]:
        with self.lock:
            return [self.tasks[i].snapshot() for i in sorted(self.tasks)]

    def get(self, taskid: int) -> Task:
        """A snapshot of the task (consistent argv, timing and token)."""
        with self.lock:
            return self._get(taskid).snapshot()

    def _get(self, taskid: int) -> Task:
        with self.lock:
            task = self.tasks.get(taskid)
            if task is None:
                raise NotFound(taskid)
            return task

    def runs(self, taskid: int) -> bytes:
        """The raw ``exit`` records (bytes, whole records only)."""
        with self.lock:
            self._get(taskid)
            try:
                data = self.fs.read_file(self._path(taskid, "exit"))
            except FileNotFoundError:
                data = b""
            return data[: len(data) - len(data) % RECORD]

    def output(self, taskid: int, stream: str) -> bytes:
        """The bytes of ``stream`` ("stdout"/"stderr") of the last finished run."""
        out = self.output_file(taskid, stream)
        if isinstance(out, OutputFile):
            with out:
                return out.read_all()
        return out

    def output_file(self, taskid: int, stream: str) -> "bytes | OutputFile":
        """``stream`` of the last finished run: its bytes when small, else an open
        :class:`OutputFile` to stream (the caller closes it).  A published output is never
        written again (the next run's replaces it by a rename), so the open file is the
        output of the run that was last when this was called."""
        with self.lock:
            self._get(taskid)
            try:
                ran = self.fs.stat(self._path(taskid, "exit")).st_size >= RECORD
            except FileNotFoundError:
                ran = False
            if not ran:
                raise NeverRan(taskid)
            try:
                fd = self.fs.open(self._path(taskid, stream), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return b""
            out = OutputFile(fd, self.fs)
            if out.size <= SMALL_OUTPUT:
                with out:
                    return out.read_all()
            return out

    def _path(self, taskid: int, name: str) -> str:
        return os.path.join(self.tasks_dir, str(taskid), name)

    def task_errors_path(self, taskid: int) -> str:
        """Where task ``taskid``'s error log lives (saturnd/errlog.py)."""
        return self._path(taskid, errlog.FILE_NAME)

    # --- changes ------------------------------------------------------------
    def create(self, timing: protocol.Timing, argv: tuple[bytes, ...],
               cron: CronSpec = PLAIN) -> int:
        """A new task, durable when this returns.

        Syncs: each non-empty file of the task once, written first and synced after (one
        journal commit for them all), the build directory once (its entries), ``tasks/``
        once (the rename: the commit point): 4, as POSIX asks of files in a new folder.
        ``taskid_max`` is then written in place *without* a sync: the new task's durable
        folder proves its id is spent (start-up takes the highest id + 1); it is made
        durable before a removal could take that proof away (:meth:`_keep_max`)."""
        with self.lock:
            taskid = self.next_id
            if taskid >= ID_DAMAGED - 1:    # taskid_max tampered with: never hand out 2^63
                raise OSError(errno.EOVERFLOW, f"no task id left below 2^63 (next would be "
                              f"{taskid}); taskid_max was set that high by hand?")
            self._changing()
            self.next_id = taskid + 1   # the id is spent even if what follows fails
            build = os.path.join(self.tmp_dir, str(taskid))
            if self.fs.exists(build):
                self.fs.rmtree(build)
            files = [("argv", protocol.encode_commandline(argv)),
                     ("time_exec", timing.encode())]
            if not cron.plain:
                files.append(("cron", self._cron_file(timing, cron)))
            files.append(("exit", b""))     # empty: its directory's sync covers it
            opened = []
            try:
                self.fs.mkdir(build, 0o700)
                try:
                    for name, data in files:
                        fd = self.fs.open(os.path.join(build, name),
                                          os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                                          0o600)
                        opened.append((fd, len(data)))
                        view = memoryview(data)
                        while view:
                            view = view[self.fs.write(fd, view):]
                    for fd, length in opened:
                        if length:
                            self.fs.fsync(fd)
                finally:
                    for fd, _ in opened:
                        self.fs.close(fd)
                self.fs.fsync_dir(build)
                self.fs.rename(build, os.path.join(self.tasks_dir, str(taskid)))
            except OSError:
                self.fs.rmtree(build, ignore_errors=True)
                raise
            self.fs.fsync_dir(self.tasks_dir)
            self.tasks[taskid] = Task(taskid, timing, argv, next(self._tokens), cron)
            self._hint_max()
            return taskid

    def reset_history(self, taskid: int,
                      forget: "Callable[[str], object] | None" = None) -> None:
        """Forget the runs of task ``taskid`` and its last outputs (RESET_HISTORY).

        An empty ``exit`` replaces the old one (atomic, durable: the commit point; an
        ``OSError`` there changes nothing), the task gets a new token (a run in flight is
        not recorded), ``forget(task_dir)`` drops what else is kept of its runs (the
        history), then ``stdout``/``stderr`` go; a failure after the commit point is
        logged (those outputs are unreachable: their run is no longer recorded).  The
        error log is kept.  Raises :class:`NotFound`.
        """
        with self.lock:
            task = self._get(taskid)
            self._changing()
            task_dir = os.path.join(self.tasks_dir, str(taskid))
            self.fs.write_atomic(os.path.join(task_dir, "exit"), b"")
            task.token = next(self._tokens)
            if forget is not None:
                forget(task_dir)
            try:
                for name in ("stdout", "stderr"):
                    try:
                        self.fs.unlink(os.path.join(task_dir, name))
                    except FileNotFoundError:
                        pass
                self.fs.fsync_dir(task_dir)
            except OSError as e:
                self.log(f"reset history: task {taskid}: {e.strerror or e}")


    def _hint_max(self) -> None:
        """``taskid_max`` at ``next_id``, written in place, not synced (see :meth:`create`).
        In place, not by a rename: ext4 starts writing a file renamed over another at once
        (``auto_da_alloc``, ~0.25 ms here).  8 bytes at offset 0 lie in one sector: after a
        crash the file holds the old value or the new one, both at most the true next id and
        at least its last durable value; start-up takes the higher of it and the highest
        task folder + 1."""
        try:
            fd = self.fs.open(self.taskid_max_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                              0o600)
            try:
                if self.fs.pwrite(fd, _U64.pack(self.next_id), 0) != 8:
                    raise OSError(errno.EIO, "short write")
            finally:
                self.fs.close(fd)
        except OSError as e:     # harmless: the task folder proves the id is spent
            self.log(f"store: cannot update taskid_max: {e.strerror or e}")

    def _keep_max(self, removed: int | None = None) -> None:
        """Make ``taskid_max`` durable at ``next_id`` when it is behind (CREATE does not
        write it): before removing the task with the highest id (``removed``; None: every
        task), after which no task directory would prove which ids were handed out."""
        if self._stored_max < self.next_id and (removed is None or removed == max(self.tasks)):
            self.fs.write_atomic(self.taskid_max_path, _U64.pack(self.next_id))
            self._stored_max = self.next_id

    def set_argv(self, taskid: int, argv: tuple[bytes, ...]) -> None:
        with self.lock:
            task = self._get(taskid)
            self._changing()
            self.fs.write_atomic(self._path(taskid, "argv"), protocol.encode_commandline(argv))
            task.argv = argv
            task.token = next(self._tokens)

    def set_timing(self, taskid: int, timing: protocol.Timing) -> None:
        with self.lock:
            task = self._get(taskid)
            self._changing()
            cron = task.cron
            if cron.reboot and timing.as_tuple() != (0, 0, 0):
                cron = cron.replace(reboot=False)   # a @reboot task given a timing: timed
            if self.fs.exists(self._path(taskid, "cron")):    # its commit point
                self.fs.write_atomic(self._path(taskid, "cron"), self._cron_file(timing, cron))
            self.fs.write_atomic(self._path(taskid, "time_exec"), timing.encode())
            task.timing = timing
            task.cron = cron
            task.token = next(self._tokens)

    def set_fields(self, taskid: int, fields: int, timing: protocol.Timing) -> None:
        """SET_FIELDS: the fields of ``timing`` that ``fields`` names (protocol.FIELD_*)
        replace the task's; the others keep their values (every value, for a @reboot task,
        which has none: given a timing, it becomes a timed task)."""
        with self.lock:
            self.set_timing(taskid, kept_fields(self._get(taskid), fields, timing))

    def set_paused(self, taskid: int, paused: bool) -> None:
        """PAUSE / RESUME: the ``paused`` file of the task (durable) says so.  A run in
        flight is not touched (same token): it is recorded when it ends."""
        with self.lock:
            task = self._get(taskid)
            if task.paused == paused:
                return
            self._changing()
            path = self._path(taskid, PAUSED)
            if paused:
                self.fs.write_file(path, b"")
            else:
                self.fs.unlink(path)
            self.fs.fsync_dir(os.path.dirname(path))
            task.paused = paused

    def set_cron(self, taskid: int, timing: protocol.Timing, cron: CronSpec) -> None:
        """Replace a task's timing and cron attributes: the ``cron`` file with the new
        TIMING in it (the commit point: a crash after it completes the change at start-up),
        then ``time_exec``, each by an atomic rename; a task left with no attribute then
        loses its ``cron`` file (its TIMING and time_exec agree by then)."""
        with self.lock:
            task = self._get(taskid)
            self._changing()
            path = self._path(taskid, "cron")
            had_file = self.fs.exists(path)
            if had_file or not cron.plain:
                self.fs.write_atomic(path, self._cron_file(timing, cron))
            self.fs.write_atomic(self._path(taskid, "time_exec"), timing.encode())
            if cron.plain and had_file:
                try:
                    self.fs.unlink(path)
                except OSError as e:        # harmless: it agrees with time_exec
                    self.log(f"store: task {taskid}: cannot remove its cron file: {e.strerror}")
            task.cron = cron
            task.timing = timing
            task.token = next(self._tokens)

    def remove(self, taskid: int) -> None:
        with self.lock:
            task = self._get(taskid)
            self._changing()
            self._keep_max(taskid)
            target = os.path.join(self.trash_dir, f"{taskid}.{task.token}")
            source = os.path.join(self.tasks_dir, str(taskid))
            self.fs.rename(source, target)
            try:
                self.fs.fsync_dir(self.tasks_dir)
            except OSError:
                # not durably gone: put it back so that the empty reply tells the truth
                try:
                    self.fs.rename(target, source)
                except OSError:
                    del self.tasks[taskid]      # gone after all (logged by the caller)
                    self.fs.rmtree(target, ignore_errors=True)
                raise
            del self.tasks[taskid]
            self._sweep_later(target)

    def _sweep_later(self, path: str) -> None:
        """Delete ``path`` (a removed task in ``trash/``) in the background, off the reply's
        path: its removal is already durable, and what is left in ``trash/`` at a crash is
        cleared at start-up."""
        with self._sweep_cond:
            self._sweep_queue.append(path)
            self._sweep_cond.notify()
            if self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep_loop, name="trash",
                                                  daemon=True)
                self._sweeper.start()

    def _sweep_loop(self) -> None:
        while True:
            with self._sweep_cond:
                while not self._sweep_queue:
                    self._sweep_cond.wait()
                # while changes come one after the other (a script removing many tasks),
                # deleting would compete with their replies: wait for a quiet moment
                quiet = SWEEP_QUIET - (time.monotonic() - self._last_change)
                if quiet > 0:
                    self._sweep_cond.wait(quiet)
                    continue
                path = self._sweep_queue[0]
            self.fs.rmtree(path, ignore_errors=True)
            with self._sweep_cond:
                self._sweep_queue.pop(0)
                self._sweep_cond.notify_all()

    def wait_swept(self, timeout: float | None = None) -> bool:
        """Wait until the removed tasks handed to the background are deleted (tests, stop)."""
        with self._sweep_cond:
            return self._sweep_cond.wait_for(lambda: not self._sweep_queue, timeout)

    def remove_all(self) -> int:
        """Remove every task, all or nothing; returns how many were removed.

        ``tasks/`` is renamed into ``trash/`` in one step and an empty one made; the old
        one is cleared afterwards (what cannot be removed stays in ``trash/``, logged, and
        is tried again at start-up).  A crash in between leaves either every task or none:
        a missing ``tasks/`` is made again at start-up, ``trash/`` is cleared there.
        """
        with self.lock:
            count = len(self.tasks)
            self._changing()
            self._keep_max()
            moved = os.path.join(self.trash_dir, f"tasks.all.{next(self._tokens)}")
            while self.fs.lexists(moved):   # a leftover that could not be cleared before
                moved = os.path.join(self.trash_dir, f"tasks.all.{next(self._tokens)}")
            self.fs.rename(self.tasks_dir, moved)
            try:
                self.fs.mkdir(self.tasks_dir, 0o700)
                self.fs.fsync_dir(self.trash_dir)
                self.fs.fsync_dir(self.root)
            except OSError:
                # not durably done: put every task back so that the empty reply is true
                try:
                    if self.fs.isdir(self.tasks_dir):
                        self.fs.rmdir(self.tasks_dir)
                    self.fs.rename(moved, self.tasks_dir)
                except OSError as e:
                    self.log(f"store: DELETE_ALL: cannot put the tasks back: {e.strerror}; "
                             f"every task is gone")
                    self.tasks.clear()
                    self.fs.makedirs(self.tasks_dir, 0o700, exist_ok=True)
                raise
            self.tasks.clear()
            try:
                self.fs.rmtree(moved)
            except OSError as e:
                self.log(f"store: DELETE_ALL: cannot clear {e.filename or moved!r}: "
                         f"{e.strerror or e}; left in trash/ until the next start")
            return count

    def reset_taskmax(self) -> int:
        with self.lock:
            next_id = max(self.tasks) + 1 if self.tasks else 0
            self._changing()
            self.fs.write_atomic(self.taskid_max_path, _U64.pack(next_id))
            self.next_id = self._stored_max = next_id
            return next_id

    # --- the last minute the scheduler processed (catch-up after downtime) ----
    def last_minute(self) -> int | None:
        """The epoch minute saved by :meth:`save_last_minute`, or None (never saved)."""
        try:
            data = self.fs.read_file(os.path.join(self.root, "last_minute"))
        except OSError:
            return None
        if len(data) != 8:
            self.log("store: last_minute is damaged; no catch-up at this start")
            return None
        return struct.unpack(">q", data)[0]

    def save_last_minute(self, minute: int) -> None:
        """Keep the scheduler's last processed minute: temporary file and rename (the old
        value or the new one), without fsync (it is written at every minute boundary, and
        a value lost in a power cut only costs a catch-up: a damaged file means none)."""
        path = os.path.join(self.root, "last_minute")
        tmp = path + ".tmp"
        fd = self.fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            data = struct.pack(">q", minute)
            if self.fs.write(fd, data) != len(data):
                raise OSError(errno.EIO, "short write")
        finally:
            self.fs.close(fd)
        self.fs.replace(tmp, path)

    # --- runs ---------------------------------------------------------------
    def spool_paths(self) -> tuple[str, str]:
        n = next(self._spool)
        base = os.path.join(self.runs_dir, str(n))
        return base + ".out", base + ".err"

    def publish(self, taskid: int, token: object, when: int, exitcode: int, out_path: str,
                err_path: str, cap: int | None = None, copy: bool = False) -> bool:
        """Record a finished run if its task still has incarnation ``token``.

        The spool files become the outputs (cut to their first ``cap`` bytes); with
        ``copy`` (descendants of the run still hold them open and may write on) the
        outputs are copies of their first ``cap`` bytes instead, so that nothing written
        later reaches a recorded output.  The spool paths are gone afterwards in every
        case.  Returns True when recorded.
        """
        with self.lock:
            try:
                return self._publish(taskid, token, when, exitcode, out_path, err_path, cap,
                                     copy)
            finally:
                self.fs.unlink_quiet(out_path, err_path)

    def _publish(self, taskid: int, token: object, when: int, exitcode: int, out_path: str,
                 err_path: str, cap: int | None, copy: bool) -> bool:
        task = self.tasks.get(taskid)
        if task is None or task.token != token:
            return False
        task_dir = os.path.join(self.tasks_dir, str(taskid))
        exit_path = self._path(taskid, "exit")
        staged: list[tuple[str, str]] = []     # (staged, final) paths
        try:
            size = self.fs.stat(exit_path).st_size
            if size % RECORD:       # a torn tail that could not be cut back earlier
                size = self._repair_records(taskid, exit_path)
            opened: list[tuple[int, int]] = []     # (fd, length)
            try:
                for src, name in ((out_path, "stdout"), (err_path, "stderr")):
                    dst = os.path.join(task_dir, f".{name}.new.{size}")
                    if copy:
                        staged.append((dst, os.path.join(task_dir, name)))
                        opened.append(copy_capped(src, dst, cap, self.fs))
                        continue
                    fd = self.fs.open(src, os.O_WRONLY | os.O_CLOEXEC)
                    opened.append((fd, 1))
                    if cap is not None and self.fs.fstat(fd).st_size > cap:
                        self.fs.ftruncate(fd, cap)
                    self.fs.replace(src, dst)
                    staged.append((dst, os.path.join(task_dir, name)))
                # written first, then synced: one journal commit for both; an empty copy
                # needs no sync of its own (the directory's sync covers its creation)
                for fd, length in opened:
                    if length:
                        self.fs.fsync(fd)
            finally:
                for fd, _ in opened:
                    self.fs.close(fd)
            self.fs.fsync_dir(task_dir)
            self._append_record(taskid, exit_path, size, protocol.encode_run(when, exitcode))
        except OSError as e:
            self.log(f"store: cannot record a run of task {taskid}: {e.strerror or e}; "
                     f"run and outputs dropped")
            self.fs.unlink_quiet(*(dst for dst, _ in staged))
            return False
        # committed: the outputs take their place (redone at start-up if cut short)
        for dst, final in staged:
            try:
                self.fs.replace(dst, final)
            except OSError as e:
                self.log(f"store: task {taskid}: cannot move {dst!r} into place: {e.strerror}")
        if self.on_published is not None:          # the run history (saturnd/history.py)
            try:
                self.on_published(taskid, size // RECORD + 1, task_dir)
            except Exception as e:      # never undoes a recorded run
                self.log(f"store: task {taskid}: after the run: {type(e).__name__}: {e}")
        return True

    def _append_record(self, taskid: int, exit_path: str, size: int, record: bytes) -> None:
        """Append one record, whole or not at all: anything short of a whole, synced
        record is cut back to ``size`` and raised."""
        fd = self.fs.open(exit_path, os.O_WRONLY | os.O_APPEND)
        try:
            try:
                n = self.fs.write(fd, record)
                if n != len(record):
                    raise OSError(errno.ENOSPC, f"short write ({n} of {len(record)} bytes)")
                self.fs.fsync(fd)
            except OSError:
                try:
                    self.fs.ftruncate(fd, size)
                    self.fs.fsync(fd)
                except OSError as e:
                    self.log(f"store: task {taskid}: cannot cut a partial run record back: "
                             f"{e.strerror}; dropped at the next run or start-up")
                raise
        finally:
            self.fs.close(fd)


class OutputFile:
    """A published output, open for streaming: ``size`` bytes read in chunks, never all at
    once (``len()`` works, and ``bytes + OutputFile`` reads it whole for in-process use)."""

    __slots__ = ("fd", "size", "fs")

    def __init__(self, fd: int, fs: FileOps) -> None:
        self.fd: int | None = fd     # None once closed
        self.fs = fs
        self.size = fs.fstat(fd).st_size

    def __len__(self) -> int:
        return self.size

    def chunks(self, chunk: int = 1 << 16) -> "Iterator[bytes]":
        """The file's ``size`` bytes, ``chunk`` at a time (``OSError`` when it is shorter
        than when opened, or closed meanwhile)."""
        offset = 0
        while offset < self.size:
            if self.fd is None:
                raise OSError(errno.EBADF, "output file closed while being read")
            data = self.fs.pread(self.fd, min(chunk, self.size - offset), offset)
            if not data:
                raise OSError(errno.EIO, "output file shorter than when opened")
            offset += len(data)
            yield data

    def read_all(self) -> bytes:
        return b"".join(self.chunks(COPY_CHUNK))

    def __radd__(self, other: bytes) -> bytes:
        return other + self.read_all()

    def close(self) -> None:
        if self.fd is not None:
            self.fs.close(self.fd)
            self.fd = None

    def __enter__(self) -> "OutputFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def copy_capped(src: str, dst: str, cap: int | None, fs: FileOps) -> tuple[int, int]:
    """Create ``dst`` (0600) with the first ``cap`` bytes of ``src`` (all when cap is
    None), every write checked, through ``fs`` (a :class:`FileOps`); returns
    ``(fd, length)``: ``dst`` open, not yet synced (the caller syncs and closes it)."""
    sfd = fs.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        length = fs.fstat(sfd).st_size
        if cap is not None:
            length = min(length, cap)
        dfd = fs.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            copied = 0
            use_range = fs.copy_file_range is not None and length > SMALL_OUTPUT
            while copied < length:
                want = min(COPY_CHUNK, length - copied)
                if use_range:
                    try:
                        n = fs.copy_file_range(sfd, dfd, want, copied, copied)
                    except OSError as e:
                        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                                           errno.EOPNOTSUPP):
                            raise
                        use_range = False
                        continue
                else:
                    data = fs.pread(sfd, want, copied)
                    n = fs.pwrite(dfd, data, copied) if data else 0
                if n == 0:          # the source shrank (cut back meanwhile): what there is
                    break
                copied += n
        except BaseException:
            fs.close(dfd)
            raise
        return dfd, copied
    finally:
        fs.close(sfd)


def whole_records(data: bytes) -> tuple[int, bytes]:
    """``(offset, kept)``: ``data`` (an ``exit`` file whose size is not whole records)
    without its torn record.  An append cut short leaves the first bytes of a record;
    whole records may follow it (written by an older daemon).  The torn bytes are placed
    where they look like the start of a record (a TIME's top bytes: 00 or ff) and every
    record before and after them is plausible (TIME within +-2**36, EXITCODE 0-255 or
    0xFFFF); among those places, the one leaving the fewest TIMEs out of order, the latest
    on a tie.  If there is none, the tail is cut."""
    torn = len(data) % RECORD
    n = len(data) // RECORD

    def plausible(rec: tuple[int, int]) -> bool:
        t, c = rec
        return -TIME_PLAUSIBLE < t < TIME_PLAUSIBLE and (c <= 255 or c == 0xFFFF)
    head = list(_RUN.iter_unpack(data[:n * RECORD]))       # records before the torn bytes
    tail = list(_RUN.iter_unpack(data[torn:]))             # records after them
    suffix_ok = [True] * (n + 1)
    suffix_inv = [0] * (n + 1)
    for j in range(n - 1, -1, -1):
        suffix_ok[j] = suffix_ok[j + 1] and plausible(tail[j])
        suffix_inv[j] = suffix_inv[j + 1] + (j + 1 < n and tail[j + 1][0] < tail[j][0])
    best = None
    prefix_inv = 0
    for j in range(n + 1):          # torn bytes at j * RECORD
        if j:
            if not plausible(head[j - 1]):
                break
            if j > 1 and head[j - 1][0] < head[j - 2][0]:
                prefix_inv += 1
        at = j * RECORD
        lead = data[at:at + min(torn, 3)]
        if not suffix_ok[j] or lead.strip(b"\0") and lead.strip(b"\xff"):
            continue
        inv = prefix_inv + suffix_inv[j] + (0 < j < n and tail[j][0] < head[j - 1][0])
        if best is None or inv <= best[0]:
            best = (inv, at)
    if best is None:
        return n * RECORD, data[:n * RECORD]
    at = best[1]
    return at, data[:at] + data[at + torn:]


"""The on-disk task store (the C project's layout, see spec/saturnd.md).

::

    DATA_DIR/taskid_max             next id to hand out (uint64, big-endian)
    DATA_DIR/tasks/<ID>/argv        command line (wire encoding)
    DATA_DIR/tasks/<ID>/time_exec   timing (wire encoding, 13 bytes)
    DATA_DIR/tasks/<ID>/exit        10-byte (TIME int64, EXITCODE uint16) records
    DATA_DIR/tasks/<ID>/stdout      stdout of the last finished run
    DATA_DIR/tasks/<ID>/stderr      stderr of the last finished run
    DATA_DIR/tmp/    tasks being built      (cleared at start-up)
    DATA_DIR/trash/  tasks being removed    (cleared at start-up)
    DATA_DIR/runs/   spool files of runs    (cleared at start-up)

Durability: whole files are written to a temporary name, fsynced, renamed and
the directory fsynced; a new task is built in ``tmp/`` and renamed into
``tasks/`` last; a task is removed by renaming it into ``trash/`` first; a
finished run is published by staging its outputs in the task's directory as
``.stdout.new.N`` / ``.stderr.new.N`` (N: the size of ``exit`` before), then
appending its ``exit`` record (the commit point), then renaming the outputs
into place.  At start-up a torn last record is dropped, and staged outputs
take their place if their record made it (``exit`` longer than N), else go:
after a crash, stdout/stderr always belong to the last recorded run.  Every in-memory change happens only after the disk
change succeeded, so a storage failure (``OSError``) leaves the store as it
was and the caller answers with the empty reply.

The store knows nothing about requests; it is guarded by one re-entrant lock.
"""

import itertools
import os
import shutil
import struct
import threading

from . import errlog, protocol

_U64 = struct.Struct(">Q")
RECORD = protocol.RUN_RECORD_SIZE


class NotFound(LookupError):
    """No task with that id."""


class NeverRan(LookupError):
    """The task has never finished a run."""


class Task:
    __slots__ = ("taskid", "timing", "argv", "token", "_entry")

    def __init__(self, taskid, timing, argv, token):
        self.taskid = taskid
        self.timing = timing
        self.argv = argv
        self.token = token
        self._entry = None

    def list_entry(self):
        """The task as a LIST reply encodes it, cached until the task changes (every
        change gives it a new token)."""
        cached = self._entry
        if cached is None or cached[0] != self.token:
            cached = self._entry = (self.token, protocol.encode_list_entry(
                self.taskid, self.timing, self.argv))
        return cached[1]

    def snapshot(self):
        return Task(self.taskid, self.timing, self.argv, self.token)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path, data):
    """Create ``path`` with ``data`` and fsync it (no rename)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data):
    """Replace ``path`` by ``data``: temp file, fsync, rename, fsync the directory."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, "." + os.path.basename(path) + ".tmp")
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _is_canonical_id(name):
    return name.isascii() and name.isdigit() and str(int(name)) == name and int(name) < 1 << 64


class Store:
    def __init__(self, data_dir, log):
        self.root = os.path.abspath(data_dir)
        self.tasks_dir = os.path.join(self.root, "tasks")
        self.tmp_dir = os.path.join(self.root, "tmp")
        self.trash_dir = os.path.join(self.root, "trash")
        self.runs_dir = os.path.join(self.root, "runs")
        self.taskid_max_path = os.path.join(self.root, "taskid_max")
        self.log = log
        self.lock = threading.RLock()
        self.tasks = {}
        self.next_id = 0
        self._tokens = itertools.count(1)
        self._spool = itertools.count(1)

    # --- start-up ---------------------------------------------------------
    def open(self):
        """Create the layout if missing, clean leftovers, load every task."""
        with self.lock:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            for d in (self.tasks_dir, self.tmp_dir, self.trash_dir, self.runs_dir):
                os.makedirs(d, mode=0o700, exist_ok=True)
            for d in (self.tmp_dir, self.trash_dir, self.runs_dir):
                self._clear(d)
            stored_max = self._read_taskid_max()
            highest = -1
            self.tasks = {}
            for name in sorted(os.listdir(self.tasks_dir)):
                path = os.path.join(self.tasks_dir, name)
                if not _is_canonical_id(name):
                    self.log(f"store: skipping foreign entry {path!r}")
                    continue
                taskid = int(name)
                highest = max(highest, taskid)
                task = self._load_task(taskid, path)
                if task is not None:
                    self.tasks[taskid] = task
            self.next_id = max(stored_max, highest + 1)

    def _clear(self, directory):
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError as e:
                self.log(f"store: cannot clear {path!r}: {e.strerror}")

    def _read_taskid_max(self):
        try:
            data = _read(self.taskid_max_path)
        except FileNotFoundError:
            return 0
        except OSError as e:
            self.log(f"store: cannot read taskid_max: {e.strerror}")
            return 0
        if len(data) != 8:
            self.log(f"store: taskid_max has {len(data)} bytes, expected 8; ignored")
            return 0
        return _U64.unpack(data)[0]

    def _load_task(self, taskid, path):
        try:
            if not os.path.isdir(path) or os.path.islink(path):
                raise ValueError("not a directory")
            argv = protocol.decode_commandline(_read(os.path.join(path, "argv")), forbid_nul=True)
            timing = protocol.decode_timing(_read(os.path.join(path, "time_exec")))
            exit_path = os.path.join(path, "exit")
            try:
                size = os.stat(exit_path).st_size
            except FileNotFoundError:
                write_file(exit_path, b"")
                size = 0
            if size % RECORD:
                self.log(f"store: task {taskid}: dropping a torn run record ({size % RECORD} bytes)")
                errlog.daemon(f"task {taskid}: a torn run record was dropped at start-up")
                fd = os.open(exit_path, os.O_WRONLY)
                try:
                    os.ftruncate(fd, size - size % RECORD)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                size -= size % RECORD
            self._finish_publish(taskid, path, size)
        except (OSError, ValueError) as e:   # ProtocolError is a ValueError
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self.log(f"store: skipping damaged task {path!r}: {reason}")
            errlog.daemon(f"damaged task {taskid} skipped at start-up: {reason}")
            return None
        return Task(taskid, timing, argv, next(self._tokens))

    def _finish_publish(self, taskid, path, size):
        """Settle a publication cut short by a crash (see :meth:`publish`).

        ``.stdout.new.N`` / ``.stderr.new.N`` are a run's outputs staged while the ``exit``
        file had N bytes: its record was appended (committed) when the file is now longer,
        so they take their place; otherwise the run never finished and they go.
        """
        for name in os.listdir(path):
            for stream in ("stdout", "stderr"):
                prefix = f".{stream}.new."
                if not name.startswith(prefix):
                    continue
                staged = os.path.join(path, name)
                tail = name[len(prefix):]
                try:
                    if tail.isdigit() and size > int(tail):
                        self.log(f"store: task {taskid}: completing the publication of a run")
                        os.replace(staged, os.path.join(path, stream))
                    else:
                        os.unlink(staged)
                except OSError as e:
                    self.log(f"store: task {taskid}: cannot settle {staged!r}: {e.strerror}")

    # --- queries ------------------------------------------------------------
    def list_tasks(self):
        with self.lock:
            return [self.tasks[i].snapshot() for i in sorted(self.tasks)]

    def list_entries(self):
        """Every task, in increasing id order, as encoded LIST entries."""
        with self.lock:
            return [self.tasks[i].list_entry() for i in sorted(self.tasks)]

    def get(self, taskid):
        """A snapshot of the task (consistent argv, timing and token)."""
        with self.lock:
            return self._get(taskid).snapshot()

    def _get(self, taskid):
        with self.lock:
            task = self.tasks.get(taskid)
            if task is None:
                raise NotFound(taskid)
            return task

    def runs(self, taskid):
        """The raw ``exit`` records (bytes, whole records only)."""
        with self.lock:
            self._get(taskid)
            try:
                data = _read(self._path(taskid, "exit"))
            except FileNotFoundError:
                data = b""
            return data[: len(data) - len(data) % RECORD]

    def output(self, taskid, stream):
        """The bytes of ``stream`` ("stdout"/"stderr") of the last finished run."""
        with self.lock:
            if not self.runs(taskid):
                raise NeverRan(taskid)
            try:
                return _read(self._path(taskid, stream))
            except FileNotFoundError:
                return b""

    def _path(self, taskid, name):
        return os.path.join(self.tasks_dir, str(taskid), name)

    # --- changes ------------------------------------------------------------
    def create(self, timing, argv):
        with self.lock:
            taskid = self.next_id
            write_atomic(self.taskid_max_path, _U64.pack(taskid + 1))
            self.next_id = taskid + 1   # the id is spent even if what follows fails
            build = os.path.join(self.tmp_dir, str(taskid))
            if os.path.exists(build):
                shutil.rmtree(build)
            try:
                os.mkdir(build, 0o700)
                write_file(os.path.join(build, "argv"), protocol.encode_commandline(argv))
                write_file(os.path.join(build, "time_exec"), timing.encode())
                write_file(os.path.join(build, "exit"), b"")
                fsync_dir(build)
                os.rename(build, os.path.join(self.tasks_dir, str(taskid)))
            except OSError:
                shutil.rmtree(build, ignore_errors=True)
                raise
            fsync_dir(self.tasks_dir)
            self.tasks[taskid] = Task(taskid, timing, argv, next(self._tokens))
            return taskid

    def set_argv(self, taskid, argv):
        with self.lock:
            task = self._get(taskid)
            write_atomic(self._path(taskid, "argv"), protocol.encode_commandline(argv))
            task.argv = argv
            task.token = next(self._tokens)

    def set_timing(self, taskid, timing):
        with self.lock:
            task = self._get(taskid)
            write_atomic(self._path(taskid, "time_exec"), timing.encode())
            task.timing = timing
            task.token = next(self._tokens)

    def remove(self, taskid):
        with self.lock:
            task = self._get(taskid)
            target = os.path.join(self.trash_dir, f"{taskid}.{task.token}")
            source = os.path.join(self.tasks_dir, str(taskid))
            os.rename(source, target)
            try:
                fsync_dir(self.tasks_dir)
            except OSError:
                # not durably gone: put it back so that the empty reply tells the truth
                try:
                    os.rename(target, source)
                except OSError:
                    del self.tasks[taskid]      # gone after all (logged by the caller)
                    shutil.rmtree(target, ignore_errors=True)
                raise
            del self.tasks[taskid]
            shutil.rmtree(target, ignore_errors=True)

    def remove_all(self):
        """Remove every task; returns how many were removed."""
        with self.lock:
            count = 0
            for taskid in sorted(self.tasks):
                self.remove(taskid)
                count += 1
            return count

    def reset_taskmax(self):
        with self.lock:
            next_id = max(self.tasks) + 1 if self.tasks else 0
            write_atomic(self.taskid_max_path, _U64.pack(next_id))
            self.next_id = next_id
            return next_id

    # --- runs ---------------------------------------------------------------
    def spool_paths(self):
        n = next(self._spool)
        base = os.path.join(self.runs_dir, str(n))
        return base + ".out", base + ".err"

    def publish(self, taskid, token, when, exitcode, out_path, err_path, cap=None):
        """Record a finished run if its task still has incarnation ``token``.

        Returns True when recorded; otherwise the spool files are discarded.
        """
        with self.lock:
            task = self.tasks.get(taskid)
            if task is None or task.token != token:
                _unlink_quiet(out_path, err_path)
                return False
            task_dir = os.path.join(self.tasks_dir, str(taskid))
            exit_path = self._path(taskid, "exit")
            staged = []
            try:
                size = os.stat(exit_path).st_size
                for src, name in ((out_path, "stdout"), (err_path, "stderr")):
                    fd = os.open(src, os.O_WRONLY)
                    try:
                        if cap is not None and os.fstat(fd).st_size > cap:
                            os.ftruncate(fd, cap)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    dst = os.path.join(task_dir, f".{name}.new.{size}")
                    os.replace(src, dst)
                    staged.append((dst, os.path.join(task_dir, name)))
                fsync_dir(task_dir)
                fd = os.open(exit_path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, protocol.encode_run(when, exitcode))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                self.log(f"store: cannot record a run of task {taskid}: {e.strerror}")
                _unlink_quiet(out_path, err_path, *(dst for dst, _ in staged))
                return False
            # committed: the outputs take their place (redone at start-up if cut short)
            for dst, final in staged:
                try:
                    os.replace(dst, final)
                except OSError as e:
                    self.log(f"store: task {taskid}: cannot move {dst!r} into place: {e.strerror}")
            return True


def _unlink_quiet(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass

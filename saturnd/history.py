"""The run history: the outputs and exit codes of a task's last N runs (HISTORY request,
``cassini -Y``).

::

    DATA_DIR/tasks/<ID>/history/<RUN>.stdout    outputs of run number RUN (1 = the first
    DATA_DIR/tasks/<ID>/history/<RUN>.stderr    run recorded in ``exit``, 2 the second...)

A run's number is its place in the task's ``exit`` records, so its time and exit code are
that record.  When a run is published (``Store.publish`` calls :meth:`History.published`
under the store's lock, once the outputs are in place), its outputs are hard-linked into
``history/`` (no copy: a published output is never written again, the next run's replaces
it by a rename), or, when one is longer than ``cap`` bytes, its first ``cap`` bytes are
copied; then the runs beyond the last ``keep`` are removed.  So the disk taken is at most
``keep`` x 2 x ``cap`` bytes per task.  ``keep`` 0 keeps no history.  The history goes with
the task (REMOVE, DELETE_ALL) and with its runs (RESET_HISTORY); CLONE does not copy it.
A crash between the record and the links loses that run's history entry only (HISTORY then
shows the runs it has).
"""

import os

from . import protocol

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from .store import Store

DEFAULT_KEEP = 10
DEFAULT_CAP = 1 << 20
DIR = "history"
STREAMS = ("stdout", "stderr")


class History:
    def __init__(self, store: "Store", keep: int = DEFAULT_KEEP, cap: int = DEFAULT_CAP) -> None:
        self.store = store
        self.keep = keep
        self.cap = cap

    def published(self, taskid: int, run: int, task_dir: str) -> None:
        """Run number ``run`` of ``taskid`` has just been recorded (store lock held)."""
        if self.keep <= 0:
            return
        fs = self.store.fs
        hist = os.path.join(task_dir, DIR)
        try:
            if not fs.isdir(hist):
                fs.mkdir(hist, 0o700)
            for stream in STREAMS:
                src = os.path.join(task_dir, stream)
                dst = os.path.join(hist, f"{run}.{stream}")
                fs.unlink_quiet(dst)
                try:
                    size = fs.stat(src).st_size
                except FileNotFoundError:
                    fs.write_file(dst, b"")
                    continue
                if size <= self.cap:
                    fs.link(src, dst)
                else:
                    from .store import copy_capped
                    fd, _ = copy_capped(src, dst, self.cap, fs)
                    fs.close(fd)
            for old in self.runs_kept(task_dir):
                if old <= run - self.keep:
                    fs.unlink_quiet(*(os.path.join(hist, f"{old}.{s}") for s in STREAMS))
        except OSError as e:
            self.store.log(f"history: task {taskid}: cannot keep run {run}: "
                           f"{e.strerror or e}")

    def runs_kept(self, task_dir: str) -> list[int]:
        """The run numbers whose outputs are kept, in increasing order."""
        try:
            names = self.store.fs.listdir(os.path.join(task_dir, DIR))
        except OSError:
            return []
        runs = set()
        for name in names:
            number, _, stream = name.partition(".")
            if stream in STREAMS and number.isdigit():
                runs.add(int(number))
        return sorted(runs)

    def forget(self, task_dir: str) -> None:
        """RESET_HISTORY: every kept run goes."""
        self.store.fs.rmtree(os.path.join(task_dir, DIR), ignore_errors=True)

    def read(self, taskid: int, run: int = 0,
             count: int = 0) -> list[tuple[int, int, int, bytes, bytes]]:
        """HISTORY: ``[(run, time, exitcode, stdout, stderr)]``, oldest first: run number
        ``run``, else the last ``count`` kept (0: all).  Raises store.NotFound, or
        LookupError when run ``run`` is not kept."""
        store = self.store
        with store.lock:
            records = protocol.decode_runs(store.runs(taskid))   # NotFound
            task_dir = os.path.join(store.tasks_dir, str(taskid))
            kept = [n for n in self.runs_kept(task_dir) if 1 <= n <= len(records)]
            if run:
                if run not in kept:
                    raise LookupError(run)
                kept = [run]
            elif count:
                kept = kept[-count:]
            out = []
            for n in kept:
                outputs = []
                for stream in STREAMS:
                    try:
                        outputs.append(store.fs.read_file(
                            os.path.join(task_dir, DIR, f"{n}.{stream}")))
                    except FileNotFoundError:
                        outputs.append(b"")
                when, code = records[n - 1]
                out.append((n, when, code, outputs[0], outputs[1]))
            return out

    def paths(self, taskid: int, run: int) -> tuple[str, ...]:
        """The files of run ``run`` (kept or not: the notice names them)."""
        task_dir = os.path.join(self.store.tasks_dir, str(taskid))
        return tuple(os.path.join(task_dir, DIR, f"{run}.{s}") for s in STREAMS)

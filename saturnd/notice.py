"""The failure notice: what happens after a run that failed (non-zero exit, killed by a
signal, or could not start).

- The task's error log (``cassini -E``) gets ``run of YYYY-MM-DD HH:MM failed: exit status
  N`` (or ``killed by a signal``).  A command that could not start already has its own
  entry (``cannot start ...``), and so has a run killed at shutdown: no second one.
- With ``saturnd --on-failure COMMAND``, ``/bin/sh -c COMMAND`` is started after each failed
  run (a run killed at shutdown excepted), in the daemon's environment (the tasks') plus:
  ``SATURND_TASKID``, ``SATURND_RUN`` (the run's number, as ``cassini -Y`` shows it),
  ``SATURND_TIME`` (its start, epoch seconds), ``SATURND_EXIT_STATUS`` (0-255, or 65535
  for a signal), ``SATURND_STDOUT`` and ``SATURND_STDERR`` (the paths of the run's kept
  outputs, ``DATA_DIR/tasks/<ID>/history/<RUN>.stdout``; with ``--history 0``, the task's
  last outputs, replaced by its next run).  Its stdin is ``/dev/null``, its output goes to
  the daemon's log; it is waited for by a thread of its own and never blocks anything.
"""

import os
import threading
import time

from . import errlog, protocol

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable

    from .history import History
    from .runner import Run
    from .errlog import ErrorLog
    from .store import Store


class Notice:
    def __init__(self, store: "Store", history: "History | None", log: "Callable[[str], object]",
                 command: str | None = None,
                 stopping: "Callable[[], bool]" = lambda: False,
                 errors: "ErrorLog | None" = None) -> None:
        self.store = store
        self.errors = errlog.NONE if errors is None else errors   # saturnd/errlog.py
        self.history = history
        self.log = log
        self.command = command
        self.stopping = stopping

    def finished(self, run: "Run", code: int, recorded: bool) -> None:
        """Runner hook: run ``run`` ended with EXITCODE ``code`` (``recorded``: published)."""
        if not recorded or code == 0:
            return
        shutdown_kill = code == protocol.EXIT_SIGNALED and self.stopping()
        if run.pid is not None and not shutdown_kill:      # the others have their entry
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.time))
            what = "killed by a signal" if code == protocol.EXIT_SIGNALED else \
                f"exit status {code}"
            self.errors.add_task(run.taskid, f"run of {when} failed: {what}")
        if self.command and not shutdown_kill:
            self._spawn(run, code)

    def _run_number(self, run: "Run", code: int) -> int:
        """The place of this run's record in ``exit`` (1-based; 0 when not found)."""
        try:
            records = protocol.decode_runs(self.store.runs(run.taskid))
        except (LookupError, ValueError, OSError):
            return 0
        for n in range(len(records), 0, -1):
            if records[n - 1] == (run.time, code):
                return n
        return 0

    def _spawn(self, run: "Run", code: int) -> None:
        number = self._run_number(run, code)
        task_dir = os.path.join(self.store.tasks_dir, str(run.taskid))
        if number and self.history is not None and self.history.keep > 0:
            out, err = self.history.paths(run.taskid, number)
        else:
            out, err = (os.path.join(task_dir, s) for s in ("stdout", "stderr"))
        env = dict(os.environ)
        env.update(SATURND_TASKID=str(run.taskid), SATURND_RUN=str(number),
                   SATURND_TIME=str(run.time), SATURND_EXIT_STATUS=str(code),
                   SATURND_STDOUT=out, SATURND_STDERR=err)
        threading.Thread(target=self._run, args=(run.taskid, env), name="notice",
                         daemon=True).start()

    def _run(self, taskid: int, env: dict[str, str]) -> None:
        import subprocess
        assert self.command is not None     # _spawn runs only with a command
        try:
            proc = subprocess.run(["/bin/sh", "-c", self.command], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        except (OSError, ValueError) as e:
            self.log(f"notice: task {taskid}: cannot start the --on-failure command: {e}")
            return
        except ChildProcessError:       # the runner's reaper took its status first
            return
        text = proc.stdout.decode("utf-8", "backslashreplace").strip()
        for line in text.splitlines()[:20]:
            self.log(f"notice: task {taskid}: {line}")
        if proc.returncode:
            self.log(f"notice: task {taskid}: the --on-failure command exited with "
                     f"{proc.returncode}")

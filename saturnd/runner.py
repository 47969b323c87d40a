"""Starting runs, capturing their output, recording them (the C ``saturnd_child``).

A run is spawned directly (``posix_spawnp``, no shell) in a new session, with
stdin on ``/dev/null`` and stdout/stderr on spool files in ``DATA_DIR/runs``
(the daemon holds no pipe per run).  A reaper thread waits for every child;
when one ends, its outputs and exit record are published through the store
(only if the task still has the incarnation token the run started with).  A
monitor thread keeps each spool file within the output cap.

Spool files are opened ``O_APPEND``, so cutting one back really bounds it (a
writer's next bytes land at the new end, not past a hole).  A run is recorded
when its process ends; descendants left in its process group (``cmd &``) may
keep writing to the spool files: then the store publishes copies (at most the
cap) instead of the spool files themselves, and the spool files, unlinked, are
held open by the monitor and cut to zero while the group lives (disk use stays
bounded), then closed.  At shutdown such
groups get the same grace as running runs, then SIGKILL.  (A descendant that
leaves the group with ``setsid`` is out of reach.)
"""

import os
import signal
import threading
import time

from . import cronrun, errlog, protocol

DEFAULT_OUTPUT_CAP = 64 << 20
MONITOR_INTERVAL = 0.5
MONITOR_FAST = 0.02
YOUNG_RUN = 2.0
MONITOR_BURST = 0.1     # young runs polled this often when there are many

_SPOOL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_DEFAULT_SIGNALS = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def run_environment(environ=None):
    """The daemon's environment minus saturnd's own ``SATURND_*`` variables."""
    environ = os.environb if environ is None else environ
    return {k: v for k, v in environ.items()
            if not (k.startswith(b"SATURND_") if isinstance(k, bytes) else k.startswith("SATURND_"))}


def exit_code(status):
    """The recorded EXITCODE of a wait status: WEXITSTATUS, else 0xFFFF."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return protocol.EXIT_SIGNALED


class Run:
    __slots__ = ("taskid", "token", "time", "pid", "out", "err", "exitcode", "done", "started",
                 "hot", "task")

    def __init__(self, taskid, token, when, out, err):
        self.taskid = taskid
        self.token = token
        self.time = when
        self.out = out
        self.err = err
        self.pid = None
        self.exitcode = None
        self.done = False
        self.started = time.monotonic()
        self.hot = False        # caught writing past the output cap
        self.task = None        # the task, when its cron attributes matter at the end (MAILTO)

    def __repr__(self):
        return f"Run(task={self.taskid}, pid={self.pid}, time={self.time}, exit={self.exitcode})"


def group_alive(pgid):
    """True while the process group ``pgid`` has a member."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True         # EPERM: someone is there
    return True


class Orphans:
    """Process groups of recorded runs that still have members, with their spool files
    (held open, unlinked) so that what they write can be cut back."""

    __slots__ = ("pgid", "taskid", "fds", "hot")

    def __init__(self, pgid, taskid, fds):
        self.pgid = pgid
        self.taskid = taskid
        self.fds = fds
        self.hot = True         # watched fast from the start; cools down when quiet

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


class Runner:
    def __init__(self, store, log, output_cap=DEFAULT_OUTPUT_CAP, env=None):
        self.store = store
        self.log = log
        self.output_cap = output_cap
        self.env = run_environment() if env is None else env
        self.cond = threading.Condition()
        self.children = {}          # pid -> Run
        self.orphans = []           # Orphans: groups left behind by recorded runs
        self.stopping = False
        self._monitor_stop = threading.Event()
        self._monitor_wake = threading.Event()     # a run started, or stop
        self._threads = []
        self.on_finished = None     # (run, exit code, recorded), after each run

    def start_threads(self):
        for target, name in ((self._reap_loop, "reaper"), (self._monitor_loop, "monitor")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    # --- starting -------------------------------------------------------------
    def start(self, task, when):
        """Start one run of ``task`` (a store.Task snapshot) recorded at ``when``."""
        argv = task.argv
        out, err = self.store.spool_paths()
        run = Run(task.taskid, task.token, int(when), out, err)
        cron = getattr(task, "cron", None)
        env = self.env
        if cron is not None and cron.env:       # crontab environment lines (cronrun.py)
            env = cronrun.task_environment(self.env, cron)
            argv = cronrun.task_argv(argv, cron)
            run.task = task
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out, _SPOOL_FLAGS, 0o600),
            (os.POSIX_SPAWN_OPEN, 2, err, _SPOOL_FLAGS, 0o600),
        ]
        with self.cond:
            try:
                pid = os.posix_spawnp(argv[0], list(argv), env, file_actions=actions,
                                      setsid=True, setsigdef=_DEFAULT_SIGNALS, setsigmask=())
            except (OSError, ValueError) as e:
                spawn_error = e
            else:
                run.pid = pid
                self.children[pid] = run
                self.cond.notify_all()
                self._monitor_wake.set()
                self.log(f"run: task {task.taskid} started, pid {pid}")
                return run
        # could not be started: a run with exit 127 and the reason on stderr, as a shell
        reason = os.strerror(spawn_error.errno) if isinstance(spawn_error, OSError) and \
            spawn_error.errno else str(spawn_error)
        self.log(f"run: task {task.taskid}: cannot start {os.fsdecode(argv[0])!r}: {reason}")
        errlog.task(task.taskid, f"cannot start {os.fsdecode(argv[0])!r}: {reason}")
        try:
            with open(out, "wb"):
                pass
            with open(err, "wb") as f:
                f.write(b"saturnd: " + argv[0] + b": " + reason.encode() + b"\n")
        except OSError as e:
            self.log(f"run: cannot write spool files: {e.strerror}")
        self._finish(run, 127)
        return run

    # --- ending ---------------------------------------------------------------
    def _finish(self, run, code, copy=False):
        run.exitcode = code
        if run.task is not None:
            try:
                cronrun.mail_output(run.task, run.time, code, run.out, run.err, self.log)
            except Exception as e:       # mail never stops a run from being recorded
                self.log(f"mail: task {run.taskid}: {type(e).__name__}: {e}")
        cut = run.hot or errlog.over_cap(self.output_cap, run.out, run.err)
        recorded = self.store.publish(run.taskid, run.token, run.time, code, run.out, run.err,
                                      self.output_cap, copy=copy)
        if recorded and cut:
            errlog.task(run.taskid, errlog.cut_text(run.time, self.output_cap))
        if self.on_finished is not None:      # the failure notice (saturnd/notice.py)
            try:
                self.on_finished(run, code, recorded)
            except Exception as e:
                self.log(f"run: task {run.taskid}: after the run: {type(e).__name__}: {e}")
        with self.cond:
            run.done = True
            self.cond.notify_all()

    def _reap_loop(self):
        while True:
            with self.cond:
                while not self.children:
                    if self.stopping:
                        return
                    self.cond.wait()
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.01)
                continue
            except InterruptedError:
                continue
            with self.cond:
                run = self.children.pop(pid, None)
            if run is None:
                continue
            code = exit_code(status)
            self.log(f"run: task {run.taskid} pid {pid} ended, exit code {code}")
            leftovers = self._open_leftovers(run)
            try:
                self._finish(run, code, copy=leftovers is not None)
            except Exception as e:   # never let the reaper die
                self.log(f"run: recording pid {pid} failed: {e}")
                with self.cond:
                    run.done = True
                    self.cond.notify_all()
            if leftovers is not None:       # only now: the outputs were copied first
                with self.cond:
                    self.orphans.append(leftovers)
                self._monitor_wake.set()

    def _open_leftovers(self, run):
        """The run's process ended; if its group lives on, open its spool files (before
        they are published and unlinked) to cut them back until the group is gone."""
        if not group_alive(run.pid):
            return None
        fds = []
        for path in (run.out, run.err):
            try:
                fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
            except OSError:
                pass
        self.log(f"run: task {run.taskid}: process group {run.pid} lives on after the run; "
                 f"its further output is discarded")
        return Orphans(run.pid, run.taskid, fds)

    def _watch_orphans(self, full):
        """Cut the orphans' spool files to zero; forget the groups that are gone.
        Returns True when one was caught writing."""
        with self.cond:
            orphans = list(self.orphans)
        hot = False
        gone = []
        for o in orphans:
            if not (full or o.hot):
                continue
            o.hot = False
            for fd in o.fds:
                try:
                    if os.fstat(fd).st_size > 0:
                        os.ftruncate(fd, 0)
                        o.hot = hot = True
                except OSError:
                    pass
            if full and not group_alive(o.pgid):
                gone.append(o)
        if gone:
            with self.cond:
                self.orphans = [o for o in self.orphans if o not in gone]
            for o in gone:
                o.close()
        return hot

    def _monitor_loop(self):
        """Cut spool files back to the output cap while runs write.

        Every run is looked at every MONITOR_INTERVAL s; a run younger than
        YOUNG_RUN s, or one caught writing past its cap (a ``yes`` task), every
        MONITOR_FAST s.  So the disk a run uses stays within the cap plus what it
        writes in about MONITOR_FAST s, without polling 1,000 quiet runs fast.
        """
        cap = self.output_cap
        interval = MONITOR_INTERVAL
        next_full = 0.0
        while True:
            self._monitor_wake.wait(interval)
            self._monitor_wake.clear()
            if self._monitor_stop.is_set():
                return
            now = time.monotonic()
            with self.cond:
                runs = list(self.children.values())
            full = now >= next_full
            if full:
                next_full = now + MONITOR_INTERVAL
            interval = MONITOR_INTERVAL
            young_runs = 0
            for run in runs:
                young = now - run.started < YOUNG_RUN
                if not (full or young or run.hot):
                    continue
                for path in (run.out, run.err):
                    try:
                        if os.stat(path).st_size > cap:
                            os.truncate(path, cap)
                            run.hot = True
                    except OSError:
                        pass
                if run.hot:
                    interval = MONITOR_FAST
                elif young:
                    young_runs += 1
            if self.orphans and self._watch_orphans(full):
                interval = MONITOR_FAST
            if young_runs:      # a burst of 1,000 new runs: look less often (CPU)
                interval = min(interval, MONITOR_FAST if young_runs <= 64 else MONITOR_BURST)
            if interval > next_full - now:
                interval = max(0.0, next_full - now)

    # --- waiting ----------------------------------------------------------------
    def wait_runs(self, runs, deadline):
        """Wait until every run of ``runs`` is recorded or ``deadline`` (monotonic).

        Returns the runs still going.
        """
        with self.cond:
            while True:
                pending = [r for r in runs if not r.done]
                remaining = deadline - time.monotonic()
                if not pending or remaining <= 0:
                    return pending
                self.cond.wait(min(remaining, 1.0))

    def running(self):
        with self.cond:
            return list(self.children.values())

    def shutdown(self, grace):
        """Give running runs ``grace`` seconds, kill the stragglers' groups, record all."""
        deadline = time.monotonic() + grace
        self.wait_runs(self.running(), deadline)
        while self.orphans and time.monotonic() < deadline:     # their grace too
            with self.cond:
                if not any(group_alive(o.pgid) for o in self.orphans):
                    break
            time.sleep(0.05)
        with self.cond:
            orphans, self.orphans = self.orphans, []
        for o in orphans:
            if group_alive(o.pgid):
                self.log(f"run: killing process group {o.pgid} left by task {o.taskid} "
                         f"after the grace period")
                try:
                    os.killpg(o.pgid, signal.SIGKILL)
                except OSError:
                    pass
            o.close()
        stragglers = self.running()
        for run in stragglers:
            self.log(f"run: killing task {run.taskid} pid {run.pid} after the grace period")
            errlog.task(run.taskid, errlog.killed_text(run.time, grace))
            try:
                os.killpg(run.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except OSError as e:
                self.log(f"run: killpg({run.pid}) failed: {e.strerror}")
                try:
                    os.kill(run.pid, signal.SIGKILL)
                except OSError:
                    pass
        self.wait_runs(stragglers, time.monotonic() + 10)
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self._monitor_stop.set()
        self._monitor_wake.set()
        for t in self._threads:
            t.join(timeout=2)

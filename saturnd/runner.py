"""Starting runs, capturing their output, recording them (the C ``saturnd_child``).

A run is spawned directly (``posix_spawnp``, no shell) in a new session, with
stdin on ``/dev/null`` and stdout/stderr on pipes (below) whose bytes end in spool
files in ``DATA_DIR/runs``.  A reaper thread waits for every child;
when one ends, its outputs and exit record are published through the store
(only if the task still has the incarnation token the run started with).

A run's stdout and stderr are pipes the daemon reads (the "pump" thread) and
copies into its spool files, up to the output cap: the bytes of a run on disk never
exceed the cap, at any moment (no slack: the daemon writes them itself).  Past the cap,
what the run writes is read and discarded; the pipe is then widened to 1 MiB and drained
only every ``DISCARD_INTERVAL`` s, so a writer that never stops (``yes``) costs the
daemon little: it runs on, slowed to about 1 MiB per ``DISCARD_INTERVAL``, and is never
killed for it.  The same holds for the runs of a removed task (they run to their end,
their output bounded like any run's, then dropped) and for descendants left in the run's
process group (``cmd &``) after the run is recorded: the spool files are sealed when the
run's process ends (after what the pipes hold is copied), so everything such
descendants write afterwards is discarded, never stored.  At shutdown such groups get the
same grace as running runs, then SIGKILL.  (A descendant that leaves the group with
``setsid`` is out of reach of the kill, but its output is discarded the same way.)
"""

import fcntl
import os
import select
import signal
import threading
import time

from . import cronrun, errlog, protocol

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from .errlog import ErrorLog
    from .store import Store, Task

DEFAULT_OUTPUT_CAP = 64 << 20
DISCARD_INTERVAL = 0.02   # past the cap, a run's pipe is drained this often
DRAIN_WAIT = 2.0          # a run ended: wait this long at most for its pipes' end of file
ORPHAN_DRAIN_WAIT = 0.05  # ... when its process group lives on (descendants hold them)
_CHUNK = 1 << 16
_WIDE_PIPE = 1 << 20

_SPOOL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
_DEFAULT_SIGNALS = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def run_environment(environ: "Mapping[Any, Any] | None" = None) -> "dict[Any, Any]":
    """The daemon's environment minus saturnd's own ``SATURND_*`` variables."""
    environ = os.environb if environ is None else environ
    return {k: v for k, v in environ.items()
            if not (k.startswith(b"SATURND_") if isinstance(k, bytes) else k.startswith("SATURND_"))}


def exit_code(status: int) -> int:
    """The recorded EXITCODE of a wait status: WEXITSTATUS, else 0xFFFF."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return protocol.EXIT_SIGNALED


class Run:
    __slots__ = ("taskid", "token", "time", "pid", "out", "err", "exitcode", "done", "started",
                 "hot", "streams", "task")

    def __init__(self, taskid: int, token: object, when: int, out: str, err: str) -> None:
        self.taskid = taskid
        self.token = token
        self.time = when
        self.out = out
        self.err = err
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.done = False
        self.started = time.monotonic()
        self.hot = False        # wrote past the output cap (its output was cut)
        self.streams: list[Stream] = []
        self.task: Task | None = None        # the task, when its cron attributes matter at the end (MAILTO)

    def __repr__(self) -> str:
        return f"Run(task={self.taskid}, pid={self.pid}, time={self.time}, exit={self.exitcode})"


class Stream:
    """One output pipe of a run: its reading end, copied into a spool file up to the cap."""

    __slots__ = ("run", "fd", "spool", "size", "discarding", "eof", "made", "lock")

    def __init__(self, run: Run, fd: int, spool: str | None) -> None:
        self.run = run
        self.fd = fd
        self.lock = threading.Lock()    # a write to the spool file vs sealing it
        self.spool = spool        # the spool file's path; None once sealed
        self.size = 0
        self.made = False         # the spool file exists (made at the first bytes)
        self.discarding = False   # drained every DISCARD_INTERVAL s, not polled
        self.eof = False


def group_alive(pgid: int) -> bool:
    """True while the process group ``pgid`` has a member."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True         # EPERM: someone is there
    return True


class Orphans:
    """A process group of a recorded run that still has members (killed at shutdown)."""

    __slots__ = ("pgid", "taskid")

    def __init__(self, pgid: int, taskid: int) -> None:
        self.pgid = pgid
        self.taskid = taskid


def raise_fd_limit() -> None:
    """Two pipes and two spool files per running run: the soft descriptor limit is raised
    to the hard one (at most 1 << 20)."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 1 << 20
        want = min(want, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


class Runner:
    def __init__(self, store: "Store", log: "Callable[[str], object]",
                 output_cap: int = DEFAULT_OUTPUT_CAP,
                 env: "Mapping[bytes, bytes] | Mapping[str, str] | None" = None,
                 errors: "ErrorLog | None" = None) -> None:
        self.store = store
        self.errors = errlog.NONE if errors is None else errors   # saturnd/errlog.py
        self.log = log
        self.output_cap = output_cap
        self.env = run_environment() if env is None else env
        self.cond = threading.Condition()
        self.children: dict[int, Run] = {}          # pid -> Run
        self.orphans: list[Orphans] = []    # groups left behind by recorded runs
        self.stopping = False
        self.streams: dict[int, Stream] = {}    # reading fd -> Stream (under cond)
        self._new_streams: list[Stream] = []      # to register with the pump's poller (under cond)
        self.eof_cond = threading.Condition()   # a stream reached end of file
        self._pump_stop = False
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._threads: list[threading.Thread] = []
        # (run, exit code, recorded), after each run
        self.on_finished: Callable[[Run, int, bool], object] | None = None
        raise_fd_limit()

    def start_threads(self) -> None:
        for target, name in ((self._reap_loop, "reaper"), (self._pump_loop, "pump")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def _wake_pump(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # --- starting -------------------------------------------------------------
    def start(self, task: "Task", when: float) -> Run:
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
        # the daemon holds only the two reading ends per run: every descriptor it holds
        # is copied at each spawn (the spool files are opened only to write, briefly)
        opened: list[int] = []
        with self.cond:
            try:
                for _ in range(2):
                    opened += os.pipe2(os.O_CLOEXEC)
                actions = [
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, opened[1], 1),
                    (os.POSIX_SPAWN_DUP2, opened[3], 2),
                ]
                pid = os.posix_spawnp(argv[0], list(argv), env, file_actions=actions,
                                      setsid=True, setsigdef=_DEFAULT_SIGNALS, setsigmask=())
            except (OSError, ValueError) as e:
                spawn_error = e
                for fd in opened:
                    os.close(fd)
            else:
                for spool, r, w in ((out, opened[0], opened[1]), (err, opened[2], opened[3])):
                    os.close(w)
                    os.set_blocking(r, False)
                    stream = Stream(run, r, spool)
                    run.streams.append(stream)
                    self.streams[r] = stream
                    self._new_streams.append(stream)
                run.pid = pid
                self.children[pid] = run
                self.cond.notify_all()
                self._wake_pump()
                self.log(f"run: task {task.taskid} started, pid {pid}")
                return run
        # could not be started: a run with exit 127 and the reason on stderr, as a shell
        reason = os.strerror(spawn_error.errno) if isinstance(spawn_error, OSError) and \
            spawn_error.errno else str(spawn_error)
        self.log(f"run: task {task.taskid}: cannot start {os.fsdecode(argv[0])!r}: {reason}")
        self.errors.add_task(task.taskid, f"cannot start {os.fsdecode(argv[0])!r}: {reason}")
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
    def _finish(self, run: Run, code: int) -> None:
        run.exitcode = code
        if run.task is not None:
            try:
                cronrun.mail_output(run.task, run.time, code, run.out, run.err, self.log,
                                    self.errors)
            except Exception as e:       # mail never stops a run from being recorded
                self.log(f"mail: task {run.taskid}: {type(e).__name__}: {e}")
        cut = run.hot or errlog.over_cap(self.output_cap, run.out, run.err)
        recorded = self.store.publish(run.taskid, run.token, run.time, code, run.out, run.err,
                                      self.output_cap)
        if recorded and cut:
            self.errors.add_task(run.taskid, errlog.cut_text(run.time, self.output_cap))
        if self.on_finished is not None:      # the failure notice (saturnd/notice.py)
            try:
                self.on_finished(run, code, recorded)
            except Exception as e:
                self.log(f"run: task {run.taskid}: after the run: {type(e).__name__}: {e}")
        with self.cond:
            run.done = True
            self.cond.notify_all()

    def _seal(self, run: Run, wait: float) -> bool:
        """Wait up to ``wait`` s for the end of file of the run's pipes (what they hold is
        copied meanwhile), then seal its spool files: nothing more is written there."""
        deadline = time.monotonic() + wait
        with self.eof_cond:
            while not all(s.eof for s in run.streams):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.eof_cond.wait(left)
        for stream in run.streams:
            with stream.lock:
                stream.spool = None
        drained = all(s.eof for s in run.streams)
        for stream, path in zip(run.streams, (run.out, run.err)):
            if not stream.made:     # never wrote: an empty output
                try:
                    os.close(os.open(path, _SPOOL_FLAGS, 0o600))
                except OSError as e:
                    self.log(f"run: cannot write spool files: {e.strerror}")
        return drained

    def _reap_loop(self) -> None:
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
            lives_on = group_alive(pid)
            drained = self._seal(run, ORPHAN_DRAIN_WAIT if lives_on else DRAIN_WAIT)
            try:
                self._finish(run, code)
            except Exception as e:   # never let the reaper die
                self.log(f"run: recording pid {pid} failed: {e}")
                with self.cond:
                    run.done = True
                    self.cond.notify_all()
            if lives_on or not drained:
                self.log(f"run: task {run.taskid}: process group {run.pid} lives on after "
                         f"the run; its further output is discarded")
                if lives_on:
                    with self.cond:
                        self.orphans.append(Orphans(pid, run.taskid))

    # --- the pump: pipes -> spool files, within the cap ---------------------------------
    def _take(self, stream: Stream, data: bytes) -> bool:
        """Copy ``data`` (read from ``stream``) into its spool file, within the cap; returns
        False when the stream is past the cap (or sealed): drained, not polled, from now."""
        with stream.lock:
            spool = stream.spool
            room = self.output_cap - stream.size
            keep = data[:room] if room > 0 else b""
            if spool is not None and keep:
                try:
                    fd = os.open(spool, _SPOOL_FLAGS, 0o600)
                    stream.made = True
                    try:
                        view = memoryview(keep)
                        while view:
                            view = view[os.write(fd, view):]
                    finally:
                        os.close(fd)
                except OSError as e:
                    self.log(f"run: task {stream.run.taskid}: cannot write its spool file: "
                              f"{e.strerror or e}; output cut")
                    stream.run.hot = True
                stream.size += len(keep)
            if len(keep) < len(data):
                if spool is not None:
                    stream.run.hot = True
                return False
            return spool is not None

    def _close_stream(self, stream: Stream) -> None:
        with self.cond:     # forgotten before closed: a new pipe may get the same number
            self.streams.pop(stream.fd, None)
            os.close(stream.fd)
        with self.eof_cond:
            stream.eof = True
            self.eof_cond.notify_all()

    def _widen(self, stream: Stream) -> None:
        try:
            fcntl.fcntl(stream.fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _WIDE_PIPE)
        except OSError:
            pass

    def _pump_loop(self) -> None:
        """Copy what runs write into their spool files (cap-bounded), forever."""
        # epoll: registering is O(1) and a wait costs what is ready, not what is registered
        # (poll() rebuilds its array of 2,000 descriptors after every change: 1,000 runs
        # started in one minute would cost O(n^2))
        poller = select.epoll() if hasattr(select, "epoll") else select.poll()
        readable = select.EPOLLIN if hasattr(select, "epoll") else select.POLLIN
        poller.register(self._wake_r, readable)
        discarding: list[Stream] = []
        stream: Stream | None
        while True:
            with self.cond:
                new, self._new_streams = self._new_streams, []
                if self._pump_stop:
                    return
            for stream in new:
                poller.register(stream.fd, readable)
            timeout = DISCARD_INTERVAL if discarding else None
            if not hasattr(select, "epoll"):
                timeout = -1 if timeout is None else int(timeout * 1000)
            try:
                events = poller.poll(timeout)
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                stream = self.streams.get(fd)
                if stream is None:      # not ours (any more): never poll it again
                    try:
                        poller.unregister(fd)
                    except (OSError, KeyError, ValueError):
                        pass
                    continue
                try:
                    data = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(fd)
                    self._close_stream(stream)
                elif not self._take(stream, data):
                    poller.unregister(fd)     # past the cap: drained slowly from now
                    self._widen(stream)
                    stream.discarding = True
                    discarding.append(stream)
            if discarding:
                still = []
                for stream in discarding:
                    try:
                        data = os.read(stream.fd, _WIDE_PIPE)
                    except BlockingIOError:
                        still.append(stream)
                        continue
                    except OSError:
                        data = b""
                    if data:
                        self._take(stream, data)   # sealed meanwhile? still discarded
                        still.append(stream)
                    else:
                        self._close_stream(stream)
                discarding = still

    # --- waiting ----------------------------------------------------------------
    def wait_runs(self, runs: "Iterable[Run]", deadline: float) -> list[Run]:
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

    def running(self) -> list[Run]:
        with self.cond:
            return list(self.children.values())

    def shutdown(self, grace: float) -> None:
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
        stragglers = self.running()
        for run in stragglers:
            assert run.pid is not None      # a child: started
            self.log(f"run: killing task {run.taskid} pid {run.pid} after the grace period")
            self.errors.add_task(run.taskid, errlog.killed_text(run.time, grace))
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
        with self.cond:
            self._pump_stop = True
        self._wake_pump()
        for t in self._threads:
            t.join(timeout=2)

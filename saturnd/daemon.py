"""The daemon's pieces wired together: :class:`Daemon` starts them in order (each step a
method of its own), serves until a stop is requested, then stops them.

``saturnd/__main__.py`` parses the options, detaches, and hands over to :class:`Daemon`.
"""

import os
import signal
import threading
import time

from . import __version__, control, errlog, history, notice, server as server_mod
from .clock import ManualClock, SystemClock, floor_minute
from .commands import Context
from .instance import StartupError, claim
from .runner import Runner
from .scheduler import Scheduler
from .stop import StopFlag
from .store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    import argparse
    from types import FrameType

    from .__main__ import Log
    from .clock import Clock
    from .instance import Instance

PREDECESSOR_MARGIN = 15.0     # added to --grace: how long to wait for a stopping predecessor


def mark_fds_non_inheritable() -> None:
    try:
        fds: list[int] | range = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 256)
    for fd in fds:
        if fd >= 3:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


class Daemon:
    """The pieces of a running saturnd, started in order by :meth:`start`."""

    def __init__(self, args: "argparse.Namespace", log: "Log") -> None:
        self.args = args
        self.log = log
        self.stop = StopFlag(on_stop=self._mark_stopping)
        self.instance: Instance | None = None
        self.control: control.Control | None = None
        self.server: server_mod.Server | None = None

    def request_stop(self, reason: str) -> None:
        self.stop.request(reason)

    def _mark_stopping(self, reason: str) -> None:
        if self.instance is not None:
            self.instance.set_state("stopping")    # a successor waits for us

    def _on_signal(self, signum: int, frame: "FrameType | None") -> None:
        self.request_stop(f"signal {signal.Signals(signum).name}")

    def status_text(self) -> str:
        """STATUS (``cassini -S``): ``name: value`` lines."""
        since = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(self.started_at))
        with self.store.lock:
            tasks = len(self.store.tasks)
            paused = sum(1 for t in self.store.tasks.values() if t.paused)
        lines = [("pid", os.getpid()), ("version", __version__),
                 ("since", f"{since} ({int(self.started_at)})"),
                 ("clock", f"{self.args.clock} (now {int(self.clock.now())})"),
                 ("data", self.args.data_dir), ("pipes", self.args.pipes_dir),
                 ("tasks", tasks), ("paused", paused),
                 ("running", len(self.runner.running())),
                 ("history", f"{self.args.history} runs per task"),
                 ("on-failure", self.args.on_failure or "-")]
        return "".join(f"{name}: {value}\n" for name, value in lines)

    def start(self) -> None:
        """Everything up to readiness; raises StartupError."""
        self.started_at = time.time()
        mark_fds_non_inheritable()
        self.clock = make_clock(self.args)
        self.log.clock = self.clock
        self._claim()
        self._open_store()
        self._enter_home()
        self._start_workers()
        self._catch_signals()
        self._open_server()
        self.log(f"ready (pid {os.getpid()}, pipes {self.args.pipes_dir}, data "
                 f"{self.args.data_dir}, clock {self.args.clock} at {int(self.clock.now())})")

    def _claim(self) -> None:
        """The pipes and data directories, their locks, the FIFOs (saturnd/instance.py)."""
        fifos = [server_mod.REQUEST_PIPE, server_mod.REPLY_PIPE]
        clock_fifos = [control.REQUEST_PIPE, control.REPLY_PIPE]
        if self.args.clock == "manual":
            fifos, clock_fifos = fifos + clock_fifos, []
        self.instance = claim(self.args.pipes_dir, self.args.data_dir, fifos, clock_fifos,
                              self.args.grace + PREDECESSOR_MARGIN, self.log)

    def _open_store(self) -> None:
        try:
            self.store = Store(self.args.data_dir, self.log)
            self.errors = errlog.ErrorLog(self.store, self.clock, self.log)
            self.history = history.History(self.store, self.args.history,
                                           self.args.history_cap)
            self.store.on_published = self.history.published
            self.store.open(self.errors)     # damaged entries are recorded
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            raise StartupError(f"{e.strerror or e}{where}") from None

    def _enter_home(self) -> None:
        home = os.path.expanduser("~")
        try:
            os.chdir(home)
        except OSError as e:
            self.log(f"cannot chdir to {home!r} ({e.strerror}); runs start in /")
            os.chdir("/")

    def _start_workers(self) -> None:
        """The runner; the scheduler, driven by its own thread or by the clock channel."""
        self.runner = Runner(self.store, self.log, self.args.output_cap, errors=self.errors)
        self.runner.on_finished = notice.Notice(self.store, self.history, self.log,
                                                self.args.on_failure,
                                                self.stop.is_set, self.errors).finished
        self.runner.start_threads()
        self.scheduler = Scheduler(self.store, self.runner, self.clock, self.log,
                                   self.errors)
        self.scheduler.start_up(self.store.last_minute())    # @reboot, catch-up
        if isinstance(self.clock, ManualClock):     # --clock manual (make_clock)
            self.control = control.Control(self.args.pipes_dir, self.clock, self.scheduler,
                                           self.runner, self.log)
            self.control.start()
        else:
            threading.Thread(target=self.scheduler.loop, name="scheduler", daemon=True).start()

    def _catch_signals(self) -> None:
        signal.set_wakeup_fd(self.stop.open(), warn_on_full_buffer=False)
        # TERM (docker stop), INT (^C) and HUP (a closed terminal, a supervisor): the same
        # graceful stop as TERMINATE; a detached daemon ignored HUP only while it detached
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _open_server(self) -> None:
        ctx = Context(self.store, self.runner, self.clock, self.scheduler, self.errors,
                      self.request_stop)
        ctx.history = self.history
        ctx.status = self.status_text
        assert self.instance is not None        # _claim ran first
        self.server = server_mod.Server(self.args.pipes_dir, ctx, self.log, self.stop,
                                        self.instance.pipes)
        try:
            self.server.open()    # the request pipe has a reader before we say "ready"
        except OSError as e:
            raise StartupError(f"cannot open the request pipe: {e.strerror}") from None

    def run(self) -> int:
        assert self.server is not None, "run() before start()"
        self.server.serve_forever()
        self.request_stop("request loop ended")
        self.log(f"stopping ({self.stop.reason}); grace {self.args.grace:g} s")
        self.scheduler.stop()
        if self.control is not None:
            self.control.stop()
        self.runner.shutdown(self.args.grace)
        self.store.save_index()     # the next start reads one file, not every task's
        self.log("stopped")
        return 0


def make_clock(args: "argparse.Namespace") -> "Clock":
    if args.clock == "manual":
        start = args.start_time if args.start_time is not None else floor_minute(time.time())
        return ManualClock(start)
    return SystemClock()

"""saturnd: options, daemonizing, wiring the pieces together.

``saturnd [-p PIPES_DIR] [--data-dir DIR] [-f|--foreground] [--clock system|manual]
[--start-time EPOCH] [--log FILE] [--grace SECONDS] [--output-cap BYTES] [-h]``
"""

import argparse
import errno
import fcntl
import os
import pwd
import signal
import stat
import sys
import threading
import time

from . import errlog, pipes as pipes_mod, protocol, security, server as server_mod
from .clock import ManualClock, SystemClock, floor_minute
from .runner import DEFAULT_OUTPUT_CAP, Runner
from .scheduler import Scheduler
from .store import Store

DEFAULT_GRACE = 5.0
LOCK_NAME = protocol.DAEMON_LOCK
PREDECESSOR_MARGIN = 15.0


class StartupError(Exception):
    """A reason not to start (one line, for the user)."""


# --- options ----------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write(f"saturnd: {message}\n")
        sys.exit(1)


def _positive_float(text):
    value = float(text)
    if not (value >= 0) or value != value or value == float("inf"):
        raise ValueError(text)
    return value


def _cap(text):
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def username():
    user = os.environ.get("USER")
    if user:
        return user
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def default_pipes_dir():
    return protocol.default_pipes_dir(username())


def default_data_dir():
    if os.environ.get("SATURND_DATA_DIR"):
        return os.environ["SATURND_DATA_DIR"]
    if os.environ.get("XDG_STATE_HOME"):
        return os.path.join(os.environ["XDG_STATE_HOME"], "saturnd")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "saturnd")


def parse_args(argv):
    p = _Parser(prog="saturnd", description="saturnd: a per-user task scheduler (cron-like).")
    p.add_argument("-p", dest="pipes_dir", metavar="PIPES_DIR",
                   help="pipes directory (default /tmp/<USERNAME>/saturnd/pipes)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="storage (default $SATURND_DATA_DIR, else $XDG_STATE_HOME/saturnd, "
                        "else ~/.local/state/saturnd)")
    p.add_argument("-f", "--foreground", action="store_true",
                   help="stay attached and log to stderr")
    p.add_argument("--clock", choices=("system", "manual"), default="system",
                   help="time source (manual: driven by saturnd-clock)")
    p.add_argument("--start-time", type=int, metavar="EPOCH",
                   help="manual clock start (default: now, floored to the minute)")
    p.add_argument("--log", metavar="FILE", help="log file when detached (default DATA_DIR/saturnd.log)")
    p.add_argument("--grace", type=_positive_float, default=DEFAULT_GRACE, metavar="SECONDS",
                   help=f"time given to running tasks at shutdown (default {DEFAULT_GRACE:g})")
    p.add_argument("--output-cap", type=_cap, default=DEFAULT_OUTPUT_CAP, metavar="BYTES",
                   help="bytes kept per output stream of a run (default 64 MiB)")
    args = p.parse_args(argv)
    if args.start_time is not None and args.clock != "manual":
        p.error("--start-time needs --clock manual")
    args.pipes_dir = os.path.abspath(args.pipes_dir or default_pipes_dir())
    args.data_dir = os.path.abspath(args.data_dir or default_data_dir())
    if args.log:
        args.log = os.path.abspath(args.log)
    return args


# --- logging -------------------------------------------------------------------
class Log:
    def __init__(self, stream, clock=None):
        self.stream = stream
        self.clock = clock
        self.lock = threading.Lock()

    def __call__(self, message):
        stamp = ""
        if self.clock is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S ", time.localtime(self.clock.now()))
        line = f"{stamp}saturnd[{os.getpid()}]: {message}\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass


# --- life cycle helpers ------------------------------------------------------------
def make_private_dirs(path):
    """Create ``path`` and missing parents with mode 0700."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            if not os.path.isdir(d):
                raise StartupError(f"{d} exists and is not a directory") from None
        except OSError as e:
            raise StartupError(f"cannot create the directory {path}: {e.strerror}") from None


def mark_fds_non_inheritable():
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 256)
    for fd in fds:
        if fd >= 3:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


class InstanceLock:
    """``flock`` on a lock file holding ``running PID`` or ``stopping PID``."""

    def __init__(self, path, what):
        self.path = path
        self.what = what
        self.fd = None
        self.state_stopping = False

    def acquire(self, wait_for_stopping):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        waiting_until = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            state = self._holder_state(fd)
            if state.startswith("stopping"):
                if waiting_until is None:
                    waiting_until = time.monotonic() + wait_for_stopping
                elif time.monotonic() > waiting_until:
                    os.close(fd)
                    raise StartupError(f"the saturnd stopping on {self.what} {self.path!r} "
                                       "did not exit in time")
                time.sleep(0.02)
                continue
            if not state:   # the holder is writing its state; look again shortly
                if waiting_until is None:
                    waiting_until = time.monotonic() + 1.0
                if time.monotonic() <= waiting_until:
                    time.sleep(0.02)
                    continue
            os.close(fd)
            holder = state.split()[1] if len(state.split()) > 1 else "?"
            raise StartupError(f"another saturnd (pid {holder}) is already running on "
                               f"{self.what} {os.path.dirname(self.path)}")
        self.fd = fd
        self.set_state("running")

    def holds(self):
        """True while the lock file at ``path`` is still the one we hold."""
        try:
            st, mine = os.lstat(self.path), os.fstat(self.fd)
        except (OSError, TypeError):
            return False
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def reacquire(self):
        """Take the lock again on a new lock file (ours vanished with the pipes directory);
        raises ``PipesError`` when another saturnd holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            state = self._holder_state(fd)
            os.close(fd)
            holder = state.split()[1] if len(state.split()) > 1 else "?"
            raise pipes_mod.PipesError(f"another saturnd (pid {holder}) now holds "
                                       f"{self.path}; leaving its pipes alone") from None
        old, self.fd = self.fd, fd
        if old is not None:
            os.close(old)
        self.set_state("stopping" if self.state_stopping else "running")

    @staticmethod
    def _holder_state(fd):
        try:
            return os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        except OSError:
            return ""

    def set_state(self, state):
        self.state_stopping = state == "stopping"
        if self.fd is None:
            return
        try:
            data = f"{state} {os.getpid()}\n".encode()
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
        except OSError:
            pass


# --- the daemon ------------------------------------------------------------------
class Daemon:
    """The context handed to request handlers: store, runner, clock, request_stop."""

    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.stopping = False
        self.stop_reason = None
        self.locks = []
        self.wake_r = self.wake_w = None
        self.control = None
        self.server = None
        self.pipes = None

    def request_stop(self, reason):
        if not self.stopping:
            self.stopping = True
            self.stop_reason = reason
            for lock in self.locks:
                lock.set_state("stopping")
        if self.wake_w is not None:
            try:
                os.write(self.wake_w, b"\0")
            except OSError:
                pass

    def drain_wakeup(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except OSError:
            pass

    def _on_signal(self, signum, frame):
        self.request_stop(f"signal {signal.Signals(signum).name}")

    def start(self):
        """Everything up to readiness; raises StartupError."""
        args = self.args
        mark_fds_non_inheritable()
        if args.clock == "manual":
            start = args.start_time if args.start_time is not None else floor_minute(time.time())
            self.clock = ManualClock(start)
        else:
            self.clock = SystemClock()
        self.log.clock = self.clock
        try:
            from . import control
            names = [server_mod.REQUEST_PIPE, server_mod.REPLY_PIPE]
            if args.clock == "manual":
                names += [control.REQUEST_PIPE, control.REPLY_PIPE]
            self.pipes = pipes_mod.Pipes(args.pipes_dir, names, self.log, make_private_dirs)
            try:
                self.pipes.prepare_dir()
            except security.InsecurePath as e:
                raise StartupError(str(e)) from None
            make_private_dirs(args.data_dir)
            wait = args.grace + PREDECESSOR_MARGIN
            for path, what in ((os.path.join(args.pipes_dir, LOCK_NAME), "pipes directory"),
                               (os.path.join(args.data_dir, LOCK_NAME), "data directory")):
                lock = InstanceLock(path, what)
                lock.acquire(wait)
                self.locks.append(lock)
            self.pipes.lock = self.locks[0]
            try:
                self.pipes.make_fifos()     # afresh: unlink ours, mkfifo 0600 (pipes.py)
            except security.InsecurePath as e:
                raise StartupError(str(e)) from None
            if args.clock != "manual":
                for name in (control.REQUEST_PIPE, control.REPLY_PIPE):
                    path = os.path.join(args.pipes_dir, name)
                    if os.path.exists(path) and stat.S_ISFIFO(os.lstat(path).st_mode):
                        os.unlink(path)     # a manual-clock daemon's leftover: clients fail fast
            self.store = Store(args.data_dir, self.log)
            self.errors = errlog.ErrorLog(self.store.root, self.clock, self.store, self.log)
            errlog.install(self.errors)     # before open(): damaged entries are logged
            self.store.open()
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            raise StartupError(f"{e.strerror or e}{where}") from None
        home = os.path.expanduser("~")
        try:
            os.chdir(home)
        except OSError as e:
            self.log(f"cannot chdir to {home!r} ({e.strerror}); runs start in /")
            os.chdir("/")
        self.runner = Runner(self.store, self.log, args.output_cap)
        self.runner.start_threads()
        self.scheduler = Scheduler(self.store, self.runner, self.clock, self.log)
        if args.clock == "manual":
            from .control import Control
            self.control = Control(args.pipes_dir, self.clock, self.scheduler, self.runner, self.log)
            self.control.start()
        else:
            threading.Thread(target=self.scheduler.loop, name="scheduler", daemon=True).start()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        # TERM (docker stop), INT (^C) and HUP (a closed terminal, a supervisor): the same
        # graceful stop as TERMINATE; a detached daemon ignored HUP only while it detached
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self.server = server_mod.Server(args.pipes_dir, self, self.log, self.wake_r)
        self.server.pipes = self.pipes
        try:
            self.server._reopen()    # the request pipe has a reader before we say "ready"
        except OSError as e:
            raise StartupError(f"cannot open the request pipe: {e.strerror}") from None
        self.log(f"ready (pid {os.getpid()}, pipes {args.pipes_dir}, data {args.data_dir}, "
                 f"clock {args.clock} at {int(self.clock.now())})")

    def run(self):
        self.server.serve_forever()
        self.request_stop("request loop ended")
        self.log(f"stopping ({self.stop_reason}); grace {self.args.grace:g} s")
        self.scheduler.stop()
        if self.control is not None:
            self.control.stop()
        self.runner.shutdown(self.args.grace)
        self.log("stopped")
        return 0


def run_daemon(args, ready_fd=None):
    if ready_fd is None and not args.log:
        log = Log(sys.stderr)
    else:   # detached: DATA_DIR/saturnd.log or --log; in the foreground only with --log
        path = args.log or os.path.join(args.data_dir, "saturnd.log")
        try:
            make_private_dirs(os.path.dirname(path))
            stream = open(path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
        except (OSError, StartupError) as e:
            msg = f"saturnd: cannot open the log file {path}: {getattr(e, 'strerror', None) or e}\n"
            if ready_fd is None:
                sys.stderr.write(msg)
            else:
                _report(ready_fd, msg)
            return 1
        log = Log(stream)
    daemon = Daemon(args, log)
    try:
        daemon.start()
    except (StartupError, OSError, ValueError) as e:
        if isinstance(e, OSError):
            e = f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
        if log.stream is not sys.stderr:
            log(f"cannot start: {e}")
        if ready_fd is None:
            sys.stderr.write(f"saturnd: {e}\n")
        else:
            _report(ready_fd, f"saturnd: {e}\n")
        return 1
    if ready_fd is not None:
        _report(ready_fd, "ready\n")
    try:
        return daemon.run()
    except Exception as e:   # a bug: one line in the log, runs still killed, exit 1
        log(f"internal error: {type(e).__name__}: {e}")
        daemon.request_stop("internal error")
        daemon.runner.shutdown(0)
        return 1


def _report(fd, text):
    try:
        os.write(fd, text.encode("utf-8", "backslashreplace"))
        os.close(fd)
    except OSError:
        pass


def daemonize(args):
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        chunks = []
        while True:
            try:
                data = os.read(r, 4096)
            except InterruptedError:
                continue
            if not data:
                break
            chunks.append(data)
        os.close(r)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        msg = b"".join(chunks).decode("utf-8", "replace")
        if msg == "ready\n":
            return 0
        sys.stderr.write(msg or "saturnd: the daemon failed to start\n")
        return 1
    # first child
    code = 1
    try:
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)
        os.set_inheritable(w, False)
        code = run_daemon(args, ready_fd=w)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.foreground:
        return run_daemon(args)
    return daemonize(args)


if __name__ == "__main__":
    sys.exit(main())

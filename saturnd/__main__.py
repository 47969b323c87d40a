"""saturnd: options, the text log, daemonizing; then :class:`saturnd.daemon.Daemon` (the
wiring) starts the pieces and serves.  Locks, private directories and FIFOs at start-up:
``saturnd/instance.py``.

``saturnd [-p PIPES_DIR] [--data-dir DIR] [-f|--foreground] [--clock system|manual]
[--start-time EPOCH] [--log FILE] [--grace SECONDS] [--output-cap BYTES] [--history N]
[--history-cap BYTES] [--on-failure COMMAND] [--log-max BYTES] [--version] [-h]``
"""

import argparse
import os
import signal
import sys
import threading
import time

from . import __version__, history, protocol
from .daemon import Daemon
from .instance import StartupError, make_private_dirs
from .runner import DEFAULT_OUTPUT_CAP

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from typing import IO, NoReturn

    from .clock import Clock

DEFAULT_GRACE = 5.0
DEFAULT_LOG_MAX = 1 << 20


# --- options ----------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> "NoReturn":
        self.print_usage(sys.stderr)
        sys.stderr.write(f"saturnd: {message}\n")
        sys.exit(1)


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value >= 0) or value != value or value == float("inf"):
        raise ValueError(text)
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _cap(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def default_data_dir() -> str:
    if os.environ.get("SATURND_DATA_DIR"):
        return os.environ["SATURND_DATA_DIR"]
    if os.environ.get("XDG_STATE_HOME"):
        return os.path.join(os.environ["XDG_STATE_HOME"], "saturnd")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "saturnd")


def parse_args(argv: list[str]) -> argparse.Namespace:
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
    # everyday use: run history, failure notice, log rotation, version
    p.add_argument("--history", type=_count, default=history.DEFAULT_KEEP, metavar="N",
                   help=f"runs whose outputs are kept per task (default "
                        f"{history.DEFAULT_KEEP}, 0: none)")
    p.add_argument("--history-cap", type=_cap, default=history.DEFAULT_CAP, metavar="BYTES",
                   help="bytes kept per output stream of a kept run (default 1 MiB)")
    p.add_argument("--on-failure", metavar="COMMAND",
                   help="run COMMAND with /bin/sh after each failed run (SATURND_TASKID, "
                        "SATURND_EXIT_STATUS, SATURND_STDOUT, ... in its environment)")
    p.add_argument("--log-max", type=_cap, default=DEFAULT_LOG_MAX, metavar="BYTES",
                   help="log file size at which it is rotated to FILE.1 (default 1 MiB)")
    p.add_argument("--version", action="version", version=f"saturnd {__version__}")
    args = p.parse_args(argv)
    if args.start_time is not None and args.clock != "manual":
        p.error("--start-time needs --clock manual")
    args.pipes_dir = os.path.abspath(args.pipes_dir or protocol.own_pipes_dir())
    args.data_dir = os.path.abspath(args.data_dir or default_data_dir())
    if args.log:
        args.log = os.path.abspath(args.log)
    return args


# --- logging -------------------------------------------------------------------
class Log:
    """The text log: one line per message; a log file (``path``) is rotated when it would
    pass ``max_bytes``: renamed to ``FILE.1`` (replacing the one before) and started
    afresh, so it takes at most about twice ``max_bytes``."""

    def __init__(self, stream: "IO[str]", clock: "Clock | None" = None, path: str | None = None,
                 max_bytes: int = DEFAULT_LOG_MAX) -> None:
        self.stream = stream
        self.clock = clock
        self.lock = threading.Lock()
        self.path = path
        self.max_bytes = max_bytes

    def __call__(self, message: str | bytes) -> None:
        stamp = ""
        if self.clock is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S ", time.localtime(self.clock.now()))
        if isinstance(message, bytes):      # text, never a repr
            message = message.decode("utf-8", "backslashreplace")
        line = f"{stamp}saturnd[{os.getpid()}]: {message}\n"
        with self.lock:
            try:
                if self.path is not None:
                    self._rotate(len(line.encode("utf-8", "backslashreplace")))
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def _rotate(self, adding: int) -> None:
        assert self.path is not None        # only a log file rotates
        try:
            size = os.fstat(self.stream.fileno()).st_size
        except (OSError, ValueError):
            return
        if size == 0 or size + adding <= self.max_bytes:
            return
        os.replace(self.path, self.path + ".1")
        fresh = open(self.path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
        old, self.stream = self.stream, fresh
        old.close()


# --- running, detached or not -------------------------------------------------------
def run_daemon(args: argparse.Namespace, ready_fd: int | None = None) -> int:
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
        log = Log(stream, path=path, max_bytes=args.log_max)
    daemon = Daemon(args, log)
    try:
        daemon.start()
    except (StartupError, OSError, ValueError) as e:
        why = str(e)
        if isinstance(e, OSError):
            why = f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
        if log.stream is not sys.stderr:
            log(f"cannot start: {why}")
        if ready_fd is None:
            sys.stderr.write(f"saturnd: {why}\n")
        else:
            _report(ready_fd, f"saturnd: {why}\n")
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


def _report(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode("utf-8", "backslashreplace"))
        os.close(fd)
    except OSError:
        pass


def daemonize(args: argparse.Namespace) -> int:
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.foreground:
        return run_daemon(args)
    return daemonize(args)


if __name__ == "__main__":
    sys.exit(main())

"""The daemon handle: one saturnd in its own directories, driven the same way whatever runs
it (its *target*). The local-process target is here; the container target is in
:mod:`testkit.container`.

A handle has a root directory holding ``pipes/``, ``data/``, ``home/`` and the log file
``saturnd.log`` (``--log``: a ``kill -9`` loses nothing of it). "Ready" means one thing
everywhere: the process is running and a LIST round trip through the pipes succeeds,
within a deadline. Clients: ``cassini()`` / ``out()`` run the cassini command, ``raw()``
and ``call()`` talk to the pipes directly, ``clock()`` runs saturnd-clock and
``clock_line()`` speaks the control channel's line protocol.
"""

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from saturnd import clockctl
from saturnd import protocol as P

from . import T0
from .pipes import call, raw_exchange
from .procs import pid_alive
from .waiting import wait_for

BIN = Path(sys.executable).parent
SATURND = [str(BIN / "saturnd")]
CASSINI = str(BIN / "cassini")         # this checkout's cassini (cassini_command: the one under test)
CLOCKCTL = [sys.executable, "-m", "saturnd.clockctl"]
LIST_REQUEST = P.encode_request(P.Request(P.LIST))


def cassini_command() -> list[str]:
    """The cassini under test: ``$CASSINI`` when set (a command line), else the venv's."""
    env = os.environ.get("CASSINI")
    if env:
        return shlex.split(env)
    return [CASSINI]


def answers_list(pipes: "str | os.PathLike[str]", timeout: float = 1.0) -> bool:
    """True when a daemon answers a LIST round trip on ``pipes`` (no lock taken: the
    readiness probe creates nothing in the pipes directory)."""
    try:
        reply = raw_exchange(pipes, LIST_REQUEST, timeout=timeout, lock=False)
    except (OSError, AssertionError):
        return False
    return reply is not None and reply.startswith(b"OK")


class DaemonHandle:
    """What every target shares: directories, arguments, readiness, the log, the clients.
    A target supplies ``_launch``, ``_run`` (a command where the daemon runs), ``proc``
    (Popen-like) and ``pid_alive``."""

    target: str | None = None

    def __init__(self, root: "str | os.PathLike[str]", start_time: float | None = T0,
                 tz: str | None = "UTC", extra: Iterable[str] = (),
                 env: Mapping[str, str] | None = None, clock: str = "manual",
                 grace: float = 1) -> None:
        self.root = Path(root)
        self.pipes = self.root / "pipes"
        self.data = self.root / "data"
        self.home = self.root / "home"
        self.logfile = self.root / "saturnd.log"
        self.home.mkdir(parents=True, exist_ok=True)
        self.start_time = start_time
        self.clock_kind = clock
        self.grace = grace
        self.env = dict(os.environ, HOME=str(self.home))
        if tz is not None:
            self.env["TZ"] = tz
        self.env.pop("SATURND_DATA_DIR", None)
        self.env.update(env or {})
        self.extra = list(extra)
        self.proc: Any = None     # Popen-like: the target's (poll, wait, send_signal, pid)

    # --- what a target supplies ------------------------------------------------------------
    def _launch(self) -> None:
        """Start saturnd (``self.proc``)."""
        raise NotImplementedError

    def _run(self, argv: list[str], env: Mapping[str, str], input: bytes | None,
             timeout: float) -> "subprocess.CompletedProcess[bytes]":
        """Run ``argv`` where the daemon runs (bytes out)."""
        raise NotImplementedError

    def _cassini_argv(self) -> list[str]:
        raise NotImplementedError

    def _clock_argv(self) -> list[str]:
        raise NotImplementedError

    def pid_alive(self, pid: int) -> bool:
        """Whether ``pid`` (where the daemon runs) is a live process."""
        raise NotImplementedError

    # --- starting -------------------------------------------------------------------
    def saturnd_args(self) -> list[str]:
        """saturnd's options (after the program name)."""
        args = ["-f", "--clock", self.clock_kind]
        if self.start_time is not None:
            args += ["--start-time", str(int(self.start_time))]
        return args + ["-p", str(self.pipes), "--data-dir", str(self.data),
                       "--grace", str(self.grace), "--log", str(self.logfile)] + self.extra

    def argv(self) -> list[str]:
        return SATURND + self.saturnd_args()

    def start(self, timeout: float = 20.0) -> "DaemonHandle":
        self._launch()
        wait_for(lambda: self.proc.poll() is not None or answers_list(self.pipes), timeout,
                 "saturnd to be ready (a LIST round trip)")
        if self.proc.poll() is not None:
            raise AssertionError(f"saturnd exited at start-up ({self.proc.returncode}):\n"
                                 + self.log()[-2000:])
        return self

    def restart(self) -> "DaemonHandle":
        """Start again (after kill9 or terminate); the clock goes on from --start-time."""
        return self.start()

    def log(self) -> str:
        text = ""
        for path in (self.logfile, self.root / "saturnd.stderr"):
            try:
                text += path.read_text(errors="replace")
            except OSError:
                pass
        return text

    # --- the process ------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float = 15) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("saturnd did not exit:\n" + self.log()[-2000:]) from None

    def terminate(self) -> int:
        """TERMINATE through cassini; the exit status."""
        self.cassini("-q")
        return self.wait_exit()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Teardown: SIGTERM (runs are killed after the grace), SIGKILL if that fails."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(10)

    # --- clients ----------------------------------------------------------------------
    @property
    def bpipes(self) -> bytes:
        return os.fsencode(str(self.pipes))

    def cassini(self, *args: str, check: bool = True, tz: str | None = None,
                input: bytes | None = None,
                timeout: float = 30) -> "subprocess.CompletedProcess[bytes]":
        """The cassini command (where the target runs it): a CompletedProcess, bytes."""
        env = {"TZ": tz} if tz else {}
        res = self._run(self._cassini_argv() + ["-p", str(self.pipes), *args], env, input,
                        timeout)
        if check:
            assert res.returncode == 0, (args, res, self.log()[-2000:])
        return res

    def out(self, *args: str, **kw: Any) -> bytes:
        return self.cassini(*args, **kw).stdout

    def raw(self, data: bytes, timeout: float = 30.0) -> bytes:
        """Raw request bytes in (under the client lock, the reply pipe opened first, as
        cassini does); the raw reply bytes, read to end of file."""
        reply = raw_exchange(self.pipes, data, timeout=timeout, reply_first=True)
        assert reply is not None, f"no reply within {timeout} s:\n" + self.log()[-2000:]
        return reply

    def call(self, req: P.Request, timeout: float = 10.0) -> P.Reply:
        return call(self.bpipes, req, timeout)

    # --- the manual clock -----------------------------------------------------------
    def clock(self, *args: object) -> tuple[int, str]:
        """saturnd-clock (where the target runs it): (exit status, stdout text)."""
        res = self._run(self._clock_argv() + ["-p", str(self.pipes)] + [str(a) for a in args],
                        {}, None, 60)
        return res.returncode, res.stdout.decode()

    def clock_line(self, line: str, timeout: float = 30.0) -> str:
        """One line on the control channel, from here; the reply line."""
        return clockctl.request(str(self.pipes), line, timeout=timeout)

    def advance(self, n: int = 1, deadline: float | None = None) -> int:
        extra = [] if deadline is None else [deadline]
        code, out = self.clock("advance", n, *extra)
        assert code == 0, (out, self.log()[-2000:])
        return int(out.split()[1])

    def set_time(self, epoch: int) -> None:
        code, out = self.clock("set", epoch)
        assert code == 0, (out, self.log()[-2000:])

    def now(self) -> int:
        return int(self.clock_line("now").split()[1])


class LocalDaemon(DaemonHandle):
    """The local-process target: saturnd of this checkout as a child process.

    ``python``: run ``PYTHON -m saturnd`` instead of the installed script; ``new_session``:
    in its own session (the benchmark kills the whole group)."""

    target = "local"

    def __init__(self, root: "str | os.PathLike[str]", python: str | None = None,
                 new_session: bool = False, **kw: Any) -> None:
        super().__init__(root, **kw)
        self.python = python
        self.new_session = new_session

    def argv(self) -> list[str]:
        head = [self.python, "-m", "saturnd"] if self.python else SATURND
        return head + self.saturnd_args()

    def _launch(self) -> None:
        with open(self.root / "saturnd.stderr", "ab") as err:
            self.proc = subprocess.Popen(self.argv(), env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=self.new_session)

    def _cassini_argv(self) -> list[str]:
        return cassini_command()

    def _clock_argv(self) -> list[str]:
        return CLOCKCTL

    def _run(self, argv: list[str], env: Mapping[str, str], input: bytes | None,
             timeout: float) -> "subprocess.CompletedProcess[bytes]":
        return subprocess.run(argv, env=dict(self.env, **env), capture_output=True,
                              timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def spawn_cassini(self, *args: str) -> "subprocess.Popen[bytes]":
        """A cassini started and not waited for (output discarded)."""
        return subprocess.Popen(cassini_command() + ["-p", str(self.pipes), *args],
                                env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def pid_alive(self, pid: int) -> bool:
        return pid_alive(pid)

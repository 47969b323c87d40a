"""The manual clock's control channel (only with ``--clock manual``).

Two FIFOs in the pipes directory, created by the daemon:
``saturnd-clock-request-pipe`` and ``saturnd-clock-reply-pipe``.  Clients
serialize with ``flock`` on ``PIPES_DIR/clock-lock``.  A request is one ASCII
line; the reply is one ASCII line, after which the daemon closes the reply
pipe.

- ``now``                        -> ``ok EPOCH``
- ``advance N [DEADLINE_SECONDS]`` -> crosses N minute boundaries one by one
  (each processed exactly like a real boundary), then waits until every run
  started in those minutes has ended and been recorded: ``ok EPOCH``, or after
  the deadline (default 10 s) ``pending EPOCH TASKID:PID ...``
- ``set EPOCH [DEADLINE_SECONDS]`` -> the clock jumps to EPOCH (a clock step:
  the time-jump rules apply), same answers as ``advance``
- anything else -> ``error MESSAGE``
"""

import os
import stat
import threading
import time

from . import fifo
from .clock import floor_minute
from .protocol import CLOCK_REPLY_PIPE as REPLY_PIPE, CLOCK_REQUEST_PIPE as REQUEST_PIPE

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable

    from .clock import ManualClock
    from .runner import Run, Runner
    from .scheduler import Scheduler

DEFAULT_DEADLINE = 10.0
MAX_LINE = 1024
MAX_ADVANCE = 10 * 366 * 24 * 60     # ten years of minutes
REPLY_OPEN_TIMEOUT = 5.0


def _number(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be an integer, not {text!r}") from None
    return value


def _deadline(words: list[str], index: int) -> float:
    if len(words) <= index:
        return DEFAULT_DEADLINE
    try:
        value = float(words[index])
    except ValueError:
        raise ValueError(f"bad deadline {words[index]!r}") from None
    if not (0 <= value <= 3600):
        raise ValueError("the deadline must be between 0 and 3600 seconds")
    return value


class Control:
    def __init__(self, pipes_dir: str, clock: "ManualClock", scheduler: "Scheduler",
                 runner: "Runner", log: "Callable[[str], object]") -> None:
        self.request_path = os.path.join(pipes_dir, REQUEST_PIPE)
        self.reply_path = os.path.join(pipes_dir, REPLY_PIPE)
        self.clock = clock
        self.scheduler = scheduler
        self.runner = runner
        self.log = log
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    # --- the commands ---------------------------------------------------------
    def execute(self, line: str) -> str:
        """One request line (without newline) -> one reply line (without newline)."""
        words = line.split()
        try:
            if not words:
                raise ValueError("empty request")
            cmd = words[0]
            if cmd == "now" and len(words) == 1:
                return f"ok {int(self.clock.now())}"
            if cmd == "advance" and len(words) in (2, 3):
                n = _number(words[1], "N")
                if not (0 <= n <= MAX_ADVANCE):
                    raise ValueError(f"N must be between 0 and {MAX_ADVANCE}")
                deadline = _deadline(words, 2)
                runs: list[Run] = []
                for _ in range(n):
                    self.clock.set(floor_minute(self.clock.now()) + 60)
                    runs += self.scheduler.tick()
                return self._answer(runs, deadline)
            if cmd == "set" and len(words) in (2, 3):
                epoch = _number(words[1], "EPOCH")
                if not (-(1 << 62) < epoch < 1 << 62):
                    raise ValueError("EPOCH out of range")
                deadline = _deadline(words, 2)
                self.clock.set(epoch)
                return self._answer(self.scheduler.tick(), deadline)
            raise ValueError(f"unknown request {line!r}")
        except (ValueError, OverflowError) as e:
            return f"error {e}"

    def _answer(self, runs: "list[Run]", deadline: float) -> str:
        pending = self.runner.wait_runs(runs, time.monotonic() + deadline)
        now = int(self.clock.now())
        if pending:
            return "pending %d %s" % (now, " ".join(f"{r.taskid}:{r.pid}" for r in pending))
        return f"ok {now}"

    # --- the FIFO loop ------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="control", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=2)

    def _open(self, old: int | None) -> int:
        fd = fifo.open_reader(self.request_path)
        if old is not None:
            os.close(old)
        return fd

    def _follow(self, fd: int) -> int:
        """The request FIFO was made again (saturnd/pipes.py): read the new one."""
        try:
            now, mine = os.lstat(self.request_path), os.fstat(fd)
        except OSError:
            return fd
        if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino) or \
                not stat.S_ISFIFO(now.st_mode):     # a symlink or else: pipes.py refuses it
            return fd
        self.log("control: the clock request pipe was made again; reading the new one")
        return self._open(fd)

    def _loop(self) -> None:
        fd = None
        try:
            fd = self._open(None)
            buf = b""
            while not self.stopped.is_set():
                data = fifo.read_some(fd, 0.2, 4096)
                if data is None:
                    fd = self._follow(fd)
                    continue
                if not data:
                    fd = self._open(fd)   # writer gone: reopen (else poll spins on HUP)
                    if buf:
                        self._serve(buf)  # a line without its newline
                        buf = b""
                    continue
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._serve(line)
                if len(buf) > MAX_LINE:
                    self._serve(buf)
                    buf = b""
        except Exception as e:   # never take the daemon down
            self.log(f"control: {type(e).__name__}: {e}")
        finally:
            if fd is not None:
                os.close(fd)

    def _serve(self, raw: bytes) -> None:
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            reply = "error request is not ASCII"
        else:
            try:
                reply = self.execute(line)
            except Exception as e:
                reply = f"error {type(e).__name__}: {e}"
        shown = raw[:80].decode("ascii", "backslashreplace").strip()     # text, not a repr
        self.log(f"control: {shown} -> {reply[:200]}")
        self._reply(reply.replace("\n", " ") + "\n")

    def _reply(self, text: str) -> None:
        try:
            fd = fifo.open_writer(self.reply_path, time.monotonic() + REPLY_OPEN_TIMEOUT)
        except OSError:
            self.log("control: no client read the reply; dropped")
            return
        try:
            os.set_blocking(fd, True)
            os.write(fd, text.encode("ascii"))
        except OSError as e:
            self.log(f"control: writing the reply failed: {e.strerror}")
        finally:
            os.close(fd)

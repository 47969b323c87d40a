"""Client of the manual clock's control channel (see :mod:`saturnd.control`).

``python -m saturnd.clockctl [-p PIPES_DIR] [--timeout S] now|advance N [D]|set EPOCH [D]``
(also the console script ``saturnd-clock``).  Prints the daemon's reply line;
exit 0 on ``ok``, 1 otherwise.
"""

import errno
import os
import sys
import time

from . import fifo
from .protocol import CLOCK_LOCK as LOCK_FILE
from .protocol import CLOCK_REPLY_PIPE as REPLY_PIPE
from .protocol import CLOCK_REQUEST_PIPE as REQUEST_PIPE
from .protocol import own_pipes_dir as default_pipes_dir

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Sequence

DEFAULT_TIMEOUT = 30.0
MISSING_WAIT = 5.0      # how long a missing control FIFO may take to appear

USAGE = """\
usage: saturnd-clock [-p PIPES_DIR] [--timeout SECONDS] COMMAND
commands:
  now                         print the manual clock's time
  advance N [DEADLINE]        cross N minute boundaries, wait for their runs
  set EPOCH [DEADLINE]        jump to EPOCH, wait for the runs it starts
"""


class ClockError(Exception):
    pass


def request(pipes_dir: str, line: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Send one request line, return the reply line (without newline)."""
    deadline = time.monotonic() + timeout
    if not os.path.isdir(pipes_dir):
        raise ClockError(f"no pipes directory {pipes_dir} (is saturnd running?)")
    lock_fd = os.open(os.path.join(pipes_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if not fifo.flock(lock_fd, deadline, retry=0.01):
            raise ClockError("timed out waiting for the clock lock")
        missing_deadline = min(deadline, time.monotonic() + MISSING_WAIT)
        try:
            fd = fifo.open_writer(os.path.join(pipes_dir, REQUEST_PIPE), deadline,
                                  missing_deadline, retry=0.01)
        except OSError as e:
            if e.errno not in (errno.ENXIO, errno.ENOENT):
                raise ClockError(f"cannot open the clock request pipe: {e.strerror}") from None
            raise ClockError(f"no saturnd with a manual clock on {pipes_dir}") from None
        try:
            os.set_blocking(fd, True)
            os.write(fd, line.encode("ascii") + b"\n")
        finally:
            os.close(fd)
        fd = fifo.open_reader(os.path.join(pipes_dir, REPLY_PIPE))
        try:
            buf = b""
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ClockError("timed out waiting for the clock reply")
                data = fifo.read_some(fd, left, 4096)
                if data is None:
                    continue
                if not data:
                    if buf:
                        break
                    # EOF before any writer: keep waiting (poll reports HUP only after one)
                    time.sleep(0.005)
                    continue
                buf += data
            return buf.split(b"\n", 1)[0].decode("ascii", "replace")
        finally:
            os.close(fd)
    finally:
        os.close(lock_fd)


def main(argv: "Sequence[str] | None" = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    pipes_dir: str | None = None
    timeout = DEFAULT_TIMEOUT
    try:
        while args and args[0].startswith("-") and not args[0].lstrip("-").isdigit():
            opt = args.pop(0)
            if opt in ("-h", "--help"):
                sys.stdout.write(USAGE)
                return 0
            if not args:
                raise ValueError(f"option {opt} needs a value")
            value = args.pop(0)
            if opt == "-p":
                pipes_dir = value
            elif opt == "--timeout":
                timeout = float(value)
                if not timeout > 0:
                    raise ValueError("the timeout must be positive")
            else:
                raise ValueError(f"unknown option {opt}")
        if not args or args[0] not in ("now", "advance", "set") or \
                len(args) > (1 if args[0] == "now" else 3) or (args[0] != "now" and len(args) < 2):
            raise ValueError("expected: now | advance N [DEADLINE] | set EPOCH [DEADLINE]")
        if len(args) == 3:
            timeout = max(timeout, float(args[2]) + 10)
        elif args[0] != "now":
            timeout = max(timeout, 20.0)
    except ValueError as e:
        sys.stderr.write(f"saturnd-clock: {e}\n{USAGE}")
        return 1
    try:
        reply = request(pipes_dir or default_pipes_dir(), " ".join(args), timeout)
    except (ClockError, OSError) as e:
        msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        sys.stderr.write(f"saturnd-clock: {msg}\n")
        return 1
    sys.stdout.write(reply + "\n")
    return 0 if reply.startswith("ok ") else 1


if __name__ == "__main__":
    sys.exit(main())

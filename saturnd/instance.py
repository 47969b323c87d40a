"""One saturnd per pipes directory and per data directory: taking them at start-up.

:func:`claim` does, in this order: check and create the pipes directory (0700,
``saturnd/pipes.py`` with the checks of ``saturnd/security.py``), create the data
directory (0700), take the instance locks (``saturnd.lock`` in both directories,
:class:`InstanceLock`), make the FIFOs afresh and remove the clock FIFOs a manual-clock
daemon left behind (``saturnd/pipes.py``: the only place FIFOs are made or removed).
Every refusal is a :class:`StartupError` (one line, for the user).

A lock file holds ``running PID`` or ``stopping PID``: a daemon started while the one
before is stopping (its grace period) waits for it; a running one is a refusal.
"""

import fcntl
import os
import time

from . import alive, pipes as pipes_mod, protocol, security

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable, Iterable

LOCK_NAME = protocol.DAEMON_LOCK


class StartupError(Exception):
    """A reason not to start (one line, for the user)."""


def make_private_dirs(path: str) -> None:
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


class InstanceLock:
    """``flock`` on a lock file holding ``running PID`` or ``stopping PID``."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        self.fd: int | None = None
        self.state_stopping = False

    def acquire(self, wait_for_stopping: float) -> None:
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
        alive.hold(fd)     # cassini tells a dead daemon by this lock (saturnd/alive.py)
        self.set_state("running")

    def holds(self) -> bool:
        """True while the lock file at ``path`` is still the one we hold."""
        if self.fd is None:
            return False
        try:
            st, mine = os.lstat(self.path), os.fstat(self.fd)
        except (OSError, TypeError):
            return False
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def reacquire(self) -> None:
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
        alive.hold(fd)
        if old is not None:
            os.close(old)
        self.set_state("stopping" if self.state_stopping else "running")

    @staticmethod
    def _holder_state(fd: int) -> str:
        try:
            return os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        except OSError:
            return ""

    def set_state(self, state: str) -> None:
        self.state_stopping = state == "stopping"
        if self.fd is None:
            return
        try:
            data = f"{state} {os.getpid()}\n".encode()
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
        except OSError:
            pass


class Instance:
    """What :func:`claim` took: ``pipes`` (a :class:`saturnd.pipes.Pipes`, FIFOs made) and
    ``locks`` (pipes directory first, data directory second)."""

    def __init__(self, pipes: "pipes_mod.Pipes", locks: list[InstanceLock]) -> None:
        self.pipes = pipes
        self.locks = locks

    def set_state(self, state: str) -> None:
        """``running`` or ``stopping``, written in every lock file."""
        for lock in self.locks:
            lock.set_state(state)


def claim(pipes_dir: str, data_dir: str, fifo_names: "Iterable[str]",
          leftover_names: "Iterable[str]", wait: float,
          log: "Callable[[str], object]") -> Instance:
    """Take ``pipes_dir`` and ``data_dir`` for this daemon (see the module doc); ``wait``:
    seconds given to a stopping predecessor.  Returns an :class:`Instance`."""
    pipes = pipes_mod.Pipes(pipes_dir, fifo_names, log, make_private_dirs)
    try:
        try:
            pipes.prepare_dir()
        except security.InsecurePath as e:
            raise StartupError(str(e)) from None
        make_private_dirs(data_dir)
        locks = []
        for path, what in ((os.path.join(pipes_dir, LOCK_NAME), "pipes directory"),
                           (os.path.join(data_dir, LOCK_NAME), "data directory")):
            lock = InstanceLock(path, what)
            lock.acquire(wait)
            locks.append(lock)
        pipes.lock = locks[0]
        try:
            pipes.make_fifos()     # afresh: unlink ours, mkfifo 0600
        except security.InsecurePath as e:
            raise StartupError(str(e)) from None
        pipes.remove_leftovers(leftover_names)
        pipes.make_client_lock(protocol.CASSINI_LOCK)    # marked as the daemon's own
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise StartupError(f"{e.strerror or e}{where}") from None
    return Instance(pipes, locks)

"""Making the pipes directory and its FIFOs, and keeping them there.

At start-up (:meth:`Pipes.prepare_dir`, then :meth:`Pipes.make_fifos` and
:meth:`Pipes.remove_leftovers`, in the order ``saturnd/instance.py`` sets):

- the pipes directory is checked, created when missing (0700, parents too),
  checked again (``saturnd/security.py``);
- every FIFO is made afresh: an existing FIFO of ours is unlinked and a new
  one made with ``mkfifo`` 0600.  Its mode is never repaired in place: a FIFO
  that existed before start-up (e.g. 0666, left by an older implementation)
  may be held open by someone who would keep writing requests through his
  descriptor after a ``chmod``.  A symlink, something that is not a FIFO, or
  another user's FIFO is refused (one line, exit 1): it is not ours to remove.

While the daemon runs (:meth:`Pipes.check`, called by the request loop at
least every ``CHECK_INTERVAL`` s while it is idle): a /tmp cleaner may remove
the FIFOs, the lock file or the whole directory.  What vanished, or was
replaced by another inode, is made again with the same checks as at start-up,
and logged.  The request loop then reopens its end of the request pipe (the
old one is an orphaned inode no client can reach), the clock channel its own.
The lock file ``saturnd.lock`` is taken again too (it keeps a second daemon
off the directory); if another saturnd took it in the meantime, the pipes
are his and are left alone.  A check that fails (say a symlink planted where
the directory was) is logged once and tried again every ``CHECK_INTERVAL`` s;
the daemon keeps running.

The clients' lock file ``cassini-lock`` (:class:`ClientLock`) is made by the daemon too,
and marked as its own: the daemon holds an open-file-description read lock on its byte
``busy.LOCK_MARK`` for as long as that file is the one in place (cassini takes ``flock``
on it, a lock of another kind: the two never conflict).  cassini talks only while it
holds ``flock`` on the marked file that is at the path (it checks both after taking
it), so a lock file removed or replaced (a /tmp cleaner) never lets two clients talk at
once: the daemon puts a fresh marked file in place (``rename``) only once it has taken
``flock`` on the old one itself -- that is, once the client that held it has finished
its exchange; a client waiting on the old file then sees it is no longer at the path
and takes the new one.  Whatever else is found at the path (a symlink, a FIFO, a file
of another user or another mode, or an unmarked file) is replaced the same way.
Looked at every ``LOCK_CHECK_INTERVAL`` s while idle, and after every reply.
"""

import fcntl
import os
import stat
import time

from . import busy, security

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable, Iterable

    from .instance import InstanceLock

LOCK_CHECK_INTERVAL = 0.1   # seconds between two looks at cassini-lock while idle

CHECK_INTERVAL = 1.0     # seconds between two looks at the pipes while idle


class PipesError(Exception):
    """The pipes cannot be made (one line)."""


def _ident(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def make_fifo_afresh(path: str, uid: int | None = None) -> os.stat_result:
    """Unlink ``path`` if it is our FIFO, make a fresh one 0600; its ``lstat``.

    Raises :class:`security.InsecurePath` for a symlink, a non-FIFO or a
    foreign FIFO (left in place), ``OSError`` when the file system says no.
    """
    try:
        security.check_fifo(path, uid, any_mode=True)
    except FileNotFoundError:
        pass
    else:
        os.unlink(path)
    os.mkfifo(path, 0o600)
    st = os.lstat(path)
    if stat.S_IMODE(st.st_mode) != 0o600:   # narrowed by the umask: our fresh inode, in a
        os.chmod(path, 0o600)               # directory no one else may write
    return security.check_fifo(path, uid)


class ClientLock:
    """``PIPES_DIR/cassini-lock``, made and kept in place by the daemon (module doc)."""

    def __init__(self, path: str, log: "Callable[[str], object]") -> None:
        self.path = path
        self.log = log
        self.fd: int | None = None
        self.ident: tuple[int, int] | None = None
        self.problem: str | None = None
        self.pending = False     # replaced, waiting for a client to release the old one

    def ok(self) -> bool:
        """True when the file at the path is ours, marked (one ``lstat``)."""
        try:
            return self.fd is not None and _ident(os.lstat(self.path)) == self.ident
        except OSError:
            return False

    def check(self, dir_ok: "Callable[[], bool]" = lambda: True) -> None:
        """Put a fresh marked lock file in place when ours is gone or replaced (only while
        ``dir_ok()``: the pipes directory is still the one checked); never raises (a
        failure is logged once while it lasts)."""
        if self.ok():
            self.pending = False
            return
        try:
            if not dir_ok():
                return               # Pipes.check makes the directory again first
            self._renew()
        except OSError as e:
            message = f"{e.strerror or e} ({e.filename or self.path})"
            if message != self.problem:
                self.log(f"pipes: cannot make {self.path} again: {message}; trying again")
            self.problem = message
            return
        self.problem = None

    def _renew(self) -> None:
        old = self.fd
        if old is not None:
            try:        # no client may hold the old file while the new one is in place
                fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.pending = True      # a client is talking: after its exchange
                return
        tmp = self.path + ".new"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            os.fchmod(fd, 0o600)                   # whatever the umask
            busy.hold(fd, busy.LOCK_MARK, True)
            existed = os.path.lexists(self.path)
            os.rename(tmp, self.path)
        except BaseException:
            os.close(fd)
            raise
        self.fd, self.ident = fd, _ident(os.fstat(fd))
        self.pending = False
        if old is not None:
            os.close(old)                          # its waiters find it gone: they retry
            what = "was replaced" if existed else "vanished"
            self.log(f"pipes: {self.path} {what}; made a fresh lock file (mode 0600)")


class Pipes:
    """The pipes directory ``path`` and the FIFOs ``names`` in it.

    ``make_dirs(path)`` creates a directory and its missing parents (0700);
    ``lock`` (set once it is held) is the daemon's lock on ``PIPES_DIR/saturnd.lock``,
    with ``holds()`` and ``reacquire()``.
    """

    def __init__(self, path: str, names: "Iterable[str]", log: "Callable[[str], object]",
                 make_dirs: "Callable[[str], object]") -> None:
        self.path = path
        self.names = tuple(names)
        self.log = log
        self.make_dirs = make_dirs
        self.lock: InstanceLock | None = None
        self.dir_id: tuple[int, int] | None = None
        self.ids: dict[str, tuple[int, int]] = {}
        self.next_check = 0.0
        self.problem: str | None = None
        self.interval = CHECK_INTERVAL
        self.client_lock: ClientLock | None = None

    def make_client_lock(self, name: str) -> None:
        """Make ``name`` in the pipes directory the clients' lock file (ClientLock)."""
        self.client_lock = ClientLock(os.path.join(self.path, name), self.log)
        self.client_lock._renew()

    def check_client_lock(self) -> None:
        """Make the clients' lock file again when it vanished or was replaced."""
        if self.client_lock is not None:
            self.client_lock.check(self._dir_ok)

    def _dir_ok(self) -> bool:
        try:
            return self.problem is None and _ident(os.lstat(self.path)) == self.dir_id
        except OSError:
            return False

    # --- start-up ------------------------------------------------------------------
    def prepare_dir(self) -> None:
        """Check, create when missing, check again (raises InsecurePath, OSError, or what
        ``make_dirs`` raises)."""
        security.check_before_creating(self.path)
        self.make_dirs(self.path)
        security.check_pipes_dir(self.path)
        self.dir_id = _ident(os.lstat(self.path))

    def make_fifos(self) -> None:
        for name in self.names:
            self.ids[name] = _ident(make_fifo_afresh(os.path.join(self.path, name)))

    def remove_leftovers(self, names: "Iterable[str]") -> None:
        """Unlink the FIFOs ``names`` this daemon does not serve (the clock FIFOs a
        manual-clock daemon left behind): their clients then fail fast."""
        for name in names:
            path = os.path.join(self.path, name)
            if os.path.exists(path) and stat.S_ISFIFO(os.lstat(path).st_mode):
                os.unlink(path)

    # --- while running ---------------------------------------------------------------
    def check(self, force: bool = False) -> list[str]:
        """Make again what vanished; the names of the FIFOs made afresh (often none).

        ``ids[name]`` is the identity (device, inode) of the FIFO now in place: a holder
        of a descriptor on another inode must reopen it.

        At most once per ``CHECK_INTERVAL`` unless ``force``.  Never raises: a failure is
        logged (once while it lasts) and tried again at the next check.
        """
        now = time.monotonic()
        if not force and now < self.next_check:
            return []
        self.next_check = now + self.interval
        renewed: list[str] = []
        try:
            self._check(renewed)
        except (security.InsecurePath, PipesError) as e:
            self._trouble(str(e))
            return renewed
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            self._trouble(f"{e.strerror or e}{where}")
            return renewed
        except Exception as e:   # make_dirs' own error type, or a bug: never stop serving
            self._trouble(str(e) or type(e).__name__)
            return renewed
        self.problem = None
        self.check_client_lock()
        return renewed

    def _trouble(self, message: str) -> None:
        if message != self.problem:
            self.log(f"pipes: cannot make the pipes again: {message}; trying again every "
                     f"{self.interval:g} s")
        self.problem = message

    def _check(self, renewed: list[str]) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        dir_changed = st is None or _ident(st) != self.dir_id
        missing = []
        if not dir_changed:
            for name in self.names:
                try:
                    same = _ident(os.lstat(os.path.join(self.path, name))) == self.ids.get(name)
                except FileNotFoundError:
                    same = False
                if not same:
                    missing.append(name)
            if not missing and (self.lock is None or self.lock.holds()):
                return
        # something must be made again: only while the pipes directory is still ours
        if dir_changed:
            self.prepare_dir()
        if self.lock is not None and not self.lock.holds():
            self.lock.reacquire()       # raises PipesError when another saturnd has it
            if not dir_changed:
                self.log(f"pipes: {self.lock.path} vanished; took the lock again")
        if dir_changed:
            done = ("vanished; made it again (mode 0700)" if st is None else
                    "was replaced; the new one passed the checks")
            self.log(f"pipes: the pipes directory {self.path} {done}; making its FIFOs afresh")
            missing = list(self.names)
        for name in missing:
            path = os.path.join(self.path, name)
            existed = os.path.lexists(path)
            self.ids[name] = _ident(make_fifo_afresh(path))
            renewed.append(name)
            if not dir_changed:
                what = "was replaced" if existed else "vanished"
                self.log(f"pipes: {path} {what}; made a fresh FIFO (mode 0600)")

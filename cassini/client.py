"""Talking to saturnd over its pipes: lock, write one request, read one reply.

One exchange (``exchange``):

1. the request pipe must exist, else saturnd is not running there; the pipes
   directory and both FIFOs must pass the daemon's own checks
   (:mod:`saturnd.security`: ours, not writable by group or others, no
   symlink, safe ancestors) before anything is created, opened or sent there
   -- unless ``CASSINI_SKIP_PIPES_CHECK=1`` (for daemons of other
   implementations, which often make their pipes 0777 or 0666);
2. hold ``flock(LOCK_EX)`` on ``PIPES_DIR/cassini-lock`` until the whole
   reply has been read, so that concurrent clients each get their own reply
   (``take_client_lock``): a regular file of ours, mode not writable by group
   or others, opened without following a symlink or blocking, still the file
   at the path once held; with our daemon (it says so on its request FIFO,
   ``busy.MARKS_LOCK``) also the one it made and marks, which cassini waits
   for when it is missing or replaced (the daemon puts a fresh one in place
   once the old one's holder is done: ``saturnd/pipes.py``); with other
   implementations (and older saturnd) the lock file is made 0600 when
   missing.  Bounded by ``lock_timeout``; no proper lock: one line, exit
   1, nothing sent;
3. open the reply pipe for reading, without blocking, *before* sending the
   request, and make sure nothing left by an earlier exchange (a writing end
   the daemon has not closed yet, stray bytes) can pass for our reply -- see
   ``open_reply_pipe``;
4. with a daemon that publishes its busy state (``saturnd.busy``; ours does,
   other implementations do not and skip this step at no cost): wait until
   the request pipe is empty and the daemon is not between reading a request
   and closing its reply, dropping whatever reaches the reply pipe meanwhile
   (the reply owed to a client that died or gave up after writing) -- see
   ``wait_until_idle``; the wait is bounded by ``reply_timeout``;
5. open the request pipe for writing, waiting at most ``timeout`` seconds
   for a daemon to open its reading end (a reader that shows up late is
   fine); write the whole request (one ``write`` when it fits the pipe) and
   close it at once: the daemon uses end of file to delimit a broken
   client's bytes;
6. read exactly one reply by its own lengths, giving up after
   ``reply_timeout`` seconds without progress; end of file before the reply
   is complete is an error; with our daemon, bytes after it mean the reply
   is not shaped as this request's answer: refused, never printed
   (``check_reply_ends``); other implementations' extra bytes are ignored.

Every failure raises :class:`ClientError` with a one-line message.
"""

import errno
import os
import select
import stat

from saturnd import busy, fifo
from saturnd import protocol as _names
from saturnd.protocol import ProtocolError, Truncated, read_reply

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable
    from typing import Any

    from saturnd.protocol import Reply

REQUEST_PIPE = os.fsencode(_names.REQUEST_PIPE)
REPLY_PIPE = os.fsencode(_names.REPLY_PIPE)
LOCK_FILE = os.fsencode(_names.CASSINI_LOCK)
SKIP_CHECK_VAR = b"CASSINI_SKIP_PIPES_CHECK"

_CHUNK = 1 << 16        # read at least this much at a time
_MAX_CHUNK = 1 << 20    # and never allocate more than this for one read

STALE_WRITER_GRACE = 0.5   # seconds to let an earlier exchange's writer go away

_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


class ClientError(Exception):
    """A failure to talk to saturnd, with a one-line explanation."""


class _Alarm(Exception):
    pass


def default_pipes_dir():
    """``/tmp/<USERNAME>/saturnd/pipes``: ``$USER``, else the effective user's name."""
    user = _names.current_user()
    if user is None:
        raise ClientError(f"cannot tell who you are (uid {os.geteuid()} has no name): "
                          "set USER or use -p PIPES_DIR")
    return _names.default_pipes_dir(user)


def _show(path):
    return os.fsdecode(path)


def _not_running(pipes_dir, why):
    return ClientError(f"saturnd is not running on {_show(pipes_dir)} ({why})")


def _blocking_with_deadline(call, seconds, try_now):
    """Run a blocking system call, interrupting it after ``seconds`` (raises _Alarm).

    ``call()`` blocks; ``try_now()`` is its non-blocking twin (returns None
    when it would block), used by polling instead when SIGALRM cannot be
    used (not the main thread, e.g. when this module is used by a program
    with threads).
    """
    import signal

    def ring(signum, frame):
        raise _Alarm()

    try:
        previous = signal.signal(signal.SIGALRM, ring)
    except ValueError:                    # not the main thread: poll instead
        import time
        deadline = time.monotonic() + seconds
        while True:
            result = try_now()
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise _Alarm()
            time.sleep(0.005)
    try:
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        try:
            return call()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def _nonblocking(call, *errnos):
    """``call()``, or None when it fails with one of ``errnos`` (it would block)."""
    try:
        return call()
    except OSError as e:
        if e.errno in errnos:
            return None
        raise


def _lock_problem(st, check_owner=True):
    """Why the lock file ``st`` (an ``fstat``) cannot serve as the lock, or None (owner and
    mode not looked at without ``check_owner``: ``CASSINI_SKIP_PIPES_CHECK=1``)."""
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if not check_owner:
        return None
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _open_lock_file(path, create, check_owner=True):
    """A descriptor on the lock file (never blocks, never follows a symlink), or None when
    it is missing and not to be ``create``d; raises _LockRefused with the reason."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not create:
            return None
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return None                       # someone else made it: look again
        except OSError as e:
            raise _LockRefused(f"cannot be created ({e.strerror})") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _LockRefused("is a symlink") from None
        raise _LockRefused(f"cannot be opened ({e.strerror})") from None
    problem = _lock_problem(os.fstat(fd), check_owner)
    if problem:
        os.close(fd)
        raise _LockRefused(problem)
    return fd


def _flock_now(fd: int) -> int:
    """``flock(LOCK_EX | LOCK_NB)`` on ``fd``, then ``fd`` (BlockingIOError while held)."""
    import fcntl
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


class _LockRefused(Exception):
    pass


def take_client_lock(pipes_dir, lock_timeout, daemon_marks, check_owner=True):
    """Hold ``flock(LOCK_EX)`` on ``PIPES_DIR/cassini-lock``: its descriptor.

    The lock counts only on a regular file of ours, not writable by group or others,
    opened without following a symlink nor blocking (a FIFO planted there), that is
    still the file at the path once the lock is held.  With ``daemon_marks`` (our
    daemon holds ``busy.MARKS_LOCK``: it makes the lock file and marks the one in place,
    ``saturnd/pipes.py``; an older saturnd does not, and is treated as below)
    the file must also carry the daemon's mark, and cassini never makes it: when it is
    missing or not proper, the daemon puts a fresh one in place shortly, and cassini
    waits for that.  Otherwise cassini makes it (0600) when missing and refuses one that
    is not proper.  Everything within ``lock_timeout`` s; then :class:`ClientError`
    (one line, nothing sent).  Without ``check_owner`` (``CASSINI_SKIP_PIPES_CHECK=1``,
    like the pipes check: e.g. a grader talking to a daemon of another uid) the lock
    file's owner and mode are not looked at; everything else is.
    """
    import fcntl
    import time
    path = os.path.join(pipes_dir, LOCK_FILE)
    deadline = time.monotonic() + lock_timeout
    pause = 0.001
    why = None
    while True:
        fd = None
        try:
            fd = _open_lock_file(path, not daemon_marks, check_owner)
            if fd is None:
                why = f"no {_show(path)}"
        except _LockRefused as e:
            why = f"{_show(path)} {e}"
            if not daemon_marks:
                raise ClientError(f"{why}; not a proper lock file; nothing sent") from None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False         # another cassini is talking to saturnd: wait our turn
            except OSError as e:
                os.close(fd)
                raise ClientError(f"cannot lock {_show(path)} ({e.strerror}); "
                                  "nothing sent") from None
            if not held:
                left = deadline - time.monotonic()
                try:
                    _blocking_with_deadline(
                        lambda: fcntl.flock(fd, fcntl.LOCK_EX), max(left, 0.001),
                        lambda: _nonblocking(lambda: _flock_now(fd), errno.EAGAIN))
                except _Alarm:
                    os.close(fd)
                    raise ClientError(f"another cassini has held {_show(path)} for "
                                      f"{lock_timeout:g} s; giving up") from None
            try:
                mine = os.fstat(fd)
                now = os.lstat(path)
                same = (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)
            except OSError:
                same = False
            if not same:
                why = f"{_show(path)} was removed or replaced while cassini waited for it"
            elif daemon_marks and not busy.held(fd, busy.LOCK_MARK):
                why = f"{_show(path)} is not the lock file saturnd made"
            else:
                return fd
            os.close(fd)
        if time.monotonic() >= deadline:
            raise ClientError(f"cannot hold a proper lock within {lock_timeout:g} s: {why}; "
                              "nothing sent")
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _open_request_pipe(pipes_dir, path, timeout):
    try:
        fd = fifo.try_open_writer(path)
    except OSError as e:
        if e.errno == errno.ENOENT:  # raced with the stat
            raise _not_running(pipes_dir, f"no request pipe {_show(path)}") from None
        raise ClientError(f"cannot open {_show(path)}: {e.strerror}") from None
    if fd is None:                   # a FIFO nobody reads yet: wait for a reader
        _raise_if_dead(pipes_dir)
        if timeout <= 0:
            raise _not_running(pipes_dir, "nobody reads the request pipe")
        try:
            fd = _blocking_with_deadline(
                lambda: os.open(path, os.O_WRONLY | os.O_CLOEXEC), timeout,
                lambda: fifo.try_open_writer(path))
        except _Alarm:
            raise _not_running(
                pipes_dir, f"nobody opened the request pipe within {timeout:g} s") from None
        except OSError as e2:
            raise _not_running(pipes_dir, f"{e2.strerror}: {_show(path)}") from None
        os.set_blocking(fd, False)
    return fd


DEAD_CONFIRM = 0.2      # s; a dead daemon is told within this (plus one look)


def _raise_if_dead(pipes_dir):
    """Nobody reads the request pipe: when saturnd is known to be dead, say so now rather
    than wait for a reader (saturnd/alive.py)."""
    import time
    from saturnd import alive
    # a saturnd starting on pipes its dead predecessor left claims the lock file within
    # moments: "dead" must hold for DEAD_CONFIRM s before it is said
    deadline = time.monotonic() + DEAD_CONFIRM
    while True:
        why = alive.dead_daemon(pipes_dir)
        if not why:
            return
        if time.monotonic() >= deadline:
            raise _not_running(pipes_dir, why)
        time.sleep(0.05)


def _check_fifo(fd, path):
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        raise ClientError(f"{_show(path)} is not a named pipe")


def _wait(fd, events, seconds):
    """poll ``fd``; False when ``seconds`` pass without an event."""
    return bool(fifo.wait(fd, events, seconds))


def _write_all(fd, data, reply_timeout):
    try:
        fifo.write_all(fd, data, reply_timeout)
    except fifo.Stalled:
        raise ClientError(f"saturnd stopped reading the request for "
                          f"{reply_timeout:g} s") from None
    except BrokenPipeError:
        raise ClientError("saturnd closed the request pipe before reading the request") \
            from None


class PipeReader:
    """A protocol reader over a non-blocking pipe: grows its buffer as bytes arrive.

    ``read_exact`` raises :class:`Truncated` at end of file and
    :class:`ClientError` after ``timeout`` seconds without a byte.
    """

    __slots__ = ("fd", "timeout", "buf", "pos", "poller", "received")

    def __init__(self, fd, timeout):
        self.fd = fd
        self.timeout = timeout
        self.buf = b""
        self.pos = 0
        self.poller = None
        self.received = 0

    def read_exact(self, n):
        pos = self.pos
        end = pos + n
        if end > len(self.buf):
            self._fill(n)
            pos, end = 0, n
        self.pos = end
        return self.buf[pos:end]

    def peek(self, n):
        """``(buffer, offset)`` where the next ``n`` bytes start, consuming nothing."""
        if self.pos + n > len(self.buf):
            self._fill(n)
        return self.buf, self.pos

    def consume_to(self, pos):
        self.pos = pos

    def _fill(self, n):
        """Read until ``n`` unconsumed bytes are buffered; they then start at offset 0."""
        parts = [self.buf[self.pos:]]
        have = len(parts[0])
        while have < n:
            # poll first: a FIFO read with no writer yet would report end of file
            if not self._wait():
                raise ClientError(f"no reply from saturnd for {self.timeout:g} s")
            want = min(max(n - have, _CHUNK), _MAX_CHUNK)
            try:
                chunk = os.read(self.fd, want)
            except BlockingIOError:
                continue
            if not chunk:
                raise Truncated("saturnd's reply ended early (end of file before a "
                                "complete reply)")
            parts.append(chunk)
            have += len(chunk)
            self.received += len(chunk)
        self.buf = b"".join(parts)
        self.pos = 0

    def _wait(self):
        if self.poller is None:
            self.poller = select.poll()
            self.poller.register(self.fd, _POLLIN)
        ms = int(self.timeout * 1000) if self.timeout > 0 else 0
        while True:
            step = min(ms, 1 << 30)
            events = self.poller.poll(step)
            if events:
                return True
            ms -= step
            if ms <= 0:
                return False


def open_reply_pipe(path, grace):
    """Open the reply pipe for reading, clear of anything left by an earlier exchange.

    Done before the request is sent.  A daemon may still hold the writing end
    of the previous exchange for a moment (or keep it open); if we opened the
    pipe while it does, its late close would look like end of file on *our*
    reply.  So: probe (open and close a writing end of our own, which makes
    "no writer left" show as end of file), drop stale bytes, wait up to
    ``grace`` seconds for a stale writer to go, then reopen: a reader opened
    with no writer around sees end of file only after a writer that opens
    from now on (Linux FIFO semantics) -- that is, the daemon answering us.
    """
    try:
        fd = fifo.open_reader(path)
    except OSError as e:
        raise ClientError(f"cannot open the reply pipe {_show(path)}: {e.strerror}") from None
    _check_fifo(fd, path)
    try:
        probe = fifo.try_open_writer(path)
    except OSError:
        return fd
    if probe is None:
        return fd
    os.close(probe)
    deadline = None
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            chunk = None                  # a writer is still there
        if chunk == b"":                  # no writer left: start afresh
            try:
                fresh = fifo.open_reader(path)
            except OSError:
                return fd
            os.close(fd)
            return fresh
        if chunk:
            continue                      # stale bytes: nothing sent yet can be ours
        import time
        now = time.monotonic()
        if deadline is None:
            deadline = now + grace
        if now >= deadline or not _wait(fd, _POLLIN, deadline - now):
            return fd                     # a daemon that keeps its end open: fine too


def _check_wanted():
    """False only with ``CASSINI_SKIP_PIPES_CHECK=1`` (``0`` or empty: check)."""
    value = os.environb.get(SKIP_CHECK_VAR, b"")
    if value in (b"", b"0"):
        return True
    if value == b"1":
        return False
    raise ClientError(f"bad {os.fsdecode(SKIP_CHECK_VAR)} value {os.fsdecode(value)!r}: "
                      "expected 1 (skip the pipes check) or 0")


def check_pipes_dir(pipes_dir, fifos):
    """The daemon's checks (``saturnd/security.py``) on the directory and ``fifos``."""
    from saturnd import security
    try:
        security.check_pipes_dir(os.fsdecode(pipes_dir))
        for path in fifos:
            security.check_fifo(os.fsdecode(path))
    except security.InsecurePath as e:
        raise ClientError(f"{e}; nothing sent") from None
    except FileNotFoundError as e:
        raise _not_running(pipes_dir, f"no {_show(e.filename)}") from None
    except OSError as e:
        raise ClientError(f"cannot check the pipes directory {_show(pipes_dir)}: "
                          f"{e.strerror}") from None


def _drain(fd):
    """Read and drop what the reply pipe holds now.

    Returns None when nothing happened, "bytes" when bytes were dropped and a
    writer may still be there, "eof" when a writer came and went (the reader
    then reports end of file for good and must be replaced).
    """
    seen = None
    while _wait(fd, _POLLIN, 0):
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return seen
        if not chunk:
            return "eof"
        seen = "bytes"
    return seen


def publishing_probe(req_path):
    """A reading descriptor on the request FIFO of a daemon that publishes its busy state
    (ours: it also makes and marks ``cassini-lock``), or None (other implementations, or
    no FIFO to open: the open for writing reports that)."""
    try:
        probe = fifo.open_reader(req_path)
    except OSError:
        return None
    if busy.held(probe, busy.PUBLISHER):
        return probe
    os.close(probe)
    return None


def wait_until_idle(req_path, reader, rep_path, seconds, probe=None):
    """Wait until saturnd has nothing in hand before our request is written.

    Called with ``cassini-lock`` held and the reply pipe open for reading,
    before anything is written.  Only lock holders write, so once the request
    pipe is empty (``FIONREAD``, checked first) and the daemon is not busy
    (checked second: it turns busy before it reads bytes out of the pipe and
    idle after it closed the reply and has no bytes left), no reply is owed
    to anyone any more and the next request the daemon reads is ours.  Any
    reply that arrives meanwhile belongs to a client that is gone (it wrote,
    then died or gave up): it is read and dropped, and the reader is
    replaced by a fresh one once that reply's writer has gone (``reader`` is
    a one-item list holding the reply pipe's descriptor: the caller closes
    whatever it holds at the end, even after an error).  A daemon
    that does not publish (no "publisher" lock on the request pipe) is not
    waited for.  Raises :class:`ClientError` after ``seconds``.
    """
    if probe is None:
        probe = publishing_probe(req_path)
        if probe is None:
            return
        try:
            return wait_until_idle(req_path, reader, rep_path, seconds, probe)
        finally:
            os.close(probe)
    deadline = None
    dirty = False
    while True:
        seen = _drain(reader[0])
        if seen == "eof":
            _reopen_reader(reader, rep_path)
            dirty = False
        elif seen:
            dirty = True
        if busy.pending(probe) == 0 and not busy.held(probe, busy.BUSY):
            break
        import time
        now = time.monotonic()
        if deadline is None:
            deadline = now + seconds
            step = 0.0001       # the daemon turns idle right after closing a reply
        elif now >= deadline:
            raise ClientError(f"saturnd has been busy with an earlier request for "
                              f"{seconds:g} s; nothing sent")
        time.sleep(step)
        step = min(step * 2, 0.002)
    # idle: the daemon holds no writing end; drop the last stale bytes, start afresh
    if _drain(reader[0]) or dirty:
        _reopen_reader(reader, rep_path)


def _reopen_reader(reader, path):
    try:
        fresh = fifo.open_reader(path)
    except OSError as e:
        raise ClientError(f"cannot open the reply pipe {_show(path)}: {e.strerror}") from None
    os.close(reader[0])
    reader[0] = fresh


def check_reply_ends(reader):
    """With our daemon: the reply must end where its shape for this request says.  Bytes
    after it mean it answers another request (a LIST reply read as a CREATE reply would
    print a wrong id), so it is refused (:class:`ClientError`).  Our daemon closes the
    reply pipe right after the reply: its end of file is waited for (bounded by the reply
    deadline).  Other implementations are not checked: the reference and the C project
    may send bytes after a reply, which cassini ignores (golden vector 159)."""
    extra = len(reader.buf) - reader.pos
    if not extra:
        if not reader._wait():
            raise ClientError(f"saturnd did not end its reply within {reader.timeout:g} s")
        try:
            extra = len(os.read(reader.fd, 1))
        except BlockingIOError:
            extra = 0
    if extra:
        raise ClientError("saturnd's reply does not have the shape of a reply to this "
                          "request (bytes after its end): not this request's answer")


def _grow_pipe(fd: int) -> None:
    """Let the reply pipe hold up to 1 MiB (``F_SETPIPE_SZ``; Linux, within
    ``/proc/sys/fs/pipe-max-size``): a long reply then crosses in fewer turns of the
    daemon writing and cassini reading.  Nothing when it cannot be done."""
    import fcntl
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _MAX_CHUNK)
    except OSError:
        pass


def exchange(pipes_dir: bytes, request: bytes, opcode: int, timeout: float = 5.0,
             reply_timeout: float = 10.0, lock_timeout: float = 30.0,
             check_pipes: bool | None = None,
             read_payload: "Callable[[Any], Any] | None" = None,
             big_reply: bool = False) -> "Reply":
    """Send ``request`` (bytes) and return the decoded :class:`Reply`.

    ``check_pipes``: True/False, or None to follow ``CASSINI_SKIP_PIPES_CHECK``;
    ``read_payload``: how an ``OK`` reply's payload is read (``protocol.read_reply``);
    ``big_reply``: a long reply is expected (LIST), the reply pipe is made to hold more."""
    if not pipes_dir:
        raise _not_running(pipes_dir, "empty pipes directory name")
    req_path = os.path.join(pipes_dir, REQUEST_PIPE)
    rep_path = os.path.join(pipes_dir, REPLY_PIPE)
    try:
        os.stat(req_path)
    except FileNotFoundError:
        if not os.path.isdir(pipes_dir):
            raise _not_running(pipes_dir, "no such directory") from None
        raise _not_running(pipes_dir, "no request pipe") from None
    except OSError as e:
        raise _not_running(pipes_dir, e.strerror) from None
    if check_pipes is None:
        check_pipes = _check_wanted()
    if check_pipes:
        check_pipes_dir(pipes_dir, (req_path, rep_path))

    probe = publishing_probe(req_path)
    try:
        lock_fd = take_client_lock(pipes_dir, lock_timeout,
                                   probe is not None and busy.held(probe, busy.MARKS_LOCK),
                                   check_pipes)
    except BaseException:
        if probe is not None:
            os.close(probe)
        raise
    try:
        rep = [open_reply_pipe(rep_path, min(STALE_WRITER_GRACE, reply_timeout))]
        try:
            if probe is not None:
                wait_until_idle(req_path, rep, rep_path, reply_timeout, probe)
            rep_fd = rep[0]
            if big_reply:
                _grow_pipe(rep_fd)
            fd = _open_request_pipe(pipes_dir, req_path, timeout)
            _check_fifo(fd, req_path)
            try:
                _write_all(fd, request, reply_timeout)
            finally:
                os.close(fd)
            reader = PipeReader(rep_fd, reply_timeout)
            try:
                reply = read_reply(reader, opcode, read_payload)
                if probe is not None:
                    check_reply_ends(reader)
                return reply
            except Truncated:
                if reader.received:
                    raise ClientError("saturnd's reply was cut short (end of file in "
                                      "the middle of the reply)") from None
                raise ClientError("saturnd could not honour the request (empty reply)") \
                    from None
            except ProtocolError as e:
                raise ClientError(f"malformed reply from saturnd: {e}") from None
        finally:
            os.close(rep[0])
    finally:
        os.close(lock_fd)
        if probe is not None:
            os.close(probe)

"""The request loop on the FIFOs: read, dispatch, reply (the C ``saturnd.c``).

The request FIFO is opened ``O_RDONLY | O_NONBLOCK`` and polled together with
a wake-up fd (signals, stop requests).  Requests are parsed from the byte
stream by their own lengths, so several requests written back to back on one
open are served in order.  At end of file the read end is reopened (a new
descriptor is opened before the old one is closed, so bytes of a writer that
came and went in between are not lost).

A malformed request (protocol error, over 1 MiB, stalled for
``STALL_TIMEOUT`` s, not whole within ``REQUEST_DEADLINE`` s of its first byte however
slowly it drips, end of file in the middle) first has the client's
remaining bytes discarded (until end of file, or ``DISCARD_SILENCE`` s of
silence, at most ``DISCARD_MAX`` s), then gets the empty reply (the reply
pipe opened and closed without a byte).  A handler failing with ``OSError``
(storage) gets the empty reply too.  The daemon carries on in every case.

The reply pipe is closed right after the reply is written, before the next
request is read: a client that reads the next request's reply only after the
daemon consumed that request (cassini's lock guarantees it) never attaches to a
previous reply's writer.  A reply whose reader has not shown up when a new
request arrives is dropped (its client is gone: a writer that died, or a
client that never reads): the next client gets its own reply, not a stale
one.  Replies are written with deadlines: a reply whose reader is not there yet waits for
it (woken the instant it opens, no polling) for ``REPLY_OPEN_TIMEOUT`` s
(``REPLY_OPEN_BACKLOG_TIMEOUT`` s when further requests are already buffered); writing gives
up after
``REPLY_STALL_TIMEOUT`` s without progress.

So that a reply reaches only the client that sent the request, the daemon publishes when
it is busy (``saturnd.busy``): read locks on its reading end of the request FIFO, one
held all along ("this daemon publishes"), one from just before it reads request bytes
until the reply pipe is closed and its buffer is empty.  cassini, once it holds
``cassini-lock`` and has opened the reply pipe, writes only when the request FIFO is
empty and the daemon is not busy, and drops whatever reaches the reply pipe before
that: the reply owed to a client that died or gave up after writing (even one whose
request the daemon had not read yet) goes to no one else, and the next request the
daemon reads is that cassini's own.
"""

# What a client that does not take cassini's lock (the reference C client) may observe,
# and what it cannot do (tests/reliability/test_concurrency.py, test_fuzz.py):
#
# - it cannot corrupt the daemon's state: a request written in one write() of at most
#   PIPE_BUF (4096) bytes stays whole in the FIFO, every request is parsed and checked
#   on its own, and changes are all-or-nothing;
# - when other clients talk at the same time it may read another client's reply, an
#   empty reply, or nothing (it then times out), and a locked client talking at the same
#   time may get the lock-less client's reply: the FIFO pair carries no client identity;
# - a writer that dies in the middle of a request has its bytes discarded once the daemon
#   sees its end of file; a client that starts writing in the instant between that death
#   and the daemon noticing it shares the byte stream with the dead writer's bytes (a FIFO
#   has no framing): it gets an empty reply (or, rarely, a reply to the merged bytes);
# - once such clients are gone, every request gets its own right reply again: replies no
#   one came for are dropped (at the latest after REPLY_OPEN_TIMEOUT, at once when a new
#   request arrives).

import errno
import os
import select
import stat
import threading
import time

from . import busy as busy_mod
from . import fifo, protocol
from . import pipes as pipes_mod
from .commands import dispatch

from .protocol import REPLY_PIPE, REQUEST_PIPE

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable, Iterable

    from .commands import Context
    from .pipes import Pipes
    from .stop import StopFlag

STALL_TIMEOUT = 3.0
REQUEST_DEADLINE = 5.0   # the whole request, from its first byte, however it drips
DISCARD_SILENCE = 0.2
DISCARD_MAX = 2.0
REPLY_OPEN_TIMEOUT = 5.0
REPLY_OPEN_BACKLOG_TIMEOUT = 0.05
REPLY_STALL_TIMEOUT = 5.0
READER_CHECK = 0.01   # waiting for a reply's reader: look for a new request this often
CHUNK = 65536
EOF_CHECK_MS = 20      # mid-request: look for a vanished writer this often
OWN_END_WAIT = 0.2     # after an own request: how long a silent writer may keep its end open

# The requests of the reference and the seed project may come back to back on one open
# (several requests in one write are served in order, as the C daemon did).  Any other
# request (this project's own, docs/own-requests.md) must be the writer's last bytes:
# followed by trailing bytes it is malformed (empty reply, nothing done).
BACK_TO_BACK = frozenset((
    protocol.LIST, protocol.CREATE, protocol.REMOVE, protocol.TIMES_EXITCODES,
    protocol.STDOUT, protocol.STDERR, protocol.TERMINATE, protocol.SET_CMD,
    protocol.DELETE_ALL, protocol.SW_TIME, protocol.EXEC_TASK, protocol.RESET_TASKMAX))


class Stopped(Exception):
    """The daemon was asked to stop while waiting for bytes."""


class _StreamReader:
    """``read_exact`` over the server's buffer, pulling bytes with a stall deadline."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self.consumed = 0
        self.deadline = time.monotonic() + REQUEST_DEADLINE

    def check_limit(self, n: int) -> None:
        if self.consumed + n > protocol.MAX_REQUEST:
            raise protocol.ProtocolError(f"request longer than {protocol.MAX_REQUEST} bytes")

    def read_exact(self, n: int) -> bytes:
        self.check_limit(n)
        srv = self.server
        while len(srv.buf) < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise protocol.Truncated(f"request not complete within {REQUEST_DEADLINE:g} s "
                                         "of its first byte (a writer too slow, or dripping)")
            if not srv.fill(min(STALL_TIMEOUT, left)):
                if srv.eof:
                    raise protocol.Truncated("end of file in the middle of a request")
                if left > STALL_TIMEOUT:
                    raise protocol.Truncated(f"request stalled for {STALL_TIMEOUT:g} s")
        chunk = bytes(srv.buf[:n])
        del srv.buf[:n]
        self.consumed += n
        return chunk


class _OpenBox:
    """What the reply-open thread opened, handed over once: after :meth:`take`, a late
    result is closed by the thread itself (never a stray writer on the reply pipe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.err: OSError | None = None
        self.taken = False

    def open(self, path: str, done_w: int) -> None:
        fd: int | None = None
        err: OSError | None = None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            err = e
        with self.lock:
            if self.taken:
                if fd is not None:
                    os.close(fd)
            else:
                self.fd, self.err = fd, err
        try:
            os.write(done_w, b"!")
        except OSError:
            pass
        finally:
            os.close(done_w)

    def take(self) -> tuple[int | None, OSError | None]:
        with self.lock:
            self.taken = True
            fd, err, self.fd, self.err = self.fd, self.err, None, None
        return fd, err


class Server:
    """The request loop over the FIFOs of ``pipes_dir``.

    ``ctx`` is what handlers get (``saturnd.commands.Context``); ``stop`` is the daemon's
    :class:`saturnd.stop.StopFlag` (its ``fd`` is polled with the request FIFO, the loop
    ends once ``stop.is_set()``); ``pipes`` (a :class:`saturnd.pipes.Pipes`, or None) makes
    vanished FIFOs again.  Public: :meth:`open` (the reading end, before the daemon says it
    is ready) and :meth:`serve_forever`.
    """

    def __init__(self, pipes_dir: str, ctx: "Context", log: "Callable[[str], object]",
                 stop: "StopFlag", pipes: "Pipes | None" = None) -> None:
        self.request_path = os.path.join(pipes_dir, REQUEST_PIPE)
        self.reply_path = os.path.join(pipes_dir, REPLY_PIPE)
        self.ctx = ctx
        self.log = log
        self.stop = stop
        self.fd: int | None = None    # the request FIFO's reading end, once open
        self.buf = bytearray()
        self.eof = False
        self.pipes = pipes     # saturnd.pipes.Pipes: makes vanished pipes again
        self.busy = False
        self.publishing = True

    # --- the request side -------------------------------------------------------
    def open(self) -> None:
        """Open the reading end of the request FIFO (raises ``OSError``): once it is open,
        a client's request waits in the FIFO until the loop serves it."""
        self._reopen()

    def _reopen(self) -> None:
        while True:
            try:
                new = fifo.open_reader(self.request_path, nofollow=True)
                break
            except OSError as e:       # removed (a /tmp cleaner): made again by pipes.py
                if self.pipes is None or e.errno not in (errno.ENOENT, errno.ELOOP):
                    raise
                if REQUEST_PIPE not in self.pipes.check(force=True):
                    self._pause(self.pipes.interval)    # pipes.py logged why
        self._publish(new)
        if self.fd is not None:
            os.close(self.fd)
        self.fd = new
        self.eof = False

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the daemon must stop (raises :class:`Stopped`)."""
        poller = select.poll()
        poller.register(self._wake_fd(), select.POLLIN)
        if poller.poll(int(seconds * 1000)):
            self.stop.drain()
        if self.stop.is_set():
            raise Stopped()

    def _request_pipe_renewed(self) -> bool:
        """Look at the pipes (at most every ``pipes.CHECK_INTERVAL`` s); True when the
        request FIFO in place is no longer the one our descriptor reads."""
        if self.pipes is None or self.fd is None:
            return False
        self.pipes.check()
        wanted = self.pipes.ids.get(REQUEST_PIPE)
        st = os.fstat(self.fd)
        return wanted is not None and wanted != (st.st_dev, st.st_ino)

    def _client_lock_wait(self, pipes: "Pipes") -> int:
        """Look at cassini-lock (pipes.py makes it again); ms until the next look."""
        pipes.check_client_lock()
        lock = pipes.client_lock
        if lock is None:
            return int(pipes.interval * 1000)
        seconds = 0.01 if lock.pending else pipes_mod.LOCK_CHECK_INTERVAL
        return int(min(seconds, pipes.interval) * 1000)

    def _wake_fd(self) -> int:
        """The stop flag's wake-up descriptor (the daemon opens it before the loop runs)."""
        fd = self.stop.fd
        assert fd is not None, "the stop flag's wake-up pipe is not open"
        return fd

    # --- the busy signal (saturnd.busy) -------------------------------------------
    def _publish(self, fd: int) -> None:
        """Hold the "publisher" lock (and "busy" when busy) on a new reading end."""
        if not self.publishing:
            return
        try:
            busy_mod.hold(fd, busy_mod.PUBLISHER, True)
            if self.pipes is not None and self.pipes.client_lock is not None:
                busy_mod.hold(fd, busy_mod.MARKS_LOCK, True)
            if self.busy:
                busy_mod.hold(fd, busy_mod.BUSY, True)
        except OSError as e:
            self.publishing = False
            self.busy = False
            try:
                busy_mod.hold(fd, busy_mod.PUBLISHER, False)
                busy_mod.hold(fd, busy_mod.MARKS_LOCK, False)
            except OSError:
                pass
            self.log(f"server: cannot publish the busy state ({e.strerror or e}); "
                     "a client that died after writing may leave its reply to the next one")

    def _set_busy(self, on: bool) -> None:
        if on == self.busy or self.fd is None or not self.publishing:
            return
        try:
            busy_mod.hold(self.fd, busy_mod.BUSY, on)
        except OSError as e:
            if on:              # stop claiming to publish: clients then do not wait
                self.publishing = False
                try:
                    busy_mod.hold(self.fd, busy_mod.PUBLISHER, False)
                except OSError:
                    pass
                self.log(f"server: cannot publish the busy state ({e.strerror or e})")
            return
        self.busy = on

    def fill(self, timeout: float | None) -> bool:
        """Read what is available, waiting up to ``timeout`` s (None: forever).

        Returns True when bytes were added; False on timeout or end of file
        (``self.eof`` set).  Raises :class:`Stopped` when the daemon must stop.
        """
        if self.eof:
            return False
        fd = self.fd
        assert fd is not None, "fill() before the request FIFO is open"
        wake_fd = self._wake_fd()
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(wake_fd, select.POLLIN)
        first = deadline is not None
        while True:
            if self.stop.is_set():
                raise Stopped()
            if deadline is None:    # idle: look at the pipes now and then (pipes.py)
                if self._request_pipe_renewed():
                    self.eof = True     # the loop reopens the new request FIFO
                    return False
                wait = -1 if self.pipes is None else self._client_lock_wait(self.pipes)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(int(left * 1000) + 1, EOF_CHECK_MS)
            events = dict(poller.poll(0 if first else wait))
            if wake_fd in events:
                self.stop.drain()
                continue
            # Without an event, read() anyway while a deadline runs: a reader opened
            # after the writer did never gets POLLHUP when that writer closes (Linux
            # FIFO semantics); read() tells (0 = no writer).
            if fd in events or (not events and deadline is not None):
                first = False
                self._set_busy(True)     # before the bytes leave the FIFO
                try:
                    data = os.read(fd, CHUNK)
                except BlockingIOError:
                    continue
                if data:
                    self.buf += data
                    return True
                self.eof = True
                return False

    def serve_forever(self) -> None:
        self._reopen()
        try:
            while not self.stop.is_set():
                try:
                    if not self.buf:
                        self._set_busy(False)    # the last reply is closed
                        if self.eof:
                            self._reopen()
                        if not self.fill(None):
                            continue
                    self.serve_one()
                except Stopped:
                    break
                except OSError as e:    # never die on the pipes; retry after a pause
                    self.log(f"server: request pipe error: {e.strerror or e}; retrying")
                    self.buf.clear()
                    self.eof = True
                    time.sleep(0.5)
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def serve_one(self) -> None:
        reader = _StreamReader(self)
        try:
            request = protocol.read_request(reader)
        except protocol.ProtocolError as e:
            self._discard()
            self.log(f"server: malformed request: {e}; empty reply")
            self.send_reply(None)
            return
        if request.opcode not in BACK_TO_BACK and not self._writer_ends_here():
            self._discard()
            self.log(f"server: malformed request: {request.name} followed by trailing "
                     "bytes; empty reply, nothing done")
            self.send_reply(None)
            return
        try:
            reply = dispatch(self.ctx, request)
        except OSError as e:
            self.log(f"server: {request.name} failed: {e.strerror or e}; empty reply")
            self.ctx.errors.add_daemon(f"{request.name} request not honoured (storage): "
                                       f"{e.strerror or e}")
            self.send_reply(None)
            return
        except Exception as e:   # never die on a request
            self.log(f"server: {request.name} failed: {type(e).__name__}: {e}; empty reply")
            self.send_reply(None)
            return
        output = reply.output
        if hasattr(output, "chunks"):     # a large stored output (store.OutputFile): streamed
            try:
                head = protocol.encode_output_head(len(output))
                self.send_reply(head, more=output.chunks())
            except OSError as e:
                self.log(f"server: {request.name} failed while streaming: {e.strerror or e}")
            finally:
                output.close()
            return
        self.send_reply(protocol.encode_reply(request.opcode, reply))

    def _writer_ends_here(self) -> bool:
        """False when bytes follow the request just read (in the buffer, or arriving
        within ``OWN_END_WAIT`` s); True at the writer's end of file, or after that
        silence (a writer that keeps its end open)."""
        if self.buf:
            return False
        return not self.fill(OWN_END_WAIT)

    def _discard(self) -> int:
        """Drop the client's remaining bytes: until EOF, or a short silence (bounded)."""
        dropped = len(self.buf)
        self.buf.clear()
        end = time.monotonic() + DISCARD_MAX
        while not self.eof:
            left = end - time.monotonic()
            if left <= 0 or not self.fill(min(DISCARD_SILENCE, left)):
                break
            dropped += len(self.buf)
            self.buf.clear()
        return dropped

    # --- the reply side ----------------------------------------------------------
    def send_reply(self, data: bytes | None, more: "Iterable[bytes]" = ()) -> bool:
        """Write ``data`` on the reply pipe (None: the empty reply), then each chunk of
        ``more`` (an iterable of bytes: a streamed output)."""
        # with more requests already waiting (lock-less clients whose requests were read
        # in one go), a reader that does not come soon is a client that left: a short wait
        wait = REPLY_OPEN_BACKLOG_TIMEOUT if self.buf else REPLY_OPEN_TIMEOUT
        fd = self._open_reply(wait)
        if fd is None:
            return False
        try:
            if data and not self._write_all(fd, data):
                return False
            for chunk in more:
                if not self._write_all(fd, chunk):
                    return False
            return True
        finally:
            os.close(fd)

    def _open_reply(self, wait: float) -> int | None:
        """The reply pipe's writing end once a client has opened it for reading, within
        ``wait`` s (None: no reply to give, the reason logged)."""
        try:
            fd = fifo.try_open_writer(self.reply_path)
        except OSError as e:
            self._reply_open_failed(e)
            return None
        if fd is None:                                  # no reader yet: wait for it
            return self._wait_for_reader(wait)
        return fd

    def _reply_open_failed(self, e: OSError) -> None:
        if e.errno == errno.ENOENT:
            self.log(f"server: {self.reply_path} vanished; reply dropped")
            if self.pipes is not None:
                self.pipes.check(force=True)            # made again, with the checks
        else:
            self.log(f"server: cannot open the reply pipe: {e.strerror}")

    def _wait_for_reader(self, wait: float) -> int | None:
        """Wait, without sleeping, for the reader the reply is owed to.

        A client that writes its request before opening the reply pipe (the reference
        order) is not there yet.  open(2) of a FIFO for writing blocks until a reader comes:
        a thread does that open, on the very FIFO (reached through an ``O_PATH`` descriptor
        and /proc/self/fd, so a pipe made again meanwhile changes nothing), and wakes the
        loop the instant the client opens its end.  Meanwhile the loop looks for a new
        request every ``READER_CHECK`` s (then the owed reply's client is gone) and gives up
        at the deadline; the thread is then released by a reader of our own.
        """
        try:
            ref = os.open(self.reply_path, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            self._reply_open_failed(e)
            return None
        done_r = None
        try:
            if not stat.S_ISFIFO(os.fstat(ref).st_mode):
                self.log(f"server: {self.reply_path} is not a FIFO; reply dropped")
                if self.pipes is not None:
                    self.pipes.check(force=True)
                return None
            via = f"/proc/self/fd/{ref}"
            done_r, done_w = os.pipe2(os.O_CLOEXEC)
            box = _OpenBox()
            thread = threading.Thread(target=box.open, args=(via, done_w), name="reply-open",
                                      daemon=True)
            thread.start()
            poller = select.poll()
            poller.register(done_r, select.POLLIN)
            deadline = time.monotonic() + wait
            why = None
            while not poller.poll(max(0, min(READER_CHECK, deadline - time.monotonic())) * 1000):
                if self._new_request_bytes():
                    why = ("server: a new request came before anyone opened the reply "
                           "pipe (the client is gone); reply dropped")
                    break
                if time.monotonic() >= deadline:
                    why = "server: no client opened the reply pipe; reply dropped"
                    break
            if why is not None:
                self._release(via, thread, box)
                self.log(why)
                return None
            fd, err = box.take()
            if fd is None:          # the open failed: err says why
                if err is not None:
                    self._reply_open_failed(err)
                return None
            os.set_blocking(fd, False)
            return fd
        finally:
            os.close(ref)
            if done_r is not None:
                os.close(done_r)

    def _release(self, via: str, thread: threading.Thread, box: _OpenBox) -> None:
        """End the thread's blocking open(2) with a reader of our own, and close whatever it
        opened (also if it opens later)."""
        try:
            rel = fifo.open_reader(via)
        except OSError as e:
            self.log(f"server: cannot release the reply-open thread: {e.strerror}")
            rel = None
        thread.join(1.0)
        fd, _ = box.take()
        if fd is not None:
            os.close(fd)
        if rel is not None:
            os.close(rel)

    def _new_request_bytes(self) -> bool:
        """Pull what a new writer put on the request pipe; True when bytes came.

        Called while a reply waits for its reader: a request arriving then comes
        from another client (cassini holds its lock until it has read its reply),
        so the owed reply's client is gone -- giving that reply to whoever opens
        the reply pipe next would desynchronize the next exchange.
        """
        if self.fd is None:
            return False
        self._set_busy(True)
        try:
            data = os.read(self.fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return False
        if not data:
            return False
        self.buf += data
        self.eof = False
        return True

    def _write_all(self, fd: int, data: bytes) -> bool:
        try:
            fifo.write_all(fd, data, REPLY_STALL_TIMEOUT)
        except BrokenPipeError:
            self.log("server: the client closed the reply pipe early")
            return False
        except fifo.Stalled:
            self.log("server: the client stopped reading the reply; dropped")
            return False
        return True

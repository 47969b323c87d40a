#!/usr/bin/env python3
"""A scriptable stand-in for saturnd's side of the pipes (client tests, benchmarks).

In tests::

    d = FakeDaemon(pipes_dir)            # creates the directory and both FIFOs
    d.start(reply=b"OK...", delay=0.0, keep_open=False)
    ... run cassini ...
    d.join()                             # d.requests: the requests received

Standalone (for ``hyperfine``): answer every request with a LIST reply of N
tasks, forever::

    python tests/client/fake_daemon.py PIPES_DIR --list 1000
"""

import os
import select
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from saturnd import protocol as P  # noqa: E402

REQUEST = "saturnd-request-pipe"
REPLY = "saturnd-reply-pipe"


def make_pipes(pipes_dir):
    os.makedirs(pipes_dir, 0o700, exist_ok=True)
    for name in (REQUEST, REPLY):
        path = os.path.join(pipes_dir, name)
        if not os.path.exists(path):
            os.mkfifo(path, 0o600)


def read_one_request(fd, deadline):
    """Bytes of one request from a non-blocking fd (complete, EOF or deadline)."""
    buf = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while time.monotonic() < deadline:
        if not poller.poll(20):
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            break
        buf += chunk
        try:
            P.decode_request(buf)
            break
        except P.ProtocolError:
            continue
    return buf


def list_reply(n):
    tasks = [(i, P.Timing(1 << (i % 60), P.HOURS_MASK, P.DAYS_MASK),
              (b"echo", b"task number %d" % i)) for i in range(n)]
    return P.encode_reply(P.LIST, P.Reply(tasks=tasks))


class FakeDaemon:
    """Serves a given number of exchanges in a thread, each with a scripted reply."""

    def __init__(self, pipes_dir):
        self.dir = pipes_dir
        make_pipes(pipes_dir)
        self.req_path = os.path.join(pipes_dir, REQUEST)
        self.rep_path = os.path.join(pipes_dir, REPLY)
        self.requests = []
        self.events = []            # (time, what) for ordering checks
        self.errors = []
        self.thread = None
        self.stop = threading.Event()
        self.req_fd = None
        self.empty_opens = 0

    def start(self, reply=b"", count=1, delay=0.0, keep_open=0.0, open_late=0.0,
              read_request=True, partial_then_wait=None):
        """Serve ``count`` exchanges.

        reply: bytes or a function (request bytes) -> bytes; delay: seconds
        between reading the request and opening the reply pipe; keep_open:
        seconds to keep the reply pipe open after writing; open_late: seconds
        before opening the request pipe at all; partial_then_wait: (n, seconds)
        write n reply bytes, then wait that long before the rest.
        """
        def run():
            try:
                if open_late:
                    time.sleep(open_late)
                for _ in range(count):
                    if self.stop.is_set():
                        break
                    # a fresh reading end per exchange: the previous client's end of
                    # file would otherwise be reported again and again
                    if self.req_fd is None:
                        self.req_fd = os.open(self.req_path, os.O_RDONLY | os.O_NONBLOCK)
                    self._serve(reply, delay, keep_open, read_request, partial_then_wait)
                    self._reopen()
            except Exception as e:  # reported by join()
                self.errors.append(e)
            finally:
                if self.req_fd is not None:
                    os.close(self.req_fd)
                    self.req_fd = None

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def _reopen(self):
        """A fresh reading end, opened before the old one is closed: were the FIFO left
        without a reader for an instant, a request written (and its writer gone) just
        before would be discarded with the pipe's buffer."""
        fresh = os.open(self.req_path, os.O_RDONLY | os.O_NONBLOCK)
        os.close(self.req_fd)
        self.req_fd = fresh

    def _serve(self, reply, delay, keep_open, read_request, partial_then_wait):
        deadline = time.monotonic() + 20
        req = b""
        if read_request:
            while not req and time.monotonic() < deadline and not self.stop.is_set():
                req = read_one_request(self.req_fd, min(deadline, time.monotonic() + 0.5))
                if not req:
                    # a writer came and went without a byte (or nobody yet): not a
                    # request; a fresh reading end forgets that end of file
                    self.empty_opens += 1
                    self._reopen()
        self.requests.append(req)
        self.events.append((time.monotonic(), "request"))
        if delay:
            self.stop.wait(delay)
        fd = None
        while fd is None and time.monotonic() < deadline and not self.stop.is_set():
            try:
                fd = os.open(self.rep_path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.002)
        if fd is None:
            return
        try:
            os.set_blocking(fd, True)
            data = reply(req) if callable(reply) else reply
            try:
                if partial_then_wait:
                    n, wait = partial_then_wait
                    os.write(fd, data[:n])
                    self.stop.wait(wait)
                    data = data[n:]
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except BrokenPipeError:
                pass
            self.events.append((time.monotonic(), "replied"))
            if keep_open:
                self.stop.wait(keep_open)
        finally:
            os.close(fd)

    def join(self, timeout=30):
        self.thread.join(timeout)
        alive = self.thread.is_alive()
        self.stop.set()
        if alive:
            self.thread.join(5)
        if self.errors:
            raise self.errors[0]
        return not alive


def serve_forever(pipes_dir, reply):
    """Blocking loop for benchmarks: one request in, the same reply out, forever."""
    make_pipes(pipes_dir)
    req = os.path.join(pipes_dir, REQUEST)
    rep = os.path.join(pipes_dir, REPLY)
    while True:
        fd = os.open(req, os.O_RDONLY)
        buf = b""
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            buf += chunk
            try:
                P.decode_request(buf)
                break
            except P.ProtocolError:
                continue
        os.close(fd)
        out = os.open(rep, os.O_WRONLY)
        try:
            view = memoryview(reply)
            while view:
                view = view[os.write(out, view):]
        except BrokenPipeError:
            pass
        os.close(out)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("pipes_dir")
    ap.add_argument("--list", type=int, default=1000, help="tasks in every LIST reply")
    a = ap.parse_args()
    try:
        serve_forever(a.pipes_dir, list_reply(a.list))
    except KeyboardInterrupt:
        pass

"""Fixtures for the daemon tests: a real ``saturnd -f --clock manual`` process in
temporary pipes/data directories, driven by the real ``cassini`` command
(``$CASSINI`` when set, else the venv's) and by ``saturnd.clockctl``.
"""

import fcntl
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cassini.client import open_reply_pipe

BIN = Path(sys.executable).parent
SATURND = [str(BIN / "saturnd")]
CLOCKCTL = [sys.executable, "-m", "saturnd.clockctl"]
# 2026-01-01 00:00:00 UTC, a Thursday
T0 = 1767225600


def cassini_command():
    env = os.environ.get("CASSINI")
    if env:
        return shlex.split(env)
    return [str(BIN / "cassini")]


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Poll ``predicate`` until it returns a true value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie (not reaped by its parent yet) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Daemon:
    """One saturnd process in the foreground with a manual clock."""

    def __init__(self, root, start_time=T0, tz="UTC", extra=(), env=None):
        self.root = Path(root)
        self.pipes = self.root / "pipes"
        self.data = self.root / "data"
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.start_time = start_time
        self.env = dict(os.environ, TZ=tz, HOME=str(self.home))
        self.env.pop("SATURND_DATA_DIR", None)
        if env:
            self.env.update(env)
        self.extra = list(extra)
        self.proc = None
        self.lines = []

    def argv(self):
        return SATURND + ["-f", "--clock", "manual", "--start-time", str(self.start_time),
                          "-p", str(self.pipes), "--data-dir", str(self.data),
                          "--grace", "1"] + self.extra

    def start(self):
        self.lines = []
        self.proc = subprocess.Popen(self.argv(), env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        wait_for(lambda: any(" ready " in l for l in self.lines) or self.proc.poll() is not None,
                 what="saturnd to be ready")
        assert self.proc.poll() is None, "saturnd exited at start-up:\n" + "".join(self.lines)
        return self

    def _drain(self, proc):
        for raw in proc.stderr:
            self.lines.append(raw.decode("utf-8", "replace"))

    def log(self):
        return "".join(self.lines)

    # --- clients ------------------------------------------------------------------
    def cassini(self, *args, check=True, tz=None):
        env = dict(self.env, TZ=tz or self.env["TZ"])
        res = subprocess.run(cassini_command() + ["-p", str(self.pipes)] + list(args), env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        if check:
            assert res.returncode == 0, (args, res, self.log())
        return res

    def out(self, *args):
        return self.cassini(*args).stdout

    def clock(self, *args):
        res = subprocess.run(CLOCKCTL + ["-p", str(self.pipes)] + [str(a) for a in args],
                             capture_output=True, timeout=60, env=self.env)
        return res.returncode, res.stdout.decode()

    def advance(self, n=1, deadline=None):
        extra = [] if deadline is None else [deadline]
        code, out = self.clock("advance", n, *extra)
        assert code == 0, (out, self.log())
        return int(out.split()[1])

    def set_time(self, epoch):
        code, out = self.clock("set", epoch)
        assert code == 0, (out, self.log())

    def raw(self, data):
        """Send raw request bytes (under the client lock); return the raw reply bytes.

        Like cassini, the reply pipe is opened (clear of the previous exchange's
        writer) before the request is written; the reply is read to end of file.
        """
        lock = os.open(self.pipes / "cassini-lock", os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            reply = open_reply_pipe(str(self.pipes / "saturnd-reply-pipe"), 0.5)
            try:
                fd = os.open(self.pipes / "saturnd-request-pipe", os.O_WRONLY)
                if data:
                    os.write(fd, data)
                os.close(fd)
                chunks = []
                poller = select.poll()
                poller.register(reply, select.POLLIN)
                while True:
                    assert poller.poll(30_000), "no reply within 30 s:\n" + self.log()
                    chunk = os.read(reply, 65536)
                    if not chunk:
                        return b"".join(chunks)
                    chunks.append(chunk)
            finally:
                os.close(reply)
        finally:
            os.close(lock)

    # --- stopping ---------------------------------------------------------------------
    def wait_exit(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("saturnd did not exit:\n" + self.log()) from None

    def terminate(self):
        self.cassini("-q")
        return self.wait_exit()

    def kill(self):
        """Teardown: SIGTERM (runs are killed after the grace), SIGKILL if that fails."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def make_daemon(tmp_path):
    made = []

    def make(name="d", **kw):
        d = Daemon(tmp_path / name, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.kill()


@pytest.fixture
def daemon(make_daemon):
    return make_daemon().start()

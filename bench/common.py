"""Shared helpers of the benchmark: statistics, timers, a daemon under test,
a protocol-API client on the FIFOs, a fast on-disk task-store populator, RSS.

Nothing here changes the code under test; the daemon is always the real
``python -m saturnd`` of this checkout (or, in-process, its own modules).
"""

import array
import fcntl
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time

from saturnd import protocol

REQUEST_PIPE = "saturnd-request-pipe"
REPLY_PIPE = "saturnd-reply-pipe"
_U64 = struct.Struct(">Q")


class BenchError(Exception):
    """A benchmark step could not be carried out (one line)."""


# --- statistics ----------------------------------------------------------------
def percentile(samples, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    s = sorted(samples)
    if not s:
        raise ValueError("no samples")
    k = max(0, min(len(s) - 1, -(-len(s) * q // 100) - 1))
    return s[int(k)]


def summary(samples):
    """p50, p99, mean, min, max and n of samples (seconds)."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "mean": sum(samples) / len(samples),
        "min": min(samples),
        "max": max(samples),
    }


def time_calls(fn, n, warmup=2):
    """Call ``fn()`` ``warmup`` + ``n`` times; the ``n`` durations in seconds."""
    for _ in range(warmup):
        fn()
    out = []
    clock = time.perf_counter
    for _ in range(n):
        t = clock()
        fn()
        out.append(clock() - t)
    return out


def time_interleaved(fns, n, warmup=2):
    """Like :func:`time_calls` for several functions, called in turn.

    For ratios between them: a change of load on the machine hits them alike.
    Returns {name: durations}.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = {name: [] for name in fns}
    clock = time.perf_counter
    for _ in range(n):
        for name, fn in fns.items():
            t = clock()
            fn()
            out[name].append(clock() - t)
    return out


# --- whole commands --------------------------------------------------------------
def hyperfine_path():
    return shutil.which("hyperfine")


def time_commands(commands, runs, warmup, workdir, env=None, use_hyperfine=True):
    """Median wall time of whole commands (dict name -> argv), side by side.

    With ``hyperfine`` (``-N``: no intermediate shell) when it is installed,
    else an in-Python loop (``posix_spawn`` + ``waitpid``, stdout/stderr on
    /dev/null) that interleaves the commands run by run so that drifts of the
    machine hit every command alike.  Returns (tool, {name: summary}).
    """
    hf = hyperfine_path() if use_hyperfine else None
    names = list(commands)
    if hf:
        out = os.path.join(workdir, "hyperfine.json")
        argv = [hf, "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
                "--export-json", out]
        for name in names:
            argv += ["-n", name, subprocess.list2cmdline(commands[name])]
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                              timeout=600)
        if proc.returncode != 0:
            raise BenchError("hyperfine failed: " + proc.stderr.decode(errors="replace").strip()[-300:])
        import json
        with open(out) as f:
            data = json.load(f)
        res = {}
        for r in data["results"]:
            res[r["command"]] = summary(r["times"])
        return "hyperfine " + _hyperfine_version(hf), res
    null = os.open(os.devnull, os.O_RDWR)
    err_path = os.path.join(workdir, "command-stderr")
    try:
        environ = os.environ if env is None else env
        samples = {name: [] for name in names}
        failures = {name: [] for name in names}
        for i in range(warmup + runs):
            for name in names:
                argv = commands[name]
                err = os.open(err_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
                               (os.POSIX_SPAWN_DUP2, err, 2)]
                    t = time.perf_counter()
                    pid = os.posix_spawn(argv[0], argv, environ, file_actions=actions)
                    _, status = os.waitpid(pid, 0)
                    dt = time.perf_counter() - t
                    if os.waitstatus_to_exitcode(status) != 0:
                        # a failed run is a finding, not a sample: counted and reported
                        msg = os.pread(err, 300, 0).decode(errors="replace").strip()
                        failures[name].append(f"exit {os.waitstatus_to_exitcode(status)}: {msg}")
                        continue
                finally:
                    os.close(err)
                if i >= warmup:
                    samples[name].append(dt)
        res = {}
        for name in names:
            if len(failures[name]) * 2 > warmup + runs or not samples[name]:
                raise BenchError(f"{name}: {len(failures[name])} failed runs, e.g. "
                                 f"{failures[name][0]}")
            res[name] = summary(samples[name])
            res[name]["failures"] = failures[name]
        return "python loop (posix_spawn, interleaved)", res
    finally:
        os.close(null)


def _hyperfine_version(hf):
    try:
        return subprocess.run([hf, "--version"], capture_output=True, text=True,
                              timeout=10).stdout.split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


# --- the on-disk store, written directly (layout of spec/saturnd.md) -------------
def populate(data_dir, n, argv=(b"true",), timing=protocol.EVERY_MINUTE, first_id=0):
    """Write ``n`` tasks straight into ``DATA_DIR/tasks`` (no fsync: set-up only).

    The daemon (or an in-process Store) loads them at start-up exactly as tasks
    it created itself; this keeps set-up of 10,000 tasks to about a second.
    """
    tasks = os.path.join(data_dir, "tasks")
    os.makedirs(tasks, mode=0o700, exist_ok=True)
    argv_bytes = protocol.encode_commandline(list(argv))
    timing_bytes = timing.encode()
    for taskid in range(first_id, first_id + n):
        d = os.path.join(tasks, str(taskid))
        os.mkdir(d, 0o700)
        for name, data in (("argv", argv_bytes), ("time_exec", timing_bytes), ("exit", b"")):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    with open(os.path.join(data_dir, "taskid_max"), "wb") as f:
        f.write(_U64.pack(first_id + n))


def add_runs(data_dir, taskid, nruns, stdout=b"", start=1_700_000_000):
    """Give task ``taskid`` ``nruns`` recorded runs and a last stdout."""
    d = os.path.join(data_dir, "tasks", str(taskid))
    with open(os.path.join(d, "exit"), "wb") as f:
        f.write(b"".join(protocol.encode_run(start + 60 * i, i % 256) for i in range(nruns)))
    with open(os.path.join(d, "stdout"), "wb") as f:
        f.write(stdout)
    with open(os.path.join(d, "stderr"), "wb") as f:
        f.write(b"")


# --- a protocol-API client on the FIFOs ----------------------------------------
class _FdReader:
    """``read_exact`` on a non-blocking FIFO descriptor, with a deadline."""

    def __init__(self, fd, timeout):
        self.fd = fd
        self.buf = bytearray()
        self.deadline = time.monotonic() + timeout
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def read_exact(self, n):
        while len(self.buf) < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise BenchError("timed out waiting for the reply")
            events = self.poller.poll(int(left * 1000) + 1)
            if not events:
                continue
            try:
                data = os.read(self.fd, max(65536, min(n - len(self.buf), 1 << 20)))
            except BlockingIOError:
                continue
            if not data:
                raise protocol.Truncated("end of file in the reply")
            self.buf += data
        chunk = bytes(self.buf[:n])
        del self.buf[:n]
        return chunk


class Client:
    """One request, one reply, with ``saturnd.protocol``: what cassini does minus
    its process start-up and its lock.  Same order as cassini and protocol.md:
    write the whole request, close, then open the reply pipe and read one reply
    by its lengths.
    """

    def __init__(self, pipes_dir, timeout=60.0, wait_consumed=True):
        self.request_path = os.path.join(pipes_dir, REQUEST_PIPE)
        self.reply_path = os.path.join(pipes_dir, REPLY_PIPE)
        self.timeout = timeout
        self.wait_consumed = wait_consumed

    def _wait_consumed(self, wfd):
        """Wait until the daemon has read the whole request (FIONREAD of the FIFO is 0).

        The daemon reads a request only once it has closed its end of the
        previous reply; opening the reply pipe before that would attach this
        reader to the previous reply's writer (which then closes: end of file,
        the reply is lost).  See the README of the benchmark.
        """
        buf = array.array("i", [0])
        deadline = time.monotonic() + self.timeout
        spins = 0
        while True:
            fcntl.ioctl(wfd, termios.FIONREAD, buf, True)
            if buf[0] == 0:
                return
            spins += 1
            if spins > 200:     # spin briefly (the daemon is usually quick), then yield
                if time.monotonic() > deadline:
                    raise BenchError("the daemon did not read the request in time")
                time.sleep(0.00005)

    def raw(self, data, opcode):
        wfd = os.open(self.request_path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(wfd, view):]
            if self.wait_consumed:
                self._wait_consumed(wfd)
        finally:
            os.close(wfd)
        rfd = os.open(self.reply_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return protocol.read_reply(_FdReader(rfd, self.timeout), opcode)
        finally:
            os.close(rfd)

    def request(self, req):
        return self.raw(protocol.encode_request(req), req.opcode)

    def create(self, argv, timing=protocol.EVERY_MINUTE):
        return self.request(protocol.Request(protocol.CREATE, timing=timing, argv=tuple(argv))).value

    def list(self):
        return self.request(protocol.Request(protocol.LIST)).tasks

    def terminate(self):
        return self.request(protocol.Request(protocol.TERMINATE))


# --- the daemon under test --------------------------------------------------------
class Daemon:
    """``python -m saturnd -f`` on private pipes/data directories under ``base``."""

    def __init__(self, base, clock="manual", start_time=None, python=None):
        self.base = base
        self.pipes = os.path.join(base, "pipes")
        self.data = os.path.join(base, "data")
        self.log_path = os.path.join(base, "saturnd.log")
        self.clock = clock
        self.start_time = start_time
        self.python = python or sys.executable
        self.proc = None
        os.makedirs(base, exist_ok=True)

    def start(self, timeout=60.0):
        argv = [self.python, "-m", "saturnd", "-f", "-p", self.pipes, "--data-dir", self.data,
                "--clock", self.clock, "--grace", "2"]
        if self.start_time is not None:
            argv += ["--start-time", str(int(self.start_time))]
        env = dict(os.environ)
        env.setdefault("HOME", self.base)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, env=env)
        request = os.path.join(self.pipes, REQUEST_PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"saturnd exited at start-up: {self.log_tail()}")
            try:
                fd = os.open(request, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("saturnd did not open its request pipe in time") from None
                time.sleep(0.005)
                continue
            os.close(fd)
            return self

    @property
    def pid(self):
        return self.proc.pid

    def client(self, **kw):
        return Client(self.pipes, **kw)

    def clock_request(self, line, timeout=120.0):
        from saturnd import clockctl
        return clockctl.request(self.pipes, line, timeout)

    def log_tail(self, n=400):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace").strip()
        except OSError:
            return ""

    def stop(self, timeout=30.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.client(timeout=5).terminate()
            self.proc.wait(timeout)
        except (BenchError, OSError, protocol.ProtocolError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --- memory -------------------------------------------------------------------------
def proc_status_kib(pid, *fields):
    """Selected ``/proc/PID/status`` fields (kB values) as a dict of KiB ints."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in fields:
                out[key] = int(value.split()[0])
    return out


def proc_cpu_seconds(pid):
    """User + system CPU time consumed so far by process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(predicate, timeout, interval=0.01, what="a condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(interval)

"""Shared helpers of the benchmark: statistics, timers, a fast on-disk task-store populator,
and the test kit's daemon handle, lean client and /proc readings with the benchmark's
error (:class:`BenchError`).

Nothing here changes the code under test; the daemon is always the real
``python -m saturnd`` of this checkout (or, in-process, its own modules).
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import time

from saturnd import protocol
from testkit.daemon import LocalDaemon
from testkit.pipes import Client
from testkit.waiting import wait_for as _wait_for

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


# --- the on-disk store, written directly (its layout: saturnd/store.py) -------------
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


# --- the daemon under test --------------------------------------------------------
class Daemon(LocalDaemon):
    """``python -m saturnd -f`` of this checkout on private pipes/data directories under
    ``base`` (the test kit's local daemon handle, in its own session, grace 2 s); pipes
    and data as strings, failures as :class:`BenchError`."""

    def __init__(self, base, clock="manual", start_time=None, python=None):
        super().__init__(base, python=python or sys.executable, new_session=True,
                         clock=clock, start_time=start_time, grace=2, tz=None)
        self.base = str(base)
        self.pipes = str(self.pipes)
        self.data = str(self.data)
        self.log_path = str(self.logfile)

    def start(self, timeout=60.0):
        try:
            return super().start(timeout)
        except AssertionError as e:
            raise BenchError(str(e).splitlines()[0] + " " + self.log_tail()) from None

    def client(self, **kw):
        return Client(self.pipes, error=BenchError, **kw)

    def clock_request(self, line, timeout=120.0):
        return self.clock_line(line, timeout)

    def log_tail(self, n=400):
        return self.log()[-n:].strip()

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


def wait_for(cond, timeout, what="a condition", interval=0.01):
    return _wait_for(cond, timeout, what, interval, error=BenchError)

"""Section 6: the issue's table, each row a ratio to a baseline measured in the same run.

- The C client (``bench/refclient.c``, compiled here when ``gcc`` exists) sends LIST,
  TIMES_EXITCODES, STDOUT, CREATE and REMOVE to our daemon and to a minimal non-durable
  reference server (``bench/refserver.py``), call by call in turn; the same state on both,
  replies checked byte for byte.  CREATE and REMOVE are durable in ours: a second baseline
  adds to the reference the *durable floor* of the same change on this file system (a bare
  loop of the syncs POSIX asks for it: CREATE 2 files + their folder + the rename's parent,
  REMOVE a rename + its parent), timed in turn with it.
- ``cassini -l`` with 10,000 and 50,000 tasks vs ``python -I -S -c pass``.
- Daemon start-up until a LIST of 50,000 tasks is answered: with the index a clean stop
  leaves, against the same start without it (every task folder read).
- Disk per task: blocks and inodes of the 50,000 tasks' folders.
"""

import os
import shutil
import statistics
import subprocess
import sys
import time

from saturnd import protocol
from .common import BenchError, Daemon, add_runs, populate, time_commands
from .rows import row

SECTION = "6 versus"
HERE = os.path.dirname(os.path.abspath(__file__))


def compile_client(workdir, log):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        log("  no C compiler: the C client rows are skipped")
        return None
    out = os.path.join(workdir, "refclient")
    proc = subprocess.run([gcc, "-O2", "-o", out, os.path.join(HERE, "refclient.c")],
                          capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise BenchError("cannot compile bench/refclient.c: "
                         + proc.stderr.decode(errors="replace").strip()[-300:])
    return out


class RefServer:
    def __init__(self, pipes, data):
        self.pipes, self.data = pipes, data
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.refserver", self.pipes,
                                      self.data], stdout=subprocess.PIPE,
                                     cwd=os.path.dirname(HERE))
        if self.proc.stdout.readline().strip() != b"ready":
            raise BenchError("the reference server did not start")
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def _client(refclient, n, first, request, dirs):
    proc = subprocess.run([refclient, str(n), str(first), request.hex()] + list(dirs),
                          capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise BenchError("refclient: " + proc.stderr.decode(errors="replace").strip()[-300:])
    times, replies = {}, {}
    for line in proc.stdout.decode().splitlines():
        parts = line.split(" ")
        if parts[0] == "reply":
            replies[parts[1]] = parts[2] if len(parts) > 2 else ""
        else:
            times[parts[0]] = [int(x) / 1e6 for x in parts[1:]]
    return times, replies


def _paired(ours, ref):
    """Median of ours, of the baseline, and of the paired ratios."""
    return (statistics.median(ours), statistics.median(ref),
            statistics.median(a / b for a, b in zip(ours, ref)))


def _durable_floor(base, n, what, start=0):
    """Durations (ms) of a bare loop of the syncs POSIX asks for one durable change."""
    os.makedirs(base, exist_ok=True)
    out = []
    for i in range(start, start + n):
        t = time.perf_counter()
        if what == "create":
            d = os.path.join(base, f"b{i}")
            os.mkdir(d, 0o700)
            fds = []
            for name, data in (("argv", b"\0\0\0\1\0\0\0\4true"), ("time_exec", b"\xff" * 13),
                               ("exit", b"")):
                fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT, 0o600)
                if data:
                    os.write(fd, data)
                fds.append((fd, data))
            for fd, data in fds:
                if data:
                    os.fsync(fd)
                os.close(fd)
            for p in (d,):
                fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
                os.fsync(fd)
                os.close(fd)
            os.rename(d, os.path.join(base, f"t{i}"))
        else:
            os.rename(os.path.join(base, f"t{i}"), os.path.join(base, f"r{i}"))
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def disk_use(tasks_dir):
    """(bytes allocated, inodes) under tasks_dir, per task folder."""
    blocks = inodes = 0
    n = 0
    for entry in os.scandir(tasks_dir):
        n += 1
        st = entry.stat(follow_symlinks=False)
        blocks += st.st_blocks
        inodes += 1
        for sub in os.scandir(entry.path):
            blocks += sub.stat(follow_symlinks=False).st_blocks
            inodes += 1
    return blocks * 512 / max(n, 1), inodes / max(n, 1), n


def run(cfg, workdir, log):
    rows = []
    base = os.path.join(workdir, "versus")
    os.makedirs(base)
    refclient = compile_client(base, log)
    if refclient:
        rows += _client_rows(cfg, base, refclient, log)
    rows += _big_rows(cfg, base, log)
    return rows


def _client_rows(cfg, base, refclient, log):
    rows = []
    seed = os.path.join(base, "seed")
    populate(seed, cfg.versus_tasks, argv=(b"echo", b"hello", b"world"))
    add_runs(seed, 0, 10, stdout=b"hello world\n")
    ours = Daemon(os.path.join(base, "ours"))
    shutil.copytree(seed, ours.data, dirs_exist_ok=True)
    ref_pipes = os.path.join(base, "ref", "pipes")
    n = cfg.versus_calls
    with ours, RefServer(ref_pipes, seed):
        dirs = [ours.pipes, ref_pipes]
        timing = protocol.EVERY_MINUTE.encode()
        cmd = protocol.encode_commandline([b"true"])
        first_new = cfg.versus_tasks
        plan = [("LIST", f"LIST of {cfg.versus_tasks} tasks", b"LS", 0),
                ("TX", "TIMES_EXITCODES (10 runs)", b"TX" + (0).to_bytes(8, "big"), 0),
                ("SO", "STDOUT (12 bytes)", b"SO" + (0).to_bytes(8, "big"), 0),
                ("CREATE", "CREATE", b"CR" + timing + cmd, 0),
                ("REMOVE", "REMOVE", b"RM", first_new)]
        for key, what, request, first in plan:
            durable = key in ("CREATE", "REMOVE")
            # changes: in blocks, in turn with their durable floor (same load on the disk)
            blocks = max(1, n // 20) if durable else 1
            per = n // blocks
            times = {d: [] for d in dirs}
            floor = []
            replies = None
            for i in range(blocks):
                t, got = _client(refclient, per, first + i * per, request, dirs)
                if i == 0:
                    replies = got
                for d in dirs:
                    times[d] += t[d]
                if durable:
                    floor += _durable_floor(os.path.join(base, "floor"), per, key.lower(),
                                            start=i * per)
            if replies.get(ours.pipes) != replies.get(ref_pipes):
                raise BenchError(f"{key}: the two servers' replies differ: "
                                 f"{replies.get(ours.pipes)[:80]} vs {replies.get(ref_pipes)[:80]}")
            a, b, paired = _paired(times[ours.pipes], times[ref_pipes])
            rows.append(row(SECTION, f"c_{key.lower()}", f"C client: {what}, ours vs reference",
                            a, "ms", n=len(times[ours.pipes]), baseline="non-durable reference server",
                            baseline_value=b, limit=cfg.versus_ratio if key not in ("CREATE", "REMOVE")
                            else cfg.change_ratio, on="ratio",
                            extra={"median_paired_ratio": paired}))
            log(f"  {key}: ours {a:.3f} ms, reference {b:.3f} ms ({a / b:.2f}x)")
            if durable:
                f = statistics.median(floor)
                rows.append(row(SECTION, f"c_{key.lower()}_durable",
                                f"C client: {what}, ours vs reference + durable floor",
                                a, "ms", n=n,
                                baseline=f"reference + bare {key.lower()} syncs ({f:.3f} ms)",
                                baseline_value=b + f, limit=cfg.change_ratio, on="ratio"))
        shutil.rmtree(os.path.join(base, "floor"), ignore_errors=True)
    return rows


def _big_rows(cfg, base, log):
    rows = []
    from .startup import regular_install
    python, cassini = regular_install(os.path.join(base, "venv"))
    sizes = cfg.versus_big
    daemons = {}
    for size in sizes:
        d = Daemon(os.path.join(base, f"big{size}"))
        t = time.monotonic()
        populate(d.data, size, argv=(b"echo", b"hello", b"world"))
        log(f"  {size:,} tasks written in {time.monotonic() - t:.1f} s")
        daemons[size] = d
    big = max(sizes)
    try:
        for d in daemons.values():
            d.start(timeout=300)
        commands = {"python -I -S -c pass": [python, "-I", "-S", "-c", "pass"]}
        for size, d in daemons.items():
            commands[f"cassini -l ({size:,} tasks)"] = [cassini, "-p", d.pipes, "-l"]
            lines = subprocess.run([cassini, "-p", d.pipes, "-l"], capture_output=True,
                                   timeout=120).stdout.count(b"\n")
            if lines != size:
                raise BenchError(f"cassini -l printed {lines} lines, expected {size}")
        tool, res = time_commands(commands, cfg.versus_runs, 2, base,
                                  use_hyperfine=cfg.hyperfine)
        floor = res["python -I -S -c pass"]["p50"] * 1e3
        for size, limit in zip(sizes, cfg.versus_list_ratios):
            s = res[f"cassini -l ({size:,} tasks)"]
            rows.append(row(SECTION, f"cassini_l_{size}", f"cassini -l ({size:,} tasks)",
                            s["p50"] * 1e3, "ms", p99=s["p99"] * 1e3, n=s["n"],
                            baseline="python -I -S -c pass", baseline_value=floor,
                            limit=limit, on="ratio", extra={"tool": tool}))
        # start-up of the biggest: with the index of a clean stop, and without
        d = daemons[big]
        index = os.path.join(d.data, "index")
        with_index, without = [], []
        for _ in range(cfg.versus_starts):
            for kind in ("without", "with"):
                d.stop()                    # TERMINATE: a clean stop writes the index
                if not os.path.exists(index):
                    raise BenchError("no index after a clean stop: " + d.log_tail())
                if kind == "without":
                    os.unlink(index)
                t = time.perf_counter()
                d.start(timeout=300)        # returns once a LIST round trip is answered
                (with_index if kind == "with" else without).append(
                    (time.perf_counter() - t) * 1e3)
        a, b = statistics.median(with_index), statistics.median(without)
        rows.append(row(SECTION, "startup_big", f"saturnd start-up until LIST answers, "
                        f"{big:,} tasks (index)", a, "ms", n=len(with_index),
                        baseline="the same without the index", baseline_value=b,
                        limit=cfg.versus_startup_ms, on="value",
                        extra={"with": with_index, "without": without}))
        log(f"  start-up with {big:,} tasks: {a:.0f} ms with the index, {b:.0f} ms without")
        per_task, inodes, n = disk_use(os.path.join(d.data, "tasks"))
        rows.append(row(SECTION, "disk_per_task", f"disk per task (folder + argv, time_exec, "
                        f"empty exit; {n:,} tasks)", per_task / 1024, "KiB",
                        note=f"{inodes:.1f} inodes per task", extra={"inodes": inodes}))
    finally:
        for d in daemons.values():
            d.stop()
    return rows

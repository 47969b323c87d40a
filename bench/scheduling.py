"""Section 4: N tasks due the same minute.

Every task runs ``date +%s.%N``: its recorded stdout is the wall-clock time it
started (after exec), so start times are measured by the runs themselves, not
by the daemon's log.  The time a run was recorded is the mtime of the task's
``exit`` file (its record is appended last, the commit point of a run).

- manual clock: the boundary is the moment this process sends ``advance 1``
  on the clock channel (so the figures include the channel's latency); the
  reply comes once every run is recorded.
- system clock (``--system-clock``): the tasks select only the minute of the
  next real boundary at least a few seconds away; the boundary is that exact
  epoch second.  Waits up to a minute for it.
"""

import os
import time

from saturnd import protocol
from saturnd.clock import floor_minute

from testkit.procs import proc_cpu_seconds

from .common import BenchError, Daemon, populate, wait_for
from .rows import row

SECTION = "4 scheduling"
ARGV = (b"date", b"+%s.%N")


def _collect(data, n):
    starts, recorded = [], []
    for taskid in range(n):
        d = os.path.join(data, "tasks", str(taskid))
        st = os.stat(os.path.join(d, "exit"))
        if st.st_size != protocol.RUN_RECORD_SIZE:
            raise BenchError(f"task {taskid} has {st.st_size} bytes of run records, expected 10")
        recorded.append(st.st_mtime_ns / 1e9)
        with open(os.path.join(d, "stdout"), "rb") as f:
            starts.append(float(f.read().strip()))
    return starts, recorded


def _all_recorded(data, n):
    for taskid in range(n - 1, -1, -1):
        try:
            if os.stat(os.path.join(data, "tasks", str(taskid), "exit")).st_size < 10:
                return False
        except FileNotFoundError:
            return False
    return True


def _rows(mode, boundary, starts, recorded, n, first_limit=None, last_limit=None, extra=None):
    ms = lambda t: (t - boundary) * 1e3   # noqa: E731
    return [
        row(SECTION, f"{mode}_first_start", f"{mode} clock: boundary -> first start",
            ms(min(starts)), "ms", n=n, limit=first_limit, extra=extra),
        row(SECTION, f"{mode}_last_start", f"{mode} clock: boundary -> last start ({n:,} tasks)",
            ms(max(starts)), "ms", n=n, limit=last_limit),
        row(SECTION, f"{mode}_last_recorded", f"{mode} clock: boundary -> last result recorded",
            ms(max(recorded)), "ms", n=n),
    ]


def run_manual(cfg, workdir, log):
    n = cfg.sched_tasks
    d = Daemon(os.path.join(workdir, "sched-manual"), start_time=floor_minute(time.time()))
    populate(d.data, n, argv=ARGV)
    with d:
        cpu0 = proc_cpu_seconds(d.pid)
        t0 = time.time()
        reply = d.clock_request("advance 1 120", timeout=180)
        t1 = time.time()
        cpu1 = proc_cpu_seconds(d.pid)
        if not reply.startswith("ok "):
            raise BenchError(f"advance 1 answered {reply[:200]!r}")
        starts, recorded = _collect(d.data, n)
    rows = _rows("manual", t0, starts, recorded, n)
    rows.append(row(SECTION, "manual_advance_reply", "manual clock: `advance 1` answered after",
                    (t1 - t0) * 1e3, "ms", n=n))
    rows.append(row(SECTION, "manual_daemon_cpu",
                    f"manual clock: daemon CPU time for the {n:,} runs", (cpu1 - cpu0) * 1e3,
                    "ms", n=n, note="user+system, all threads (/proc/PID/stat)"))
    log(f"  manual: last start {(max(starts) - t0) * 1e3:.0f} ms, "
        f"reply {(t1 - t0) * 1e3:.0f} ms")
    return rows


def run_system(cfg, workdir, log):
    n = cfg.sched_tasks
    now = time.time()
    boundary = floor_minute(now) + 60
    if boundary - now < cfg.sched_margin:
        boundary += 60
    minute = time.localtime(boundary).tm_min
    timing = protocol.Timing(1 << minute, protocol.HOURS_MASK, protocol.DAYS_MASK)
    d = Daemon(os.path.join(workdir, "sched-system"), clock="system")
    populate(d.data, n, argv=ARGV, timing=timing)
    with d:
        cpu0 = proc_cpu_seconds(d.pid)
        ready = time.time()
        if ready > boundary - 1:
            raise BenchError("the daemon was not ready a second before the boundary")
        log(f"  system: waiting {boundary - ready:.0f} s for the minute boundary")
        wait_for(lambda: time.time() > boundary, boundary - ready + 5, "the boundary", 0.2)
        wait_for(lambda: _all_recorded(d.data, n), 120, "every run to be recorded", 0.05)
        cpu1 = proc_cpu_seconds(d.pid)
        starts, recorded = _collect(d.data, n)
    log(f"  system: first start {(min(starts) - boundary) * 1e3:.1f} ms, "
        f"last start {(max(starts) - boundary) * 1e3:.0f} ms")
    rows = _rows("system", boundary, starts, recorded, n, first_limit=cfg.first_start_ms,
                 last_limit=cfg.last_start_ms, extra={"boundary": boundary})
    rows.append(row(SECTION, "system_daemon_cpu",
                    f"system clock: daemon CPU time for the {n:,} runs", (cpu1 - cpu0) * 1e3,
                    "ms", n=n, note="user+system, all threads, from before the boundary"))
    return rows

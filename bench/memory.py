"""Section 5: the daemon's memory (``/proc/PID/status`` VmRSS and VmHWM).

- idle: a fresh daemon (system clock, empty store), after a short settle.
- with N tasks: the store holds N tasks when the daemon starts (manual clock
  standing still, so none of them runs); measured after start-up and again
  after serving one LIST of all of them (VmHWM: the peak so far).
"""

import os
import time

from testkit.procs import proc_status_kib

from .common import BenchError, Daemon, populate
from .rows import row

SECTION = "5 memory"
MIB = 1024.0


def run(cfg, workdir, log):
    rows = []
    d = Daemon(os.path.join(workdir, "mem-idle"), clock="system")
    with d:
        time.sleep(cfg.settle)
        m = proc_status_kib(d.pid, "VmRSS", "VmHWM")
    rows.append(row(SECTION, "idle_rss", "saturnd idle VmRSS", m["VmRSS"] / MIB, "MiB",
                    limit=cfg.idle_mib))
    rows.append(row(SECTION, "idle_hwm", "saturnd idle VmHWM (peak)", m["VmHWM"] / MIB, "MiB",
                    limit=cfg.idle_mib))
    log(f"  idle: {m['VmRSS'] / MIB:.1f} MiB")

    n = cfg.mem_tasks
    d = Daemon(os.path.join(workdir, "mem-full"))
    populate(d.data, n, argv=(b"echo", b"hello", b"world"))
    with d:
        time.sleep(cfg.settle)
        loaded = proc_status_kib(d.pid, "VmRSS")
        got = len(d.client().list())
        if got != n:
            raise BenchError(f"LIST returned {got} tasks, expected {n}")
        after = proc_status_kib(d.pid, "VmRSS", "VmHWM")
    rows.append(row(SECTION, "full_rss", f"saturnd VmRSS with {n:,} tasks", loaded["VmRSS"] / MIB,
                    "MiB", limit=cfg.full_mib))
    rows.append(row(SECTION, "full_rss_after_list", f"  after a LIST of {n:,} tasks",
                    after["VmRSS"] / MIB, "MiB", limit=cfg.full_mib))
    rows.append(row(SECTION, "full_hwm", f"  VmHWM (peak) with {n:,} tasks", after["VmHWM"] / MIB,
                    "MiB", limit=cfg.full_mib))
    log(f"  {n} tasks: {loaded['VmRSS'] / MIB:.1f} MiB, peak {after['VmHWM'] / MIB:.1f} MiB")
    return rows

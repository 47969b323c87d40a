"""The benchmark suite: ``python -m bench [options]`` (or ``ci/bench.sh``).

Measures, side by side with baselines taken in the same run:

1. ``cassini -l`` (empty daemon, 1,000 tasks) vs ``python -c pass``;
2. in-daemon service time per request kind (p50/p99) vs a bare
   write+fsync+rename for requests that change data;
3. sequential CREATE throughput (cassini, protocol API);
4. 1,000 tasks due the same minute (manual clock; system clock with
   ``--system-clock``, which waits for a real minute boundary);
5. saturnd's RSS, idle and with 10,000 tasks.

Prints a table (medians, p99, ratios, targets) and writes it as JSON
(``--json``, default ``bench-results.json``).  ``--tiny`` is a seconds-long
smoke mode with small sizes (its figures say nothing about the targets).
Exit status: 0 when the run completed (whether or not every target is met;
``--strict`` makes a missed target exit 3), 1 when a step failed.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from . import grading, memory, rows as rows_mod, scheduling, service, startup, throughput, versus
from .common import BenchError

SECTIONS = ("startup", "service", "throughput", "scheduling", "memory", "versus", "grading")


class Config:
    """Sizes and targets (the goals each row is checked against); ``tiny`` shrinks sizes only."""

    def __init__(self, tiny=False):
        self.tiny = tiny
        # targets
        self.startup_ratio = 1.25         # cassini -l (empty) vs python -I -S -c pass
        self.startup_full_ratio = 1.5     # cassini -l (1000 tasks) vs the same floor
        self.small_read_ms = 1.0
        self.list_big_ms = 50.0
        self.change_ratio = 1.5
        self.linear_ratio = 1.5
        self.first_start_ms = 20.0
        self.last_start_ms = 1000.0
        self.idle_mib = 25.0
        self.full_mib = 60.0
        self.versus_ratio = 1.2            # C client: ours vs the reference server
        self.versus_list_ratios = (2.0, 4.0)   # cassini -l, 10,000 / 50,000 tasks vs the floor
        self.versus_startup_ms = 500.0     # start-up until LIST answers, 50,000 tasks
        self.grade_one_s = 20.0            # one correct submission graded in full, container
        self.grade_runs = 2                # grades each way (launch agent, exec per program)
        # sizes
        self.hyperfine = False
        self.settle = 0.5
        self.sched_margin = 5.0
        if tiny:
            self.cassini_tasks = 50
            self.startup_runs, self.startup_warmup = 3, 1
            self.list_sizes = (10, 50, 200)
            self.list_big = 200
            self.iters, self.iters_big, self.min_iters, self.list_budget = 20, 5, 3, 2000
            self.tx_small_runs, self.tx_runs = 100, 1000
            self.stdout_bytes = 64 << 10
            self.change_iters = 10
            self.creates = 10
            self.sched_tasks = 20
            self.mem_tasks = 200
            self.settle = 0.1
            self.versus_tasks, self.versus_calls = 10, 10
            self.versus_big, self.versus_runs, self.versus_starts = (100, 500), 3, 1
        else:
            self.cassini_tasks = 1000
            self.startup_runs, self.startup_warmup = 40, 5
            self.list_sizes = (10, 100, 1000, 10000)
            self.list_big = 10000
            self.iters, self.iters_big, self.min_iters, self.list_budget = 1000, 50, 30, 200000
            self.tx_small_runs, self.tx_runs = 1000, 10000
            self.stdout_bytes = 1 << 20
            self.change_iters = 200
            self.creates = 1000
            self.sched_tasks = 1000
            self.mem_tasks = 10000
            self.versus_tasks, self.versus_calls = 10, 200
            self.versus_big, self.versus_runs, self.versus_starts = (10000, 50000), 10, 3


def machine_info(workdir):
    info = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "executable_real": os.path.realpath(sys.executable),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": "",
        "mem_total_mib": None,
        "filesystem": "",
        "hyperfine": shutil.which("hyperfine") or "",
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem_total_mib"] = int(line.split()[1]) // 1024
    except OSError:
        pass
    try:   # file system of the working directory (longest matching mount point)
        best = ""
        real = os.path.realpath(workdir)
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mnt, fstype = parts[1], parts[2]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, info["filesystem"] = mnt, f"{fstype} on {mnt} ({parts[0]})"
    except OSError:
        pass
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "saturnd",
                                "cassini"], capture_output=True, text=True, timeout=10).stdout
        info["git"] = rev + (" (saturnd/ or cassini/ modified)" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        info["git"] = ""
    return info


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default="bench-results.json", metavar="FILE",
                   help="where to write the results (default bench-results.json)")
    p.add_argument("--tiny", action="store_true", help="seconds-long smoke run, small sizes")
    p.add_argument("--system-clock", action="store_true",
                   help="also measure scheduling on the system clock (waits for a real "
                        "minute boundary: up to ~70 s more)")
    p.add_argument("--only", action="append", choices=SECTIONS, metavar="SECTION",
                   help=f"run only these sections ({', '.join(SECTIONS)}); repeatable")
    p.add_argument("--dir", metavar="DIR",
                   help="working directory (daemons' pipes and data, the fsync baseline); "
                        "default: a new temporary directory, removed afterwards")
    p.add_argument("--hyperfine", action="store_true",
                   help="time whole commands with hyperfine (one command after the other) "
                        "instead of the default in-Python loop, which interleaves the commands "
                        "run by run so that a change of load on the machine hits them alike")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = Config(tiny=args.tiny)
    cfg.hyperfine = args.hyperfine
    sections = args.only or list(SECTIONS)

    def log(msg):
        if not args.quiet:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="saturnd-bench-", dir=args.dir)
    else:
        workdir = tempfile.mkdtemp(prefix="saturnd-bench-")
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.time()
    results, errors = [], []
    try:
        info = machine_info(workdir)
        for name in sections:
            steps = [(name, {"startup": startup.run, "service": service.run,
                             "throughput": throughput.run, "memory": memory.run,
                             "scheduling": scheduling.run_manual,
                             "versus": versus.run, "grading": grading.run}[name])]
            if name == "scheduling" and args.system_clock:
                steps.append(("scheduling (system clock)", scheduling.run_system))
            for label, fn in steps:
                log(f"bench: {label}")
                t = time.monotonic()
                try:
                    results += fn(cfg, workdir, log)
                except (BenchError, OSError, AssertionError, ValueError) as e:
                    msg = f"{label}: {type(e).__name__}: {e}"
                    errors.append(msg)
                    log(f"bench: FAILED {msg}")
                log(f"bench: {label} took {time.monotonic() - t:.1f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.time() - started
    missed = [r["key"] for r in results if r["met"] is False]
    doc = {
        "schema": 1,
        "command": command,
        "mode": "tiny" if args.tiny else "full",
        "system_clock": args.system_clock,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(elapsed, 2),
        "machine": info,
        "results": results,
        "targets_missed": missed,
        "errors": errors,
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    m = info
    print(f"saturnd benchmark ({doc['mode']}), {doc['started']}, {elapsed:.0f} s: "
          f"{m['cpu_model']} x{m['cpus']}, {m['mem_total_mib']} MiB, Python {m['python']}, "
          f"{m['filesystem']}, git {m.get('git', '')}")
    print(f"command: {command}")
    print()
    print(rows_mod.table(results, markdown=args.markdown))
    print()
    checked = [r for r in results if r["met"] is not None]
    print(f"targets met: {len(checked) - len(missed)}/{len(checked)}"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    for e in errors:
        print(f"error: {e}")
    print(f"results written to {args.json}")
    if errors:
        return 1
    if args.strict and missed:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: grade a class of N generated fixture submissions with `saturnd-grade batch`.

    .venv/bin/python bench/grade_class.py                 # 100 submissions, -j 2
    .venv/bin/python bench/grade_class.py -n 20 -j 4      # a smaller class
    .venv/bin/python bench/grade_class.py -n 4 -- --no-scheduling   # options for each grade

The class (under --dir, default a fresh folder in /var/tmp, removed afterwards unless
--keep) mixes, by submission number i (i % 10):

    0-5  our cassini + saturnd, built by make at the top level (wrappers around this checkout)
    6    the same in bin/
    7    make fails (exit 2)
    8    a client only (no saturnd)
    9    a faulty pair: a client that drops the last newline, a daemon crashing on REMOVE

Prints the wall time, the time per submission, the projection to 100 submissions, the
class table's build/grading counts and the mean scores, and checks the target
(100 submissions in <= 15 minutes).  Exit status 0 when the batch ran, 1 otherwise.
"""

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
FAULTY = os.path.join(ROOT, "tests", "grader", "fixtures", "faulty.py")
TARGET_100 = 15 * 60.0


def python_for_candidates():
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(cand):
            return cand
    return sys.executable


def machine_busy():
    """Seconds of CPU the whole machine has spent (/proc/stat: user, nice, system, irq,
    softirq), or None: what the kit's own figure misses (the engine's and the candidates'
    processes in their containers)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def wrapper_rule(prog, path, python, lib, body):
    """Make recipe lines writing an executable Python wrapper ``path``; ``lib``: the
    packages' folder relative to the wrapper's own (a script's ``sys.path[0]``): each
    submission carries its copy, since its container sees nothing else."""
    code = f"#!{python}\\nimport sys\\nsys.path.insert(0, sys.path[0] + \"/{lib}\")\\n" \
           f"{body}\\n"
    return [f"\tprintf '{code}' > {path}", f"\tchmod 755 {path}"]


def generate(cls, lib, n):
    python = python_for_candidates()
    ours = {p: f"from {p}.__main__ import main\\nsys.exit(main())" for p in ("cassini", "saturnd")}
    faulty = {"cassini": "import faulty\\nfaulty.client(\"no-newline\")",
              "saturnd": "import faulty\\nfaulty.daemon(\"crash-on-remove\")"}
    for i in range(n):
        kind = i % 10
        lines = ["all:"]
        if kind == 7:
            lines += ["\t@echo 'cassini.c:12: error: expected declaration'", "\texit 2"]
        else:
            progs = ("cassini",) if kind == 8 else ("cassini", "saturnd")
            prefix = "bin/" if kind == 6 else ""
            if prefix:
                lines.append("\tmkdir -p bin")
            for p in progs:
                lines += wrapper_rule(p, prefix + p, python, "../lib" if prefix else "lib",
                                      (faulty if kind == 9 else ours)[p])
        d = os.path.join(cls, f"student{i:03d}")
        os.makedirs(d)
        shutil.copytree(lib, os.path.join(d, "lib"))
        with open(os.path.join(d, "Makefile"), "w") as f:
            f.write("\n".join(lines) + "\n")


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description="Benchmark saturnd-grade batch on a generated class.")
    ap.add_argument("-n", type=int, default=100, help="submissions (default 100)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="batch -j (default 2)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dir", help="where the class, builds and results go (default: a new "
                                  "folder in /var/tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the folder (class table inside)")
    ap.add_argument("--trusted", dest="batch_options", action="append_const",
                    const="--trusted", default=[],
                    help="no containers: batch --trusted (everything on this machine)")
    opts = ap.parse_args(argv)
    from grader.programs import copy_packages
    base = opts.dir or tempfile.mkdtemp(prefix="grade-class-bench-", dir="/var/tmp")
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    cls, out, work = (os.path.join(base, x) for x in ("class", "out", "work"))
    for d in (cls, out, work):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o755)
    lib = copy_packages(os.path.join(base, "lib"), extra=[FAULTY])
    generate(cls, lib, opts.n)
    cmd = [sys.executable, "-m", "grader", "batch", cls, "-o", out, "-j", str(opts.jobs),
           "--repeat", str(opts.repeat), "--work-dir", work, "-q"] + opts.batch_options
    cmd += ["--"] + extra
    load0 = os.getloadavg()
    busy0 = machine_busy()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    wall = time.monotonic() - t0
    load1 = os.getloadavg()
    busy1 = machine_busy()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    try:
        with open(os.path.join(out, "class.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        rows = []
    starts = []
    for r in rows:
        try:
            with open(os.path.join(out, r["submission"], "result.json")) as f:
                s = json.load(f).get("container_start_s")
            if s is not None:
                starts.append(s)
        except (OSError, ValueError):
            pass
    per = wall / max(1, opts.n)
    proj = per * 100
    builds = {}
    grading = {}
    for r in rows:
        builds[r["build"]] = builds.get(r["build"], 0) + 1
        g = r["grading"] if not r["grading"].startswith("error") else "error"
        grading[g] = grading.get(g, 0) + 1
    means = {}
    for prof in ("strict", "course"):
        vals = [float(r[f"{prof}_percent"]) for r in rows if r[f"{prof}_percent"]]
        means[prof] = f"{sum(vals) / len(vals):.1f} %" if vals else "-"
    print(f"grade_class: {opts.n} submissions, -j {opts.jobs}, --repeat {opts.repeat}, "
          f"grade options {extra or 'none'}")
    print(f"  machine: {os.cpu_count()} CPUs, load average {load0[0]:.1f} before, "
          f"{load1[0]:.1f} after")
    print(f"  wall time        {wall:8.1f} s")
    print(f"  per submission   {per:8.2f} s")
    print(f"  projected to 100 {proj:8.1f} s ({proj / 60:.1f} min; target <= 15 min: "
          f"{'met' if proj <= TARGET_100 else 'MISSED'}"
          f"{'; the target is for a full grade, not a subset' if extra else ''})")
    floor = cpu / max(1, opts.n) * 100 / (os.cpu_count() or 1)
    print(f"  CPU (user+sys)   {cpu:8.1f} s, {cpu / max(1, opts.n):.2f} s per submission: on "
          f"{os.cpu_count()} idle CPUs, 100 would need at least {floor / 60:.1f} min")
    if busy0 is not None and busy1 is not None:
        m = busy1 - busy0
        print(f"  machine CPU      {m:8.1f} s, {m / max(1, opts.n):.2f} s per submission "
              "(every process: the kit, the engine, the candidates; others' too)")
    if starts:
        print(f"  container start  {sum(starts) / len(starts):8.2f} s mean per submission "
              f"(max {max(starts):.2f} s; removal not included)")
    else:
        print("  container start      none (--trusted: nothing isolated)")
    print(f"  builds           {dict(sorted(builds.items()))}")
    print(f"  grading          {dict(sorted(grading.items()))}")
    print(f"  class mean       strict {means['strict']}, course {means['course']}")
    print(f"  batch exit status {p.returncode}; class table {out}/class.md")
    if not opts.keep and not opts.dir:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if p.returncode in (0, 1) and len(rows) == opts.n else 1


if __name__ == "__main__":
    sys.exit(main())

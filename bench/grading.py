"""Section 7: one correct submission graded in full, in a container of its own.

``saturnd-grade --ours --isolation container`` (this project's pair as the candidate, the
whole grade: golden cases, scenarios, scheduling under accelerated time), timed as a whole
command with the machine's CPU (``/proc/stat``: the kit, the engine and the candidates'
processes alike), in turn with its baseline: the same grade with one engine ``exec`` per
program (``GRADER_AGENT=0``) instead of the container's launch agent.  Both grades must give
the same scores.  Needs the container engine and the candidate image (ci/build-grader-image.sh);
without them, or with ``--tiny``, the section says why on stderr and gives no row.  A whole class
is ``bench/grade_class.py`` (minutes).
"""

import json
import os
import statistics
import subprocess
import sys
import time

from .common import BenchError
from .rows import row

SECTION = "7 grading"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _machine_busy():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / os.sysconf("SC_CLK_TCK")


def _grade(workdir, agent, n):
    report = os.path.join(workdir, f"grade-{agent}-{n}.json")
    env = dict(os.environ, GRADER_AGENT="1" if agent else "0")   # its own work folder
    busy, t = _machine_busy(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "grader", "--ours", "--isolation", "container",
                           "--json", report], cwd=ROOT, env=env, capture_output=True,
                          timeout=600)
    wall, cpu = time.perf_counter() - t, _machine_busy() - busy
    if proc.returncode not in (0, 1):
        raise BenchError(f"saturnd-grade --ours (GRADER_AGENT={int(agent)}) exited "
                         f"{proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}")
    with open(report) as f:
        scores = json.load(f)["scores"]
    return wall, cpu, scores


def _skipped(log, why):
    log(f"  not measured: {why}")
    return []


def run(cfg, workdir, log):
    if cfg.tiny:
        return _skipped(log, "--tiny")
    try:
        from grader import container
        client = container.engine()
        client.images.get(container.IMAGE)
    except Exception as e:              # noqa: BLE001 -- no engine, no SDK, no image
        return _skipped(log, f"no container engine or image ({type(e).__name__}: {e})"[:200])
    base = os.path.join(workdir, "grading")
    os.makedirs(base)
    os.chmod(base, 0o755)
    runs = {True: [], False: []}
    scores = {}
    for i in range(cfg.grade_runs):
        for agent in (True, False):         # in turn: a change of load hits both alike
            wall, cpu, got = _grade(base, agent, i)
            runs[agent].append((wall, cpu))
            scores.setdefault(agent, got)
            if got != scores[agent] or got != scores.get(True, got):
                raise BenchError("the two ways of starting programs gave different scores")
            log(f"  grade (agent={agent}): {wall:.1f} s, machine CPU {cpu:.1f} s")
    wall = {a: statistics.median(w for w, _ in runs[a]) for a in runs}
    cpu = {a: statistics.median(c for _, c in runs[a]) for a in runs}
    return [
        row(SECTION, "grade_one", "one correct submission graded in full (container)",
            wall[True], "s", n=cfg.grade_runs, baseline="one engine exec per program",
            baseline_value=wall[False], limit=cfg.grade_one_s, on="value"),
        row(SECTION, "grade_one_cpu", "  the machine's CPU for it (kit, engine, candidates)",
            cpu[True], "s", n=cfg.grade_runs, baseline="one engine exec per program",
            baseline_value=cpu[False]),
    ]

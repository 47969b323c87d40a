"""A stand-in for `saturnd-grade ... --json FILE`, for the batch tests.

It writes a report in the grader's JSON format (version 1) from ``stub.json``, found next
to the candidate program or one folder up (the submission's top level):

    {"cases": [[CATEGORY, NAME, STRICT, COURSE], ...],
     "flaky": [[CATEGORY, NAME], ...],   # pass on odd runs, fail on even runs
     "starve": COUNTER_FILE,             # the first grade (counted in that file) fails
                                         #   every case as EAGAIN would, later ones pass
     "crash": true,                      # exit 3 without a report
     "hang": true}                       # never finish

Cases of the ``daemon-*`` categories are only reported when --saturnd is given (as the
real grader does).  The run counter lives in the (copied, built) submission folder.
"""

import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--cassini")
ap.add_argument("--saturnd")
ap.add_argument("--json", required=True)
ap.add_argument("rest", nargs="*")
opts, _ = ap.parse_known_args()

prog = opts.cassini or opts.saturnd
top = None
for d in (os.path.dirname(prog), os.path.dirname(os.path.dirname(prog))):
    if os.path.exists(os.path.join(d, "stub.json")):
        top = d
        break
spec = json.load(open(os.path.join(top, "stub.json")))
if spec.get("crash"):
    print("stub: crashing", file=sys.stderr)
    sys.exit(3)
if spec.get("hang"):
    open(os.path.join(top, "hanging"), "w").write(str(os.getpid()))
    while True:
        time.sleep(1)

counter = os.path.join(top, "stub-runs")
n = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
open(counter, "w").write(str(n))
flaky = {tuple(x) for x in spec.get("flaky", [])}
starved = False
if spec.get("starve"):
    grades = int(open(spec["starve"]).read()) + 1 if os.path.exists(spec["starve"]) else 1
    open(spec["starve"], "w").write(str(grades))
    if grades == 1:
        starved = True
        print(f"grader: cannot run {prog}: Resource temporarily unavailable")
cases = []
for cat, name, strict, course in spec["cases"]:
    if cat.startswith("daemon") and not opts.saturnd:
        continue
    if cat == "client" and not opts.cassini:
        continue
    if starved:
        strict = course = "fail"
    if (cat, name) in flaky:
        strict = course = "pass" if n % 2 else "fail"
    cases.append({"category": cat, "name": name, "tags": ["reference"],
                  "verdicts": {"strict": strict, "course": course}, "message": ""})
scores = {"strict": {}, "course": {}}
for c in cases:
    for p in ("strict", "course"):
        if c["verdicts"][p] == "skip":
            continue
        s = scores[p].setdefault(c["category"], {"passed": 0, "total": 0})
        s["total"] += 1
        s["passed"] += c["verdicts"][p] == "pass"
report = {"version": 1, "headline": "strict",
          "candidate": {"cassini": opts.cassini, "saturnd": opts.saturnd},
          "build": {"status": None}, "cases": cases, "scores": scores,
          "exit_status": 0 if all(c["verdicts"]["strict"] != "fail" for c in cases) else 1,
          "argv": sys.argv[1:]}
with open(opts.json, "w") as f:
    json.dump(report, f)
print("stub: graded", len(cases), "cases")
sys.exit(report["exit_status"])

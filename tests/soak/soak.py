"""Long reliability runs (not part of the suite): crash, fuzz, scale, with figures.

    .venv/bin/python tests/soak/soak.py                    # everything, full size
    .venv/bin/python tests/soak/soak.py --only crash,fuzz --kills 50 --fuzz 2000
    .venv/bin/python tests/soak/soak.py --write-results    # also rewrite tests/soak/RESULTS.md

Phases (each on a fresh manual-clock daemon in a temporary directory; peak RSS is the
daemon's VmHWM at the end of the phase):

- crash: ``--kills`` rounds of a request stream (create / set-cmd / switch-time / remove /
  exec / list / times) with ``kill -9`` at a random instant, restart, invariant checks
  (every OK is there, the unanswered change all-or-nothing, ids never reused, history a
  growing prefix, whole records on disk);
- fuzz: ``--fuzz`` mutated / random requests (bit flips, truncations, junk, blown-up
  lengths, NULs, random opcodes) each checked (empty reply for a malformed one, a
  well-formed reply otherwise), a writer SIGKILLed mid-request every 100, a well-formed
  round trip every 500;
- tasks: ``--tasks`` tasks created, LIST checked entry by entry;
- same-minute: ``--same-minute`` tasks due in one minute, all run and recorded;
- big-output: one run writing ``--big-output`` bytes of random data to stdout, the STDOUT
  reply compared byte for byte with a copy the run wrote with tee;
- killed-clients: ``--killed-rounds`` rounds of ``--killed-clients`` parallel cassini
  clients x 12 calls (creates with a unique argument, listings), 25 % SIGKILLed 0-80 ms
  after they start: no wrong answer with exit 0, every acknowledged create holds its own
  command at the end (the suite runs 2 rounds of 30);
- lock-churn: ``--churn-rounds`` rounds of ``--churn-clients`` parallel cassini clients x
  ``--churn-calls`` calls (creates with a unique argument, listings) while ``cassini-lock``
  is removed or replaced (a plain file, a dangling symlink, a FIFO) every 3 ms: no wrong
  answer with exit 0, no hang, every acknowledged create holds its own command;
- history: one task with ``--runs`` recorded runs (all but the last 1,000 written in the
  store's format before a restart, the last 1,000 real runs), TIMES_EXITCODES checked.

Exit status 0 when every phase passed.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "reliability"))

from killed_clients import LockChurn, stress  # noqa: E402
from saturnd import protocol as P  # noqa: E402
from testkit.daemon import LocalDaemon as Daemon  # noqa: E402
from testkit.pipes import raw_exchange  # noqa: E402
from testkit.procs import peak_rss_kib  # noqa: E402
from testkit.waiting import wait_for  # noqa: E402
from testkit.workloads import (check_fuzz_reply, crash_rounds, dying_writer,  # noqa: E402
                               fuzz_case, sanity)

RESULTS = HERE / "RESULTS.md"


def phase_crash(root, args, rng):
    d = Daemon(root / "crash").start()
    t = time.monotonic()
    progress = max(1, args.kills // 10)
    w = crash_rounds(d, args.kills, rng, log=lambda i, w: (i + 1) % progress == 0 and
                     print(f"  crash: {i + 1} kills, {w.ops} requests", flush=True))
    rss = peak_rss_kib(d.pid)
    runs = sum(len(h) // P.RUN_RECORD_SIZE for h in w.history.values())
    d.stop()
    return {"kills survived": args.kills, "requests in the stream": w.ops,
            "tasks at the end": len(w.tasks), "runs recorded (history checked)": runs,
            "peak RSS (KiB, last daemon)": rss, "seconds": round(time.monotonic() - t, 1)}


def phase_fuzz(root, args, rng):
    d = Daemon(root / "fuzz").start()
    t = time.monotonic()
    ids = [sanity(d)]
    kinds = {"empty": 0, "reply": 0}
    dead = 0
    full = P.encode_request(P.Request(P.CREATE, timing=P.Timing(1, 1, 1),
                                      argv=[b"echo", b"x" * 300]))
    for i in range(args.fuzz):
        data, what = fuzz_case(rng, ids)
        reply = raw_exchange(d.pipes, data)
        check_fuzz_reply(data, what, reply)
        kinds[what[0]] += 1
        if what[1] == P.CREATE:
            ids.append(P.decode_reply(reply, P.CREATE).value)
        if i % 100 == 99:
            seen = d.log().count("end of file in the middle")
            assert dying_writer(d.pipes, full, rng.randrange(1, len(full)))
            wait_for(lambda: d.log().count("end of file in the middle") > seen)
            dead += 1
        if i % 500 == 499:
            assert d.alive()
            sanity(d)
        if i % max(1, args.fuzz // 10) == 0 and i:
            print(f"  fuzz: {i} requests", flush=True)
    sanity(d)
    assert d.alive()
    rss = peak_rss_kib(d.pid)
    d.stop()
    return {"requests fuzzed": args.fuzz, "malformed (empty reply checked)": kinds["empty"],
            "well-formed after mutation (reply checked)": kinds["reply"],
            "writers killed mid-request": dead, "daemon deaths": 0,
            "peak RSS (KiB)": rss, "seconds": round(time.monotonic() - t, 1)}


def phase_tasks(root, args, rng):
    d = Daemon(root / "tasks").start()
    t = time.monotonic()
    want = []
    for i in range(args.tasks):
        argv = [b"echo", f"task {i}".encode(), b"\xff" * (i % 7)]
        timing = P.Timing(rng.randrange(1 << 60), rng.randrange(1 << 24), rng.randrange(1 << 7))
        r = d.call(P.Request(P.CREATE, timing=timing, argv=argv), timeout=30)
        want.append((r.value, timing, tuple(argv)))
    created = time.monotonic() - t
    t1 = time.monotonic()
    got = d.call(P.Request(P.LIST), timeout=60).tasks
    list_s = time.monotonic() - t1
    assert [tuple(x) for x in got] == want
    t2 = time.monotonic()
    res = d.cassini("-l", timeout=60, check=False)
    cassini_s = time.monotonic() - t2
    assert res.returncode == 0 and res.stdout.count(b"\n") == args.tasks
    rss = peak_rss_kib(d.pid)
    d.stop()
    t3 = time.monotonic()
    d.start()
    restart_s = time.monotonic() - t3
    assert [tuple(x) for x in d.call(P.Request(P.LIST), timeout=60).tasks] == want
    d.stop()
    return {"tasks": args.tasks, "create all (s)": round(created, 1),
            "LIST reply (s)": round(list_s, 2), "cassini -l (s)": round(cassini_s, 2),
            "restart with all tasks (s)": round(restart_s, 2), "peak RSS (KiB)": rss}


def phase_same_minute(root, args, rng):
    d = Daemon(root / "same").start()
    n = args.same_minute
    for i in range(n):
        d.call(P.Request(P.CREATE, timing=P.Timing(1 << 1, P.HOURS_MASK, P.DAYS_MASK),
                         argv=[b"sh", b"-c", f"echo {i}".encode()]), timeout=30)
    t = time.monotonic()
    reply = d.clock_line("advance 1 300", timeout=400)        # 00:01: every task is due
    elapsed = time.monotonic() - t
    assert reply.startswith("ok "), reply
    minute = int(reply.split()[1])
    for i in range(n):
        assert d.call(P.Request(P.TIMES_EXITCODES, taskid=i)).runs == [(minute, 0)]
        assert d.call(P.Request(P.STDOUT, taskid=i)).output == f"{i}\n".encode()
    rss = peak_rss_kib(d.pid)
    fds = len(os.listdir(f"/proc/{d.pid}/fd"))
    d.stop()
    return {"tasks due in one minute": n, "all started, ended, recorded (s)": round(elapsed, 1),
            "daemon fds afterwards": fds, "peak RSS (KiB)": rss}


def phase_big_output(root, args, rng):
    d = Daemon(root / "big").start()
    n = args.big_output
    copy = root / "big" / "copy"
    d.call(P.Request(P.CREATE, timing=P.EVERY_MINUTE,
                     argv=[b"sh", b"-c", f"head -c {n} /dev/urandom | tee {copy}".encode()]))
    t = time.monotonic()
    assert d.clock_line("advance 1 120", timeout=200).startswith("ok ")
    run_s = time.monotonic() - t
    t = time.monotonic()
    out = d.call(P.Request(P.STDOUT, taskid=0), timeout=60).output
    reply_s = time.monotonic() - t
    assert len(out) == n and out == copy.read_bytes()
    res = d.cassini("-o", "0", timeout=60, check=False)
    assert res.returncode == 0 and hashlib.sha256(res.stdout).digest() == hashlib.sha256(out).digest()
    rss = peak_rss_kib(d.pid)
    d.stop()
    return {"stdout bytes": n, "run + record (s)": round(run_s, 2),
            "STDOUT reply (s)": round(reply_s, 2), "peak RSS (KiB)": rss}


def phase_history(root, args, rng):
    d = Daemon(root / "hist").start()
    total = args.runs
    real = min(1000, total)
    d.call(P.Request(P.CREATE, timing=P.EVERY_MINUTE, argv=[b"true"]))
    d.stop()
    written = total - real
    base = d.start_time - 60 * (written + 10)
    records = b"".join(P.encode_run(base + 60 * i, i % 256) for i in range(written))
    (d.data / "tasks" / "0" / "exit").write_bytes(records)
    d.start()
    t = time.monotonic()
    reply = d.clock_line(f"advance {real} 600", timeout=900)
    real_s = time.monotonic() - t
    assert reply.startswith("ok "), reply
    t = time.monotonic()
    runs = d.call(P.Request(P.TIMES_EXITCODES, taskid=0), timeout=60).runs
    tx_s = time.monotonic() - t
    assert len(runs) == total
    assert runs[:written] == P.decode_runs(records)
    assert runs[written:] == [(d.start_time + 60 * k, 0) for k in range(1, real + 1)]
    res = d.cassini("-x", "0", timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.count(b"\n") == total
    rss = peak_rss_kib(d.pid)
    d.stop()
    return {"recorded runs": total, "of which real runs": real,
            "real runs (s)": round(real_s, 1), "TIMES_EXITCODES reply (s)": round(tx_s, 2),
            "peak RSS (KiB)": rss}


def phase_killed_clients(root, args, rng):
    d = Daemon(root / "killed").start()
    t = time.monotonic()
    assert d.cassini("-c", "--", "echo", "seed").stdout == b"0\n"
    totals = {}
    for r in range(args.killed_rounds):
        figures = stress(d, clients=args.killed_clients, calls=12, kill_ratio=0.25,
                         seed=rng.randrange(1 << 30), deadline_s=600)
        for k, v in figures.items():
            totals[k] = totals.get(k, 0) + v
        print(f"  killed-clients: round {r + 1}: {figures}", flush=True)
    rss = peak_rss_kib(d.pid)
    d.stop()
    return {"rounds x clients x calls": f"{args.killed_rounds} x {args.killed_clients} x 12",
            "cassini processes": totals["calls"], "SIGKILLed": totals["killed"],
            "exit 0 (answer checked)": totals["ok"], "exit 1 (one line)": totals["failed"],
            "acknowledged creates (own command checked)": totals["acknowledged creates"],
            "listings checked": totals["listings checked"], "wrong answers": 0,
            "peak RSS (KiB)": rss, "seconds": round(time.monotonic() - t, 1)}


def phase_lock_churn(root, args, rng):
    d = Daemon(root / "churn").start()
    t = time.monotonic()
    assert d.cassini("-c", "--", "echo", "seed").stdout == b"0\n"
    totals = {}
    churned = {}
    for r in range(args.churn_rounds):
        with LockChurn(d, period=0.003, seed=rng.randrange(1 << 30)) as churn:
            figures = stress(d, clients=args.churn_clients, calls=args.churn_calls,
                             kill_ratio=0.0, seed=rng.randrange(1 << 30), deadline_s=600)
        for k, v in figures.items():
            totals[k] = totals.get(k, 0) + v
        for k, v in churn.figures.items():
            churned[k] = churned.get(k, 0) + v
        print(f"  lock-churn: round {r + 1}: {figures} {churn.figures}", flush=True)
    rss = peak_rss_kib(d.pid)
    log = d.log()
    d.stop()
    return {"rounds x clients x calls":
            f"{args.churn_rounds} x {args.churn_clients} x {args.churn_calls}",
            "lock file removed / replaced by a file / a symlink / a FIFO":
            " / ".join(str(churned[k]) for k in LockChurn.KINDS),
            "lock file made again by the daemon (log lines)": log.count("cassini-lock"),
            "cassini processes": totals["calls"],
            "exit 0 (answer checked)": totals["ok"], "exit 1 (one line)": totals["failed"],
            "acknowledged creates (own command checked)": totals["acknowledged creates"],
            "listings checked": totals["listings checked"], "wrong answers": 0,
            "peak RSS (KiB)": rss, "seconds": round(time.monotonic() - t, 1)}


PHASES = {"crash": phase_crash, "fuzz": phase_fuzz, "tasks": phase_tasks,
          "same-minute": phase_same_minute, "big-output": phase_big_output,
          "history": phase_history, "killed-clients": phase_killed_clients,
          "lock-churn": phase_lock_churn}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(PHASES), help="comma-separated phases")
    p.add_argument("--kills", type=int, default=200)
    p.add_argument("--fuzz", type=int, default=10000)
    p.add_argument("--tasks", type=int, default=10000)
    p.add_argument("--same-minute", type=int, default=1000)
    p.add_argument("--big-output", type=int, default=16 << 20)
    p.add_argument("--runs", type=int, default=100000)
    p.add_argument("--killed-rounds", type=int, default=10)
    p.add_argument("--killed-clients", type=int, default=40)
    p.add_argument("--churn-rounds", type=int, default=4)
    p.add_argument("--churn-clients", type=int, default=6)
    p.add_argument("--churn-calls", type=int, default=40)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--write-results", action="store_true", help=f"rewrite {RESULTS}")
    args = p.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="saturnd-soak-"))
    os.chmod(root, 0o700)
    results = {}
    failed = []
    start = time.monotonic()
    for name in args.only.split(","):
        print(f"== {name}", flush=True)
        t = time.monotonic()
        try:
            results[name] = PHASES[name](root, args, rng)
            results[name]["phase seconds"] = round(time.monotonic() - t, 1)
            print(f"   {results[name]}", flush=True)
        except Exception as e:     # report and go on with the other phases
            failed.append(name)
            results[name] = {"FAILED": f"{type(e).__name__}: {str(e)[:300]}"}
            print(f"   FAILED: {results[name]['FAILED']}", flush=True)
    total = round(time.monotonic() - start, 1)
    shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.write_results:
        write_results(results, args, total, failed)
    print(f"total {total} s; {'FAILED: ' + ','.join(failed) if failed else 'all phases passed'}")
    return 1 if failed else 0


def write_results(results, args, total, failed):
    import platform
    lines = ["# Soak results (tests/soak/soak.py)", "",
             f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
             f"{platform.release()}; total {total} s; "
             f"{'FAILED: ' + ', '.join(failed) if failed else 'every phase passed'}.", "",
             "Command:", "", "```",
             ".venv/bin/python tests/soak/soak.py --write-results" +
             "".join(f" --{k.replace('_', '-')} {v}" for k, v in
                     (("kills", args.kills), ("fuzz", args.fuzz), ("tasks", args.tasks),
                      ("same_minute", args.same_minute), ("big_output", args.big_output),
                      ("runs", args.runs), ("killed_rounds", args.killed_rounds),
                      ("killed_clients", args.killed_clients),
                      ("churn_rounds", args.churn_rounds), ("churn_clients", args.churn_clients),
                      ("churn_calls", args.churn_calls), ("seed", args.seed))),
             "```", ""]
    for name, figures in results.items():
        lines += [f"## {name}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in figures.items()]
        lines.append("")
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

"""Killed clients under concurrency (issue: a reply reaches only the client that sent
the request), shared by tests/reliability/test_own_reply.py and the soak's phase.

:func:`stress` runs parallel ``cassini`` processes against a daemon, SIGKILLs some of
them shortly after they start, and checks every answer given with exit 0.
"""

import random
import signal
import subprocess
import threading
import time

from testkit.daemon import CASSINI


def spawn(d, *args, env=None):
    return subprocess.Popen([CASSINI, "-p", str(d.pipes), *args], env=dict(d.env, **(env or {})),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def stress(d, clients, calls, kill_ratio, seed, deadline_s=120):
    """``clients`` threads each run ``calls`` cassini processes in turn (creates with a
    unique argument, and listings); ``kill_ratio`` of them are SIGKILLed 0-80 ms after
    they start. Returns the figures; raises AssertionError on any wrong answer with
    exit 0 (a create printing an id whose task is not its own, a listing missing a task
    acknowledged before it started or holding a task no create asked for, a traceback,
    a multi-line error)."""
    rng = random.Random(seed)
    plans = [[(rng.random() < 0.7, rng.random() < kill_ratio, rng.uniform(0, 0.08))
              for _ in range(calls)] for _ in range(clients)]
    lock = threading.Lock()
    acked = {}             # id -> unique word of the create that printed it
    acked_at = []          # (monotonic time the ack was seen, id)
    listings = []          # (start time, stdout)
    wrong = []
    figures = {"calls": 0, "killed": 0, "ok": 0, "failed": 0}
    end = time.monotonic() + deadline_s

    def client(c):
        for k, (create, kill, delay) in enumerate(plans[c]):
            if time.monotonic() > end:
                wrong.append("stress deadline passed")
                return
            word = f"s{seed}c{c}k{k}"
            args = ("-c", "--", "echo", word) if create else ("-l",)
            started = time.monotonic()
            p = spawn(d, *args)
            if kill:
                try:
                    p.wait(delay)
                except subprocess.TimeoutExpired:
                    p.kill()
            try:
                out, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                with lock:
                    wrong.append(f"{word}: no exit within 60 s")
                continue
            with lock:
                figures["calls"] += 1
                if p.returncode == -signal.SIGKILL:
                    figures["killed"] += 1
                    continue
                if p.returncode != 0:
                    figures["failed"] += 1
                    text = err.decode(errors="replace")
                    if p.returncode != 1 or text.count("\n") != 1 or "Traceback" in text:
                        wrong.append(f"{word}: exit {p.returncode}, {text!r}")
                    continue
                figures["ok"] += 1
                if err:
                    wrong.append(f"{word}: exit 0 with stderr {err!r}")
                if create:
                    try:
                        tid = int(out)
                    except ValueError:
                        wrong.append(f"{word}: create printed {out!r}")
                        continue
                    if tid in acked:
                        wrong.append(f"{word}: id {tid} already printed for {acked[tid]}")
                    acked[tid] = word
                    acked_at.append((time.monotonic(), tid))
                else:
                    listings.append((started, out))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(deadline_s + 120)
    assert not any(t.is_alive() for t in threads), "stress clients still running"

    final = d.cassini("-l")
    assert final.returncode == 0, final
    state = parse_listing(final.stdout, wrong, "final listing")
    for tid, word in acked.items():
        if state.get(tid) != word:
            wrong.append(f"acknowledged create {tid} ({word}) holds {state.get(tid)!r}")
    for started, out in listings:
        got = parse_listing(out, wrong, "a listing")
        for tid, word in got.items():
            if state.get(tid) != word:
                wrong.append(f"a listing shows {tid}: {word}, the store {state.get(tid)!r}")
        for seen, tid in acked_at:
            if seen < started and tid not in got:
                wrong.append(f"a listing started after task {tid} was acknowledged lacks it")
    assert not wrong, wrong[:20]
    figures["acknowledged creates"] = len(acked)
    figures["listings checked"] = len(listings)
    return figures


def parse_listing(out, wrong, what):
    """``id: * * * echo WORD`` lines -> {id: WORD}; malformed lines go to ``wrong``."""
    tasks = {}
    lines = out.split(b"\n")
    if lines[-1] != b"":
        wrong.append(f"{what}: no final newline: {out[-80:]!r}")
    for line in lines[:-1]:
        head, _, rest = line.partition(b": * * * echo ")
        if not head.isdigit() or not rest:
            if line != b"0: * * * echo seed":
                wrong.append(f"{what}: unexpected line {line!r}")
            continue
        tasks[int(head)] = rest.decode()
    return tasks

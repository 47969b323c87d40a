"""Killed clients under concurrency (what must hold: a reply reaches only the client that
sent the request), shared by tests/reliability/test_own_reply.py and the soak's phase.

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


class LockChurn:
    """A /tmp cleaner gone wild on ``cassini-lock`` while clients run: every ``period`` s
    the lock file is removed, or replaced (``rename``) by a plain file of ours, a dangling
    symlink or a FIFO, in turn. A context manager; ``figures`` counts what it did."""

    KINDS = ("remove", "file", "symlink", "fifo")

    def __init__(self, d, period=0.003, seed=0):
        import os
        self.path = os.path.join(str(d.pipes), "cassini-lock")
        self.period = period
        self.rng = random.Random(seed)
        self.figures = {k: 0 for k in self.KINDS}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import os
        tmp = self.path + ".churn"
        while not self.done.wait(self.period):
            kind = self.rng.choice(self.KINDS)
            try:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                if kind == "remove":
                    os.unlink(self.path)
                elif kind == "file":
                    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600))
                    os.rename(tmp, self.path)
                elif kind == "symlink":
                    os.symlink("/nonexistent/cassini-lock", tmp)
                    os.rename(tmp, self.path)
                else:
                    os.mkfifo(tmp, 0o600)
                    os.rename(tmp, self.path)
            except OSError:
                continue
            self.figures[kind] += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(10)

"""Daemon conformance: scheduling -- one daemon, five tasks, four minutes.

The scheduling scenario needs minutes to pass.  Clocks (:class:`Clock`):

- ``faketime``: the daemon runs under libfaketime (``LD_PRELOAD``), starting at a
  fixed fake time and running ``speed`` times faster than real time;
- ``manual``: the daemon implements our manual clock control channel (ours does:
  ``--clock manual``); minutes are crossed on request, nothing is waited for;
- ``real``: real minutes, only when asked, within a stated budget.
"""

import glob
import os
import time

from saturnd import protocol as P

from .candidate import Daemon, Failed, utc
from .golden import show
from .report import Outcome
from .scenarios import Ctx, taskid_request

FAKE_START = 1767603480     # 2026-01-05 08:58:00 UTC, a Monday


def find_libfaketime(explicit=None):
    explicit = explicit or os.environ.get("GRADER_LIBFAKETIME")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                    "/usr/local/lib/faketime/libfaketime.so.1",
                    "/usr/lib64/faketime/libfaketime.so.1"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


class Clock:
    def __init__(self, kind, daemon, config):
        self.kind, self.daemon, self.config = kind, daemon, config

    def now(self):
        if self.kind == "faketime":
            return self.daemon.start_time + (time.time() - self.daemon.sb.launched) * \
                self.config.speed
        if self.kind == "manual":
            return self._ctl("now")
        return time.time()

    def _ctl(self, line):
        from saturnd.clockctl import ClockError, request
        try:
            reply = request(self.daemon.pipes, line, timeout=30)
        except ClockError as e:
            raise Failed(f"manual clock: {e}") from None
        words = reply.split()
        if not words or words[0] != "ok":
            raise Failed(f"manual clock: {line!r} answered {reply!r}")
        return int(words[1])

    def wait_until(self, epoch):
        if self.kind == "manual":
            now = self.now()
            n = epoch // 60 - now // 60
            if n > 0:
                self._ctl(f"advance {n} 20")
            return
        speed = self.config.speed if self.kind == "faketime" else 1.0
        while True:
            left = (epoch - self.now()) / speed
            if left <= 0:
                return
            if not self.daemon.sb.alive():
                raise Failed("the daemon died while waiting for the clock", self.daemon.diagnosis())
            time.sleep(min(left, 0.5))


SCHEDULE_CHECKS = ["every-minute", "selected-minutes-only", "other-days-never",
                   "exit-codes", "outputs", "runs-within-their-minute"]


class _Plan:
    """The five tasks' ids and the four minutes they are judged on (``base`` to ``end``)."""

    def __init__(self, ids, base, sel):
        self.ids, self.base, self.sel = ids, base, sel
        self.end = base + 180
        self.window = [base + 60 * i for i in range(4)]
        self.span = f"{utc(base)} to {utc(self.end)} UTC"


def _create_tasks(ctx, clock, kind):
    """Every minute (exit 0, exit 3 with outputs, killed by a signal), tomorrow's weekday
    only, two selected minutes of the window."""
    ids = [ctx.create("echo", "tick"),
           ctx.create("--", "sh", "-c", "printf out; printf err >&2; exit 3"),
           ctx.create("--", "sh", "-c", "kill -9 $$")]
    now = clock.now()
    wday = (time.gmtime(now).tm_wday + 1) % 7          # tm_wday: Monday = 0
    ids.append(ctx.create("-d", str((wday + 1) % 7), "true"))
    margin = 30 if kind != "real" else 20
    base = (int(clock.now()) + margin) // 60 * 60 + 60
    sel = sorted({time.gmtime(base).tm_min, time.gmtime(base + 120).tm_min})
    ids.append(ctx.create("-m", ",".join(map(str, sel)), "true"))
    if len(set(ids)) != 5:
        raise Failed(f"five creates returned ids {ids}: not distinct")
    created = clock.now()
    if created >= base - 1:
        raise Failed(f"creating the tasks took too long (clock at {utc(created)}, "
                     f"first minute {utc(base)}): try a lower --speed")
    return _Plan(ids, base, sel)


def _recorded_runs(ctx, plan):
    """{k: [(minute, code)] within the window, ("all", k): every (time, code)} of task k;
    asked again for up to 15 s until the every-minute task has its four runs."""
    runs = {}
    deadline = time.monotonic() + 15
    while True:
        for k, t in enumerate(plan.ids):
            reply = ctx.raw(taskid_request(P.TIMES_EXITCODES, t), P.TIMES_EXITCODES,
                            f"TIMES_EXITCODES of task {t}")
            if reply.errcode is not None:
                raise Failed(f"TIMES_EXITCODES of task {t}: error reply")
            runs[k] = [(tm // 60 * 60, c) for tm, c in reply.runs
                       if plan.base <= tm // 60 * 60 <= plan.end]
            runs[("all", k)] = reply.runs
        if len(runs[0]) >= 4 or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def _setup_failed(daemon, e, t0):
    cat = "daemon-scheduling"
    detail = e.detail or e.message
    if "daemon processes:" not in detail:
        detail += "\n" + daemon.diagnosis()
    first = SCHEDULE_CHECKS[0]
    return [Outcome(cat, first, "fail", e.message + daemon.headline(), detail,
                    time.monotonic() - t0)] + \
        [Outcome(cat, c, "fail", f"not examined: the scenario's setup failed "
                 f"(see {first})", "", 0.0) for c in SCHEDULE_CHECKS[1:]]


def _fmt(rs):
    return ", ".join(f"{utc(t)[11:]} -> {c}" for t, c in rs) or "none"


def _output_problems(ctx, ids):
    problems = []
    for args, want_out in ((["-o", ids[0]], b"tick\n"), (["-o", ids[1]], b"out"),
                           (["-e", ids[1]], b"err"), (["-e", ids[0]], b"")):
        r = ctx.cassini(args[0], str(args[1]))
        if r.code != 0 or r.out != want_out:
            problems.append(f"{r.show()}: expected {show(want_out)} (exit 0), got "
                            f"{show(r.out)} (exit {r.code})")
    return problems


def _judge(ctx, daemon, plan, runs, t0):
    """One outcome per check of :data:`SCHEDULE_CHECKS`."""
    outcomes = []
    base, window, span = plan.base, plan.window, plan.span

    def check(name, cond, message, detail=""):
        status = "pass" if cond else "fail"
        outcomes.append(Outcome("daemon-scheduling", name, status, "" if cond else message,
                                "" if cond else f"{message}\n{detail}\n{daemon.diagnosis()}",
                                time.monotonic() - t0))
    check("every-minute", [t for t, _ in runs[0]] == window and
          all(c == 0 for _, c in runs[0]),
          f"task `* * * echo tick`: expected one run with exit 0 at each minute of {span}",
          f"got (in that window): {_fmt(runs[0])}")
    want = [(base, 0), (base + 120, 0)]
    check("selected-minutes-only", runs[4] == want and
          all(t // 60 * 60 in (base, base + 120) for t, _ in runs[("all", 4)]),
          f"task `-m {','.join(map(str, plan.sel))} true`: expected runs at "
          f"{utc(base)[11:]} and {utc(base + 120)[11:]} only",
          f"got: {_fmt(runs[('all', 4)])}")
    check("other-days-never", runs[("all", 3)] == [],
          "a task for tomorrow's weekday ran today", f"got: {_fmt(runs[('all', 3)])}")
    ok_codes = [t for t, _ in runs[1]] == window and all(c == 3 for _, c in runs[1]) and \
        [t for t, _ in runs[2]] == window and all(c == 0xFFFF for _, c in runs[2])
    check("exit-codes", ok_codes,
          "expected exit code 3 for `exit 3` and 65535 for a run killed by a signal, "
          f"once a minute in {span}",
          f"`exit 3` task: {_fmt(runs[1])}\n`kill -9 $$` task: {_fmt(runs[2])}")
    problems = _output_problems(ctx, plan.ids)
    check("outputs", not problems, problems[0] if problems else "", "\n".join(problems))
    stray = [(tm, c) for k in range(5) for tm, c in runs[("all", k)]
             if not base - 60 <= tm < plan.end + 60]
    check("runs-within-their-minute", not stray,
          "a run's recorded TIME must fall within the minute it was scheduled for",
          f"runs recorded outside the window {span}: {_fmt(stray[:6])}")
    return outcomes


def _punctuality(runs):
    """How late in their minute the runs were recorded (reported, never failed)."""
    every = [tm for k in range(5) for tm, _ in runs[("all", k)]]
    if not every:
        return None
    late = [tm % 60 for tm in every]
    spread = f"{max(late)}" if min(late) == max(late) else f"{min(late)}-{max(late)}"
    return (f"punctuality: {len(every)} runs recorded "
            f"{spread} s after their minute "
            f"(mean {sum(late) / len(late):.1f} s; any second of the minute "
            f"passes)" if max(late) else
            f"punctuality: {len(every)} runs, all recorded at second 0")


def scheduling(config, figures=None):
    """One daemon, five tasks, four minutes; one outcome per check.

    Runs are judged by the minute they are recorded in: any second of the scheduled minute
    is right (the protocol does not require second 0); how late in its minute each run was
    recorded is measured and reported (``figures``), never failed.  When the setup fails
    (the daemon does not start, a create fails), the first check reports the cause and the
    others say they were not examined."""
    kind = config.clock
    t0 = time.monotonic()
    if kind == "real" and config.real_minutes < 6:
        return [Outcome("daemon-scheduling", c, "skip", f"real-time scheduling needs a budget "
                        f"of 6 minutes (--real-minutes {config.real_minutes:g})")
                for c in SCHEDULE_CHECKS]
    start = FAKE_START if kind in ("faketime", "manual") else None
    daemon = Daemon(config.options, config, "scheduling", clock=kind, start_time=start)
    try:
        try:
            daemon.start()
            ctx = Ctx(daemon)
            clock = Clock(kind, daemon, config)
            plan = _create_tasks(ctx, clock, kind)
            clock.wait_until(plan.end + 20)
            runs = _recorded_runs(ctx, plan)
        except Failed as e:
            return _setup_failed(daemon, e, t0)
        outcomes = _judge(ctx, daemon, plan, runs, t0)
        late = _punctuality(runs)
        if late and figures is not None:
            figures.append(late)
        return outcomes
    finally:
        daemon.stop()


def describe_clock(config):
    if config.clock == "faketime":
        return (f"scheduling under libfaketime ({config.libfaketime}), fake time starting "
                f"{utc(FAKE_START)} UTC, x{config.speed:g} (one minute every "
                f"{60 / config.speed:.2g} s)")
    if config.clock == "manual":
        return (f"scheduling with the daemon's manual clock (control channel), "
                f"from {utc(FAKE_START)} UTC")
    return f"scheduling in real time (real minutes, budget {config.real_minutes:g} min)"


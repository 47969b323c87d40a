"""Grading this project's own NEXT_RUNS request (``cassini -n``), ``--extensions`` only.

NEXT_RUNS (opcode 0x4e58, ``NX``) is not part of the course's protocol nor of the seed
project's extensions: only a daemon that implements this project's own requests can
pass.  Two entry points, built like the scenarios of :mod:`grader.scenarios`:

- :data:`PROTOCOL`: ``[(name, func)]``, scenarios for :func:`grader.scenarios.run_scenario`
  (category ``daemon-extension``): the reply's shape and bytes, checked against the
  timings alone (the daemon runs in UTC), whatever the daemon's clock says;
- :func:`next_runs_scheduling` ``(config) -> [Outcome]``: the announced times are the
  runs the daemon then records (same clocks as :func:`grader.scheduling.scheduling`:
  libfaketime, the manual clock, or real minutes within the budget).
"""

import time

from saturnd import protocol as P

from .candidate import Daemon, Failed, utc
from .report import Outcome
from .scenarios import NEVER, Ctx, taskid_request, unknown_id
from .scheduling import FAKE_START, Clock

def _parse(out):
    """``YYYY-MM-DD HH:MM:SS`` lines (TZ=UTC) -> epoch seconds; Failed on a bad line."""
    import calendar
    times = []
    for line in out.split(b"\n")[:-1]:
        try:
            times.append(calendar.timegm(time.strptime(line.decode("ascii"),
                                                       "%Y-%m-%d %H:%M:%S")))
        except (UnicodeDecodeError, ValueError):
            raise Failed(f"cassini -n printed {line[:60]!r}, not YYYY-MM-DD HH:MM:SS") from None
    if not out.endswith(b"\n") and out:
        raise Failed("cassini -n output does not end with a newline")
    return times


def _announced(ctx, taskid, count):
    r = ctx.cassini("-n", str(taskid), "-N", str(count))
    if r.code != 0:
        raise Failed(f"{r.show()}: exit status {r.code}",
                     f"{r.show()}\nclient stderr: {r.err.decode('utf-8', 'replace').strip()}")
    return _parse(r.out)


def sc_own_next_runs(ctx):
    """Shape of NEXT_RUNS replies, from the timings alone."""
    weekly_id = ctx.create(*NEVER, "true")
    every = ctx.create("true")
    gone = unknown_id(weekly_id, every)
    weekly = _announced(ctx, weekly_id, 3)
    ctx.check(len(weekly) == 3,
              f"cassini -n {weekly_id} -N 3: expected 3 times, got {len(weekly)}")
    for t in weekly:
        g = time.gmtime(t)
        ctx.check((g.tm_wday, g.tm_hour, g.tm_min, g.tm_sec) == (6, 3, 7, 0),
                  f"task `{' '.join(NEVER)}`: announced {utc(t)} UTC, not a Sunday 03:07:00")
    ctx.check(all(b - a == 7 * 86400 for a, b in zip(weekly, weekly[1:])),
              "task due on Sundays 03:07 UTC: the announced times are not one week apart",
              ", ".join(utc(t) for t in weekly))
    minutely = _announced(ctx, every, 5)
    ctx.check(len(minutely) == 5 and all(t % 60 == 0 for t in minutely)
              and all(b - a == 60 for a, b in zip(minutely, minutely[1:])),
              "an every-minute task: expected 5 consecutive minutes (seconds 0)",
              ", ".join(utc(t) for t in minutely))
    ctx.check(len(_announced(ctx, every, 0)) == 0,
              f"cassini -n {every} -N 0 printed something")
    r = ctx.cassini("-n", str(every))
    ctx.check(r.code == 0 and r.out.count(b"\n") == 5,
              f"cassini -n {every}: COUNT defaults to 5", f"got {r.out[:200]!r}")
    ctx.expect(["-n", str(gone)], b"", 1, why=f"no task {gone}")
    ctx.expect_error(P.encode_request(P.Request(P.NEXT_RUNS, taskid=gone, count=5)),
                     P.NEXT_RUNS, P.NF,
                     f"NEXT_RUNS of unknown task {gone}")
    reply = ctx.raw(P.encode_request(P.Request(P.NEXT_RUNS, taskid=every, count=3)), P.NEXT_RUNS,
                    f"NEXT_RUNS of task {every}")
    times = reply.times if reply.errcode is None else None
    ctx.check(times is not None and len(times) == 3 and times[0] >= minutely[0]
              and all(b - a == 60 for a, b in zip(times, times[1:])),
              f"NEXT_RUNS {every} 3 (raw bytes): expected OK and 3 consecutive minutes",
              f"got {reply!r}")


PROTOCOL = [("next-runs", sc_own_next_runs)]

SCHEDULE_CHECKS = ["next-runs-are-the-runs"]


def next_runs_scheduling(config):
    """Announce, let the minutes pass, compare with what the daemon recorded."""
    cat = "daemon-extension"
    kind = config.clock
    t0 = time.monotonic()
    if kind == "real" and config.real_minutes < 6:
        return [Outcome(cat, c, "skip", f"real-time scheduling needs a budget of 6 minutes "
                        f"(--real-minutes {config.real_minutes:g})") for c in SCHEDULE_CHECKS]
    start = FAKE_START if kind in ("faketime", "manual") else None
    daemon = Daemon(config.options, config, "next-runs", clock=kind, start_time=start)
    try:
        daemon.start()
        ctx = Ctx(daemon)
        clock = Clock(kind, daemon, config)
        now = int(clock.now())
        later = sorted({time.gmtime(now + 120).tm_min, time.gmtime(now + 240).tm_min})
        ids = (ctx.create("true"), ctx.create("-m", "*/2", "true"),
               ctx.create("-m", ",".join(map(str, later)), "true"))
        want = {taskid: _announced(ctx, taskid, count) for taskid, count in zip(ids, (4, 2, 2))}
        for taskid, times in want.items():
            ctx.check(len(times) in (2, 4), f"task {taskid}: cassini -n announced {len(times)} "
                      "times", ", ".join(utc(t) for t in times))
            ctx.check(times[0] > now - 60, f"task {taskid}: announced a time in the past",
                      f"clock at {utc(now)}, announced {', '.join(utc(t) for t in times)}")
        end = max(times[-1] for times in want.values())
        if end - now > 3600:
            raise Failed(f"announced times too far ahead ({utc(end)} UTC, clock at "
                         f"{utc(now)} UTC)")
        clock.wait_until(end + 20)
        problems = []
        deadline = time.monotonic() + 15
        while True:
            problems = []
            for taskid, times in want.items():
                reply = ctx.raw(taskid_request(P.TIMES_EXITCODES, taskid),
                                P.TIMES_EXITCODES, f"TIMES_EXITCODES of task {taskid}")
                if reply.errcode is not None:
                    raise Failed(f"TIMES_EXITCODES of task {taskid}: error reply")
                got = [tm // 60 * 60 for tm, _ in reply.runs
                       if times[0] <= tm // 60 * 60 <= times[-1]]
                if got != times:
                    problems.append(f"task {taskid}: announced "
                                    f"{', '.join(utc(t)[11:] for t in times)}; recorded "
                                    f"{', '.join(utc(t)[11:] for t in got) or 'none'}")
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if problems:
            raise Failed("the runs recorded are not the times NEXT_RUNS announced",
                         "\n".join(problems) + "\n" + daemon.diagnosis())
        return [Outcome(cat, c, "pass", duration=time.monotonic() - t0)
                for c in SCHEDULE_CHECKS]
    except Failed as e:
        detail = e.detail or e.message
        if daemon.sb.proc is not None and "daemon processes:" not in detail:
            detail += "\n" + daemon.diagnosis()
        return [Outcome(cat, c, "fail", e.message, detail, time.monotonic() - t0)
                for c in SCHEDULE_CHECKS]
    except Exception as e:      # a grader bug must not stop the run
        import traceback
        return [Outcome(cat, c, "fail", f"grader error: {e!r}", traceback.format_exc(),
                        time.monotonic() - t0) for c in SCHEDULE_CHECKS]
    finally:
        daemon.stop()

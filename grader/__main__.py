"""saturnd-grade: grade a submission's cassini and/or saturnd.

    saturnd-grade --cassini PATH [--saturnd PATH] [--extensions] [--junit FILE]
    saturnd-grade --ours                     # our own implementation (self-check)

See grader/README.md.  Exit status: 0 when every selected test passed, 1 when some
failed, 2 on a usage error.

:func:`grade` runs in phases: :func:`configure` (the options -> a :class:`Grading`),
:func:`build_outcome`, :func:`find_programs`, :func:`conformance` (:func:`client_conformance`
beside :func:`daemon_conformance`), :func:`differential`, :func:`write_reports`.  What is
graded is declared in grader/suites.py.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from grader import golden, report, sandbox, suites  # noqa: E402
from grader import scenarios, scheduling  # noqa: E402
from grader.candidate import DEFAULT_CMD, DEFAULT_MANUAL_CMD, DaemonConfig  # noqa: E402
from grader.differential import run_differential  # noqa: E402
from grader.programs import (  # noqa: E402
    Usage, candidate_program, our_programs, traversable_by_others)


def parse(argv):
    ap = argparse.ArgumentParser(
        prog="saturnd-grade",
        description="Grade a cassini client and/or a saturnd daemon against the saturnd "
                    "conformance suites (golden vectors, daemon scenarios).")
    ap.add_argument("--cassini", metavar="PATH", help="the candidate client")
    ap.add_argument("--saturnd", metavar="PATH", help="the candidate daemon")
    ap.add_argument("--saturnd-cmd", metavar="TEMPLATE", default=None,
                    help="how to start the daemon (default '{saturnd}'); placeholders: "
                         "{saturnd} {pipes} {data} {home} {user} {start_time}")
    ap.add_argument("--saturnd-manual-cmd", metavar="TEMPLATE", default=None,
                    help=f"the daemon command with --clock manual (default '{DEFAULT_MANUAL_CMD}')")
    ap.add_argument("--precreate-pipes-dir", action="store_true",
                    help="create the daemon's pipes directory ({pipes} and "
                         "/tmp/$USER/saturnd/pipes) before starting it")
    ap.add_argument("--ours", action="store_true",
                    help="grade this project's own cassini and saturnd (self-check)")
    ap.add_argument("--reference-cassini", metavar="PATH",
                    help="differential mode: also run every client call of the daemon scenarios "
                         "with this client and compare byte for byte (needs --cassini)")
    ap.add_argument("--extensions", action="store_true",
                    help="also grade what goes beyond the course's reference: the golden "
                         "cases tagged 'extension' (the seed project's -s -t -z -i -w and "
                         "this project's own requests -R -C -E -D -n -I -X) and their daemon "
                         "scenarios")
    ap.add_argument("--profile", choices=("strict", "course"), default="strict",
                    help="the verdicts that make the headline and the exit status (default "
                         "strict: byte-exact; course: the course script's rules); both are "
                         "always reported")
    ap.add_argument("--tags", help="golden tags to run (default: reference and strict, plus "
                                   "extension with --extensions)")
    ap.add_argument("--cases-dir", metavar="DIR",
                    help="grade the client against this folder of course-format cases (one "
                         "sub-folder per case: arguments request reply stdout exitcode) "
                         "instead of the shipped golden cases")
    ap.add_argument("--tz", metavar="ZONE", default=None,
                    help="TZ inside the sandbox (default: the caller's TZ, else UTC); the "
                         "shipped golden cases keep their own zone (UTC)")
    ap.add_argument("--cases", help="comma-separated golden case names (default: all)")
    ap.add_argument("--scenarios", help="comma-separated daemon scenario names (default: all)")
    ap.add_argument("--no-scheduling", action="store_true", help="skip the scheduling scenario")
    ap.add_argument("--clock", choices=("faketime", "manual", "real"), default=None,
                    help="how minutes pass for the scheduling scenario (default: faketime; "
                         "manual with --ours)")
    ap.add_argument("--speed", type=float, default=None,
                    help=f"libfaketime speed-up (default: x{FAST_SPEED:g}, a minute a second, "
                         f"and a scheduling suite that fails is graded again at "
                         f"x{SAFE_SPEED:g}, a minute every 3 s, whose verdict counts)")
    ap.add_argument("--libfaketime", metavar="PATH", help="libfaketime.so.1 (default: search)")
    ap.add_argument("--real-minutes", type=float, default=0.0,
                    help="budget of real minutes for --clock real (needs at least 6)")
    ap.add_argument("--client-timeout", type=float, default=10.0,
                    help="seconds a client may take per golden case (default 10)")
    jobs = min(8, (os.cpu_count() or 2) * 2)
    ap.add_argument("-j", "--jobs", type=int, default=jobs,
                    help=f"golden cases played at once, each with its own client (default "
                         f"{jobs}: twice the CPUs, at most 8); the daemon scenarios run one "
                         f"after the other, beside them")
    ap.add_argument("--isolation", choices=("auto", "container", "light", "full"),
                    default="auto",
                    help="how candidates are confined (default auto: a container of their own "
                         "when a Docker engine answers, else light, said on the first line); "
                         "see docs/grading-isolation.md")
    ap.add_argument("--work-dir", help="where sandboxes go (default $GRADER_WORK_DIR or "
                                       "/var/tmp; not under /tmp)")
    ap.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    ap.add_argument("--summary", metavar="FILE", help="also write the summary to FILE")
    ap.add_argument("--json", metavar="FILE", help="write the machine-readable report "
                                                   "(see grader/README.md)")
    ap.add_argument("--gradescope", metavar="FILE",
                    help="write Gradescope's autograder results.json (one test per case "
                         "graded under --profile; see ci/gradescope/)")
    ap.add_argument("--gradescope-points", type=float, metavar="P",
                    help="the points of the whole grade in results.json, shared equally by "
                         "its tests (default: 1 per test)")
    ap.add_argument("--build-status", type=int, metavar="N",
                    help="the submission's build exit status (ci/grade.sh): reported as the "
                         "'build' test; when not 0 nothing else is graded")
    ap.add_argument("--build-log", metavar="FILE", help="the build's output (its tail goes "
                                                        "into the report)")
    ap.add_argument("-v", "--verbose", action="store_true", help="full diagnoses on stdout")
    opts = ap.parse_args(argv)
    if opts.build_status:
        return opts
    if not (opts.cassini or opts.saturnd or opts.ours):
        raise Usage("nothing to grade: give --cassini PATH and/or --saturnd PATH (or --ours)")
    if opts.reference_cassini and not (opts.cassini or opts.ours):
        raise Usage("--reference-cassini compares a candidate client: give --cassini too")
    if opts.speed is not None and opts.speed <= 0:
        raise Usage("--speed must be positive")
    if opts.gradescope_points is not None and opts.gradescope_points <= 0:
        raise Usage("--gradescope-points must be positive")
    if opts.cases_dir is None and os.environ.get("GRADER_CASES_DIR"):
        # the variable is the option: course-format cases, TZ from --tz (never UTC by default)
        opts.cases_dir = os.environ["GRADER_CASES_DIR"]
        if not os.path.isdir(opts.cases_dir):
            raise Usage(f"GRADER_CASES_DIR={opts.cases_dir}: not a directory")
    if opts.cases_dir and not os.path.isdir(opts.cases_dir):
        raise Usage(f"--cases-dir {opts.cases_dir}: not a directory")
    if opts.tz is not None and not _known_zone(opts.tz):
        raise Usage(f"--tz {opts.tz}: unknown time zone (no such file under "
                    f"/usr/share/zoneinfo)")
    return opts


FAST_SPEED = 60.0       # faked minutes first pass this fast...
SAFE_SPEED = 20.0       # ...and a scheduling suite failing then is graded again at this speed


def _known_zone(zone):
    zone = zone[1:] if zone.startswith(":") else zone
    if zone in ("UTC", "GMT") or any(c.isdigit() for c in zone):
        return True                     # POSIX TZ strings such as CET-1CEST
    if ".." in zone.split("/") or zone.startswith("/"):
        return os.path.isfile(zone)
    return any(os.path.isfile(os.path.join(d, zone))
               for d in ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo"))



def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "batch":
        from grader import batch
        return batch.main(argv[1:])
    try:
        opts = parse(argv)
        return grade(opts)
    except Usage as e:
        print(f"saturnd-grade: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("saturnd-grade: interrupted", file=sys.stderr)
        return 130


def _client_tags(opts):
    if opts.tags:
        return {t.strip() for t in opts.tags.split(",") if t.strip()}
    return suites.golden_tags(opts.extensions)


def _client_cases(opts):
    names = [n for n in (opts.cases or "").split(",") if n]
    try:
        if opts.cases_dir:
            # course-format cases: every one runs (a missing tag file means reference)
            cases = golden.load_cases(names, opts.cases_dir, tz=opts.tz or _caller_tz())
            for c in cases:
                c.course_own = True         # scored in their own category: course-cases
            if opts.tags:
                cases = [c for c in cases if c.tag in _client_tags(opts)]
            return cases
        tags = _client_tags(opts)
        return [c for c in golden.load_cases(names) if c.tag in tags]
    except (OSError, ValueError) as e:
        raise Usage(f"golden cases: {e}") from None


def _caller_tz():
    return os.environ.get("TZ") or "UTC"


def client_category(case):
    if getattr(case, "course_own", False):
        return "course-cases"
    return "client-strict" if case.tag == "strict" else "client"


# --- options -> config ---------------------------------------------------------------------
@dataclass
class Grading:
    """One grading run: what it grades (from the options) and what it found, phase by phase."""

    opts: argparse.Namespace
    options: sandbox.Options            # its base is this run's scratch directory
    scratch: str
    notes: list
    figures: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)
    candidate: dict = field(default_factory=lambda: {"cassini": None, "saturnd": None})
    cassini: str | None = None          # the programs graded, runnable by the sandbox user
    saturnd: str | None = None
    reference: str | None = None        # the reference client (differential mode)
    missing: dict = field(default_factory=dict)     # program -> why it scores 0
    elapsed: float = 0.0

    @property
    def bindir(self):
        return os.path.join(self.scratch, "bin")


def configure(opts):
    """The sandbox options and this run's scratch directory: a :class:`Grading`."""
    try:
        options = sandbox.Options(base=opts.work_dir, isolation=opts.isolation,
                                  tz=opts.tz or _caller_tz())
    except RuntimeError as e:
        raise Usage(str(e)) from None
    if options.base == "/tmp" or options.base.startswith("/tmp/"):
        options.close()
        raise Usage("--work-dir must not be under /tmp (candidates get a private /tmp)")
    os.makedirs(options.base, exist_ok=True)
    if options.box is None and options.uid is not None and \
            not traversable_by_others(options.base):
        raise Usage(f"work directory {options.base}: the sandbox user cannot reach it "
                    f"(every directory on the way needs o+x)")
    scratch = tempfile.mkdtemp(prefix="saturnd-grade-", dir=options.base)
    os.chmod(scratch, 0o755)
    options.base = scratch
    notes = [f"isolation {options.describe()}", f"TZ={options.tz} in the sandbox"]
    return Grading(opts, options, scratch, notes)


def build_outcome(g):
    """A submission's build (``--build-status``): the 'build' test; a failed build leaves
    nothing else to grade."""
    opts = g.opts
    if opts.build_status is None:
        return
    tail = []
    if opts.build_log:
        try:
            with open(opts.build_log, "rb") as f:
                tail = f.read()[-8192:].decode("utf-8", "replace").splitlines()[-25:]
        except OSError as e:
            tail = [f"(no build log: {e.strerror})"]
    if opts.build_status:
        g.outcomes.append(report.Outcome("build", "make", "fail",
                                         f"the build failed (exit status {opts.build_status})",
                                         "\n".join(tail)))
        opts.cassini = opts.saturnd = opts.reference_cassini = None
        opts.ours = False
    else:
        g.outcomes.append(report.Outcome("build", "make", "pass"))


def find_programs(g):
    """The programs to grade, where the sandbox user can run them; what a submission lacks."""
    opts, uid = g.opts, g.options.uid
    if opts.ours:
        ours = our_programs(g.bindir)
        g.cassini, g.saturnd = ours["cassini"], ours["saturnd"]
    if opts.cassini:
        g.candidate["cassini"] = os.path.abspath(opts.cassini)
        g.cassini = candidate_program(opts.cassini, g.bindir, "cassini", uid, g.notes,
                                      box=g.options.box)
    if opts.saturnd:
        g.candidate["saturnd"] = os.path.abspath(opts.saturnd)
        g.saturnd = candidate_program(opts.saturnd, g.bindir, "saturnd", uid, g.notes,
                                      box=g.options.box)
    if opts.reference_cassini:
        g.reference = candidate_program(opts.reference_cassini, g.bindir, "reference-cassini",
                                        uid, g.notes, box=g.options.box)
    submission = opts.build_status is not None
    if submission and opts.build_status:
        why = f"not graded: the build failed (exit status {opts.build_status})"
        g.missing = {"cassini": why, "saturnd": why}
    else:
        g.missing = {name: f"no {name} executable in the submission: scored 0"
                     for name, prog in (("cassini", g.cassini), ("saturnd", g.saturnd))
                     if submission and not prog}


# --- client conformance --------------------------------------------------------------------
def client_conformance(g):
    """The golden cases against the candidate client, each in its own jail."""
    opts = g.opts
    if not (g.cassini or "cassini" in g.missing):
        return
    cases = _client_cases(opts)
    jail = _jail(g)
    hangs = HangWatch(len(cases), opts.client_timeout)

    # played in an order that spreads the kinds of cases (list, create, remove, ...); the
    # first HANG_LIMIT played (the probe) say whether the client hangs everywhere
    order = sorted(range(len(cases)), key=lambda i: (i % HANG_SPREAD, i))
    probe = set(order[:HANG_LIMIT])

    def one(i):
        if not hangs.admit(i in probe):
            return hangs.not_run(cases[i], opts.profile)
        hung = False
        try:
            o = grade_case(g, cases[i], jail)
            hung = "did not exit within" in o.message
            return o
        finally:
            hangs.record(hung)

    results = {}
    with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        for i, o in zip(order, pool.map(one, order)):
            results[i] = o
    for o in results.values():
        if o.message.startswith("not run: "):
            o.message = f"not run: {hangs.reason()}"          # one message: told once
    g.outcomes += [results[i] for i in range(len(cases))]
    explain_unrunnable(g.outcomes, g.cassini, "cassini")
    where = f"cases from {opts.cases_dir}" if opts.cases_dir else \
        f"golden cases (tags {','.join(sorted(_client_tags(opts)))})"
    g.notes.append(f"client: {len(cases)} {where}")


def _jail(g):
    def jail(tmp, user):
        return sandbox.ClientJail(g.options, tmp, user)
    return jail


LATE_SIGNS = ("request (deadline)", "cassini never opened the reply pipe")
LATE_LIMIT = 24         # more late cases than this: the client is slow, not the moment


def replay_late_clients(g, before):
    """Golden cases whose client was late (its request not there within the fake daemon's
    deadline, the reply pipe never opened) while the daemon phase ran beside it: played
    again now that nothing else runs, and that verdict counts -- unless more than
    LATE_LIMIT were late (a slow client, not a busy moment)."""
    cats = ("client", "client-strict", "course-cases")
    late = {o.name for o in g.outcomes[before:] if o.category in cats and
            "fail" in o.verdicts.values() and any(s in o.detail for s in LATE_SIGNS)}
    if not late or len(late) > LATE_LIMIT or not g.cassini:
        return
    cases = {c.name: c for c in _client_cases(g.opts) if c.name in late}
    jail, changed = _jail(g), 0
    where = [i for i in range(before, len(g.outcomes))
             if g.outcomes[i].category in cats and g.outcomes[i].name in cases]
    jobs = max(1, getattr(g.opts, "jobs", 1) or 1)
    with ThreadPoolExecutor(jobs) as pool:
        again = list(pool.map(lambda i: grade_case(g, cases[g.outcomes[i].name], jail), where))
    for i, o in zip(where, again):
        changed += o.verdicts != g.outcomes[i].verdicts
        g.outcomes[i] = o
    g.notes.append(f"client: {len(cases)} cases late beside the daemon phase played again "
                   f"alone ({changed} changed)")


def unrunnable_reason(program, name):
    """Why the candidate's user gets "Permission denied" running ``program``, when the kit
    can tell: a script whose interpreter (its ``#!`` line) that user cannot reach."""
    from grader.programs import traversable_by_others
    try:
        with open(program, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].split()
    if not words:
        return None
    interp = os.fsdecode(words[0])
    if not os.path.exists(interp):
        return None             # (that would say "No such file", not "Permission denied")
    if os.geteuid() == 0:       # candidates run as another user: "others" bits count
        reachable = traversable_by_others(os.path.dirname(interp)) and \
            os.stat(interp).st_mode & 0o001
    else:                       # candidates run as us
        reachable = os.access(interp, os.X_OK)
    if reachable:
        return None
    return (f"{name} is a script whose interpreter {interp} (its #! line) the candidate's "
            f"user cannot run (every directory on the way needs o+x, the interpreter o+x): "
            f"install the interpreter where everyone can run it, or give the script another "
            f"#! line")


def explain_unrunnable(outcomes, program, name):
    """Cases that failed with "Permission denied" because the program cannot be run at all
    get one message saying why (told once, not once per case)."""
    if not program:
        return
    mine = ("client", "course-cases") if name == "cassini" else ("daemon",)
    denied = [o for o in outcomes if o.status != "pass" and o.category.startswith(mine)
        and "Permission denied" in (o.detail + " ".join(o.lines))]
    if not denied:
        return
    why = unrunnable_reason(program, name)
    if why is None:
        return
    for o in denied:
        o.lines.insert(0, f"was: {o.message}")
        o.message = f"cannot run: {why}"


HANG_LIMIT = 4          # cases that hung, with none ended, before the client is given up
HANG_SPREAD = 8


class HangWatch:
    """A client that hangs on every case costs HANG_LIMIT timeouts, not one per case: the
    first HANG_LIMIT cases played are a probe, the others wait for its verdict; when every
    probe case hung (none ended on its own) the remaining cases are not run and fail with
    one message."""

    def __init__(self, total, timeout):
        import threading
        self.cond = threading.Condition()
        self.total, self.timeout = total, timeout
        self.hung = self.ended = self.skipped = 0

    def record(self, hung):
        with self.cond:
            if hung:
                self.hung += 1
            else:
                self.ended += 1
            self.cond.notify_all()

    def admit(self, probe):
        """Whether to play a case (a probe case always)."""
        if probe:
            return True
        with self.cond:
            self.cond.wait_for(lambda: self.ended or self.hung >= HANG_LIMIT)
            return bool(self.ended)

    def reason(self):
        return (f"the client hung on its first {self.hung} cases (killed after "
                f"{self.timeout:g} s each, none ended on its own): the remaining "
                f"{self.total - self.hung} cases were not run")

    def not_run(self, case, profile):
        with self.cond:
            self.skipped += 1
        verdicts = {"strict": "fail",
                    "course": "fail" if golden.course_graded(case) else "skip"}
        return report.Outcome(client_category(case), case.name, verdicts[profile],
                              f"not run: {self.reason()}", verdicts=verdicts,
                              tags=[case.tag])


def grade_case(g, case, jail):
    """One golden case: its outcome under both profiles."""
    opts, cassini = g.opts, g.cassini
    cat = client_category(case)
    if not cassini:
        # the full count of each profile (course skips what it never grades)
        course = "fail" if golden.course_graded(case) else "skip"
        verdicts = {"strict": "fail", "course": course}
        return report.Outcome(cat, case.name, verdicts[opts.profile],
                              g.missing["cassini"], verdicts=verdicts, tags=[case.tag])
    r = golden.run_case(case, [cassini], jail=jail, exit_deadline=opts.client_timeout)
    retried = ""
    if r.course == "fail" and "did not end within the course's" in r.course_why \
            and r.duration < opts.client_timeout:
        # a loaded machine can slow any client down: try once more
        again = golden.run_case(case, [cassini], jail=jail,
                                exit_deadline=opts.client_timeout)
        retried = f"course: over {golden.COURSE_TIMEOUT:g} s once " \
                  f"({r.duration:.1f} s), then {again.duration:.1f} s"
        r = again
    verdicts = {"strict": "pass" if r.ok else "fail", "course": r.course}
    if not r.ok:
        message = r.headline()
    elif r.course == "fail":
        message = f"course: {r.course_why}"
    else:
        message = ""
    lines = [retried] if retried else []
    if r.course != "pass" and r.course_why and r.course_why not in message:
        lines.append(f"course verdict: {r.course} ({r.course_why})")
    if r.stderr and (not r.ok or r.course == "fail"):
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        lines.append(f"client stderr: {' | '.join(err[:3])[:240]}")
    detail = "\n".join(lines + ([r.report()] if not r.ok else []))
    return report.Outcome(cat, case.name, verdicts[opts.profile], message, detail,
                          r.duration, verdicts=verdicts, lines=lines, tags=[case.tag])


# --- daemon conformance --------------------------------------------------------------------
def _wanted(opts):
    return {n for n in (opts.scenarios or "").split(",") if n}


def _daemon_scenarios(opts):
    """[(suite, (name, func))]: the scenarios of the selected suites (grader/suites.py)."""
    wanted = _wanted(opts)
    return [(s, (name, func)) for s in suites.selected(opts.extensions, "scenarios")
            for name, func in s.scenarios if not wanted or name in wanted]


def _schedule_checks(opts):
    """[(category, check)] of the selected scheduling suites."""
    return [(s.category, c) for s in suites.selected(opts.extensions, "schedule")
            for c in s.checks]


def strict_only(outcome, profile, suite=None):
    """A scenario beyond the course's subject (:data:`scenarios.STRICT_ONLY`, or a suite
    graded under `strict` only): its verdict counts under `strict`, `skip` under `course`."""
    why = scenarios.STRICT_ONLY.get(outcome.name)
    if why is None and suite is not None and "course" not in suite.profiles:
        why = f"strict only: the suite {suite.name} is not graded under course"
    if why is None:
        return outcome
    outcome.verdicts["course"] = "skip"
    outcome.status = outcome.verdicts[profile]
    if outcome.status == "skip":
        outcome.message = why
    else:
        outcome.lines.append(f"course verdict: skip ({why})")
    return outcome


def daemon_config(g):
    opts = g.opts
    return DaemonConfig(options=g.options, saturnd=g.saturnd,
                        saturnd_cmd=opts.saturnd_cmd or DEFAULT_CMD,
                        manual_cmd=opts.saturnd_manual_cmd or DEFAULT_MANUAL_CMD,
                        clock=opts.clock or ("manual" if opts.ours else "faketime"),
                        speed=opts.speed or FAST_SPEED, precreate=opts.precreate_pipes_dir,
                        real_minutes=opts.real_minutes,
                        libfaketime=(opts.libfaketime or g.options.box.libfaketime())
                        if g.options.box is not None else
                        scheduling.find_libfaketime(opts.libfaketime))


def _hasty(func):
    """``func`` run with ``ctx.patient`` False (see :attr:`grader.suites.Suite.hasty`)."""
    def hasty(ctx):
        ctx.patient = False
        return func(ctx)
    return hasty


def daemon_slot(g):
    """Held while a candidate daemon lives: its default pipes directory (in a container
    /tmp/candidate/saturnd, else /tmp/$USER/saturnd) may be the one a default-pipes golden
    case uses, which holds the same lock (:meth:`grader.sandbox.ClientJail.private_tmp`,
    :meth:`grader.golden._Play.place_pipes`)."""
    if g.options.box is None:       # the shared /tmp: a default-pipes case's lock
        return golden._DEFAULT_PIPES_LOCK
    return g.options.lock


def daemon_conformance(g, only=None, safe=False):
    """The daemon scenarios (one fresh candidate daemon each), then scheduling; ``only``:
    the names of the scenarios and scheduling checks to run (default: every one);
    ``safe``: faked minutes at :data:`SAFE_SPEED` only."""
    opts = g.opts
    scen = [(s, sc) for s, sc in _daemon_scenarios(opts) if only is None or sc[0] in only]
    wanted = _wanted(opts)
    do_sched = not (opts.no_scheduling or (wanted and "scheduling" not in wanted))
    if "saturnd" in g.missing:
        why = g.missing["saturnd"]
        g.outcomes += [strict_only(report.Outcome(s.category, name, "fail", why),
                                   opts.profile, s)
                       for s, (name, _) in scen]
        if do_sched:
            g.outcomes += [report.Outcome(cat, c, "fail", why) for cat, c in _schedule_checks(opts)]
        return
    if not (g.saturnd and (opts.saturnd or opts.ours)):
        return
    cfg = daemon_config(g)
    if safe and opts.speed is None:
        cfg = replace(cfg, speed=SAFE_SPEED)
    observed = set()
    for s, (name, func) in scen:
        with daemon_slot(g):
            if name in s.hasty:
                o = scenarios.run_scenario(cfg, s.category, name, _hasty(func),
                                           observed=observed)
                if o.status == "fail":      # a daemon that needs the full waits loses nothing
                    o = scenarios.run_scenario(cfg, s.category, name, func, observed=observed)
            else:
                o = scenarios.run_scenario(cfg, s.category, name, func, observed=observed)
        g.outcomes.append(strict_only(o, opts.profile, s))
    explain_unrunnable(g.outcomes, g.saturnd, "saturnd")
    g.figures += [f"daemon: {o}" for o in sorted(observed)]
    if not do_sched:
        return
    if cfg.clock == "faketime" and not cfg.libfaketime:
        why = ("libfaketime not found (install Debian's libfaketime, or use --clock real "
               "--real-minutes 6)")
        g.outcomes += [report.Outcome(cat, c, "skip", why) for cat, c in _schedule_checks(opts)]
        return
    g.notes.append(scheduling.describe_clock(cfg))
    again = cfg.clock == "faketime" and opts.speed is None and cfg.speed != SAFE_SPEED
    for s in suites.selected(opts.extensions, "schedule"):
        if only is not None and not only & set(s.checks):
            continue
        with daemon_slot(g):
            figures = []
            outcomes = s.run(cfg, figures)
        if again and any(o.status == "fail" for o in outcomes):
            # a daemon too slow for the fast clock loses nothing: graded again, and that
            # verdict counts
            with daemon_slot(g):
                figures = []
                outcomes = s.run(replace(cfg, speed=SAFE_SPEED), figures)
            g.notes.append(f"{s.name}: failed at x{cfg.speed:g}, graded again at "
                           f"x{SAFE_SPEED:g} (this verdict counts)")
        g.figures += figures
        g.outcomes += [strict_only(o, opts.profile, s) for o in outcomes]


def conformance(g):
    """The client's golden cases and the daemon's scenarios side by side (each candidate
    program in sandboxes of its own; a default-pipes case and a daemon take turns, see
    :func:`daemon_slot`).  When a client case failed, a daemon outcome that failed while
    clients ran beside it is graded again alone, and that verdict counts: a client that
    writes where it should not (the daemon's default pipes) cannot cost the daemon points
    (a client that passes every case writes where it is told)."""
    daemon = replace(g, outcomes=[], notes=[], figures=[])
    before = len(g.outcomes)
    failure = []

    def run_daemon():
        try:
            daemon_conformance(daemon)
        except BaseException as e:      # raised again in this thread
            failure.append(e)

    thread = threading.Thread(target=run_daemon, name="daemon-conformance", daemon=True)
    thread.start()
    client_conformance(g)       # (interrupted: the daemon thread ends with the process)
    thread.join()
    if failure:
        raise failure[0]
    replay_late_clients(g, before)
    clients_failed = any("fail" in o.verdicts.values() or o.status == "fail"
                         for o in g.outcomes[before:])
    if clients_failed and any(o.status == "fail" for o in daemon.outcomes) and g.cassini and \
            g.saturnd and (g.opts.saturnd or g.opts.ours):
        alone = replace(g, outcomes=[], notes=[], figures=[])
        daemon_conformance(alone, only={o.name for o in daemon.outcomes if o.status == "fail"},
                           safe=True)
        again = {(o.category, o.name): o for o in alone.outcomes}
        changed = 0
        for i, o in enumerate(daemon.outcomes):
            redo = again.get((o.category, o.name))
            if redo is not None:
                changed += redo.status != o.status
                daemon.outcomes[i] = redo
        daemon.notes += [n for n in alone.notes if n not in daemon.notes]
        daemon.notes.append(f"daemon: {len(again)} failed outcomes graded again with no "
                            f"client beside them ({changed} changed)")
    g.outcomes += daemon.outcomes
    g.notes += daemon.notes
    g.figures += daemon.figures


# --- differential --------------------------------------------------------------------------
def differential(g):
    """With ``--reference-cassini``: the candidate client and the reference, call for call."""
    opts = g.opts
    if not g.reference:
        return
    if g.saturnd and opts.saturnd:
        saturnd, cmd = g.saturnd, opts.saturnd_cmd or DEFAULT_CMD
        which = "the candidate's daemon"
    else:
        saturnd, cmd = our_programs(g.bindir)["saturnd"], DEFAULT_CMD
        which = "our daemon"
    cfg = DaemonConfig(options=g.options, saturnd=saturnd, saturnd_cmd=cmd, manual_cmd=None,
                       precreate=opts.precreate_pipes_dir)
    wanted = _wanted(opts)
    for name, func in [sc for s in suites.selected(opts.extensions, "scenarios")
                       if s.differential for sc in s.scenarios]:
        if wanted and name not in wanted:
            continue
        g.outcomes.append(run_differential(cfg, name, func, [g.cassini], [g.reference]))
    g.notes.append(f"differential: candidate client vs {opts.reference_cassini}, "
                   f"each against {which}")


# --- report --------------------------------------------------------------------------------
def write_reports(g, notes):
    """The summary on stdout (and ``--summary``), ``--json``, ``--junit``; the exit status.

    Every writer makes a candidate's bytes inert (:func:`grader.report.visible`): none can
    fail on them, and one writer's failure (a full disk) does not lose the others."""
    opts, outcomes = g.opts, g.outcomes
    status = 1 if any(o.status == "fail" for o in outcomes) else 0
    text = report.summary(outcomes, notes, headline=opts.profile)
    errors = []

    def attempt(what, write):
        try:
            write()
        except (OSError, UnicodeError, ValueError) as e:
            errors.append(f"saturnd-grade: cannot write the {what}: {e}")

    if opts.json:
        attempt(f"JSON report {opts.json}", lambda: report.write_json(
            opts.json, outcomes, headline=opts.profile, candidate=g.candidate,
            build_status=opts.build_status, exit_status=status, notes=notes))
    if opts.gradescope:
        from grader import gradescope
        attempt(f"Gradescope results {opts.gradescope}", lambda: gradescope.write_results(
            opts.gradescope, outcomes, headline=opts.profile, notes=notes,
            execution_time=g.elapsed, points=opts.gradescope_points))
    if opts.junit:
        attempt(f"JUnit report {opts.junit}", lambda: report.write_junit(
            opts.junit, outcomes, [(f"note{i}", n) for i, n in enumerate(notes)]))
    if opts.summary:
        def write_summary():
            with open(opts.summary, "w", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text)
        attempt(f"summary {opts.summary}", write_summary)
    if opts.verbose:
        for o in outcomes:
            if o.status == "fail":
                _print(report.visible(f"=== [{o.category}] {o.name}\n{o.detail}\n\n"))
    _print(text)
    for e in errors:
        print(report.visible(e), file=sys.stderr)
    return status if not errors else max(status, 1)


def _print(text, stream=None):
    """``text`` on stdout whatever its encoding (a C locale, a pipe): never raises."""
    stream = stream or sys.stdout
    try:
        stream.write(text)
    except UnicodeEncodeError:
        enc = stream.encoding or "ascii"
        stream.write(text.encode(enc, "backslashreplace").decode(enc))
    stream.flush()


def grade(opts):
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a cancelled job) goes through the finally below: the container is removed
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    g = configure(opts)
    if g.options.box is None:       # said first, before anything else
        print(f"saturnd-grade: NOTHING IS ISOLATED ({g.options.why_light or 'light isolation'}"
              f"): the candidate's programs run on this machine; grade only code you trust",
              flush=True)
    t_start = time.monotonic()
    try:
        build_outcome(g)
        find_programs(g)
        conformance(g)
        differential(g)
    finally:
        shutil.rmtree(g.scratch, ignore_errors=True)
        g.options.close()           # this run's container removed (when it made one)
    g.elapsed = time.monotonic() - t_start
    notes = g.notes + [f"graded in {g.elapsed:.1f} s"] + g.figures
    return write_reports(g, notes)


if __name__ == "__main__":
    sys.exit(main())

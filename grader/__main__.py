"""saturnd-grade: grade a submission's cassini and/or saturnd.

    saturnd-grade --cassini PATH [--saturnd PATH] [--extensions] [--junit FILE]
    saturnd-grade --ours                     # our own implementation (self-check)

See grader/README.md.  Exit status: 0 when every selected test passed, 1 when some
failed, 2 on a usage error.
"""

import argparse
import os
import shutil
import stat
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

DEFAULT_CMD = "{saturnd}"
DEFAULT_MANUAL_CMD = ("{saturnd} -f --clock manual --start-time {start_time} -p {pipes} "
                      "--data-dir {data}")


class Usage(Exception):
    pass


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
                    help="also the seed project's extension requests (-s -t -z -i -w)")
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
    ap.add_argument("--speed", type=float, default=20.0,
                    help="libfaketime speed-up (default 20: a minute every 3 s)")
    ap.add_argument("--libfaketime", metavar="PATH", help="libfaketime.so.1 (default: search)")
    ap.add_argument("--real-minutes", type=float, default=0.0,
                    help="budget of real minutes for --clock real (needs at least 6)")
    ap.add_argument("--client-timeout", type=float, default=10.0,
                    help="seconds a client may take per golden case (default 10)")
    ap.add_argument("-j", "--jobs", type=int, default=min(8, (os.cpu_count() or 2) * 2))
    ap.add_argument("--isolation", choices=("auto", "full", "light"), default="auto")
    ap.add_argument("--work-dir", help="where sandboxes go (default $GRADER_WORK_DIR or "
                                       "/var/tmp; not under /tmp)")
    ap.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    ap.add_argument("--summary", metavar="FILE", help="also write the summary to FILE")
    ap.add_argument("--json", metavar="FILE", help="write the machine-readable report "
                                                   "(see grader/README.md)")
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
    if opts.speed <= 0:
        raise Usage("--speed must be positive")
    if opts.cases_dir and not os.path.isdir(opts.cases_dir):
        raise Usage(f"--cases-dir {opts.cases_dir}: not a directory")
    if opts.tz is not None and not _known_zone(opts.tz):
        raise Usage(f"--tz {opts.tz}: unknown time zone (no such file under "
                    f"/usr/share/zoneinfo)")
    return opts


def _known_zone(zone):
    zone = zone[1:] if zone.startswith(":") else zone
    if zone in ("UTC", "GMT") or any(c.isdigit() for c in zone):
        return True                     # POSIX TZ strings such as CET-1CEST
    if ".." in zone.split("/") or zone.startswith("/"):
        return os.path.isfile(zone)
    return any(os.path.isfile(os.path.join(d, zone))
               for d in ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo"))


def _traversable_by_others(path):
    d = os.path.abspath(path)
    try:
        while True:
            if not os.stat(d).st_mode & stat.S_IXOTH:
                return False
            if d == "/":
                return True
            d = os.path.dirname(d)
    except OSError:
        return False


def _reachable_by_others(path):
    """Can a non-root sandbox user run ``path`` where it is?"""
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
        if not st.st_mode & stat.S_IXOTH or not st.st_mode & stat.S_IROTH:
            return False
        d = os.path.dirname(path)
        while d and d != "/":
            if not os.stat(d).st_mode & stat.S_IXOTH:
                return False
            d = os.path.dirname(d)
        return True
    except OSError:
        return False


def _package_wrapper(pkgdir, bindir, name):
    """A script that runs the Python package folder ``pkgdir`` (``python -m PKG``) from a
    copy the sandbox user can read, with our packages beside it."""
    pkgdir = os.path.abspath(pkgdir)
    pkg = os.path.basename(pkgdir.rstrip("/"))
    base = os.path.dirname(os.path.abspath(bindir))
    lib = copy_packages(os.path.join(base, "lib"))
    mine = os.path.join(base, f"lib-{name}")
    shutil.rmtree(mine, ignore_errors=True)
    shutil.copytree(pkgdir, os.path.join(mine, pkg),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for top, dirs, files in os.walk(mine):
        os.chmod(top, 0o755)
        for f in files:
            os.chmod(os.path.join(top, f), 0o644)
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    dest = os.path.join(bindir, name)
    with open(dest, "w") as f:
        f.write(f"#!{_python_for_sandbox()}\nimport runpy, sys\n"
                f"sys.path[:0] = [{mine!r}, {lib!r}]\n"
                f"runpy.run_module({pkg!r}, run_name='__main__', alter_sys=True)\n")
    os.chmod(dest, 0o755)
    return dest


def _python_for_sandbox():
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(cand) and _reachable_by_others(cand):
            return cand
    return sys.executable


def candidate_program(path, bindir, name, uid, notes=None):
    """The candidate's executable, copied where the sandbox user can run it if need be.

    A directory is accepted when it holds an executable named ``name`` (a submission or
    build folder) or is a Python package folder (``__main__.py``: e.g. ``./cassini`` from
    this repository's root, run as ``python -m cassini``)."""
    if not os.path.exists(path):
        raise Usage(f"{name}: no such file: {path}")
    if os.path.isdir(path):
        inner = os.path.join(path, name)
        if os.path.isfile(inner) and os.access(inner, os.X_OK):
            if notes is not None:
                notes.append(f"{name}: {path} is a directory: graded {inner}")
            path = inner
        elif os.path.isfile(os.path.join(path, "__main__.py")):
            if notes is not None:
                notes.append(f"{name}: {path} is a Python package folder: graded as "
                             f"python -m {os.path.basename(os.path.abspath(path))}")
            return _package_wrapper(path, bindir, name)
        else:
            raise Usage(f"{name}: {path} is a directory, with no executable {name} nor "
                        f"__main__.py in it: give the executable")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise Usage(f"{name}: not an executable file: {path}")
    path = os.path.abspath(path)
    real = os.path.realpath(path)
    under_tmp = real == "/tmp" or real.startswith("/tmp/") or path.startswith("/tmp/")
    if not under_tmp and (uid is None or _reachable_by_others(path)):
        return path
    # copied: out of the sandbox user's reach, or under /tmp (hidden by the private /tmp)
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    dest = os.path.join(bindir, name)
    shutil.copy2(path, dest)
    os.chmod(dest, 0o755)
    return dest


def our_programs(bindir):
    """Wrapper scripts for our own cassini and saturnd, runnable by the sandbox user.

    The packages are copied next to ``bindir`` first: the checkout may be where the
    sandbox cannot see it (under /tmp, which it replaces by a private one, or under a
    home directory the sandbox user cannot enter).
    """
    python = _python_for_sandbox()
    lib = copy_packages(os.path.join(os.path.dirname(os.path.abspath(bindir)), "lib"))
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    out = {}
    for prog in ("cassini", "saturnd"):
        dest = os.path.join(bindir, prog)
        with open(dest, "w") as f:
            f.write(f"#!{python}\nimport sys\nsys.path.insert(0, {lib!r})\n"
                    f"from {prog}.__main__ import main\nsys.exit(main())\n")
        os.chmod(dest, 0o755)
        out[prog] = dest
    return out


def copy_packages(lib, extra=()):
    """Copy the ``cassini`` and ``saturnd`` packages (and ``extra`` files) into ``lib``,
    readable by everyone; returns ``lib``."""
    os.makedirs(lib, exist_ok=True)
    for pkg in ("cassini", "saturnd"):
        dest = os.path.join(lib, pkg)
        if not os.path.exists(dest):
            shutil.copytree(os.path.join(ROOT, pkg), dest,
                            ignore=shutil.ignore_patterns("__pycache__"))
    for path in extra:
        shutil.copy2(path, lib)
    for top, dirs, files in os.walk(lib):
        os.chmod(top, 0o755)
        for name in files:
            os.chmod(os.path.join(top, name), 0o644)
    return lib


class Config:
    pass


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
    return {"reference", "strict"} | ({"extension"} if opts.extensions else set())


def _client_cases(opts):
    from grader import golden
    names = [n for n in (opts.cases or "").split(",") if n]
    try:
        if opts.cases_dir:
            # course-format cases: every one runs (a missing tag file means reference)
            cases = golden.load_cases(names, opts.cases_dir, tz=opts.tz or _caller_tz())
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
    return "client-strict" if case.tag == "strict" else "client"


def grade(opts):
    from concurrent.futures import ThreadPoolExecutor

    from grader import daemon as D
    from grader import golden, report, sandbox

    try:
        options = sandbox.Options(base=opts.work_dir, isolation=opts.isolation,
                                  tz=opts.tz or _caller_tz())
    except RuntimeError as e:
        raise Usage(str(e)) from None
    if options.base == "/tmp" or options.base.startswith("/tmp/"):
        raise Usage("--work-dir must not be under /tmp (candidates get a private /tmp)")
    os.makedirs(options.base, exist_ok=True)
    if options.uid is not None and not _traversable_by_others(options.base):
        raise Usage(f"work directory {options.base}: the sandbox user cannot reach it "
                    f"(every directory on the way needs o+x)")
    scratch = tempfile.mkdtemp(prefix="saturnd-grade-", dir=options.base)
    os.chmod(scratch, 0o755)
    options.base = scratch
    notes = [f"isolation {options.describe()}", f"TZ={options.tz} in the sandbox"]
    figures = []
    outcomes = []
    t_start = time.monotonic()
    submission = opts.build_status is not None
    if submission:
        tail = []
        if opts.build_log:
            try:
                with open(opts.build_log, "rb") as f:
                    tail = f.read()[-8192:].decode("utf-8", "replace").splitlines()[-25:]
            except OSError as e:
                tail = [f"(no build log: {e.strerror})"]
        if opts.build_status:
            outcomes.append(report.Outcome("build", "make", "fail",
                                           f"the build failed (exit status {opts.build_status})",
                                           "\n".join(tail)))
        else:
            outcomes.append(report.Outcome("build", "make", "pass"))
    candidate = {"cassini": None, "saturnd": None}
    if opts.build_status:               # nothing was built: nothing else to grade
        opts.cassini = opts.saturnd = opts.reference_cassini = None
        opts.ours = False
    try:
        bindir = os.path.join(scratch, "bin")
        cassini = saturnd = None
        if opts.ours:
            ours = our_programs(bindir)
            cassini, saturnd = ours["cassini"], ours["saturnd"]
        if opts.cassini:
            candidate["cassini"] = os.path.abspath(opts.cassini)
            cassini = candidate_program(opts.cassini, bindir, "cassini", options.uid, notes)
        if opts.saturnd:
            candidate["saturnd"] = os.path.abspath(opts.saturnd)
            saturnd = candidate_program(opts.saturnd, bindir, "saturnd", options.uid, notes)
        reference = None
        if opts.reference_cassini:
            reference = candidate_program(opts.reference_cassini, bindir, "reference-cassini",
                                          options.uid, notes)
        if submission and opts.build_status:
            why = f"not graded: the build failed (exit status {opts.build_status})"
            missing = {"cassini": why, "saturnd": why}
        else:
            missing = {name: f"no {name} executable in the submission: scored 0"
                       for name, prog in (("cassini", cassini), ("saturnd", saturnd))
                       if submission and not prog}

        # -- client conformance ------------------------------------------------------------
        if cassini or "cassini" in missing:
            cases = _client_cases(opts)

            def jail(tmp, user):
                return sandbox.ClientJail(options, tmp, user)

            def one(case):
                cat = client_category(case)
                if not cassini:
                    # the full count of each profile (course skips what it never grades)
                    course = "fail" if golden.course_graded(case) else "skip"
                    verdicts = {"strict": "fail", "course": course}
                    return report.Outcome(cat, case.name, verdicts[opts.profile],
                                          missing["cassini"], verdicts=verdicts, tags=[case.tag])
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
                                      r.duration, verdicts=verdicts, lines=lines,
                                      tags=[case.tag])

            with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
                outcomes += list(pool.map(one, cases))
            where = f"cases from {opts.cases_dir}" if opts.cases_dir else \
                f"golden cases (tags {','.join(sorted(_client_tags(opts)))})"
            notes.append(f"client: {len(cases)} {where}")

        # -- daemon conformance ------------------------------------------------------------
        wanted = {n for n in (opts.scenarios or "").split(",") if n}
        scen = [("daemon-protocol", s) for s in D.PROTOCOL]
        if opts.extensions:
            scen += [("daemon-extension", s) for s in D.EXTENSIONS]
            from grader import own_requests_next as own_next    # this project's own requests
            from grader.own_requests import SCENARIOS as OWN
            scen += [("daemon-extension", s) for s in OWN + own_next.PROTOCOL]
        scen = [(cat, (name, func)) for cat, (name, func) in scen
                if not wanted or name in wanted]
        do_sched = not (opts.no_scheduling or (wanted and "scheduling" not in wanted))
        if "saturnd" in missing:
            for cat, (name, func) in scen:
                outcomes.append(report.Outcome(cat, name, "fail", missing["saturnd"]))
            if do_sched:
                outcomes += [report.Outcome("daemon-scheduling", c, "fail", missing["saturnd"])
                             for c in D.SCHEDULE_CHECKS]
                if opts.extensions:
                    outcomes += [report.Outcome("daemon-extension", c, "fail", missing["saturnd"])
                                 for c in own_next.SCHEDULE_CHECKS]
        elif saturnd and (opts.saturnd or opts.ours):
            cfg = Config()
            cfg.options = options
            cfg.saturnd = saturnd
            cfg.saturnd_cmd = opts.saturnd_cmd or DEFAULT_CMD
            cfg.manual_cmd = opts.saturnd_manual_cmd or DEFAULT_MANUAL_CMD
            cfg.clock = opts.clock or ("manual" if opts.ours else "faketime")
            cfg.speed = opts.speed
            cfg.precreate = opts.precreate_pipes_dir
            cfg.real_minutes = opts.real_minutes
            cfg.libfaketime = D.find_libfaketime(opts.libfaketime)
            observed = set()
            for cat, (name, func) in scen:
                outcomes.append(D.run_scenario(cfg, cat, name, func, observed=observed))
            figures += [f"daemon: {o}" for o in sorted(observed)]
            if not do_sched:
                pass
            elif cfg.clock == "faketime" and not cfg.libfaketime:
                outcomes += [report.Outcome("daemon-scheduling", c, "skip",
                                            "libfaketime not found (install Debian's "
                                            "libfaketime, or use --clock real --real-minutes 6)")
                             for c in D.SCHEDULE_CHECKS]
                if opts.extensions:
                    outcomes += [report.Outcome("daemon-extension", c, "skip",
                                                "libfaketime not found")
                                 for c in own_next.SCHEDULE_CHECKS]
            else:
                notes.append(D.describe_clock(cfg))
                outcomes += D.scheduling(cfg, figures)
                if opts.extensions:     # the announced next runs are the runs recorded
                    outcomes += own_next.next_runs_scheduling(cfg)

        # -- differential ------------------------------------------------------------------
        if reference:
            cfg_d = Config()
            cfg_d.options = options
            if saturnd and opts.saturnd:
                cfg_d.saturnd, cfg_d.saturnd_cmd = saturnd, opts.saturnd_cmd or DEFAULT_CMD
                which = "the candidate's daemon"
            else:
                cfg_d.saturnd = our_programs(bindir)["saturnd"]
                cfg_d.saturnd_cmd = DEFAULT_CMD
                which = "our daemon"
            cfg_d.manual_cmd = None
            cfg_d.precreate = opts.precreate_pipes_dir
            wanted = {n for n in (opts.scenarios or "").split(",") if n}
            for name, func in D.PROTOCOL + (D.EXTENSIONS if opts.extensions else []):
                if wanted and name not in wanted:
                    continue
                outcomes.append(D.run_differential(cfg_d, name, func, [cassini], [reference]))
            notes.append(f"differential: candidate client vs {opts.reference_cassini}, "
                         f"each against {which}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    notes.append(f"graded in {time.monotonic() - t_start:.1f} s")
    notes += figures
    status = 1 if any(o.status == "fail" for o in outcomes) else 0
    text = report.summary(outcomes, notes, headline=opts.profile)
    if opts.verbose:
        for o in outcomes:
            if o.status == "fail":
                print(f"=== [{o.category}] {o.name}\n{o.detail}\n")
    sys.stdout.write(text)
    if opts.summary:
        with open(opts.summary, "w", encoding="utf-8") as f:
            f.write(text)
    if opts.junit:
        report.write_junit(opts.junit, outcomes, [(f"note{i}", n) for i, n in enumerate(notes)])
    if opts.json:
        report.write_json(opts.json, outcomes, headline=opts.profile, candidate=candidate,
                          build_status=opts.build_status, exit_status=status, notes=notes)
    return status


if __name__ == "__main__":
    sys.exit(main())

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
    ap.add_argument("--tags", help="golden tags to run (default: reference, plus extension "
                                   "with --extensions)")
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
    return opts


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


def candidate_program(path, bindir, name, uid):
    """The candidate's executable, copied where the sandbox user can run it if need be."""
    if not os.path.exists(path):
        raise Usage(f"{name}: no such file: {path}")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise Usage(f"{name}: not an executable file: {path}")
    path = os.path.abspath(path)
    if uid is None or _reachable_by_others(path):
        return path
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
    python = sys.executable
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(cand) and _reachable_by_others(cand):
            python = cand
            break
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
    try:
        opts = parse(argv)
        return grade(opts)
    except Usage as e:
        print(f"saturnd-grade: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("saturnd-grade: interrupted", file=sys.stderr)
        return 130


def grade(opts):
    from concurrent.futures import ThreadPoolExecutor

    from grader import daemon as D
    from grader import golden, report, sandbox

    try:
        options = sandbox.Options(base=opts.work_dir, isolation=opts.isolation)
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
    notes = [f"isolation {options.describe()}"]
    outcomes = []
    t_start = time.monotonic()
    if opts.build_status is not None:
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
            cassini = candidate_program(opts.cassini, bindir, "cassini", options.uid)
        if opts.saturnd:
            saturnd = candidate_program(opts.saturnd, bindir, "saturnd", options.uid)
        reference = None
        if opts.reference_cassini:
            reference = candidate_program(opts.reference_cassini, bindir, "reference-cassini",
                                          options.uid)

        # -- client conformance ------------------------------------------------------------
        if cassini:
            tags = {"reference"} | ({"extension"} if opts.extensions else set())
            if opts.tags:
                tags = {t.strip() for t in opts.tags.split(",") if t.strip()}
            names = [n for n in (opts.cases or "").split(",") if n]
            try:
                cases = [c for c in golden.load_cases(names) if c.tag in tags]
            except (OSError, ValueError) as e:
                raise Usage(f"golden cases: {e}") from None

            def jail(tmp, user):
                return sandbox.ClientJail(options, tmp, user)

            def one(case):
                r = golden.run_case(case, [cassini], jail=jail, exit_deadline=opts.client_timeout)
                if r.ok:
                    return report.Outcome("client", case.name, "pass", duration=r.duration)
                text = r.report()
                urgent = [p for p in r.problems if "did not exit" in p or "signal" in p]
                first = (urgent or r.problems)[0].splitlines()[0]
                return report.Outcome("client", case.name, "fail", first, text, r.duration)

            with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
                outcomes += list(pool.map(one, cases))
            notes.append(f"client: {len(cases)} golden cases (tags {','.join(sorted(tags))})")

        # -- daemon conformance ------------------------------------------------------------
        if saturnd and (opts.saturnd or opts.ours):
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
            wanted = {n for n in (opts.scenarios or "").split(",") if n}
            scen = list(D.PROTOCOL)
            cats = [("daemon-protocol", s) for s in scen]
            if opts.extensions:
                cats += [("daemon-extension", s) for s in D.EXTENSIONS]
                from grader.own_requests import SCENARIOS as OWN  # this project's own requests
                cats += [("daemon-extension", s) for s in OWN]
            for cat, (name, func) in cats:
                if wanted and name not in wanted:
                    continue
                outcomes.append(D.run_scenario(cfg, cat, name, func))
            if opts.no_scheduling or (wanted and "scheduling" not in wanted):
                pass
            elif cfg.clock == "faketime" and not cfg.libfaketime:
                outcomes += [report.Outcome("daemon-scheduling", c, "skip",
                                            "libfaketime not found (install Debian's "
                                            "libfaketime, or use --clock real --real-minutes 6)")
                             for c in D.SCHEDULE_CHECKS]
            else:
                notes.append(D.describe_clock(cfg))
                outcomes += D.scheduling(cfg)

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
    text = report.summary(outcomes, notes)
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
    return 1 if any(o.status == "fail" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

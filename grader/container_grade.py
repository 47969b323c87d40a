"""Grade one submission folder (``ci/grade.sh``): copied as plain files into a throwaway
container of its own, built there with ``make``, graded there, the container removed.

    python -m grader.container_grade SUBMISSION_DIR OUT_DIR [-- saturnd-grade options]

OUT_DIR receives build.log, junit.xml and summary.txt.  Without a container engine the
submission is built and graded on this machine and the first line says that nothing is
isolated, unless GRADER_ISOLATION=container (as the CI templates set): then the exit
status is 2 and nothing is built.  Environment: GRADE_MAKE_ARGS, GRADE_BUILD_TIMEOUT (default 300), GRADE_CASSINI,
GRADE_SATURND (paths relative to the submission), GRADER_WORK_DIR, and the container
limits GRADER_MEMORY, GRADER_PIDS, GRADER_CPUS, GRADER_TMP_SIZE.
"""

import os
import shutil
import signal
import sys
import tempfile
from types import SimpleNamespace

from grader import batch, container


def log(text):
    print(f"grade: {text}", file=sys.stderr, flush=True)


def main(argv):
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    else:
        rest = []
    if len(argv) != 2:
        print("usage: ci/grade.sh SUBMISSION_DIR [OUT_DIR] [-- saturnd-grade options]",
              file=sys.stderr)
        return 2
    sub, out = argv
    if not os.path.isdir(sub):
        log(f"no such directory: {sub}")
        return 2
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    build_log = os.path.join(out, "build.log")
    open(build_log, "w").close()
    base = os.environ.get("GRADER_WORK_DIR") or "/var/tmp"
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix="grade-build-", dir=base)
    try:
        opts = SimpleNamespace(make_args=os.environ.get("GRADE_MAKE_ARGS", ""),
                               build_timeout=float(os.environ.get("GRADE_BUILD_TIMEOUT", "300")))
    except ValueError:
        log("GRADE_BUILD_TIMEOUT: not a number")
        return 2
    box = None
    # a cancelled CI job (SIGTERM) still removes the container, through the finally below
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        try:
            box = container.Box.create(work, os.path.basename(os.path.abspath(sub)))
            os.environ["GRADER_BOX"] = box.handle()
            os.environ["GRADER_ISOLATION"] = "container"
            runner = ([], None)
        except container.NoEngine as e:
            if os.environ.get("GRADER_ISOLATION") == "container":
                # CI templates set it: never grade un-isolated there, say why in one line
                print(f"grade: GRADER_ISOLATION=container but {e}: not grading without "
                      f"isolation", file=sys.stderr, flush=True)
                return 2
            print(f"grade: NOTHING IS ISOLATED ({e}): the submission is built and graded on "
                  f"this machine", file=sys.stderr, flush=True)
            os.environ.pop("GRADER_BOX", None)
            os.environ["GRADER_ISOLATION"] = "light"
            runner = batch._build_runner()
        log(f"building with make (log: {build_log})")
        b = batch.build(os.path.abspath(sub), work, build_log, opts, runner, box)
        status = {"ok": 0, "no makefile": 0, "timeout": 124}.get(
            b["build"], b["build_status"] if b["build_status"] is not None else 1)
        args = ["--build-status", str(status), "--build-log", build_log,
                "--junit", os.path.join(out, "junit.xml"),
                "--summary", os.path.join(out, "summary.txt")]
        if status == 0:
            found = {}
            for prog, var in (("cassini", "GRADE_CASSINI"), ("saturnd", "GRADE_SATURND")):
                if os.environ.get(var):
                    p = container.regular_in(b["src"], os.path.join(b["src"], os.environ[var]))
                else:
                    p = batch.find_program(b["src"], prog)
                if p:
                    found[prog] = p
                    log(f"{'client' if prog == 'cassini' else 'daemon'}: "
                        f"{os.path.relpath(p, b['src'])}")
                    args += [f"--{prog}", p]
            if not found:
                msg = "the build made neither a cassini nor a saturnd executable"
                log(msg)
                with open(build_log, "a") as f:
                    f.write(msg + "\n")
                args[1] = "127"
        else:
            log(f"the build failed ({b['build']})")
        from grader.__main__ import main as grade
        code = grade(args + rest)
        log(f"report: {out}/junit.xml, {out}/summary.txt (exit status {code})")
        return code
    finally:
        if box is not None:
            box.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""saturnd-grade batch: grade a whole class, and merge the class tables of CI shards.

    saturnd-grade batch [options] CLASS [-- saturnd-grade options]
    saturnd-grade batch merge [-o PREFIX] SHARD.csv...

CLASS is a folder with one sub-folder per submission, or a list file (one submission
folder per line, relative to the file; blank lines and ``#`` comments ignored).  Each
submission gets a throwaway container of its own (grader/container.py): it is copied in as
plain files, built with ``make`` there (never in the teacher's folder), its ``cassini`` and
``saturnd`` found, and graded by ``saturnd-grade ... --json FILE`` in a subprocess
(``--repeat`` times) whose candidates run in that same container; then the container is
removed.  ``-j`` submissions at once.  Without a container engine, batch refuses unless
``--trusted`` (then everything runs on this machine).  Outputs, under ``--out``:

    NAME/build.log  NAME/runK.json  NAME/runK.log  NAME/result.json   (per submission)
    class.csv  class.md  class.html                                    (the class table)

Exit status: 0 when every submission was built-or-reported and graded-or-reported, 1 when
the grader itself failed for some submission (timeout, crash, no JSON report), 2 on a
usage error.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from grader import classtable, container
from grader.report import visible

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERDICTS = ("pass", "fail", "skip")
PROFILES = classtable.PROFILES
BUILD_PATH = "/usr/local/bin:/usr/bin:/bin"
MARKER = ".saturnd-grade-batch"      # in the output folder: never taken for a submission


class Usage(Exception):
    pass


class GradeError(Exception):
    pass


# -- processes: each in its own session, killed as a group on timeout or interrupt -----------

_active: set[subprocess.Popen] = set()
_active_lock = threading.Lock()
_stopping = threading.Event()


def run_bounded(cmd, timeout, log_path, cwd=None, env=None):
    """Run ``cmd`` with stdout+stderr into ``log_path``; returns (status, timed_out).

    The command gets its own process group, killed whole when the timeout expires (a
    daemon a candidate left behind cannot keep the batch waiting)."""
    with open(log_path, "ab") as log:
        if _stopping.is_set():
            log.write(b"[batch] interrupted\n")
            return None, True
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                    start_new_session=True)
        except OSError as e:
            log.write(f"cannot run {cmd[0]}: {e.strerror}\n".encode())
            return 127, False
        with _active_lock:
            _active.add(proc)
        try:
            proc.wait(timeout=timeout)
            return proc.returncode, False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
            log.write(f"\n[batch] killed after {timeout:g} s\n".encode())
            return None, True
        finally:
            _kill_group(proc)        # whatever it left in its group
            with _active_lock:
                _active.discard(proc)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all():
    _stopping.set()
    with _active_lock:
        procs = list(_active)
    for p in procs:
        _kill_group(p)


# -- the class -------------------------------------------------------------------------------

def submissions(spec):
    """``[(name, folder)]`` sorted by name, from a class folder or a list file."""
    if os.path.isdir(spec):
        subs = []
        for entry in sorted(os.listdir(spec)):
            path = os.path.join(spec, entry)
            if not entry.startswith(".") and os.path.isdir(path):
                subs.append((entry, os.path.abspath(path)))
        if not subs:
            raise Usage(f"{spec}: no submission folder in it")
    elif os.path.isfile(spec):
        base = os.path.dirname(os.path.abspath(spec))
        subs = []
        try:
            with open(spec, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise Usage(f"{spec}: cannot read the class list ({e})") from None
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            path = os.path.normpath(os.path.join(base, line))
            if not os.path.isdir(path):
                raise Usage(f"{spec}:{n}: no such submission folder: {line}")
            subs.append((os.path.basename(path), path))
        if not subs:
            raise Usage(f"{spec}: the class list names no submission")
    else:
        raise Usage(f"{spec}: no such folder or class list file")
    names = {}
    for name, path in subs:
        if name in names:
            raise Usage(f"two submissions are named {name!r}: {names[name]} and {path}")
        names[name] = path
    return sorted(subs)


def parse_shard(text):
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise Usage(f"--shard {text!r}: expected K/N, e.g. 2/4") from None
    if not (n >= 1 and 1 <= k <= n):
        raise Usage(f"--shard {text!r}: need 1 <= K <= N")
    return k, n


def shard(subs, k, n):
    """The K-th of N shards (1-based): every N-th submission of the sorted class."""
    return [s for i, s in enumerate(subs) if i % n == k - 1]


# -- build -----------------------------------------------------------------------------------

def _build_runner():
    """When we are root: make runs as nobody, without network if we can."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return [], None
    import pwd
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return [], None
    runner = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
              "--reset-env"]
    if shutil.which("unshare") and subprocess.run(
            ["unshare", "--net", "true"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0:
        runner = ["unshare", "--net"] + runner
    return runner, (pw.pw_uid, pw.pw_gid)


def find_program(src, name):
    """Where make put ``name``: the top level, ``bin/``, else the first one found (depth 4);
    only a regular executable file reached through no symlink (a link made by the build
    could point anywhere on this machine)."""
    for cand in (os.path.join(src, name), os.path.join(src, "bin", name)):
        if container.regular_in(src, cand):
            return cand
    found = []
    base_depth = src.rstrip("/").count("/")
    for d, dirs, files in os.walk(src):
        if d.count("/") - base_depth >= 4:
            dirs[:] = []
        dirs.sort()
        p = os.path.join(d, name)
        if name in files and container.regular_in(src, p):
            found.append(p)
    return sorted(found)[0] if found else None


def build(sub_path, work, log_path, opts, runner, box=None):
    """Copy (plain files only) and make, in the submission's container ``box`` when there
    is one, else on this machine (``--trusted``); returns a dict: build, build_status, src."""
    src = os.path.join(box.root if box is not None else work, "src")
    cmd, ids = runner
    if box is not None:
        ids = (box.uid, box.gid)
    try:
        with open(log_path, "a") as log:
            container.copy_plain(sub_path, src, *(ids or (None, None)), log=log)
    except OSError as e:
        with open(log_path, "a") as log:
            log.write(f"cannot copy the submission: {e}\n")
        return {"build": "copy failed", "build_status": None, "src": None}
    os.chmod(work, 0o755)
    if not any(os.path.isfile(os.path.join(src, m)) and not os.path.islink(os.path.join(src, m))
               for m in ("GNUmakefile", "makefile", "Makefile")):
        with open(log_path, "a") as log:
            log.write("no Makefile: nothing built\n")
        return {"build": "no makefile", "build_status": None, "src": src}
    if box is not None:
        status, timed_out = box.run(["make"] + shlex.split(opts.make_args), src,
                                    opts.build_timeout, log_path, env=box.env(src))
        if timed_out:
            box.kill_all()          # whatever make left running
        else:
            # nothing make started may outlive it (a detached saboteur)
            box.kill_all()
        return {"build": "timeout" if timed_out else "ok" if status == 0 else "failed",
                "build_status": None if timed_out else status, "src": src}
    env = {"PATH": BUILD_PATH, "HOME": src, "LANG": "C"}
    status, timed_out = run_bounded(cmd + ["make"] + shlex.split(opts.make_args),
                                    opts.build_timeout, log_path, cwd=src, env=env)
    if timed_out:
        return {"build": "timeout", "build_status": None, "src": src}
    return {"build": "ok" if status == 0 else "failed", "build_status": status, "src": src}


# -- the grader's JSON reports ---------------------------------------------------------------

def load_report(path):
    """A grader ``--json`` report, checked against the contract (GradeError otherwise)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise GradeError("no JSON report") from None
    except (OSError, ValueError) as e:
        raise GradeError(f"unreadable JSON report ({e})") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise GradeError("JSON report: not version 1")
    cases = data.get("cases")
    if not isinstance(cases, list):
        raise GradeError("JSON report: no case list")
    for c in cases:
        if not (isinstance(c, dict) and isinstance(c.get("category"), str)
                and isinstance(c.get("name"), str) and isinstance(c.get("verdicts"), dict)):
            raise GradeError("JSON report: a case without category, name or verdicts")
        for p in PROFILES:
            if c["verdicts"].get(p) not in VERDICTS:
                raise GradeError(f"JSON report: case {c['name']!r}: bad {p} verdict")
    scores = data.get("scores")
    if scores is None:
        data["scores"] = scores_from_cases(cases)
    else:
        try:
            for p in PROFILES:
                for s in scores[p].values():
                    if not (isinstance(s["passed"], int) and isinstance(s["total"], int)):
                        raise TypeError
        except (KeyError, TypeError, AttributeError):
            raise GradeError("JSON report: malformed scores") from None
    return data


def scores_from_cases(cases):
    scores = {p: {} for p in PROFILES}
    for c in cases:
        for p in PROFILES:
            v = c["verdicts"][p]
            if v == "skip":
                continue
            s = scores[p].setdefault(c["category"], {"passed": 0, "total": 0})
            s["total"] += 1
            s["passed"] += v == "pass"
    return scores


def combine(reports):
    """Scores of several runs of one submission, and its flaky cases.

    A case is flaky when its verdict (under either profile) differs between runs, or it is
    missing from some run.  Scores are the first run's, with every flaky case that passed
    there taken out of ``passed`` (never silently counted); totals are unchanged."""
    first = reports[0]
    scores = {p: {cat: dict(s) for cat, s in first["scores"].get(p, {}).items()}
              for p in PROFILES}
    per_run = []
    for r in reports:
        per_run.append({(c["category"], c["name"]): c["verdicts"] for c in r["cases"]})
    keys = sorted(set().union(*per_run))
    flaky = []
    for key in keys:
        seen = [run.get(key) for run in per_run]
        if any(v is None for v in seen) or any(
                len({v[p] for v in seen}) > 1 for p in PROFILES):
            flaky.append({"category": key[0], "name": key[1],
                          "verdicts": [None if v is None else {p: v[p] for p in PROFILES}
                                       for v in seen]})
            v0 = per_run[0].get(key)
            if v0:
                for p in PROFILES:
                    if v0[p] == "pass" and key[0] in scores[p]:
                        scores[p][key[0]]["passed"] -= 1
    return scores, flaky


TOP_REASONS = 3


# decoded values in a message: b'...' literals and numbers
_VALUES = re.compile(r"""b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*"|\d+""")


def _reason_key(message):
    """A message with its decoded values blanked: the failures that differ only by their
    values are one reason."""
    return _VALUES.sub("#", message)


def top_reasons(report, limit=TOP_REASONS, width=160):
    """The most frequent reasons a submission lost points: ``"client: 12x MESSAGE"``, the
    failures (under either profile) of its report grouped by category and by message (the
    ones differing only by their values together: MESSAGE is the first of them); the
    most frequent of each category first, so that a daemon's failures are not hidden
    behind the client's."""
    groups = {}
    for c in report.get("cases", []):
        if "fail" not in c["verdicts"].values():
            continue
        msg = " ".join(str(c.get("message") or "failed").split())
        key = (c["category"], _reason_key(msg))
        first, n = groups.get(key, (msg, 0))
        groups[key] = (first, n + 1)
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1][1], kv[0]))
    best, seen = [], set()
    for key, value in ranked:               # each category's most frequent first
        if key[0] not in seen:
            seen.add(key[0])
            best.append((key, value))
    best.sort(key=lambda kv: (-kv[1][1], kv[0]))
    best += [kv for kv in ranked if kv not in best]
    out = []
    for (cat, _), (msg, n) in best[:limit]:
        msg = msg if len(msg) <= width else msg[:width - 3] + "..."
        out.append(f"{cat}: {n}x {msg}")
    return out


def row_for(name, result):
    """The class-table row of one submission's result."""
    row = {"submission": name, "build": result["build"],
           "build_status": "" if result["build_status"] is None else str(result["build_status"]),
           "cassini": result["cassini"] or "", "saturnd": result["saturnd"] or "",
           "grading": result["grading"], "runs": str(result["runs"])}
    scores = result.get("scores")
    for p in PROFILES:
        if scores is not None:
            passed = sum(s["passed"] for s in scores[p].values())
            total = sum(s["total"] for s in scores[p].values())
            row[f"{p}_passed"], row[f"{p}_total"] = str(passed), str(total)
            row[f"{p}_percent"] = f"{100.0 * passed / total:.1f}" if total else ""
            for cat, s in scores[p].items():
                row[f"{p}:{cat}"] = f"{s['passed']}/{s['total']}"
        else:
            row[f"{p}_passed"] = row[f"{p}_total"] = row[f"{p}_percent"] = ""
    flaky = result.get("flaky") or []
    missing = [f"{p}: missing (scored 0 of the full count)" for p in ("cassini", "saturnd")
               if result.get(p) == "missing"]
    row["reasons"] = classtable.REASONS_SEP.join(missing + (result.get("reasons") or []))
    row["flaky_count"] = str(len(flaky))
    row["flaky"] = ";".join(f"{f['category']}/{f['name']}" for f in flaky)
    return row


# -- one submission --------------------------------------------------------------------------

def grade_one(name, sub_path, opts, runner):
    t0 = time.monotonic()
    out = os.path.join(opts.out, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    log_path = os.path.join(out, "build.log")
    open(log_path, "w").close()
    # the folder's name in plain ASCII: a submission's name may hold any byte, and paths go
    # to the container engine as JSON text (a byte that is not UTF-8 would not mount)
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in name)
    work = tempfile.mkdtemp(prefix=f"batch-{safe[:40]}-", dir=opts.work_dir)
    result = {"submission": name, "folder": sub_path, "cassini": None, "saturnd": None,
              "runs": 0, "scores": None, "flaky": []}
    box = None
    try:
        if not opts.trusted:
            try:
                box = container.Box.create(work, name, opts.limits)
            except container.NoEngine as e:
                raise GradeError(str(e)) from None
            result["container_start_s"] = round(box.startup, 3)
        b = build(sub_path, work, log_path, opts, runner, box)
        result["build"], result["build_status"] = b["build"], b["build_status"]
        src = b["src"]
        progs = {}
        if src and b["build"] in ("ok", "no makefile"):
            for prog in ("cassini", "saturnd"):
                p = find_program(src, prog)
                if p:
                    progs[prog] = p
                    result[prog] = os.path.relpath(p, src)
                else:
                    result[prog] = "missing"
            if not progs:
                with open(log_path, "a") as log:
                    log.write("the build made neither a cassini nor a saturnd executable\n")
        if b["build"] not in ("ok", "no makefile"):
            result["grading"] = f"not graded (build {b['build']})"
        elif not progs:
            result["grading"] = "not graded (no cassini, no saturnd)"
        else:
            reports = []
            error = None
            for k in range(1, opts.repeat + 1):
                report = os.path.join(out, f"run{k}.json")
                cmd = list(opts.grade_cmd)
                for prog in ("cassini", "saturnd"):
                    if prog in progs:
                        cmd += [f"--{prog}", progs[prog]]
                cmd += ["--json", report, "--junit", os.path.join(out, f"run{k}.junit.xml")]
                cmd += opts.grade_args
                env = dict(os.environ)
                env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"]
                                            if env.get("PYTHONPATH") else "")
                env.pop("GRADER_BOX", None)
                if box is not None:     # the grade's candidates run in the same container
                    env["GRADER_BOX"] = box.handle()
                    env["GRADER_ISOLATION"] = "container"
                else:
                    env["GRADER_ISOLATION"] = "light"
                status, timed_out = run_bounded(cmd, opts.timeout,
                                                os.path.join(out, f"run{k}.log"), env=env)
                if timed_out:
                    error = f"run {k}: the grader took more than {opts.timeout:g} s"
                    break
                try:
                    reports.append(load_report(report))
                except GradeError as e:
                    error = f"run {k}: {e} (grader exit status {status})"
                    break
            result["runs"] = len(reports)
            result["starved"] = any(starved(os.path.join(out, f"run{k}.{ext}"))
                                    for k in range(1, opts.repeat + 1)
                                    for ext in ("log", "json", "junit.xml"))
            if reports:
                result["scores"], result["flaky"] = combine(reports)
                result["headline"] = reports[0].get("headline")
                result["reasons"] = top_reasons(reports[0])
            result["grading"] = "ok" if error is None else f"error: {error}"
    finally:
        if box is not None:
            if opts.keep_builds and os.path.isdir(os.path.join(box.root, "src")):
                shutil.copytree(os.path.join(box.root, "src"), os.path.join(work, "src"),
                                symlinks=True, ignore_dangling_symlinks=True)
            box.remove()            # the container, everything it runs, and its box
        if not opts.keep_builds:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - t0, 1)
    write_result(out, result)
    return result


def write_result(out, result):
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")


# With full isolation every grade's candidates have a uid of their own (grader/sandbox.py)
# and their own process limit. Without it (light isolation) they all run as nobody and
# share RLIMIT_NPROC (per uid): a fork bomb in one submission makes the others' programs
# fail to start with EAGAIN.  Such grades are done again, alone.
STARVED = (b"Resource temporarily unavailable", b"[Errno 11]", b"EAGAIN")
REGRADED = "ok (graded again alone: out of processes beside others)"


def starved(path):
    try:
        with open(path, "rb") as f:
            text = f.read()
        return any(sign in text for sign in STARVED)
    except OSError:
        return False


def regrade_alone(name, path, opts, runner):
    """Grade a submission again with nothing else of ours running; keep the first logs."""
    out = os.path.join(opts.out, name)
    first = os.path.join(opts.out, f".{name}.parallel")
    shutil.rmtree(first, ignore_errors=True)
    os.rename(out, first)
    try:
        res = grade_one(name, path, opts, runner)
        for entry in sorted(os.listdir(first)):
            if entry.startswith("run") and entry.endswith((".log", ".junit.xml")):
                os.rename(os.path.join(first, entry), os.path.join(out, f"parallel-{entry}"))
    finally:
        shutil.rmtree(first, ignore_errors=True)
    res["graded_again_alone"] = True
    if res["grading"] == "ok":
        res["grading"] = REGRADED
    write_result(out, res)
    return res


# -- command line ----------------------------------------------------------------------------

def parse(argv):
    if "--" in argv:
        i = argv.index("--")
        argv, grade_args = argv[:i], argv[i + 1:]
    else:
        grade_args = []
    ap = argparse.ArgumentParser(
        prog="saturnd-grade batch",
        description="Build and grade every submission of a class; write per-submission "
                    "reports and a class table (CSV, Markdown, HTML). Options after '--' go "
                    "to each saturnd-grade run. 'saturnd-grade batch merge -h': merge shards.")
    ap.add_argument("cls", metavar="CLASS",
                    help="a folder with one sub-folder per submission, or a class list file")
    ap.add_argument("-o", "--out", default="grade-class",
                    help="output folder (default ./grade-class)")
    ap.add_argument("-j", "--jobs", type=int, default=2,
                    help="submissions graded at once (default 2)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="grade each submission N times; a case whose verdict changes is "
                         "flaky and not counted as passed (default 1)")
    ap.add_argument("--shard", metavar="K/N",
                    help="grade only the K-th of N shards of the sorted class (CI)")
    ap.add_argument("--grade-cmd", metavar="CMD",
                    help="the grader command (default: this Python's '-m grader'); batch "
                         "appends --cassini/--saturnd/--json and the options after '--'")
    ap.add_argument("--make-args", default="", help="arguments for make (default none)")
    ap.add_argument("--build-timeout", type=float, default=300.0,
                    help="seconds a build may take (default 300)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds one grader run may take (default 900)")
    ap.add_argument("--work-dir", help="where the copies are built (default $GRADER_WORK_DIR "
                                       "or /var/tmp)")
    ap.add_argument("--keep-builds", action="store_true", help="keep the built copies")
    ap.add_argument("--trusted", action="store_true",
                    help="grade without a container engine: builds and candidates run on "
                         "this machine, NOTHING IS ISOLATED (only for code you trust)")
    ap.add_argument("--memory", metavar="SIZE",
                    help="memory of each submission's container, no swap beyond it "
                         "(default 1g; $GRADER_MEMORY)")
    ap.add_argument("--pids", type=int, metavar="N",
                    help="processes of each submission's container (default 256; $GRADER_PIDS)")
    ap.add_argument("--cpus", type=float, metavar="N",
                    help="CPUs of each submission's container (default 1; $GRADER_CPUS)")
    ap.add_argument("--tmp-size", metavar="SIZE",
                    help="size of each container's /tmp (default 64m; $GRADER_TMP_SIZE)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    opts = ap.parse_args(argv)
    opts.grade_args = grade_args
    if opts.shard:
        opts.shard = parse_shard(opts.shard)
    if opts.jobs < 1:
        raise Usage("-j must be at least 1")
    if opts.repeat < 1:
        raise Usage("--repeat must be at least 1")
    if opts.timeout <= 0 or opts.build_timeout <= 0:
        raise Usage("timeouts must be positive")
    try:
        opts.grade_cmd = (shlex.split(opts.grade_cmd) if opts.grade_cmd
                          else [sys.executable, "-m", "grader"])
        shlex.split(opts.make_args)
    except ValueError as e:
        raise Usage(f"cannot split a command: {e}") from None
    if not opts.grade_cmd:
        raise Usage("--grade-cmd is empty")
    opts.work_dir = opts.work_dir or os.environ.get("GRADER_WORK_DIR") or "/var/tmp"
    try:
        opts.limits = container.limits_from({"memory": opts.memory, "pids": opts.pids,
                                             "cpus": opts.cpus, "tmp": opts.tmp_size})
    except ValueError as e:
        raise Usage(f"container limits: {e}") from None
    if os.environ.get("GRADER_ISOLATION") == "light":
        opts.trusted = True             # asked for explicitly
    return opts


def check_isolation(opts):
    """A class is graded in containers, or with ``--trusted`` on this machine."""
    if opts.trusted and os.environ.get("GRADER_ISOLATION") == "container":
        raise Usage("GRADER_ISOLATION=container and --trusted contradict each other")
    if opts.trusted:
        return "NOTHING IS ISOLATED (--trusted): builds and candidates run on this machine"
    try:
        container.engine()
    except container.NoEngine as e:
        raise Usage(f"{e}: refusing to build and run a class's code without isolation; "
                    f"give --trusted to grade on this machine anyway (code you trust only)") \
            from None
    return f"isolation: a container per submission ({container.IMAGE}), " \
           f"{container.describe_limits(opts.limits)}"


def check_out_dir(subs, out, cls):
    """The output folder must not hold or be a submission (batch replaces ``OUT/NAME``);
    when it sits in the class folder, it is not a submission itself."""
    real_out = os.path.realpath(out)
    subs = [s for s in subs if not os.path.exists(os.path.join(s[1], MARKER))]
    if not subs:
        raise Usage(f"{cls}: no submission folder in it")
    for name, path in subs:
        real = os.path.realpath(path)
        target = os.path.join(real_out, name)
        for a, b in ((target, real), (real, target)):
            if a == b or a.startswith(b.rstrip("/") + "/"):
                raise Usage(f"--out {out}: it would overwrite the submission {path} "
                            f"(choose an output folder outside the class)")
    return subs


def run(opts):
    subs = check_out_dir(submissions(opts.cls), opts.out, opts.cls)
    said = check_isolation(opts)
    if not opts.quiet or opts.trusted:
        print(f"saturnd-grade batch: {said}", file=sys.stderr, flush=True)
    if opts.shard:
        subs = shard(subs, *opts.shard)
    try:
        os.makedirs(opts.out, exist_ok=True)
        os.makedirs(opts.work_dir, exist_ok=True)
    except OSError as e:
        raise Usage(f"{e.filename}: {e.strerror}") from None
    opts.out = os.path.abspath(opts.out)
    try:
        with open(os.path.join(opts.out, MARKER), "w") as f:
            f.write("saturnd-grade batch output folder (not a submission)\n")
    except OSError as e:
        raise Usage(f"{opts.out}: {e.strerror}") from None
    runner = _build_runner() if opts.trusted else ([], None)
    t0 = time.monotonic()
    done = [0]
    lock = threading.Lock()

    def one(item):
        name, path = item
        try:
            res = grade_one(name, path, opts, runner)
        except Exception as e:          # a bug or a full disk: this submission only
            res = {"submission": name, "build": "error", "build_status": None,
                   "cassini": None, "saturnd": None, "runs": 0, "scores": None, "flaky": [],
                   "grading": f"error: batch: {type(e).__name__}: {e}", "seconds": 0}
        with lock:
            done[0] += 1
            if not opts.quiet:
                row = row_for(name, res)
                score = ", ".join(f"{p} {row[f'{p}_passed']}/{row[f'{p}_total']}"
                                  for p in PROFILES if row[f"{p}_total"])
                flaky = f", {row['flaky_count']} flaky" if res["flaky"] else ""
                print(visible(f"[{done[0]}/{len(subs)}] {name}: build {res['build']}, "
                              f"{res['grading']}{', ' + score if score else ''}{flaky} "
                              f"({res['seconds']} s)", keep=""), file=sys.stderr, flush=True)
        return res

    pool = ThreadPoolExecutor(max_workers=opts.jobs)
    try:
        results = list(pool.map(one, subs))
    except KeyboardInterrupt:
        kill_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    if opts.jobs > 1 and len(subs) > 1:
        for i, (item, res) in enumerate(zip(subs, results)):
            if res.get("starved"):
                if not opts.quiet:
                    print(visible(f"{item[0]}: its programs could not start (out of "
                                  f"processes) beside other grades: grading it again, alone",
                                  keep=""), file=sys.stderr, flush=True)
                results[i] = regrade_alone(item[0], item[1], opts, runner)
    rows = [row_for(r["submission"], r) for r in results]
    paths = classtable.write_all(rows, os.path.join(opts.out, "class"))
    elapsed = time.monotonic() - t0
    print(f"{len(subs)} submissions in {elapsed:.1f} s "
          f"({elapsed / max(1, len(subs)):.1f} s each, -j {opts.jobs}, --repeat {opts.repeat}); "
          f"class table: {', '.join(paths)}", file=sys.stderr)
    return 1 if any(r["grading"].startswith("error") for r in results) else 0


def merge_main(argv):
    ap = argparse.ArgumentParser(
        prog="saturnd-grade batch merge",
        description="Merge the class tables (class.csv) of CI shards into one class table.")
    ap.add_argument("tables", nargs="+", metavar="SHARD.csv")
    ap.add_argument("-o", "--out", default="class",
                    help="output prefix: writes PREFIX.csv, PREFIX.md, PREFIX.html "
                         "(default ./class)")
    opts = ap.parse_args(argv)
    try:
        tables = [(t, classtable.read_csv(t)) for t in opts.tables]
        rows = classtable.merge(tables)
        d = os.path.dirname(opts.out)
        if d:
            os.makedirs(d, exist_ok=True)
        # links from the merged page to each shard's per-submission reports
        folders = {r["submission"]: os.path.dirname(os.path.abspath(t))
                   for t, shard_rows in tables for r in shard_rows}
        paths = classtable.write_all(rows, opts.out, folders)
    except classtable.TableError as e:
        raise Usage(str(e)) from None
    except OSError as e:
        raise Usage(f"{e.filename}: {e.strerror}") from None
    print(f"{len(rows)} submissions from {len(tables)} shards; class table: "
          f"{', '.join(paths)}", file=sys.stderr)
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job): stopped like Ctrl-C, the grades in flight killed."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv):
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if argv and argv[0] == "merge":
            return merge_main(argv[1:])
        return run(parse(argv))
    except Usage as e:
        print(f"saturnd-grade batch: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        kill_all()
        print("saturnd-grade batch: interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(e, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)

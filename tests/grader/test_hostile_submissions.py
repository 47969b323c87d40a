"""Hostile submissions graded with ``saturnd-grade batch`` (as root, as CI does): each
attack of tests/grader/hostile/ beside an honest submission, and what must hold after.

These tests need the container engine and the candidate image (``saturnd-grader:ci``,
ci/build-grader-image.sh): without them they are skipped with the reason, and FAIL when
``CI`` is set.  See docs/grading-isolation.md for the threat model.
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from grader import container
from testkit import ROOT

pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

HERE = Path(__file__).resolve().parent
HOSTILE = HERE / "hostile"
HONEST = HERE / "fixtures" / "c-submission"
# client cases that all send a request: 8 the honest client passes, 4 it fails
CASES = ("001-list-empty,002-list-no-option,003-list-one-task,004-list-spec-example,"
         "013-list-pairs,038-last-operation-wins,060-remove-ok,061-remove-not-found,"
         "020-create-defaults,021-create-worked-example,022-create-spec-example,"
         "023-create-attached-args")
N_CASES = len(CASES.split(","))
CLIENT_ONLY = ["--cases", CASES, "--scenarios", "none"]


@pytest.fixture(scope="module", autouse=True)
def engine(container_engine):
    """The container engine and the candidate image, or skip (fail under CI)."""


@pytest.fixture
def token():
    return uuid.uuid4().hex[:12]


@pytest.fixture
def place(token):
    """A scratch folder under /var/tmp (the work folder a CI job would use), removed after;
    whatever process still carries ``token`` is killed (by pid) and reported."""
    path = Path(tempfile.mkdtemp(prefix="hostile-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    for pid in _running(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)
    for p in Path("/var/tmp").glob(f"litter-{token}*"):
        p.unlink()


def _running(token):
    """Pids of the processes whose command line carries ``token``."""
    found = []
    needle = token.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(name))
        except OSError:
            pass
    return found


def submission(cls, name, fixture, **subst):
    """Copy a fixture submission into the class folder, with its @KEY@ replaced."""
    dest = cls / name
    shutil.copytree(fixture, dest)
    for path in dest.rglob("*"):
        if path.is_file() and not path.is_symlink():
            text = path.read_bytes()
            for key, value in subst.items():
                text = text.replace(f"@{key.upper()}@".encode(), str(value).encode())
            path.write_bytes(text)
    return dest


def batch(place, cls, *grade_args, jobs=2, env=None, extra=(), timeout=600):
    out = place / "out"
    work = place / "work"
    work.mkdir(exist_ok=True)
    e = dict(os.environ, PYTHONPATH=str(ROOT), GRADER_WORK_DIR=str(work), **(env or {}))
    e.pop("GRADER_ISOLATION", None)
    proc = subprocess.run([sys.executable, "-m", "grader", "batch", str(cls), "-o", str(out),
                           "--work-dir", str(work), "-j", str(jobs), *extra, "--",
                           *grade_args], capture_output=True, text=True, env=e,
                          timeout=timeout, cwd=str(ROOT))
    return proc, out


def result(out, name):
    return json.loads((out / name / "result.json").read_text())


def client_passed(res, profile="strict"):
    scores = res.get("scores") or {}
    return (scores.get(profile) or {}).get("client", {}).get("passed", 0)


def exit_statuses(out, name):
    """The exit statuses the reports give for a submission's client (``got N``)."""
    text = b"".join(p.read_bytes() for p in (out / name).glob("run*.junit.xml"))
    return [int(n) for n in re.findall(rb"exit status: expected \d+, got (\d+)", text)]


def everything_written(out):
    """All bytes of every file under the output folder."""
    return b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def honest_alone(tmp_path_factory):
    """The honest submission's client score, graded alone (the reference)."""
    place = Path(tempfile.mkdtemp(prefix="hostile-alone-", dir="/var/tmp"))
    place.chmod(0o755)
    try:
        cls = place / "class"
        cls.mkdir()
        submission(cls, "honest", HONEST)
        proc, out = batch(place, cls, *CLIENT_ONLY)
        assert proc.returncode == 0, proc.stderr
        res = result(out, "honest")
        assert res["grading"] == "ok", res
        assert client_passed(res) == 8, res["scores"]
        return client_passed(res)
    finally:
        shutil.rmtree(place, ignore_errors=True)


def no_candidate_left(place, token):
    """Nothing a candidate started runs any more; no container and no box is left."""
    assert _running(token) == [], "a candidate's process outlived the batch"
    client = container.engine()
    left = client.containers.list(all=True, filters={"label": "saturnd-grade=candidate",
                                                     "name": "saturnd-grade-"})
    mine = [c.name for c in left if any(p in c.name for p in ("honest", "saboteur", "copier",
                                                               "killer", "replay", "secrets",
                                                               "symlink", "litter", "memory",
                                                               "setuid"))
            and c.attrs.get("Mounts") and str(place) in json.dumps(c.attrs["Mounts"])]
    assert mine == [], f"containers left: {mine}"
    assert list((place / "work").iterdir()) == [], "the work folder is not empty"


# -- 1. a setuid program shipped in the submission ------------------------------------------

def test_a_shipped_setuid_program_never_runs_as_root(place, token):
    cls = place / "class"
    cls.mkdir()
    rootonly = place / "rootonly"
    rootonly.mkdir(mode=0o700)
    mark = rootonly / "mark"
    sub = cls / "setuid-root"
    sub.mkdir()
    subprocess.run(["gcc", "-O2", f'-DMARK="{mark}"', "-o", str(sub / "cassini"),
                    str(HOSTILE / "setuid-root" / "cassini.c")], check=True)
    os.chown(sub / "cassini", 1000, 1000)
    os.chmod(sub / "cassini", 0o4755)
    proc, out = batch(place, cls, *CLIENT_ONLY)
    assert proc.returncode == 0, proc.stderr
    assert not mark.exists(), "the submission's program ran as root"
    assert 42 not in exit_statuses(out, "setuid-root")
    assert result(out, "setuid-root")["grading"] == "ok"


# -- 2. a saboteur left running by make --------------------------------------------------------

def test_a_detached_saboteur_cannot_touch_a_classmate(place, token, honest_alone):
    cls = place / "class"
    cls.mkdir()
    submission(cls, "a-saboteur", HOSTILE / "saboteur", token=token)
    submission(cls, "b-honest", HONEST)
    proc, out = batch(place, cls, *CLIENT_ONLY, jobs=1)
    assert proc.returncode == 0, proc.stderr
    assert client_passed(result(out, "b-honest")) == honest_alone
    no_candidate_left(place, token)


# -- 3. copying a classmate's build --------------------------------------------------------------

def test_a_build_cannot_copy_a_classmates_programs(place, token, honest_alone):
    cls = place / "class"
    cls.mkdir()
    submission(cls, "a-honest", HONEST)
    submission(cls, "b-copier", HOSTILE / "copier")
    proc, out = batch(place, cls, *CLIENT_ONLY, jobs=2)
    assert proc.returncode == 0, proc.stderr
    assert client_passed(result(out, "a-honest")) == honest_alone
    assert client_passed(result(out, "b-copier")) == 0


# -- 4. a setuid bit set by make -----------------------------------------------------------------

def test_a_setuid_bit_set_by_the_build_does_nothing(place, token):
    cls = place / "class"
    cls.mkdir()
    submission(cls, "setuid-self", HOSTILE / "setuid-self")
    proc, out = batch(place, cls, *CLIENT_ONLY)
    assert proc.returncode == 0, proc.stderr
    codes = exit_statuses(out, "setuid-self")
    assert codes and set(codes) == {43}, codes


# -- 5. replaying the kit's golden cases ----------------------------------------------------------

def test_a_client_cannot_replay_the_golden_cases(place, token):
    cls = place / "class"
    cls.mkdir()
    submission(cls, "replay", HOSTILE / "replay")
    proc, out = batch(place, cls, *CLIENT_ONLY)
    assert proc.returncode == 0, proc.stderr
    res = result(out, "replay")
    assert res["grading"] == "ok"
    assert client_passed(res) <= N_CASES // 4, res["scores"]
    assert client_passed(res, "course") <= N_CASES // 4, res["scores"]


# -- 6. killing the classmates' processes --------------------------------------------------------

def test_a_killer_cannot_reach_a_classmate(place, token, honest_alone):
    cls = place / "class"
    cls.mkdir()
    submission(cls, "a-killer", HOSTILE / "killer", token=token)
    submission(cls, "b-honest", HONEST)
    proc, out = batch(place, cls, *CLIENT_ONLY, jobs=2)
    assert proc.returncode == 0, proc.stderr
    res = result(out, "b-honest")
    assert res["build"] == "ok" and res["grading"] == "ok", res
    assert client_passed(res) == honest_alone
    no_candidate_left(place, token)


# -- 7 and 8. the grader's secrets and the grader itself ------------------------------------------

def test_no_secret_reaches_the_build_or_the_candidates(place, token, honest_alone):
    secret = f"SATURND_TEST_SECRET=s3cret-{token}"
    cls = place / "class"
    cls.mkdir()
    submission(cls, "a-secrets", HOSTILE / "secrets")
    submission(cls, "b-honest", HONEST)
    proc, out = batch(place, cls, *CLIENT_ONLY, env={"SATURND_TEST_SECRET": f"s3cret-{token}"})
    assert proc.returncode == 0, proc.stderr
    assert f"s3cret-{token}".encode() not in everything_written(out), secret
    for name in ("a-secrets", "b-honest"):
        assert result(out, name)["grading"] == "ok", result(out, name)
    assert client_passed(result(out, "b-honest")) == honest_alone
    assert client_passed(result(out, "a-secrets")) < N_CASES
    # it exits 42 when it found a secret, 43 when it forged a report or killed a grader
    assert not {42, 43} & set(exit_statuses(out, "a-secrets"))


def test_ci_grade_sh_keeps_the_secret_from_make(place, token):
    sub = submission(place, "secrets", HOSTILE / "secrets")
    out = place / "grade-out"
    env = dict(os.environ, SATURND_TEST_SECRET=f"s3cret-{token}",
               GRADER_WORK_DIR=str(place), PYTHONPATH=str(ROOT), GRADE_PYTHON=sys.executable)
    env.pop("GRADER_ISOLATION", None)
    proc = subprocess.run(["bash", str(ROOT / "ci" / "grade.sh"), str(sub), str(out), "--",
                           *CLIENT_ONLY], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    assert (out / "build.log").exists()
    assert b"PATH=" in (out / "build.log").read_bytes()        # make printed its env
    assert f"s3cret-{token}".encode() not in everything_written(out)


# -- 9. a symlink to a root-only file ----------------------------------------------------------

def test_a_symlink_made_by_the_build_is_never_followed(place, token):
    rootonly = place / "rootonly"
    rootonly.mkdir(mode=0o700)
    secret = rootonly / "secret"
    secret.write_text(f"TOPSECRET-{token}\n")
    secret.chmod(0o700)
    cls = place / "class"
    cls.mkdir()
    submission(cls, "symlink", HOSTILE / "symlink", secret=secret)
    proc, out = batch(place, cls, "--cases", CASES, "--scenarios", "list-empty")
    assert proc.returncode == 0, proc.stderr
    res = result(out, "symlink")
    assert res["cassini"] == "missing", res
    assert f"TOPSECRET-{token}".encode() not in everything_written(out)


# -- 10. litter on the host --------------------------------------------------------------------

def test_a_client_leaves_nothing_on_the_host(place, token):
    cls = place / "class"
    cls.mkdir()
    submission(cls, "litter", HOSTILE / "litter", token=token)
    proc, out = batch(place, cls, *CLIENT_ONLY)
    assert proc.returncode == 0, proc.stderr
    assert result(out, "litter")["grading"] == "ok"
    left = [p for d in ("/tmp", "/dev/shm", "/var/tmp") for p in Path(d).glob(f"litter-{token}*")]
    assert left == []
    no_candidate_left(place, token)


# -- 11. memory counted per submission ----------------------------------------------------------

def test_memory_is_limited_per_submission(place, token):
    cls = place / "class"
    cls.mkdir()
    submission(cls, "memory", HOSTILE / "memory")
    proc, out = batch(place, cls, "--cases", "001-list-empty", "--scenarios", "none",
                      env={"GRADER_MEMORY": "512m"})
    assert proc.returncode == 0, proc.stderr
    codes = exit_statuses(out, "memory")
    assert codes and 42 not in codes, codes


# -- 12. escape sequences for the teacher's terminal -----------------------------------------

def test_escape_sequences_never_reach_the_teachers_terminal(place, token):
    """A client writing clear-screen, window-title and OSC 52 (clipboard) sequences: the
    batch's own output and every text report show them as visible text, never raw."""
    mark = token.encode().hex()
    cls = place / "class"
    cls.mkdir()
    submission(cls, "terminal", HOSTILE / "terminal", mark=mark)
    proc, out = batch(place, cls, *CLIENT_ONLY)
    assert proc.returncode == 0, proc.stderr
    assert result(out, "terminal")["grading"] == "ok"
    printed = (proc.stdout + proc.stderr).encode("utf-8", "surrogateescape")
    written = everything_written(out)
    for raw in (b"\x1b", b"\x07", b"\x9b"):
        assert raw not in printed, printed[:2000]
        assert raw not in written
    # the bytes did reach the reports, made visible
    assert f"\\x1b]52;c;{mark}".encode() in written


# -- 13. formulas and HTML for the teacher's spreadsheet and browser ---------------------------

FORMULA_NAME = '=HYPERLINK("http:%evil","open")'
HTML_NAME = "<img src=x onerror=alert(1)>"


def test_class_tables_stay_inert(place, token):
    """Submissions named like formulas and HTML, whose client prints formulas and HTML: no
    class.csv cell starts a formula, class.md and class.html carry no raw HTML."""
    cls = place / "class"
    cls.mkdir()
    for name in (FORMULA_NAME, HTML_NAME, "@SUM(1+1)", "-2+3"):
        submission(cls, name, HOSTILE / "spreadsheet", mark=token)
    proc, out = batch(place, cls, *CLIENT_ONLY)
    assert proc.returncode == 0, proc.stderr
    with open(out / "class.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    cells = [c for r in rows for c in r]
    assert "'" + FORMULA_NAME in cells and "'@SUM(1+1)" in cells and "'-2+3" in cells, cells
    for c in cells:
        assert not c.startswith(("=", "+", "-", "@", "\t", "\r")), c
    for page in ("class.md", "class.html"):
        text = (out / page).read_text(encoding="utf-8")
        assert "<img" not in text, page
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, page


# -- all of them at once --------------------------------------------------------------------------

def test_a_hostile_class_beside_an_honest_submission(place, token, honest_alone):
    """The batch of every hostile fixture beside an honest one: the honest one scores what
    it scores alone, the replay at most a quarter of the client cases, nothing a candidate
    started is running afterwards, no file of theirs is left outside the out folder."""
    rootonly = place / "rootonly"
    rootonly.mkdir(mode=0o700)
    secret = rootonly / "secret"
    secret.write_text(f"TOPSECRET-{token}\n")
    secret.chmod(0o700)
    cls = place / "class"
    cls.mkdir()
    for name in ("saboteur", "killer", "copier", "setuid-self", "replay", "secrets",
                 "symlink", "litter"):
        submission(cls, name, HOSTILE / name, token=token, secret=secret)
    submission(cls, "honest", HONEST)
    t0 = time.monotonic()
    proc, out = batch(place, cls, *CLIENT_ONLY, jobs=2,
                      env={"SATURND_TEST_SECRET": f"s3cret-{token}"})
    assert proc.returncode == 0, proc.stderr
    assert client_passed(result(out, "honest")) == honest_alone
    assert client_passed(result(out, "replay")) <= N_CASES // 4
    no_candidate_left(place, token)
    left = [p for d in ("/tmp", "/dev/shm", "/var/tmp") for p in Path(d).glob(f"litter-{token}*")]
    assert left == []
    written = everything_written(out)
    assert f"s3cret-{token}".encode() not in written
    assert f"TOPSECRET-{token}".encode() not in written
    assert re.search(r"9 submissions in", proc.stderr), proc.stderr
    assert time.monotonic() - t0 < 300

"""The grading kit graded: our implementation scores 100 %, each broken candidate
fails with the right diagnosis, nothing hangs, nothing is left running."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from testkit import ROOT
from testkit.procs import leftover_processes

from grader import scheduling, suites
from grader import sandbox

HAVE_FAKETIME = scheduling.find_libfaketime() is not None
FULL = sandbox.namespaces_available()


def _no_leftovers(marker):
    deadline = time.monotonic() + 5
    while leftover_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftover_processes(marker) == []


# --- our own implementation ------------------------------------------------------------
@pytest.mark.timeout(120)
def test_ours_scores_100_percent(grade):
    g = grade("--ours", "--extensions")
    assert g.code == 0, g.stdout + g.stderr
    assert g.of("client") and set(g.of("client").values()) == {"pass"}
    for cat in ("daemon-protocol", "daemon-extension", "daemon-scheduling"):
        assert g.of(cat), cat
        assert set(g.of(cat).values()) == {"pass"}, (cat, g.stdout)
    # every reference and extension case ran, no deviation case: 96 (113 and 114, -t with
    # fields left out, are deviations), plus this project's own requests (golden cases
    # 170-188: 19; 190-209: 20; 210-226: 17; 240-253: 14)
    assert len(g.of("client")) == 96 + 19 + 20 + 17 + 14
    assert g.of("client-strict") and set(g.of("client-strict").values()) == {"pass"}
    assert len(g.of("client-strict")) == 3
    # this project's own requests (grader/own_requests.py)
    assert {"own-reset-history", "own-clone", "own-error-log", "next-runs",
            "next-runs-are-the-runs"} <= set(g.of("daemon-extension"))
    assert "manual clock" in g.stdout
    assert "100.0%" in g.stdout and "failures" not in g.stdout


@pytest.mark.timeout(60)
@pytest.mark.skipif(not HAVE_FAKETIME, reason="libfaketime is not installed "
                    "(apt-get install libfaketime)")
def test_faketime_scheduling_of_a_correct_daemon(grade, candidates):
    g = grade("--saturnd", candidates("daemon", "faketime-friendly"), "--scenarios",
              "scheduling", "--speed", "30")
    assert g.code == 0, g.stdout
    assert set(g.of("daemon-scheduling").values()) == {"pass"}
    assert "libfaketime" in g.stdout and "x30" in g.stdout
    assert g.elapsed < 40


@pytest.mark.timeout(60)
@pytest.mark.skipif(not HAVE_FAKETIME, reason="libfaketime is not installed")
def test_faketime_catches_wrong_exit_codes(grade, candidates):
    g = grade("--saturnd", candidates("daemon", "wrong-exit-codes"), "--scenarios",
              "scheduling", "--speed", "30")
    assert g.code == 1
    s = g.of("daemon-scheduling")
    assert s["exit-codes"] == "fail"
    others = ("every-minute", "selected-minutes-only", "outputs", "runs-within-their-minute",
              "other-days-never")
    failed = {k: g.text("daemon-scheduling", k) for k in others if s[k] != "pass"}
    assert not failed, failed
    text = g.text("daemon-scheduling", "exit-codes")
    import re       # the window's first minute depends on how fast the tasks were created
    assert re.search(r"`exit 3` task: (08:59|09:00):00 -> 0", text), text


# --- broken clients ----------------------------------------------------------------------
CASES = "001-list-empty,003-list-one-task,020-create-defaults,084-times-not-found,135-unknown-option"


@pytest.mark.timeout(60)
def test_wrong_byte_order(grade, candidates):
    g = grade("--cassini", candidates("client", "byteorder"), "--cases", CASES)
    assert g.code == 1
    c = g.of("client")
    assert c["135-unknown-option"] == "pass"          # sends nothing: nothing to get wrong
    for name in ("001-list-empty", "003-list-one-task", "020-create-defaults"):
        assert c[name] == "fail"
        assert "request" in g.text("client", name) and "differs" in g.text("client", name)
    text = g.text("client", "001-list-empty")
    assert "first difference at offset 0" in text
    assert "4c 53" in text and "53 4c" in text          # expected LS, got SL
    assert "first difference at offset 0" in g.stdout


@pytest.mark.timeout(60)
def test_missing_newline(grade, candidates):
    g = grade("--cassini", candidates("client", "no-newline"), "--cases", CASES)
    c = g.of("client")
    assert c["003-list-one-task"] == c["020-create-defaults"] == "fail"
    assert c["001-list-empty"] == c["084-times-not-found"] == c["135-unknown-option"] == "pass"
    text = g.text("client", "003-list-one-task")
    assert "stdout differs: expected 20 bytes, got 19; first difference at offset 19" in text
    assert "request" not in text.split("\n")[0]


@pytest.mark.timeout(60)
def test_wrong_exit_status(grade, candidates):
    g = grade("--cassini", candidates("client", "exit-status"), "--cases", CASES)
    c = g.of("client")
    assert c["084-times-not-found"] == c["135-unknown-option"] == "fail"
    assert c["001-list-empty"] == c["003-list-one-task"] == "pass"
    assert "exit status: expected 1, got 0" in g.text("client", "084-times-not-found")


@pytest.mark.timeout(60)
def test_hanging_client_times_out_and_the_run_goes_on(grade, candidates):
    path = candidates("client", "hang")
    g = grade("--cassini", path, "--cases", CASES, "--client-timeout", "2", "-j", "5")
    assert g.code == 1
    assert set(g.of("client").values()) == {"fail"}
    assert len(g.of("client")) == 5
    assert "did not exit within 2 s (killed)" in g.text("client", "001-list-empty")
    assert "did not exit within 2 s" in g.stdout
    assert g.elapsed < 30
    _no_leftovers(os.path.basename(path))


@pytest.mark.timeout(60)
def test_flooding_client_is_cut_off(grade, candidates):
    path = candidates("client", "flood")
    g = grade("--cassini", path, "--cases", "001-list-empty", "--client-timeout", "5")
    assert g.status("client", "001-list-empty") == "fail"
    text = g.text("client", "001-list-empty")
    # cut at the clients' file-size limit (SIGXFSZ, or EFBIG where it is ignored)
    assert f"stdout differs: expected 0 bytes, got {sandbox.CLIENT_FSIZE}" in text
    _no_leftovers(os.path.basename(path))


# --- broken daemons ----------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_daemon_crashing_on_remove(grade, candidates):
    g = grade("--saturnd", candidates("daemon", "crash-on-remove"), "--scenarios",
              "list-empty,create-and-list,remove,ids-not-reused", "--no-scheduling")
    p = g.of("daemon-protocol")
    assert p["list-empty"] == p["create-and-list"] == "pass"
    assert p["remove"] == p["ids-not-reused"] == "fail"
    text = g.text("daemon-protocol", "remove")
    assert "cassini -r 1" in text
    assert "killed by signal 11 (SIGSEGV)" in text.split("\n")[0]


@pytest.mark.timeout(60)
def test_hanging_detaching_daemon_with_hard_coded_pipes(grade, candidates):
    path = candidates("daemon", "hang")
    g = grade("--saturnd", path, "--saturnd-cmd", "{saturnd} -p /nowhere",
              "--scenarios", "list-empty", "--no-scheduling")
    assert g.status("daemon-protocol", "list-empty") == "fail"
    text = g.text("daemon-protocol", "list-empty")
    assert "did not answer" in text and "nobody opened the request pipe" in text
    if FULL:   # found in its private /tmp, under its own user name
        assert "(the daemon's /tmp/candidate/saturnd/pipes)" in text
    assert g.elapsed < 30
    _no_leftovers(os.path.basename(path))


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="the light sandbox is what non-root gets anyway")
def test_light_isolation_still_kills_a_detached_daemon(grade, candidates):
    path = candidates("daemon", "hang")
    g = grade("--saturnd", path, "--isolation", "light", "--scenarios", "list-empty",
              "--no-scheduling")
    assert g.status("daemon-protocol", "list-empty") == "fail"
    assert "isolation light" in g.stdout
    _no_leftovers(os.path.basename(path))


@pytest.mark.timeout(90)
def test_fork_bomb_daemon_is_contained(grade, candidates):
    path = candidates("daemon", "forkbomb")
    g = grade("--saturnd", path, "--scenarios", "list-empty", "--no-scheduling")
    assert g.status("daemon-protocol", "list-empty") == "fail"
    assert g.elapsed < 45
    _no_leftovers(os.path.basename(path))


@pytest.mark.timeout(30)
def test_daemon_that_never_makes_pipes(grade, tmp_path):
    g = grade("--saturnd", "/bin/true", "--scenarios", "list-empty", "--no-scheduling")
    assert g.status("daemon-protocol", "list-empty") == "fail"
    assert "exited before making its pipes (exited 0)" in g.text("daemon-protocol", "list-empty")


# --- differential mode -------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_differential_mode(grade, candidates):
    g = grade("--cassini", candidates("client", "no-newline"), "--ours", "--no-scheduling",
              "--reference-cassini", candidates("client", "ok"), "--cases", "001-list-empty",
              "--scenarios", "create-and-list,list-empty")
    d = g.of("differential")
    assert d["list-empty"] == "pass"
    assert d["create-and-list"] == "fail"
    text = g.text("differential", "create-and-list")
    assert "stdout (expected = reference) differs" in text
    assert "reference 0, candidate 0" not in text


# --- the command line --------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("args, words", [
    ([], "nothing to grade"),
    (["--cassini", "/no/such/client"], "no such file"),
    (["--saturnd", "/etc/passwd"], "not an executable"),
    (["--reference-cassini", "/bin/true", "--saturnd", "/bin/true"], "give --cassini too"),
    (["--cassini", "/bin/true", "--work-dir", "/tmp/x"], "must not be under /tmp"),
])
def test_usage_errors(args, words):
    p = subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True,
                       text=True, timeout=20, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2
    assert words in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(30)
def test_junit_report_is_well_formed(grade, candidates, tmp_path):
    g = grade("--cassini", candidates("client", "exit-status"), "--cases",
              "001-list-empty,084-times-not-found")
    import xml.etree.ElementTree as ET
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == "2" and root.get("failures") == "1"
    suite = root.find("testsuite")
    assert suite.get("name") == "client"
    assert g.code == 1


# --- ci/grade.sh on a C submission ----------------------------------------------------------
C_SUBMISSION = ROOT / "tests" / "grader" / "fixtures" / "c-submission"
HAVE_CC = all(shutil.which(t) for t in ("cc", "make"))


def _grade_sh(submission, out, *extra, work=None):
    env = dict(os.environ, GRADE_PYTHON=sys.executable)
    if work is not None:
        env["GRADER_WORK_DIR"] = str(work)
    return subprocess.run(["bash", str(ROOT / "ci" / "grade.sh"), str(submission), str(out),
                           "--", *extra], capture_output=True, text=True, timeout=100,
                          env=env)


@pytest.fixture
def own_work_dir():
    """A work folder of this test's own (its path marks every process of its grade: the
    copy, the build and the candidates run under it), readable by the candidates."""
    work = Path(tempfile.mkdtemp(prefix="grade-sh-test-", dir="/var/tmp"))
    work.chmod(0o755)
    yield work
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.timeout(120)
@pytest.mark.skipif(not HAVE_CC, reason="needs a C toolchain and make (apt-get install gcc make)")
def test_grade_sh_builds_and_grades_a_c_submission(tmp_path, own_work_dir):
    import xml.etree.ElementTree as ET
    p = _grade_sh(C_SUBMISSION, tmp_path / "out", "--no-scheduling", "--scenarios", "list-empty",
                  work=own_work_dir)
    assert p.returncode == 1, p.stdout + p.stderr
    assert not (C_SUBMISSION / "cassini").exists()          # built in a copy
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert summary == p.stdout
    cases = {}
    for suite in ET.parse(tmp_path / "out" / "junit.xml").getroot():
        for case in suite.iter("testcase"):
            failed = case.find("failure")
            cases[(suite.get("name"), case.get("name"))] = \
                (failed.get("message") + failed.text) if failed is not None else "pass"
    assert cases[("build", "make")] == "pass"
    client = {n: v for (c, n), v in cases.items() if c in ("client", "client-strict")}
    assert len(client) == len(suites.cases_of(extensions=False))
    # what the partial C client does: LIST, REMOVE, ... right; no CREATE at all
    for name in ("001-list-empty", "003-list-one-task", "084-times-not-found",
                 "090-stdout-ok", "100-terminate"):
        assert client[name] == "pass", (name, client[name])
    assert "request (exited) differs: expected 36 bytes, got 0" in client["020-create-defaults"]
    text = cases[("daemon-protocol", "list-empty")]
    assert "did not answer" in text and "nobody opened the request pipe" in text
    # only this grade's processes: another grade on the machine has other paths
    _no_leftovers(str(own_work_dir))
    assert list(own_work_dir.iterdir()) == [], "the grade left its work folder behind"


@pytest.mark.timeout(60)
@pytest.mark.skipif(not HAVE_CC, reason="needs a C toolchain and make")
def test_grade_sh_reports_a_failed_build(tmp_path):
    sub = tmp_path / "broken"
    sub.mkdir()
    (sub / "Makefile").write_text("cassini: cassini.c\n\tcc -o cassini cassini.c\n")
    (sub / "cassini.c").write_text("int main(void) { return syntax error; }\n")
    p = _grade_sh(sub, tmp_path / "out")
    assert p.returncode == 1
    assert "build (make)" in p.stdout and "0/1" in p.stdout
    assert "the build failed" in p.stdout
    assert "error" in (tmp_path / "out" / "junit.xml").read_text()


# --- the image -------------------------------------------------------------------------------
GRADER_IMAGE = os.environ.get("GRADER_IMAGE", "saturnd-grader:ci")


def _image_present():
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "image", "inspect", GRADER_IMAGE],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.container
@pytest.mark.timeout(120)
def test_documented_docker_command(tmp_path):
    if not _image_present():
        if os.environ.get("GRADER_IMAGE_REQUIRED"):
            pytest.fail(f"image {GRADER_IMAGE} missing (ci/build-grader-image.sh)")
        pytest.skip(f"image {GRADER_IMAGE} not built (ci/build-grader-image.sh)")
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.run(["docker", "run", "--rm", "--network", "none",
                        "-v", f"{C_SUBMISSION}:/submission:ro", "-v", f"{out}:/out",
                        GRADER_IMAGE, "--no-scheduling", "--scenarios", "list-empty"],
                       capture_output=True, text=True, timeout=110)
    assert p.returncode == 1, p.stdout + p.stderr
    summary = (out / "summary.txt").read_text()
    assert "build (make)" in summary and "  1/1 " in summary
    assert "client conformance (golden vectors)" in summary
    assert "isolation light" in summary          # no extra capabilities given
    assert (out / "junit.xml").exists() and (out / "build.log").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args, reason", [
    (["--clock", "real", "--real-minutes", "2"], "needs a budget of 6 minutes"),
    (["--libfaketime", "/nonexistent/libfaketime.so.1"], "libfaketime not found"),
])
def test_scheduling_is_skipped_with_a_reason_not_failed(grade, candidates, args, reason):
    g = grade("--saturnd", candidates("daemon", "faketime-friendly"), "--scenarios",
              "scheduling", *args)
    assert g.code == 0
    s = g.of("daemon-scheduling")
    assert len(s) == 6 and set(s.values()) == {"skip"}
    assert reason in g.text("daemon-scheduling", "every-minute")
    assert reason in g.stdout


@pytest.mark.timeout(60)
@pytest.mark.skipif(not (FULL and sandbox.pdeathsig_available()),
                    reason="needs namespaces and setpriv --pdeathsig")
def test_killing_the_grader_kills_the_candidates(candidates):
    path = candidates("daemon", "hang")
    import tempfile
    work = tempfile.mkdtemp(prefix="grader-killed-", dir="/var/tmp")   # left behind by the kill
    os.chmod(work, 0o755)
    grader = subprocess.Popen([sys.executable, "-m", "grader", "--saturnd", path,
                               "--scenarios", "list-empty", "--no-scheduling",
                               "--work-dir", work],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=str(ROOT))
    deadline = time.monotonic() + 20
    while not [pid for pid, cmd in leftover_processes(os.path.basename(path))
               if cmd.split(b" ")[1:2] == [path.encode()]]:    # "python3 PATH": the daemon
        assert time.monotonic() < deadline, "the candidate never started"
        time.sleep(0.05)
    grader.kill()
    grader.wait()
    try:
        _no_leftovers(os.path.basename(path))
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""Fair verdicts: the `strict` and `course` profiles, fair daemon scenarios, course-shaped
inputs and the --json report, each quirk reproduced by a fixture submission of ours
(fixtures/faulty.py).  Under `course` each gets the verdict the course script gives;
under `strict` its exact differences."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from testkit import ROOT

from grader import scenarios, scheduling
from grader import golden, sandbox, suites

HAVE_FAKETIME = scheduling.find_libfaketime() is not None
FULL = sandbox.namespaces_available()
CASES_DIR = ROOT / "grader" / "cases"


def _scores(g, profile, category):
    s = g.json["scores"][profile][category]
    return s["passed"], s["total"]


# --- the course script's normalisation, line by line --------------------------------------
@pytest.mark.parametrize("raw, want", [
    (b"0: 1 2 3 echo a\n", [b"0 1 2 3 echo a"]),              # every ':' removed
    (b"0: * * * echo hello \n", [b"0 * * * echo hello"]),      # one trailing space
    (b" 0: x\n", [b"0 x"]),                                    # one leading space
    (b"0: x  \n", [b"0 x "]),                                  # only one of two
    (b"a\n\n\nb", [b"a", b"b"]),                               # empty lines dropped
    (b"10: x\n9: y\n1: z\n", [b"1 z", b"9 y", b"10 x"]),        # sort -n -k1,1
    (b"x  y\n", [b"x  y"]),                                    # [[:blank:]]+ is a no-op
    (b" \n:\n", []),                                           # empty once normalised
])
def test_course_normalisation(raw, want):
    assert golden.course_normalise(raw) == want


def test_reference_tag_holds_no_nul_outputs():
    cases = golden.load_cases(cases_dir=str(CASES_DIR))
    beyond = [c.name for c in cases if c.tag == "reference" and b"\0" in c.stdout]
    assert beyond == []
    strict = {c.name for c in cases if c.tag == "strict"}
    assert {"093-stdout-binary", "096-stderr-ok"} <= strict


# --- client fixtures ---------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_trailing_space_in_list_lines(grade, candidates):
    g = grade("--cassini", candidates("client", "trailing-space"), "--cases",
              "001-list-empty,003-list-one-task,004-list-spec-example,020-create-defaults")
    assert g.verdicts("client", "003-list-one-task") == {"strict": "fail", "course": "pass"}
    assert g.verdicts("client", "004-list-spec-example") == {"strict": "fail", "course": "pass"}
    assert g.verdicts("client", "020-create-defaults") == {"strict": "pass", "course": "pass"}
    assert g.verdicts("client", "001-list-empty") == {"strict": "pass", "course": "pass"}
    msg = g.message("client", "003-list-one-task")
    assert "expected b'0: 1 2 3 echo hello\\n', got b'0: 1 2 3 echo hello \\n'" in msg \
        or ("expected b'" in msg and " \\n'" in msg), msg
    assert g.code == 1                                   # headline: strict
    assert g.json["headline"] == "strict" and g.json["exit_status"] == 1
    assert _scores(g, "course", "client") == (4, 4)


@pytest.mark.timeout(60)
def test_course_profile_picks_the_exit_status(grade, candidates):
    g = grade("--cassini", candidates("client", "trailing-space"), "--cases",
              "003-list-one-task", "--profile", "course")
    assert g.code == 0 and g.json["exit_status"] == 0 and g.json["headline"] == "course"
    assert "course" in g.stdout and "strict" in g.stdout       # both scored


@pytest.mark.timeout(60)
def test_errors_printed_on_stdout(grade, candidates):
    g = grade("--cassini", candidates("client", "errors-on-stdout"), "--cases",
              "003-list-one-task,084-times-not-found,135-unknown-option")
    assert g.verdicts("client", "003-list-one-task") == {"strict": "pass", "course": "pass"}
    # exit status 1 as expected: the course does not compare stdout then
    assert g.verdicts("client", "084-times-not-found") == {"strict": "fail", "course": "pass"}
    # no request to send: the course script never grades such a case
    assert g.verdicts("client", "135-unknown-option") == {"strict": "fail", "course": "skip"}
    assert "expected b'', got b'" in g.message("client", "084-times-not-found")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["bin-false", "silent-exit-0"])
def test_do_nothing_clients_score_zero(grade, candidates, kind):
    path = "/bin/false" if kind == "bin-false" else \
        candidates.script("silent-exit-0", "#!/bin/sh\nexit 0\n")
    g = grade("--cassini", path, "-j", "4")
    for profile in ("strict", "course"):
        passed, total = _scores(g, profile, "client")
        assert passed == 0 and total > 0, (profile, passed, total)
    for profile in ("strict", "course"):
        assert _scores(g, profile, "client-strict")[0] == 0
    reqs = [c for c in g.json["cases"] if c["category"] in ("client", "client-strict")]
    assert len(reqs) == len(suites.cases_of(extensions=False))
    sent = {c.name: bool(c.request) for c in golden.load_cases(cases_dir=str(CASES_DIR))}
    for c in reqs:
        assert c["verdicts"]["strict"] == "fail", c
        if sent[c["name"]] and c["tags"] == ["reference"] \
                and c["name"] not in golden.STRICT_ONLY:
            assert c["verdicts"]["course"] == "fail"
            assert "sent no request" in c["message"], c
        else:
            assert c["verdicts"]["course"] == "skip"
    # every failure is in the summary, none hidden after the first 20 or 30
    for c in reqs:
        assert c["name"] in g.stdout, c["name"]
    assert "more failures" not in g.stdout


@pytest.mark.timeout(60)
def test_client_taking_the_user_name_from_getpwuid(grade, candidates):
    g = grade("--cassini", candidates("client", "getpwuid"), "--cases", "155-default-pipes-dir")
    assert g.verdicts("client", "155-default-pipes-dir") == {"strict": "pass", "course": "pass"}, \
        g.stdout


@pytest.mark.timeout(60)
def test_summary_shows_decoded_values_and_client_stderr(grade, candidates):
    g = grade("--cassini", candidates("client", "exit-status"), "--cases",
              "084-times-not-found,020-create-defaults")
    assert "exit status: expected 1, got 0" in g.stdout
    assert "client stderr:" in g.stdout


# --- daemon fixtures -----------------------------------------------------------------------------
FAIR = "create-and-list,list-many,remove,ids-not-reused,unknown-task-ids,never-ran"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["ids-from-1", "newest-first"])
def test_daemon_ids_and_list_order_are_not_assumed(grade, candidates, mode):
    g = grade("--saturnd", candidates("daemon", mode), "--scenarios", FAIR, "--no-scheduling")
    p = g.of("daemon-protocol")
    assert len(p) == 6
    assert set(p.values()) == {"pass"}, g.stdout
    assert g.code == 0


@pytest.mark.timeout(120)
def test_own_request_scenarios_use_the_ids_the_daemon_returns(grade, candidates):
    own = "own-reset-history,own-clone,own-error-log,next-runs"
    g = grade("--saturnd", candidates("daemon", "ids-from-1"), "--extensions",
              "--scenarios", own, "--no-scheduling")
    e = g.of("daemon-extension")
    assert set(own.split(",")) <= set(e), g.stdout
    assert {e[n] for n in own.split(",")} == {"pass"}, g.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode, first, order", [("ids-from-1", 1, "increasing"),
                                                ("newest-first", 0, "decreasing")])
def test_daemon_deviations_are_reported_as_figures(grade, candidates, mode, first, order):
    g = grade("--saturnd", candidates("daemon", mode), "--scenarios", "create-and-list",
              "--no-scheduling")
    assert g.status("daemon-protocol", "create-and-list") == "pass", g.stdout
    assert f"first task id of a fresh daemon: {first} (ours: 0)" in g.stdout
    assert f"LIST order: {order} id order" in g.stdout


@pytest.mark.timeout(90)
def test_a_failing_create_is_reported_once_per_scenario(grade, candidates):
    g = grade("--saturnd", candidates("daemon", "create-fails"), "--scenarios",
              "list-empty,create-and-list,remove,never-ran,scheduling")
    p = g.of("daemon-protocol")
    assert p == {"list-empty": "pass", "create-and-list": "fail", "remove": "fail",
                 "never-ran": "fail"}
    for name in ("create-and-list", "remove", "never-ran"):
        msg = g.message("daemon-protocol", name)
        assert msg.startswith("create failed: cassini -c"), msg
        assert "(exit 1)" in msg
        assert g.stdout.count(f"{name} (strict fail") == 1          # reported once
    if HAVE_FAKETIME:
        s = g.json["cases"]
        sched = {c["name"]: c["message"] for c in s if c["category"] == "daemon-scheduling"}
        assert sched["every-minute"].startswith("create failed")
        assert all(m.startswith("not examined") for n, m in sched.items() if n != "every-minute")


@pytest.mark.timeout(90)
@pytest.mark.skipif(not HAVE_FAKETIME, reason="libfaketime is not installed")
@pytest.mark.parametrize("mode", ["late-second", "ids-from-1"])
def test_scheduling_of_quirky_daemons(grade, candidates, mode):
    g = grade("--saturnd", candidates("daemon", mode), "--scenarios", "scheduling",
              "--speed", "30")
    s = g.of("daemon-scheduling")
    assert s and set(s.values()) == {"pass"}, g.stdout
    assert "punctuality" in g.stdout
    if mode == "late-second":
        assert "1 s after" in g.stdout


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="the private /tmp needs root (namespaces)")
def test_daemon_binary_under_tmp(grade, candidates):
    src = candidates("daemon", "ok")
    where = Path(tempfile.mkdtemp(prefix="grader-under-tmp-", dir="/tmp"))
    try:
        where.chmod(0o755)
        dest = where / "saturnd"
        shutil.copy2(src, dest)
        g = grade("--saturnd", str(dest), "--scenarios", "list-empty", "--no-scheduling")
        assert g.status("daemon-protocol", "list-empty") == "pass", g.stdout
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop to nobody needs root")
@pytest.mark.parametrize("isolation", ["full", "light"])
def test_daemon_taking_the_user_name_from_getpwuid(grade, candidates, isolation):
    if isolation == "full" and not FULL:
        pytest.skip("no namespaces here")
    g = grade("--saturnd", candidates("daemon", "getpwuid"), "--isolation", isolation,
              "--scenarios", "list-empty,create-and-list", "--no-scheduling")
    assert set(g.of("daemon-protocol").values()) == {"pass"}, g.stdout
    # looked at under the machine-wide lock of light isolation: other grades on this
    # machine use /tmp/nobody only while they hold it, and clean it before letting go
    assert not _under_light_lock(Path("/tmp/nobody/saturnd").exists), \
        "the light sandbox left /tmp/nobody/saturnd behind"


def _under_light_lock(look):
    from grader import sandbox_lock
    sandbox_lock.acquire()
    try:
        return look()
    finally:
        sandbox_lock.release()


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop to nobody needs root")
def test_stale_tmp_nobody_folders_do_not_break_a_light_grade(grade, candidates):
    """A grade killed before it cleaned up leaves /tmp/nobody/saturnd/pipes (FIFOs, its
    lock file) -- here also under a name that is not UTF-8: the next light grade still
    passes and removes them (it finds them under the machine-wide lock, so they are stale)."""
    from grader import sandbox_lock
    nobody = __import__("pwd").getpwnam("nobody").pw_uid
    tops = [b"/tmp/nobody", b"/tmp/nobody\xff\xfe-stale"]
    sandbox_lock.acquire()
    try:
        for top in tops:
            pipes = top + b"/saturnd/pipes"
            os.makedirs(pipes, exist_ok=True)
            for name in (b"saturnd-request-pipe", b"saturnd-reply-pipe"):
                if not os.path.exists(pipes + b"/" + name):
                    os.mkfifo(pipes + b"/" + name)
            with open(pipes + b"/saturnd.lock", "wb") as f:
                f.write(b"12345\n")
            for d, _, files in os.walk(top):
                for p in [d] + [os.path.join(d, f) for f in files]:
                    os.chown(p, nobody, -1)
    finally:
        sandbox_lock.release()
    g = grade("--saturnd", candidates("daemon", "getpwuid"), "--isolation", "light",
              "--scenarios", "list-empty,create-and-list", "--no-scheduling")
    assert set(g.of("daemon-protocol").values()) == {"pass"}, g.stdout
    assert _under_light_lock(lambda: [t for t in tops if os.path.lexists(t + b"/saturnd")]) \
        == []


@pytest.mark.timeout(90)
def test_a_missing_daemon_scores_zero_of_its_full_count(grade, candidates):
    g = grade("--build-status", "0", "--cassini", candidates("client", "ok"), "--cases",
              "001-list-empty")
    for profile in ("strict", "course"):
        passed, total = _scores(g, profile, "daemon-protocol")
        # (malformed-then-valid counts under strict only)
        assert passed == 0 and total == len(scenarios.PROTOCOL) - (profile == "course")
        passed, total = _scores(g, profile, "daemon-scheduling")
        assert passed == 0 and total == len(scheduling.SCHEDULE_CHECKS)
    assert "no saturnd" in g.message("daemon-protocol", "list-empty")
    assert g.json["candidate"]["saturnd"] is None and g.json["build"]["status"] == 0
    assert "no saturnd" in g.stdout


# --- course-shaped inputs ------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_cases_dir_and_tz(grade, candidates, tmp_path):
    course = tmp_path / "course-tests"
    course.mkdir()
    case = course / "times-paris"
    shutil.copytree(CASES_DIR / "081-times-worked-example-paris", case)
    for extra in ("env", "tag"):                  # a bare course case: five files
        (case / extra).unlink(missing_ok=True)
    client = candidates("client", "ok")
    g = grade("--cassini", client, "--cases-dir", str(course), "--tz", "Europe/Paris")
    assert g.verdicts("course-cases", "times-paris") == \
        {"strict": "pass", "course": "pass"}, g.stdout
    g = grade("--cassini", client, "--cases-dir", str(course), "--tz", "UTC")
    assert g.verdicts("course-cases", "times-paris")["course"] == "fail"


@pytest.mark.timeout(60)
def test_cassini_package_folder_from_the_repository_root(grade):
    g = grade("--cassini", "./cassini", "--cases", "001-list-empty,003-list-one-task")
    assert g.code == 0, g.stdout + g.stderr
    assert g.of("client") == {"001-list-empty": "pass", "003-list-one-task": "pass"}


@pytest.mark.timeout(60)
def test_a_directory_without_a_cassini_is_a_usage_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "grader", "--cassini", str(tmp_path)],
                       capture_output=True, text=True, timeout=20,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and "is a directory" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(240)
def test_pip_installed_kit_grades_a_client(tmp_path):
    wheels = tmp_path / "wheels"
    try:
        from importlib.metadata import version
        recent = int(version("setuptools").split(".")[0]) >= 77
    except Exception:
        recent = False
    # offline with a recent setuptools here; else pip fetches one (build isolation)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            *(["--no-build-isolation"] if recent else []),
                            "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    wheel = next(wheels.glob("saturnd-*.whl"))
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("/")[2] for n in names
               if n.startswith("grader/cases/") and n.count("/") == 3}
    # every golden case ships with the grader, and only cases (no __pycache__)
    assert shipped == {c.name for c in golden.load_cases(cases_dir=str(CASES_DIR))}
    assert "grader/cases/README.md" in names
    inst = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=120)
    assert inst.returncode == 0, inst.stderr
    work = Path(tempfile.mkdtemp(prefix="grader-pip-", dir="/var/tmp"))
    work.chmod(0o755)
    try:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "GRADER_CASES_DIR", "VIRTUAL_ENV")}
        p = subprocess.run([str(venv / "bin" / "saturnd-grade"), "--ours", "--no-scheduling",
                            "--cases", "001-list-empty,093-stdout-binary",
                            "--scenarios", "list-empty", "--work-dir", str(work)],
                           capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                           env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        # the shipped cases were found (one reference, one strict), and the daemon graded
        assert "client: 2 golden cases" in p.stdout
        assert "1/1" in p.stdout and "daemon conformance: protocol" in p.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.timeout(60)
def test_a_missing_client_or_a_failed_build_scores_zero_of_the_full_count(grade):
    g = grade("--build-status", "2", "--no-scheduling")
    cases = golden.load_cases(cases_dir=str(CASES_DIR))
    graded = [c for c in cases if c.tag in ("reference", "strict")]
    by_course = [c for c in graded if golden.course_graded(c)]
    assert _scores(g, "strict", "client")[1] + _scores(g, "strict", "client-strict")[1] \
        == len(graded) == len(suites.cases_of(extensions=False))
    assert _scores(g, "course", "client") == (0, len(by_course))
    assert _scores(g, "strict", "daemon-protocol") == (0, len(scenarios.PROTOCOL))
    assert _scores(g, "strict", "build") == (0, 1)
    assert "not graded: the build failed" in g.message("client", "001-list-empty")
    assert g.code == 1 and g.json["build"]["status"] == 2


@pytest.mark.timeout(60)
def test_course_timeout_of_three_seconds(grade, candidates):
    g = grade("--cassini", candidates("client", "slow"), "--cases", "001-list-empty")
    assert g.verdicts("client", "001-list-empty") == {"strict": "pass", "course": "fail"}
    assert "did not end within the course's 3 s (took 3." in \
        g.message("client", "001-list-empty")
    assert "over 3 s once" in g.stdout                  # played twice before failing


# --- the course's conditions ----------------------------------------------------------------
@pytest.mark.timeout(90)
def test_a_client_that_opens_the_request_pipe_non_blocking_fails(grade, candidates):
    """The course's script starts the client and its reader together: a client opening the
    request pipe with O_NONBLOCK finds no reader (ENXIO) -- in the kit, every time."""
    cases = "001-list-empty,003-list-one-task,020-create-defaults"
    for _ in range(2):                                          # deterministic
        g = grade("--cassini", candidates("client", "nonblocking-open"), "--cases", cases)
        for name in cases.split(","):
            assert g.verdicts("client", name) == {"strict": "fail", "course": "fail"}, g.stdout
            msg = g.message("client", name)
            assert msg.startswith("sent no request"), msg
            assert "O_NONBLOCK" in msg and "said ENXIO" in msg, msg
    # a client that waits for its daemon is not slowed into a course timeout
    g = grade("--cassini", candidates("client", "ok"), "--cases", cases)
    for name in cases.split(","):
        assert g.verdicts("client", name) == {"strict": "pass", "course": "pass"}, g.stdout


@pytest.mark.timeout(90)
def test_cases_a_correct_client_cannot_pass_count_under_strict_only(grade, candidates):
    cases = "007-list-empty-fields,150-empty-reply,003-list-one-task"
    g = grade("--cassini", candidates("client", "unterminated-field"), "--cases", cases,
              "--profile", "course")
    assert g.verdicts("client", "007-list-empty-fields") == {"strict": "fail", "course": "skip"}
    assert g.verdicts("client", "003-list-one-task") == {"strict": "pass", "course": "pass"}
    assert g.code == 0, g.stdout                       # course: nothing failed
    assert "unterminated" in g.stdout                   # the reason is given
    g = grade("--cassini", candidates("client", "ok"), "--cases", cases)
    assert g.verdicts("client", "150-empty-reply") == {"strict": "pass", "course": "skip"}
    assert _scores(g, "course", "client") == (1, 1)
    assert _scores(g, "strict", "client") == (3, 3)


@pytest.mark.timeout(90)
def test_malformed_requests_count_under_strict_only(grade, candidates):
    g = grade("--saturnd", candidates("daemon", "ok"), "--scenarios",
              "malformed-then-valid,list-empty", "--no-scheduling", "--profile", "course")
    assert g.verdicts("daemon-protocol", "malformed-then-valid") == \
        {"strict": "pass", "course": "skip"}
    assert _scores(g, "course", "daemon-protocol") == (1, 1)
    assert _scores(g, "strict", "daemon-protocol") == (2, 2)
    g = grade("--build-status", "0", "--cassini", candidates("client", "ok"), "--cases",
              "001-list-empty", "--no-scheduling")
    assert _scores(g, "course", "daemon-protocol") == (0, len(scenarios.PROTOCOL) - 1)
    assert _scores(g, "strict", "daemon-protocol") == (0, len(scenarios.PROTOCOL))


@pytest.mark.timeout(120)
def test_a_client_that_hangs_everywhere_is_graded_in_a_minute(grade, candidates):
    g = grade("--cassini", candidates("client", "hang"), "-j", "4", timeout=110)
    assert g.elapsed <= 60, g.elapsed
    cases = [c for c in g.json["cases"] if c["category"] in ("client", "client-strict")]
    assert len(cases) == len(suites.cases_of(extensions=False)) and all(c["verdicts"]["strict"] == "fail" for c in cases)
    hung = [c for c in cases if "did not exit within 10 s" in c["message"]]
    not_run = [c for c in cases if c["message"].startswith("not run:")]
    assert len(hung) >= 4 and len(hung) + len(not_run) == len(cases)
    assert len({c["message"] for c in not_run}) == 1           # one message ...
    said = f"the remaining {len(not_run)} cases were not run"
    assert said in not_run[0]["message"]
    assert g.stdout.count(said) == 1, g.stdout                   # ... told once
    assert _scores(g, "course", "client")[0] == 0


@pytest.mark.timeout(90)
def test_a_daemon_serving_only_pollin_is_explained(grade, candidates):
    g = grade("--saturnd", candidates("daemon", "pollin-only"), "--scenarios", "list-empty",
              "--no-scheduling")
    assert g.status("daemon-protocol", "list-empty") == "fail"
    msg = g.message("daemon-protocol", "list-empty")
    assert "did not answer" in msg, msg
    # what the kit did, and what a daemon must cope with
    assert "wrote the whole request and closed its end" in msg, msg
    assert "POLLIN|POLLHUP" in msg, msg
    assert "POLLHUP" in g.text("daemon-protocol", "list-empty")
    # a daemon that died gets no such hint: its death is the cause
    g = grade("--saturnd", candidates("daemon", "crash-on-remove"), "--scenarios", "remove",
              "--no-scheduling")
    msg = g.message("daemon-protocol", "remove")
    assert "signal 11" in msg and "POLLHUP" not in msg, msg


# --- small traps -----------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_grader_cases_dir_behaves_like_the_option(grade, candidates, tmp_path, monkeypatch):
    course = tmp_path / "course-tests"
    case = course / "times-paris"
    shutil.copytree(CASES_DIR / "081-times-worked-example-paris", case)
    for extra in ("env", "tag"):
        (case / extra).unlink(missing_ok=True)
    monkeypatch.setenv("GRADER_CASES_DIR", str(course))
    client = candidates("client", "ok")
    g = grade("--cassini", client, "--tz", "Europe/Paris")
    assert g.verdicts("course-cases", "times-paris") == \
        {"strict": "pass", "course": "pass"}, g.stdout
    assert f"cases from {course}" in g.stdout
    monkeypatch.setenv("GRADER_CASES_DIR", str(tmp_path / "nowhere"))
    g = grade("--cassini", client)
    assert g.code == 2 and "GRADER_CASES_DIR" in g.stderr and "Traceback" not in g.stderr


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="the candidate's own uid needs root")
def test_a_script_whose_interpreter_the_candidate_cannot_reach(grade, tmp_path):
    where = Path(tempfile.mkdtemp(prefix="grader-interp-", dir="/var/tmp"))
    try:
        where.chmod(0o755)
        private = where / "private"
        private.mkdir(mode=0o700)
        shutil.copy2("/bin/sh", private / "sh")
        script = where / "cassini"
        script.write_text(f"#!{private / 'sh'}\nexit 0\n")
        script.chmod(0o755)
        g = grade("--cassini", str(script), "--cases", "001-list-empty,020-create-defaults")
        for name in ("001-list-empty", "020-create-defaults"):
            msg = g.message("client", name)
            assert msg.startswith("cannot run: cassini is a script whose interpreter"), msg
            assert str(private / "sh") in msg
        assert g.stdout.count("cannot run: cassini is a script") == 1, g.stdout   # told once
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_option_help_texts():
    p = subprocess.run([sys.executable, "-m", "grader", "-h"], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    text = " ".join(p.stdout.split())
    assert "-s -t -z -i -w)" not in text.split("--extensions", 1)[1][:60]
    assert "this project's own requests" in text
    assert "-j JOBS, --jobs JOBS golden cases played at once" in text
    assert "--isolation {auto,container,light,full} how candidates are confined" in text

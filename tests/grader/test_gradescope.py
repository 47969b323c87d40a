"""Gradescope: `saturnd-grade --gradescope FILE` writes the autograder's results.json, checked
here against Gradescope's documented format ("Autograder Specifications", output format),
and the shipped autograder folder (ci/gradescope: setup.sh, run_autograder) grades an
upload laid out as Gradescope lays it out."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from testkit import ROOT

from grader import golden

GRADESCOPE = ROOT / "ci" / "gradescope"

# The documented format: every key optional except as noted; these values only.
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format",
            "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
            "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output",
             "output_format", "tags", "visibility", "extra_data"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
STATUS = {"passed", "failed"}


def validate(data):
    """Gradescope's results.json format (raises AssertionError on any deviation)."""
    assert isinstance(data, dict)
    assert set(data) <= TOP_KEYS, set(data) - TOP_KEYS
    tests = data.get("tests", [])
    assert isinstance(tests, list)
    # "score": optional, but required if not on each test
    assert "score" in data or all("score" in t for t in tests)
    if "score" in data:
        assert isinstance(data["score"], (int, float)) and not isinstance(data["score"], bool)
    if "execution_time" in data:
        assert isinstance(data["execution_time"], int) and data["execution_time"] >= 0
    for key in ("output",):
        if key in data:
            assert isinstance(data[key], str)
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in data:
            assert data[key] in FORMATS, (key, data[key])
    for key in ("visibility", "stdout_visibility"):
        if key in data:
            assert data[key] in VISIBILITY, (key, data[key])
    for t in tests:
        assert isinstance(t, dict) and set(t) <= TEST_KEYS, set(t) - TEST_KEYS
        for key in ("score", "max_score"):
            if key in t:
                assert isinstance(t[key], (int, float)) and not isinstance(t[key], bool)
        if "status" in t:
            assert t["status"] in STATUS
        for key in ("name", "number", "output"):
            if key in t:
                assert isinstance(t[key], str)
        if "output_format" in t:
            assert t["output_format"] in FORMATS
        if "visibility" in t:
            assert t["visibility"] in VISIBILITY
        if "tags" in t:
            assert isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"])
    json.dumps(data, ensure_ascii=False).encode("utf-8")       # no lone surrogate


def _grade(tmp_path, *args):
    out = tmp_path / "results.json"
    p = subprocess.run([sys.executable, "-m", "grader", "--gradescope", str(out), *args],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT),
                       env=_env())
    return p, json.loads(out.read_text())


def _env():
    # the candidates are scripts of this machine's fixtures folder, which a container
    # does not see: light isolation, as tests/grader/conftest.py's grade() does
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("GRADER_ISOLATION", "light")
    return env


@pytest.mark.timeout(120)
def test_results_json_follows_gradescopes_format(tmp_path, candidates):
    cases = "001-list-empty,003-list-one-task,084-times-not-found,135-unknown-option"
    p, data = _grade(tmp_path, "--cassini", candidates("client", "terminal-escapes"),
                     "--cases", cases, "--profile", "course")
    validate(data)
    # one test per case graded under the headline profile (course grades no usage error)
    course = [c for c in golden.load_cases(cases.split(",")) if golden.course_graded(c)]
    assert [t["name"] for t in data["tests"]] == [f"client: {c.name}" for c in course]
    assert all(t["status"] == "failed" and t["score"] == 0 for t in data["tests"])
    assert data["score"] == 0
    # a candidate's bytes are shown, never obeyed: plain text, escapes visible
    assert all(t["output_format"] == "text" for t in data["tests"])
    assert "\x1b" not in json.dumps(data, ensure_ascii=False)
    assert "sent no request" in data["tests"][0]["output"]
    # a passing grade, the points shared by its tests
    p, data = _grade(tmp_path, "--cassini", candidates("client", "ok"), "--cases", cases,
                     "--gradescope-points", "50")
    validate(data)
    assert len(data["tests"]) == 4                              # strict: every case
    assert data["score"] == 50 and sum(t["max_score"] for t in data["tests"]) == 50
    assert {t["status"] for t in data["tests"]} == {"passed"}
    assert "client conformance" in data["output"]


def _our_pair_submission(folder, lib, python):
    folder.mkdir(parents=True)
    lines = ["all:"]
    for prog in ("cassini", "saturnd"):
        lines.append(f"\tprintf '#!{python}\\nimport sys\\nsys.path.insert(0, \"{lib}\")\\n"
                     f"from {prog}.__main__ import main\\nsys.exit(main())\\n' > {prog}")
        lines.append(f"\tchmod 755 {prog}")
    (folder / "Makefile").write_text("\n".join(lines) + "\n")


@pytest.mark.timeout(240)
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_shipped_autograder_grades_an_upload(tmp_path, candidates):
    # the zip holds what Gradescope needs at its root
    zpath = tmp_path / "autograder.zip"
    subprocess.run(["bash", str(GRADESCOPE / "make-zip.sh"), str(zpath)], check=True,
                   capture_output=True, timeout=60)
    with zipfile.ZipFile(zpath) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "kit/grader/__main__.py",
                "kit/ci/grade.sh"} <= names
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111
    # /autograder as Gradescope lays it out: source (the zip), submission, results
    top = Path(candidates.lib).parent / "autograder"
    shutil.rmtree(top, ignore_errors=True)
    with zipfile.ZipFile(zpath) as z:
        z.extractall(top / "source")
    kit = top / "source" / "kit"
    for d in (top, top / "source", kit):
        d.chmod(0o755)
    _our_pair_submission(top / "submission", candidates.lib, candidates.python)
    # Gradescope's autograder container has no Docker engine: the kit grades in it, light
    # (the submission is a script of this machine's, which a container would not see)
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock",
               AUTOGRADER_ROOT=str(top), GRADE_PYTHON=sys.executable,
               GRADE_OPTIONS="--cases 001-list-empty,003-list-one-task --scenarios "
                             "list-empty --no-scheduling", GRADE_POINTS="10")
    env.pop("PYTHONPATH", None)
    p = subprocess.run(["bash", str(top / "source" / "run_autograder")], capture_output=True,
                       text=True, timeout=200, env=env, cwd=str(top))
    assert p.returncode == 0, p.stderr
    data = json.loads((top / "results" / "results.json").read_text())
    validate(data)
    names = [t["name"] for t in data["tests"]]
    assert names == ["build: make", "client: 001-list-empty", "client: 003-list-one-task",
                     "daemon-protocol: list-empty"], names
    assert data["score"] == 10, [(t["name"], t["status"], t.get("output", "")[:400]) for t in data["tests"]]
    assert (top / "results" / "build.log").exists()
    # a build that fails: every test there, failed, the reason shown to the student
    shutil.rmtree(top / "submission")
    (top / "submission").mkdir()
    (top / "submission" / "Makefile").write_text("all:\n\t@echo 'cassini.c:1: error'\n\texit 2\n")
    p = subprocess.run(["bash", str(top / "source" / "run_autograder")], capture_output=True,
                       text=True, timeout=200, env=env, cwd=str(top))
    data = json.loads((top / "results" / "results.json").read_text())
    validate(data)
    assert data["score"] == 0 and data["tests"][0]["name"] == "build: make"
    assert "the build failed (exit status 2)" in data["tests"][0]["output"]
    assert "cassini.c:1: error" in data["tests"][0]["output"]
    shutil.rmtree(top, ignore_errors=True)

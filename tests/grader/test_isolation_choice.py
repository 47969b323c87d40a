"""Without a container engine: a single grade still grades (one's own code) and says on its
first line that nothing is isolated; ``batch`` refuses a class unless ``--trusted``;
``--isolation container`` is an error.  No engine is simulated with a DOCKER_HOST nobody
answers on, so these run everywhere."""

import os
import subprocess
import sys

import pytest

from testkit import ROOT

pytestmark = pytest.mark.timeout(120)
STUB = ROOT / "tests" / "grader" / "batch_fixtures" / "stub_grader.py"


def no_engine_env(tmp_path, **extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock",
               **extra)
    env.pop("GRADER_ISOLATION", None)
    env.pop("GRADER_BOX", None)
    return env


def run(args, env, timeout=100):
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=str(ROOT))


def test_a_grade_without_an_engine_says_first_that_nothing_is_isolated(tmp_path):
    p = run(["--ours", "--cases", "001-list-empty", "--scenarios", "none"],
            no_engine_env(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    first = p.stdout.splitlines()[0]
    assert first.startswith("saturnd-grade: NOTHING IS ISOLATED ("), first
    assert "no Docker engine answers" in first
    assert "light: NOTHING IS ISOLATED" in p.stdout          # and in the summary's notes


def test_container_isolation_without_an_engine_is_a_usage_error(tmp_path):
    p = run(["--ours", "--isolation", "container", "--cases", "001-list-empty"],
            no_engine_env(tmp_path))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "container isolation" in p.stderr, p.stderr


def _class(tmp_path):
    sub = tmp_path / "class" / "kim"
    sub.mkdir(parents=True)
    (sub / "Makefile").write_text("all:\n\tprintf '#!/bin/sh\\nexit 0\\n' > cassini\n"
                                  "\tchmod +x cassini\n")
    (sub / "stub.json").write_text('{"cases": [["client", "001", "pass", "pass"]]}')
    return tmp_path / "class"


def test_batch_refuses_a_class_without_an_engine(tmp_path):
    cls = _class(tmp_path)
    p = run(["batch", str(cls), "-o", str(tmp_path / "out"), "--grade-cmd",
             f"{sys.executable} {STUB}"], no_engine_env(tmp_path))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1, p.stderr
    assert "no Docker engine answers" in p.stderr and "--trusted" in p.stderr
    assert not (tmp_path / "out" / "kim").exists()


def test_batch_trusted_grades_on_this_machine_and_says_so(tmp_path):
    cls = _class(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    p = run(["batch", str(cls), "-o", str(tmp_path / "out"), "--trusted", "--work-dir",
             str(work), "--grade-cmd", f"{sys.executable} {STUB}"], no_engine_env(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines()[0].startswith("saturnd-grade batch: NOTHING IS ISOLATED")
    assert (tmp_path / "out" / "kim" / "result.json").exists()

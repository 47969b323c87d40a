"""Fixtures for the grader's tests: broken candidates and a way to run the grader.

The candidates are tiny executables written into a world-readable directory (the
sandbox user, ``nobody`` when we are root, must be able to run them), each calling
``faulty.client(MODE)`` / ``faulty.daemon(MODE)`` from fixtures/faulty.py.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testkit import ROOT

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _python_for_candidates():
    """An interpreter the sandbox user can run (the venv's may live under /root)."""
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        p = Path(cand)
        if p.exists() and os.access(p, os.X_OK):
            try:
                ok = all(os.stat(d).st_mode & stat.S_IXOTH for d in p.resolve().parents)
            except OSError:
                ok = False
            if ok:
                return cand
    return sys.executable


@pytest.fixture(scope="session")
def candidates():
    base = Path(tempfile.mkdtemp(prefix="grader-candidates-", dir="/var/tmp"))
    base.chmod(0o755)
    python = _python_for_candidates()
    # the checkout may be invisible to the sandbox (under /tmp, replaced by a private one)
    from grader.programs import copy_packages
    lib = copy_packages(str(base / "lib"), extra=sorted(FIXTURES.glob("*.py")))

    def make(kind, mode):
        path = base / f"{kind}-{mode}"
        if not path.exists():
            path.write_text(f"#!{python}\nimport sys\nsys.path.insert(0, {lib!r})\n"
                            f"import faulty\nfaulty.{kind}({mode!r})\n")
            path.chmod(0o755)
        return str(path)

    def script(name, text):
        path = base / name
        path.write_text(text)
        path.chmod(0o755)
        return str(path)

    make.script = script
    make.lib = lib
    make.python = python
    yield make
    shutil.rmtree(base, ignore_errors=True)


class Graded:
    def __init__(self, proc, junit, elapsed, json_path=None):
        import json
        self.json = None
        if json_path is not None and json_path.exists():
            self.json = json.loads(json_path.read_text())
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.cases = {}
        if junit.exists():
            tree = ET.parse(junit)
            for suite in tree.getroot():
                for case in suite.iter("testcase"):
                    status, text = "pass", ""
                    for child in case:
                        if child.tag == "failure":
                            status, text = "fail", (child.get("message") or "") + "\n" + \
                                (child.text or "")
                        elif child.tag == "skipped":
                            status, text = "skip", child.get("message") or ""
                    self.cases[(suite.get("name"), case.get("name"))] = (status, text)

    def status(self, category, name):
        return self.cases[(category, name)][0]

    def text(self, category, name):
        return self.cases[(category, name)][1]

    def verdicts(self, category, name):
        """{"strict": ..., "course": ...} of one case, from the --json report."""
        for c in self.json["cases"]:
            if (c["category"], c["name"]) == (category, name):
                return c["verdicts"]
        raise KeyError((category, name))

    def message(self, category, name):
        for c in self.json["cases"]:
            if (c["category"], c["name"]) == (category, name):
                return c["message"]
        raise KeyError((category, name))

    def of(self, category):
        return {n: s for (c, n), (s, _) in self.cases.items() if c == category}


@pytest.fixture
def grade(tmp_path):
    import time

    def run(*args, timeout=100):
        junit = tmp_path / "junit.xml"
        report = tmp_path / "report.json"
        for old in (junit, report):
            if old.exists():
                old.unlink()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        # these candidates are scripts importing fixtures from a folder of this machine,
        # which a container does not see: graded in light isolation unless a test says
        # otherwise (tests/grader/test_hostile_submissions.py grades in containers)
        env.setdefault("GRADER_ISOLATION", "light")
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "grader", "--junit", str(junit),
                               "--json", str(report), *args],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(ROOT))
        return Graded(proc, junit, time.monotonic() - t0, report)
    return run


@pytest.fixture(scope="session")
def container_engine():
    """The container engine and the candidate image: skipped without them, failed under CI
    (tests of the container isolation must not pass by not running)."""
    from grader import container
    try:
        return container.engine()
    except container.NoEngine as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI: these tests need the container engine: {e}")
        pytest.skip(str(e))

"""The golden vectors, one test per case (see runner.py for the case format).

``CASSINI=/path/to/client`` tests another client (then only ``reference``
cases run unless ``GOLDEN_TAGS`` says otherwise).
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402

CASSINI, OTHER = runner.cassini_command()
TAGS = runner.selected_tags(OTHER)
CASES = runner.load_cases()


def test_enough_cases_of_every_kind():
    tags = [c.tag for c in CASES]
    assert len(CASES) >= 60
    assert {"reference", "extension", "deviation"} <= set(tags)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case):
    if case.tag not in TAGS:
        pytest.skip(f"tag {case.tag} not selected")
    result = runner.run_case(case, CASSINI)
    assert result.ok, result.report()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("damage", ["stdout", "request", "exitcode"])
def test_runner_detects_a_mismatch(tmp_path, damage):
    """The runner itself must fail a case whose expectation is wrong."""
    src = os.path.join(runner.CASES_DIR, "003-list-one-task")
    dst = tmp_path / "003-damaged"
    shutil.copytree(src, dst)
    path = dst / damage
    if damage == "exitcode":
        path.write_bytes(b"3\n")
    else:
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    result = runner.run_case(runner.Case(str(dst)), CASSINI)
    assert not result.ok
    expected_words = {"stdout": "stdout differs", "request": "request (",
                      "exitcode": "exit status"}[damage]
    assert expected_words in result.report()

"""The systemd user unit (contrib/systemd/saturnd.service) and cassini's bash completion
(contrib/bash-completion/cassini) that docs/install.md tells users to install."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "systemd" / "saturnd.service"
COMPLETION = ROOT / "contrib" / "bash-completion" / "cassini"
SATURND = Path(sys.executable).parent / "saturnd"


def _need(tool):
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is needed in CI (apt-get install systemd / bash)")
        pytest.skip(f"{tool} is not installed (Debian: apt-get install systemd)")
    return path


def test_unit_restarts_only_on_failure_and_runs_in_the_foreground():
    text = UNIT.read_text()
    assert "\nRestart=on-failure\n" in text          # cassini -q (exit 0) stops it for good
    assert "\nExecStart=%h/.local/bin/saturnd --foreground\n" in text
    assert "\nWantedBy=default.target\n" in text
    assert "PrivateTmp" not in text.replace("no PrivateTmp=", "")


def test_unit_passes_systemd_analyze_verify(tmp_path):
    tool = _need("systemd-analyze")
    # the ExecStart of the shipped unit is pipx's ~/.local/bin; verify checks that the
    # program exists, so point it at this checkout's saturnd
    unit = tmp_path / "saturnd.service"
    unit.write_text(UNIT.read_text().replace("%h/.local/bin/saturnd", str(SATURND)))
    res = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True,
                         text=True, timeout=50)
    assert res.returncode == 0 and res.stderr.strip() == "" and res.stdout.strip() == "", \
        res.stdout + res.stderr
    # and verify does see a broken unit
    unit.write_text(unit.read_text().replace("Type=exec", "Type=nonsense"))
    res = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True,
                         text=True, timeout=50)
    assert "nonsense" in res.stderr


def _complete(words, cword=None):
    """The completions bash offers for ``words`` (the command line, cursor on the last)."""
    bash = _need("bash")
    cword = len(words) - 1 if cword is None else cword
    script = (f"source {COMPLETION}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={cword}\n"
              f"COMP_LINE={' '.join(words)!r}; COMP_POINT=${{#COMP_LINE}}\n"
              "_cassini cassini \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = dict(os.environ, PATH=f"{SATURND.parent}:{os.environ.get('PATH', '')}")
    res = subprocess.run([bash, "--norc", "-c", script], capture_output=True, text=True,
                         timeout=30, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_completion_offers_every_option_of_cassini_h():
    import re
    usage = subprocess.run([sys.executable, "-m", "cassini", "-h"], capture_output=True,
                           text=True, timeout=30).stdout
    options = set(re.findall(r"(?<![\w-])-[a-zA-Z]\b", usage))
    offered = set(_complete(["cassini", "-"]))
    assert options <= offered, options - offered


def test_completion_of_task_ids_and_directories(tmp_path):
    (tmp_path / "pipes").mkdir()
    assert str(tmp_path / "pipes") in _complete(["cassini", "-p", str(tmp_path / "pi")])
    # -r TASKID with no daemon running: nothing offered, no error, no wait
    assert _complete(["cassini", "-p", str(tmp_path / "pipes"), "-r", ""]) == []


def test_completion_of_task_ids_asks_the_daemon(daemon):
    for _ in range(3):
        daemon.cassini("-c", "true")
    daemon.cassini("-r", "1")
    assert _complete(["cassini", "-p", str(daemon.pipes), "-Y", ""]) == ["0", "2"]
    assert _complete(["cassini", "-p", str(daemon.pipes), "-r", "2"]) == ["2"]


@pytest.mark.timeout(300)
def test_man_pages_found_after_pip_install_in_a_venv(tmp_path):
    """docs/install.md: in a venv (Debian's Python refuses a system-wide pip install), with the venv's
    bin on PATH (activated), ``man cassini`` and ``man 8 saturnd`` work, no MANPATH."""
    man = _need("man")
    venv = tmp_path / "venv"
    made = subprocess.run(["python3", "-m", "venv", str(venv)], capture_output=True, text=True,
                          timeout=120)
    if made.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(made.stderr)
        pytest.skip(f"python3 -m venv is not available here: {made.stderr.strip()[-200:]}")
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(ROOT)],
                         capture_output=True, text=True, timeout=280)
    if res.returncode != 0 and not os.environ.get("CI") and "Could not" in res.stderr:
        pytest.skip(f"no package index reachable to build: {res.stderr.strip()[-200:]}")
    assert res.returncode == 0, res.stderr
    env = {k: v for k, v in os.environ.items() if k != "MANPATH"}
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    for section, page in (("1", "cassini"), ("8", "saturnd")):
        found = subprocess.run([man, "-w", section, page], capture_output=True, text=True,
                               env=env, timeout=30)
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() == str(venv / "share" / "man" / f"man{section}" /
                                           f"{page}.{section}")

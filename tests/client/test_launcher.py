"""bin/cassini, the launcher pip installs: the interpreter beside it started isolated.

In a regular install (packages in the venv's site-packages, as ``pip install .`` lays
them out) nothing of ``site`` may run: no ``.pth`` file, no ``PYTHONPATH``, no user site.
An editable install (the development venv) and a checkout still work.
"""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from bench.startup import regular_install  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("launcher") / "venv"
    python, cassini = regular_install(str(dest))
    return dest, python, cassini


def _site_packages(python):
    return subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def test_a_regular_install_runs_no_site_and_ignores_pythonpath(installed, tmp_path):
    dest, python, cassini = installed
    marker = tmp_path / "site-ran"
    site = _site_packages(python)
    pth = os.path.join(site, "zz-launcher-probe.pth")
    with open(pth, "w") as f:      # site executes `import` lines of .pth files
        f.write(f"import os; open({str(marker)!r}, 'w').close()\n")
    fake = tmp_path / "fake"
    (fake / "cassini").mkdir(parents=True)
    (fake / "cassini" / "__init__.py").write_text("raise SystemExit('the PYTHONPATH copy ran')\n")
    (fake / "cassini" / "__main__.py").write_text("raise SystemExit('the PYTHONPATH copy ran')\n")
    try:
        # the plain interpreter does run the probe: the test can tell
        subprocess.run([python, "-c", "pass"], check=True, timeout=60)
        assert marker.exists()
        marker.unlink()
        env = dict(os.environ, PYTHONPATH=str(fake))
        out = subprocess.run([cassini, "-h"], capture_output=True, env=env, timeout=60)
    finally:
        os.unlink(pth)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"   usage: cassini [OPTIONS] -l -> list all tasks\n")
    assert not marker.exists(), "site ran: a .pth file of the venv was executed"


def test_the_regular_install_imports_its_own_package(installed):
    dest, python, cassini = installed
    probe = ("import sys, cassini; print(cassini.__file__); "
             "print(sys.flags.no_site, sys.flags.isolated)")
    # the launcher's own logic, with a probe instead of main(): same path search
    with open(cassini, "rb") as f:
        body = f.read().replace(b"from cassini.__main__ import exit_now, main  # noqa: E402\n"
                                b"exit_now(main())\n", probe.encode() + b"\n")
    script = os.path.join(dest, "bin", "cassini-probe")
    with open(script, "wb") as f:
        f.write(body)
    os.chmod(script, 0o755)
    out = subprocess.run([script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    path, flags = out.stdout.splitlines()
    assert path == os.path.join(_site_packages(python), "cassini", "__init__.py")
    assert flags == "1 1"


def test_a_symlinked_launcher_without_an_interpreter_beside_it_still_runs(installed, tmp_path):
    # pipx links the script into ~/.local/bin: no python3 there; the one on PATH is used
    dest, python, cassini = installed
    link = tmp_path / "bin" / "cassini"
    link.parent.mkdir()
    shutil.copyfile(cassini, link)
    os.chmod(link, 0o755)
    env = dict(os.environ, PATH=os.path.join(dest, "bin") + os.pathsep + os.environ["PATH"])
    out = subprocess.run([str(link), "-h"], capture_output=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"   usage: cassini")


def test_the_development_venv_and_the_checkout_still_work():
    dev = os.path.join(os.path.dirname(sys.executable), "cassini")    # the test venv's
    assert os.access(dev, os.X_OK), "the test venv has no bin/cassini (pip install -e .)"
    for launcher in (dev, os.path.join(ROOT, "bin", "cassini")):
        out = subprocess.run([launcher, "-h"], capture_output=True, timeout=60)
        assert out.returncode == 0, (launcher, out.stderr)
        assert out.stdout.startswith(b"   usage: cassini"), launcher

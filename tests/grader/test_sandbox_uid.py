"""Who a candidate is, and what it sees, in its submission's container (grader/container.py):
an unprivileged uid named ``candidate`` that ``getlogin()`` answers as in a login session, no
capability, setuid bits that do nothing, only PATH HOME USER LOGNAME TZ LANG in its
environment, no network, a read-only image with the kit hidden, a size-limited /tmp, a
process limit of its own; and nothing left once the grade is over.

Needs the container engine and the candidate image: skipped without them, failed under CI."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from grader import container, sandbox

pytestmark = [pytest.mark.container, pytest.mark.timeout(120)]

GETLOGIN_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(void)
{
    char buf[64];
    const char *name = getlogin();
    int r = getlogin_r(buf, sizeof buf);
    printf("getlogin=%s getlogin_r=%s\n", name ? name : "(null)", r == 0 ? buf : "(error)");
    return name == NULL || r != 0;
}
"""


@pytest.fixture(scope="module", autouse=True)
def engine(container_engine):
    """The container engine and the candidate image, or skip (fail under CI)."""


@pytest.fixture
def options():
    base = tempfile.mkdtemp(prefix="grader-box-", dir="/var/tmp")
    os.chmod(base, 0o755)
    opts = sandbox.Options(base=base, isolation="container", limits=None)
    yield opts
    box_id = opts.box.id
    opts.close()
    # the container and its box are gone
    assert not [c for c in container.engine().containers.list(all=True) if c.id == box_id]
    assert os.listdir(base) == []
    shutil.rmtree(base, ignore_errors=True)


def run(options, script, label="probe", env=None):
    """(exit status, stdout, stderr) of ``sh -c script`` as a candidate."""
    sb = sandbox.Sandbox(options, label)
    out = open(os.path.join(sb.meta, "o"), "w+b")
    err = open(os.path.join(sb.meta, "e"), "w+b")
    try:
        proc = sb.launch(["sh", "-c", script], sb.env(env), "client", out, err)
        code = proc.wait(60)
        out.seek(0)
        err.seek(0)
        return code, out.read().decode(), err.read().decode()
    finally:
        out.close()
        err.close()
        sb.kill()
        sb.remove()


def test_the_candidate_is_an_unprivileged_user_named_candidate(options):
    code, out, _ = run(options, "id -u; id -un; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
    assert code == 0
    uid, name, capeff, nnp = out.split("\n")[:4]
    assert int(uid) != 0 and int(uid) == options.uid
    assert name == "candidate"
    assert capeff.split()[1] == "0000000000000000"
    assert nnp.split()[1] == "1"


def test_getlogin_answers_the_candidates_name(options):
    src = Path(options.base) / "login"
    src.mkdir()
    (src / "getlogin.c").write_text(GETLOGIN_C)
    sandbox.chown_tree(str(src), options.uid, options.gid)
    log = Path(options.base) / "build.log"
    status, timed_out = options.box.run(["cc", "-o", "getlogin", "getlogin.c"], str(src), 60,
                                        str(log))
    assert (status, timed_out) == (0, False), log.read_text()
    code, out, _ = run(options, f"{src}/getlogin")
    assert out == "getlogin=candidate getlogin_r=candidate\n"
    assert code == 0


def test_the_environment_is_reduced(options):
    os.environ["SATURND_TEST_SECRET"] = "s3cret"
    try:
        code, out, _ = run(options, "env | sort")
    finally:
        del os.environ["SATURND_TEST_SECRET"]
    names = sorted(line.split("=", 1)[0] for line in out.splitlines() if line)
    assert names == ["HOME", "LANG", "LOGNAME", "PATH", "PWD", "TZ", "USER"]   # PWD: sh's own
    assert "s3cret" not in out


def test_a_setuid_bit_does_nothing(options):
    code, out, _ = run(options, "cp /bin/id ./id && chmod 4755 ./id && ./id -u && "
                                "test -u ./id && echo setuid-kept")
    assert out.splitlines()[0] == str(options.uid)


def test_nothing_of_the_host_and_no_network(options):
    code, out, _ = run(options, "ls -A /opt/saturnd | wc -l; "
                                "touch /etc/x 2>/dev/null && echo wrote-etc; "
                                "touch /usr/x 2>/dev/null && echo wrote-usr; "
                                "ls /sys/class/net; "
                                "test -e /work && echo sees-work; "
                                "cat /proc/1/cmdline | tr '\\0' ' '")
    lines = out.splitlines()
    assert lines[0] == "0"                          # the kit in the image is hidden
    assert "wrote-etc" not in out and "wrote-usr" not in out
    assert "eth0" not in out and "lo" in lines
    assert "sees-work" not in out
    assert "grader" not in lines[-1] and "saturnd" not in lines[-1]


def test_tmp_and_processes_are_limited(options):
    mib = options.box.limits["tmp"] >> 20
    code, out, _ = run(options, f"dd if=/dev/zero of=/tmp/big bs=1M count={mib + 16} "
                                f"2>/dev/null; du -m /tmp/big | cut -f1; rm -f /tmp/big")
    assert int(out.split()[0]) <= mib
    pids = options.box.limits["pids"]
    code, out, _ = run(options, f"i=0; while [ $i -lt {pids + 20} ]; do sleep 5 & "
                                f"i=$((i+1)); done 2>/dev/null; echo started")
    # the fork loop hits the container's limit, and its processes are all killed after
    code, out, _ = run(options, "ls /proc | grep -c '^[0-9]'")
    assert int(out) < 10


def test_a_terminated_grade_removes_its_container(tmp_path):
    """SIGTERM (a cancelled CI job) to a grade: its container goes, with its box."""
    import signal
    import subprocess
    import sys
    import time
    from testkit import ROOT
    work = Path(tempfile.mkdtemp(prefix="grader-term-", dir="/var/tmp"))
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), GRADER_WORK_DIR=str(work))
        env.pop("GRADER_ISOLATION", None)
        proc = subprocess.Popen([sys.executable, "-m", "grader", "--ours", "--scenarios", "none"],
                                cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        client = container.engine()

        def mine():
            return [c["Id"] for c in client.api.containers(all=True,
                                                           filters={"label": "saturnd-grade"})
                    if str(work) in str(c.get("Mounts"))]
        deadline = time.monotonic() + 60
        while not mine():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while mine() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mine() == []
        assert list(work.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)

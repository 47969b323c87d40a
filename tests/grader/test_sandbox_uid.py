"""Each grading run's candidates get a uid of their own (grader/sandbox.py, allocate_uid):
RLIMIT_NPROC is counted per uid, machine-wide, so with one shared sandbox user (nobody) a
fork bomb in one grade -- or any other grade's load, or anything else running as nobody --
made the programs of the grades beside it fail to start (EAGAIN, exit 127)."""

import os
import subprocess
import time

import pytest

from grader import sandbox

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not sandbox.namespaces_available(),
    reason="own uids need root and PID/mount namespaces (full isolation)")


def _processes_of(uid):
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                n += os.stat(f"/proc/{name}").st_uid == uid
            except OSError:
                pass
    return n


@pytest.fixture
def base():
    """Under /var/tmp, like the grader's (a private /tmp hides what is under /tmp)."""
    import shutil
    import tempfile
    from pathlib import Path
    path = Path(tempfile.mkdtemp(prefix="grader-uid-", dir="/var/tmp"))
    path.chmod(0o755)                   # the candidates' uids pass through it
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run(sb, argv):
    """Run ``argv`` as a client in ``sb``; (exit status, stdout, stderr)."""
    p = subprocess.Popen(sb.command(argv, sb.env(), "client"), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=sandbox._init_env(), start_new_session=True)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


@pytest.mark.timeout(60)
def test_two_grading_runs_get_two_uids_with_a_name(base):
    a = sandbox.Options(base=str(base), isolation="full")
    b = sandbox.Options(base=str(base), isolation="full")
    try:
        assert a.uid is not None and b.uid is not None
        assert len({a.uid, b.uid, 65534}) == 3
        sb = sandbox.Sandbox(a, "who")
        code, out, err = _run(sb, ["sh", "-c", 'id -u; id -un; echo "$USER"'])
        assert (code, err) == (0, b"")
        assert out == b"%d\ncandidate\ncandidate\n" % a.uid
        sb.remove()
    finally:
        a.close()
        b.close()
    # given back: a third run may take it again, and the passwd copies are gone
    c = sandbox.Options(base=str(base), isolation="full")
    try:
        assert c.etc and os.path.exists(c.etc["passwd"])
    finally:
        c.close()
    assert sorted(os.listdir(base)) == []


@pytest.mark.timeout(90)
def test_a_fork_bomb_in_one_grade_does_not_starve_another(base):
    a = sandbox.Options(base=str(base), isolation="full")
    b = sandbox.Options(base=str(base), isolation="full")
    hog = sandbox.Sandbox(a, "hog")
    limit = a.limits["RLIMIT_NPROC"]
    try:
        proc = hog.start(["sh", "-c", f"i=0; while [ $i -lt {limit + 50} ]; do "
                                      "sleep 60 & i=$((i+1)); done 2>/dev/null; wait"],
                         hog.env(), subprocess.DEVNULL, subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while _processes_of(a.uid) < limit - 5:
            assert time.monotonic() < deadline, f"{_processes_of(a.uid)} processes of the hog"
            assert proc.poll() is None
            time.sleep(0.1)
        # the grade beside it still starts programs, forks included
        other = sandbox.Sandbox(b, "beside")
        code, out, err = _run(other, ["sh", "-c", "sleep 0 & wait; echo started"])
        assert (code, out) == (0, b"started\n"), err
        other.remove()
    finally:
        hog.kill()
        hog.remove()
        a.close()
        b.close()

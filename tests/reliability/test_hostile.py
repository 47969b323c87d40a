"""Hostile environment: the daemon refuses (one line, exit 1) a pipes directory that is not
its own, is group/world-writable or a symlink, or sits under an unsafe parent; makes its
FIFOs 0600; and leaks neither descriptors nor its own variables into task processes."""

import os
import stat
import subprocess

import pytest

from testkit.daemon import SATURND

OTHER_UID = 65534   # nobody


def start_fails(pipes, data, env=None):
    res = subprocess.run([*SATURND, "-f", "--clock", "manual", "-p", str(pipes), "--data-dir",
                          str(data)], capture_output=True, timeout=30, env=env,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 1, res
    assert res.stdout == b""
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("saturnd: "), res.stderr
    assert "Traceback" not in res.stderr.decode()
    return lines[0]


@pytest.fixture
def base(tmp_path):
    os.chmod(tmp_path, 0o700)
    return tmp_path


def test_pipes_dir_owned_by_someone_else(base):
    pipes = base / "pipes"
    pipes.mkdir(mode=0o700)
    os.chown(pipes, OTHER_UID, OTHER_UID)
    assert "belongs to" in start_fails(pipes, base / "data")


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777])
def test_pipes_dir_writable_by_others(base, mode):
    pipes = base / "pipes"
    pipes.mkdir()
    os.chmod(pipes, mode)
    assert "writable by group or others" in start_fails(pipes, base / "data")


def test_pipes_dir_replaced_by_a_symlink(base):
    real = base / "elsewhere"
    real.mkdir(mode=0o700)
    (base / "pipes").symlink_to(real)
    assert "symlink" in start_fails(base / "pipes", base / "data")
    assert list(real.iterdir()) == []       # nothing was created through the link


def test_parent_symlink_planted_by_another_user(base):
    """/tmp/<user> planted as a symlink by someone else (here: a sticky 1777 'tmp')."""
    tmp = base / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    target = base / "attacker"
    target.mkdir(mode=0o777)
    os.chown(target, OTHER_UID, OTHER_UID)
    link = tmp / "victim"
    link.symlink_to(target)
    os.lchown(link, OTHER_UID, OTHER_UID)
    assert "symlink owned by" in start_fails(link / "saturnd" / "pipes", base / "data")
    assert list(target.iterdir()) == []     # nothing was created in the attacker's directory


def test_parent_owned_by_another_user(base):
    """/tmp/<user> created in advance by someone else (even with a safe-looking mode)."""
    tmp = base / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    planted = tmp / "victim"
    planted.mkdir(mode=0o755)
    os.chown(planted, OTHER_UID, OTHER_UID)
    (planted / "saturnd").mkdir(mode=0o700)      # made by root for the test, i.e. "us"
    assert "belongs to" in start_fails(planted / "saturnd" / "pipes", base / "data")


def test_parent_writable_by_others_and_not_sticky(base):
    open_dir = base / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    assert "not sticky" in start_fails(open_dir / "pipes", base / "data")
    assert list(open_dir.iterdir()) == []
    (open_dir / "pipes").mkdir(mode=0o700)
    assert "not sticky" in start_fails(open_dir / "pipes", base / "data")


def test_foreign_or_fake_fifo(base):
    pipes = base / "pipes"
    pipes.mkdir(mode=0o700)
    os.mkfifo(pipes / "saturnd-request-pipe", 0o600)
    os.chown(pipes / "saturnd-request-pipe", OTHER_UID, OTHER_UID)
    assert "belongs to" in start_fails(pipes, base / "data")
    os.unlink(pipes / "saturnd-request-pipe")
    (pipes / "saturnd-request-pipe").symlink_to(base / "x")
    assert "symlink" in start_fails(pipes, base / "data")
    os.unlink(pipes / "saturnd-request-pipe")
    (pipes / "saturnd-request-pipe").write_bytes(b"")
    assert "not a FIFO" in start_fails(pipes, base / "data")


def test_sticky_root_parents_of_the_container_layout_are_fine(make_daemon, tmp_path):
    """Like the image: /tmp/saturnd and /tmp/saturnd/saturnd root-owned 1777; the pipes dir
    (a bind mount) owned by the daemon's user with mode 0700 or 0755; a wide FIFO is made 0600."""
    top = tmp_path / "sat" / "saturnd"
    top.mkdir(parents=True)
    os.chmod(tmp_path / "sat", 0o1777)
    os.chmod(top, 0o1777)
    pipes = top / "pipes"
    pipes.mkdir()
    os.chmod(pipes, 0o755)
    os.mkfifo(pipes / "saturnd-reply-pipe", 0o666)
    os.chmod(pipes / "saturnd-reply-pipe", 0o666)
    d = make_daemon("c")
    d.pipes = pipes
    d.start()
    for name in ("saturnd-request-pipe", "saturnd-reply-pipe", "saturnd-clock-request-pipe",
                 "saturnd-clock-reply-pipe"):
        st = os.lstat(pipes / name)
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, name
    assert d.cassini("-l").returncode == 0


def test_created_dirs_and_fifos_are_private(make_daemon, tmp_path):
    d = make_daemon()
    d.pipes = tmp_path / "u" / "saturnd" / "pipes"
    old = os.umask(0)
    try:
        d.start()
    finally:
        os.umask(old)
    for p in (tmp_path / "u", tmp_path / "u" / "saturnd", d.pipes):
        assert stat.S_IMODE(os.lstat(p).st_mode) == 0o700, p
    for name in ("saturnd-request-pipe", "saturnd-reply-pipe"):
        assert stat.S_IMODE(os.lstat(d.pipes / name).st_mode) == 0o600


def test_nothing_of_the_daemon_leaks_into_a_task(make_daemon):
    d = make_daemon(env={"SATURND_DATA_DIR": "/nonexistent-should-not-leak",
                         "SATURND_ANYTHING": "x", "KEEP_ME": "kept"}).start()
    script = ("import os,sys;"
              "fds=sorted(int(f) for f in os.listdir('/proc/self/fd'));"
              "print(fds);"
              "print(sorted(k for k in os.environ if k.startswith('SATURND')));"
              "print(os.environ.get('KEEP_ME'));"
              "print(os.getcwd()==os.environ['HOME'], os.getsid(0)==os.getpid())")
    import sys
    assert d.cassini("-c", "--", sys.executable, "-c", script).returncode == 0
    d.advance(1)
    out = d.cassini("-o", "0").stdout.decode().splitlines()
    fds = eval(out[0])
    assert fds == [0, 1, 2, 3], out   # 3: the directory listing of /proc/self/fd itself
    assert out[1:] == ["[]", "kept", "True True"], out


@pytest.mark.timeout(90)
def test_a_dripping_writer_does_not_hold_the_request_loop(daemon):
    """A same-user writer announcing a long request and dripping one byte every 0.5 s
    (under the 3 s stall timer, which used to restart at every byte): the request must
    be whole within the daemon's deadline for a whole request, so it is dropped, logged,
    and other clients are served while the drip goes on."""
    import struct
    import threading
    import time
    d = daemon
    fd = os.open(os.path.join(str(d.pipes), "saturnd-request-pipe"), os.O_WRONLY)
    os.write(fd, b"CR" + struct.pack(">QIB", 1, 1, 1) + struct.pack(">II", 1, 100000))
    done = threading.Event()

    def drip():
        while not done.wait(0.5):
            try:
                os.write(fd, b"a")
            except OSError:
                return

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        time.sleep(1.0)         # the drip has begun
        start = time.monotonic()
        res = d.cassini("-l", check=False, timeout=40)
        took = time.monotonic() - start
        assert res.returncode == 0, res.stderr
        assert took < 15, took
        assert "not complete within" in d.log()
        res = d.cassini("-c", "--", "echo", "served", check=False, timeout=40)
        assert res.returncode == 0 and res.stdout == b"0\n", res.stderr
    finally:
        done.set()
        t.join(5)
        os.close(fd)
    assert d.out("-l") == b"0: * * * echo served\n"

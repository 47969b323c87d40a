"""The pipes as an attack surface.

- At start-up the daemon makes its FIFOs afresh (unlink, mkfifo 0600): a descriptor opened
  on a FIFO that existed before start-up reaches nothing.
- cassini checks the pipes directory and the FIFOs with the daemon's own rules
  (``saturnd/security.py``) before it sends a byte; ``CASSINI_SKIP_PIPES_CHECK=1`` turns the
  check off (the grader, driving other implementations' daemons).
- FIFOs or a pipes directory removed while the daemon runs come back within a few seconds,
  with the start-up checks, and cassini works again.
"""

import os
import shutil
import stat
import subprocess

import pytest

from saturnd import protocol as P
from testkit.daemon import CASSINI, SATURND
from testkit.waiting import wait_for

OTHER_UID = 65534   # nobody
REQ = "saturnd-request-pipe"
REP = "saturnd-reply-pipe"
FIFOS = (REQ, REP, "saturnd-clock-request-pipe", "saturnd-clock-reply-pipe")
BACK_WITHIN = 20.0   # seconds; the daemon looks every second


def ident(path):
    st = os.lstat(path)
    return st.st_dev, st.st_ino


# --- point 2: fresh FIFOs at start-up -------------------------------------------------------
@pytest.mark.timeout(90)
def test_fifo_opened_before_start_up_cannot_inject_a_request(make_daemon, tmp_path):
    d = make_daemon()
    os.chmod(tmp_path, 0o755)
    d.pipes.mkdir(mode=0o755)            # an older implementation's layout: FIFOs 0666
    for name in (REQ, REP):
        os.mkfifo(d.pipes / name)
        os.chmod(d.pipes / name, 0o666)
    old = {name: ident(d.pipes / name) for name in (REQ, REP)}
    # the attacker opens both before the daemon starts (O_RDWR: needs no peer) and keeps them
    req_fd = os.open(d.pipes / REQ, os.O_RDWR | os.O_NONBLOCK)
    rep_fd = os.open(d.pipes / REP, os.O_RDWR | os.O_NONBLOCK)
    try:
        d.start()
        marker = tmp_path / "injected-ran"
        request = P.encode_request(P.Request(P.CREATE, timing=P.Timing(P.MINUTES_MASK, P.HOURS_MASK,
                                                                       P.DAYS_MASK),
                                             argv=(b"touch", os.fsencode(str(marker)))))
        assert os.write(req_fd, request) == len(request)
        # a request written before ours would be served before ours: the listing shows it
        res = d.cassini("-l", check=False)
        assert res.returncode == 0, res
        assert res.stdout == b"", f"the injected CREATE was served: {res.stdout!r}"
        d.advance(2)
        assert not marker.exists()
        assert d.cassini("-l").stdout == b""
        for name in (REQ, REP):
            st = os.lstat(d.pipes / name)
            assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, name
            assert ident(d.pipes / name) != old[name], f"{name} was reused, not made afresh"
    finally:
        os.close(req_fd)
        os.close(rep_fd)


# --- point 3: cassini checks the pipes directory before sending ------------------------------
def plant(pipes, dir_mode=0o700, dir_owner=None, fifo_mode=0o600, fifo_owner=None,
          fifo_names=(REQ, REP)):
    pipes.mkdir(parents=True, exist_ok=True)
    os.chmod(pipes, dir_mode)
    for name in fifo_names:
        os.mkfifo(pipes / name)
        os.chmod(pipes / name, fifo_mode)
        if fifo_owner is not None:
            os.chown(pipes / name, fifo_owner, fifo_owner)
    if dir_owner is not None:
        os.chown(pipes, dir_owner, dir_owner)


def cassini_refuses(pipes, request_fifo, env_extra=None, expect=None):
    """Run ``cassini -c`` at ``pipes`` while the test reads ``request_fifo``: it must fail
    with one line and write not a byte on the FIFO (nor create its lock file)."""
    lock = os.path.join(os.path.realpath(pipes), "cassini-lock")
    fd = os.open(request_fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        env = dict(os.environ, CASSINI_REPLY_TIMEOUT="1", CASSINI_TIMEOUT="1")
        env.pop("CASSINI_SKIP_PIPES_CHECK", None)
        env.update(env_extra or {})
        res = subprocess.run([CASSINI, "-p", str(pipes), "-c", "--", "echo", "secret"], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        try:
            sent = os.read(fd, 65536)
        except BlockingIOError:
            sent = b""
    finally:
        os.close(fd)
    assert sent == b"", f"cassini sent {sent!r} to a planted FIFO"
    assert res.returncode == 1, res
    assert res.stdout == b""
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cassini: "), res.stderr
    assert "Traceback" not in res.stderr.decode()
    assert not os.path.lexists(lock), "cassini created its lock file in a planted directory"
    if expect:
        assert expect in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def base(tmp_path):
    os.chmod(tmp_path, 0o700)
    return tmp_path


def test_cassini_refuses_a_pipes_dir_of_another_user(base):
    pipes = base / "pipes"
    plant(pipes, dir_mode=0o755, dir_owner=OTHER_UID, fifo_mode=0o666, fifo_owner=OTHER_UID)
    cassini_refuses(pipes, pipes / REQ, expect="belongs to")


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777])
def test_cassini_refuses_a_writable_pipes_dir(base, mode):
    pipes = base / "pipes"
    plant(pipes, dir_mode=mode)
    cassini_refuses(pipes, pipes / REQ, expect="writable by group or others")


def test_cassini_refuses_a_symlinked_pipes_dir(base):
    real = base / "elsewhere"
    plant(real)
    (base / "pipes").symlink_to(real)
    cassini_refuses(base / "pipes", real / REQ, expect="symlink")


def test_cassini_refuses_an_unsafe_parent(base):
    open_dir = base / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    plant(open_dir / "pipes")
    cassini_refuses(open_dir / "pipes", open_dir / "pipes" / REQ, expect="not sticky")


def test_cassini_refuses_a_foreign_fifo(base):
    pipes = base / "pipes"
    plant(pipes, fifo_names=(REP,))
    os.mkfifo(pipes / REQ, 0o600)
    os.chown(pipes / REQ, OTHER_UID, OTHER_UID)
    cassini_refuses(pipes, pipes / REQ, expect="belongs to")


@pytest.mark.parametrize("name", [REQ, REP])
def test_cassini_refuses_a_writable_fifo(base, name):
    pipes = base / "pipes"
    plant(pipes)
    os.chmod(pipes / name, 0o622)
    cassini_refuses(pipes, pipes / REQ, expect="writable by group or others")


def test_cassini_refuses_a_symlinked_fifo(base):
    pipes = base / "pipes"
    plant(pipes, fifo_names=(REP,))
    elsewhere = base / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.mkfifo(elsewhere / REQ, 0o600)
    (pipes / REQ).symlink_to(elsewhere / REQ)
    cassini_refuses(pipes, elsewhere / REQ, expect="symlink")


def test_cassini_bad_opt_out_value_sends_nothing(base):
    pipes = base / "pipes"
    plant(pipes, dir_mode=0o777)
    cassini_refuses(pipes, pipes / REQ, env_extra={"CASSINI_SKIP_PIPES_CHECK": "yes"},
                    expect="CASSINI_SKIP_PIPES_CHECK")


def test_cassini_opt_out_for_other_implementations(daemon):
    """A daemon whose pipes are 0777/0666 (as other implementations make them): refused by
    default, served with CASSINI_SKIP_PIPES_CHECK=1."""
    assert daemon.cassini("-l").returncode == 0
    os.chmod(daemon.pipes, 0o777)
    for name in (REQ, REP):
        os.chmod(daemon.pipes / name, 0o666)
    env = dict(daemon.env)
    env.pop("CASSINI_SKIP_PIPES_CHECK", None)
    res = subprocess.run([CASSINI, "-p", str(daemon.pipes), "-l"], env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert res.returncode == 1 and b"writable by group or others" in res.stderr, res
    for value in ("1",):
        env["CASSINI_SKIP_PIPES_CHECK"] = value
        res = subprocess.run([CASSINI, "-p", str(daemon.pipes), "-c", "--", "echo", "hi"],
                             env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert res.returncode == 0 and res.stdout == b"0\n", res


# --- point 6: deleted FIFOs and pipes directory come back -----------------------------------
def back_within(d, deadline=BACK_WITHIN):
    wait_for(lambda: d.cassini("-l", check=False).returncode == 0, timeout=deadline, interval=0.2,
             what="cassini -l to work again")


@pytest.mark.timeout(90)
def test_deleted_fifos_come_back(daemon):
    d = daemon
    assert d.cassini("-c", "--", "echo", "kept").stdout == b"0\n"
    for name in FIFOS:
        os.unlink(d.pipes / name)
    back_within(d)
    assert b"echo kept" in d.cassini("-l").stdout
    for name in FIFOS:
        wait_for(lambda: os.path.lexists(d.pipes / name), timeout=BACK_WITHIN, what=name)
        st = os.lstat(d.pipes / name)
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, name
    assert d.now() > 0                           # the clock channel works again too
    log = d.log()
    assert f"{d.pipes / REQ} vanished" in log and f"{d.pipes / REP} vanished" in log, log
    assert d.alive()


@pytest.mark.timeout(90)
def test_deleted_pipes_dir_comes_back(daemon, tmp_path):
    d = daemon
    assert d.cassini("-c", "--", "echo", "kept").stdout == b"0\n"
    shutil.rmtree(d.pipes)
    back_within(d)
    assert b"echo kept" in d.cassini("-l").stdout
    assert stat.S_IMODE(os.lstat(d.pipes).st_mode) == 0o700
    assert d.now() > 0
    assert f"the pipes directory {d.pipes} vanished" in d.log(), d.log()
    # it holds the pipes directory's lock again: a second daemon there is refused
    res = subprocess.run([*SATURND, "-f", "--clock", "manual", "-p", str(d.pipes), "--data-dir",
                          str(tmp_path / "other-data")], env=d.env, capture_output=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and b"already running" in res.stderr, res
    assert d.cassini("-l").returncode == 0


@pytest.mark.timeout(90)
def test_recreated_pipes_dir_gets_the_start_up_checks(daemon, tmp_path):
    """A symlink planted where the pipes directory was is refused (logged), never followed;
    once it is gone the daemon makes the directory again."""
    d = daemon
    shutil.rmtree(d.pipes)
    target = tmp_path / "planted"
    target.mkdir(mode=0o700)
    d.pipes.symlink_to(target)
    wait_for(lambda: "symlink" in d.log().split("ready (pid")[-1], timeout=BACK_WITHIN,
             what="the daemon to log the refusal")
    assert d.alive()
    assert list(target.iterdir()) == []
    os.unlink(d.pipes)
    back_within(d)
    assert stat.S_ISDIR(os.lstat(d.pipes).st_mode)
    assert list(target.iterdir()) == []


@pytest.mark.timeout(90)
def test_deleted_lock_file_is_taken_again(daemon, tmp_path):
    """``rm PIPES_DIR/*`` also takes the lock file: the daemon takes it again, so a second
    daemon on the same pipes directory is still refused (it would replace the FIFOs)."""
    d = daemon
    for entry in os.listdir(d.pipes):
        os.unlink(d.pipes / entry)
    back_within(d)
    wait_for(lambda: os.path.exists(d.pipes / "saturnd.lock"), timeout=BACK_WITHIN,
             what="the lock file")
    res = subprocess.run([*SATURND, "-f", "--clock", "manual", "-p", str(d.pipes), "--data-dir",
                          str(tmp_path / "other-data")], env=d.env, capture_output=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and b"already running" in res.stderr, res
    assert d.cassini("-l").returncode == 0

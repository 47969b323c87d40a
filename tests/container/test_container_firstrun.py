"""The first five minutes, exactly as a newcomer lives them: a fresh copy of the repository,
no `pipes/` directory, no SATURND_UID/SATURND_GID/SATURND_PIPES_DIR, `docker compose up -d`
(or `docker-compose up -d`), then `compose exec saturnd cassini -c/-l` and, on the host,
`cassini -p ./pipes -l` — run by root, and by a regular user (uid 1500) whose only privilege
is a supplementary group that may use the Docker socket.

The only variable given to compose is SATURND_IMAGE, the image under test (this machine has
no registry to pull compose's default base from); compose finds it and builds nothing.
"""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from testkit.container import IN_CI, ROOT, SESSION, compose_commands, wait_for

SPELLINGS = compose_commands()
REGULAR_UID = 1500
FALLBACK_UID = 1000          # the daemon's user when the checkout belongs to root
# what a fresh clone does not have (build products, caches, local state)
JUNK = shutil.ignore_patterns(".git", ".venv", "pipes", ".cache", "__pycache__", "*.pyc",
                              "*.egg-info", ".pytest_cache", ".hypothesis", ".benchmarks",
                              "build", "dist", ".env")


def _docker_socket_gid():
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None
    try:
        return os.stat(host[len("unix://"):]).st_gid
    except OSError:
        return None


class Newcomer:
    """A user with a fresh checkout, running host commands as that user."""

    def __init__(self, who, compose_cmd, image, tmp):
        self.who = who
        self.compose_cmd = compose_cmd
        if who == "root":
            self.uid = self.gid = 0
            self.groups = None
        else:
            self.uid = self.gid = REGULAR_UID
            self.groups = [_docker_socket_gid()]
        self.home = tmp / "home"
        # the directory name makes compose's project name unique to this test
        self.checkout = tmp / f"saturnd-{SESSION}-{who}"
        shutil.copytree(ROOT, self.checkout, ignore=JUNK, symlinks=True)
        self.home.mkdir()
        # the daemon's user reads the checkout's cassini too: a clone is 0755 under the
        # usual umask, whatever the mode of the checkout these tests run from (mktemp -d)
        os.chmod(tmp, 0o755)
        os.chmod(self.checkout, 0o755)
        if self.uid:
            os.chown(tmp, self.uid, self.gid)
            for path in [self.home, self.checkout, *self.checkout.rglob("*")]:
                os.chown(path, self.uid, self.gid, follow_symlinks=False)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SATURND_", "COMPOSE_", "CASSINI_", "PYTHON", "VIRTUAL_ENV"))
               and k not in ("POSIXLY_CORRECT", "TZ", "USER", "LOGNAME")}
        env.update(HOME=str(self.home), SATURND_IMAGE=image)
        if self.uid:
            env["USER"] = env["LOGNAME"] = "newcomer"
        self.env = env

    def run(self, *args, timeout=90, as_uid=None):
        """``args`` as this user, or as ``as_uid`` (its own group, no other)."""
        kw = {}
        if as_uid is not None:
            kw = dict(user=as_uid, group=as_uid, extra_groups=[])
        elif self.uid:
            kw = dict(user=self.uid, group=self.gid, extra_groups=self.groups)
        return subprocess.run(list(args), capture_output=True, env=self.env, cwd=self.checkout,
                              stdin=subprocess.DEVNULL, timeout=timeout, **kw)

    def compose(self, *args, timeout=90):
        return self.run(*self.compose_cmd, *args, timeout=timeout)

    def exec_cassini(self, *args):
        return self.compose("exec", "-T", "saturnd", "cassini", *args, timeout=60)

    def host_cassini(self, *args, as_uid=None):
        """The checkout's own cassini with the system python (stdlib only), as that user --
        or as ``as_uid`` (root talking to the daemon as the daemon's user, as documented)."""
        python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
        return self.run(python, "-m", "cassini", *args, timeout=60, as_uid=as_uid)


def _ids(cmds):
    return [os.path.basename(c[0]) + ("-" + c[1] if len(c) > 1 else "") for c in cmds]


@pytest.fixture(params=SPELLINGS or [None], ids=_ids(SPELLINGS) or ["none"])
def compose_cmd(request):
    if request.param is None:
        msg = "neither `docker compose` nor `docker-compose` is installed"
        if IN_CI:
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)
    return request.param


@pytest.fixture(params=["root", f"uid{REGULAR_UID}"])
def newcomer(request, compose_cmd, docker_client, image):
    who = request.param
    if os.getuid() != 0:
        msg = f"running as {who} needs the tests to run as root"
        if IN_CI:
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)
    if who != "root" and _docker_socket_gid() is None:
        pytest.fail("no local Docker socket to give the regular user access to", pytrace=False)
    tmp = Path(tempfile.mkdtemp(prefix="saturnd-firstrun-"))
    user = Newcomer(who, compose_cmd, image, tmp)
    try:
        yield user
    finally:
        r = user.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=120)
        if r.returncode != 0:           # clean up anyway, as root
            subprocess.run([*compose_cmd, "down", "-v", "-t", "5"], cwd=user.checkout,
                           env=user.env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def _ok(r, what):
    assert r.returncode == 0, (f"{what} -> {r.returncode}\nstdout: {r.stdout!r}\n"
                               f"stderr: {r.stderr.decode(errors='replace')}")
    return r.stdout


@pytest.mark.timeout(240)
def test_compose_up_alone_gives_a_ready_daemon(newcomer):
    user = newcomer
    pipes = user.checkout / "pipes"
    assert not pipes.exists()
    assert not any(k.startswith("SATURND_") and k != "SATURND_IMAGE" for k in user.env)

    _ok(user.compose("up", "-d"), "compose up -d")

    def ready():
        return user.exec_cassini("-l").returncode == 0
    wait_for(ready, 60, "`compose exec saturnd cassini -l` to succeed", 0.5)

    logs = user.compose("logs", "--no-color", "saturnd").stdout.decode(errors="replace")
    expected_uid = REGULAR_UID if user.uid else FALLBACK_UID
    if user.uid == 0:
        assert "owned by root" in logs, logs
    # the daemon runs as the newcomer (or the fallback user), and the pipes are theirs
    st = os.stat(pipes)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (expected_uid, 0o700), logs
    fifo = os.stat(pipes / "saturnd-request-pipe")
    assert stat.S_ISFIFO(fifo.st_mode) and fifo.st_uid == expected_uid

    # root's own cassini refuses pipes that are not root's (one line, exit 1, nothing sent);
    # root talks to the daemon as the daemon's user, as docs/install.md says
    as_uid = None
    if user.uid == 0:
        r = user.host_cassini("-p", "./pipes", "-l")
        assert r.returncode == 1 and r.stdout == b"", r
        assert r.stderr.count(b"\n") == 1 and b"not to root" in r.stderr, r.stderr
        as_uid = FALLBACK_UID
    # host first: whatever it leaves in the pipes directory must not lock the container out
    assert _ok(user.host_cassini("-p", "./pipes", "-l", as_uid=as_uid), "host cassini -l") == b""
    assert _ok(user.exec_cassini("-c", "-m", "0", "--", "echo", "hello"),
               "exec cassini -c") == b"0\n"
    assert _ok(user.exec_cassini("-l"), "exec cassini -l") == b"0: 0 * * echo hello\n"
    assert _ok(user.host_cassini("-p", "./pipes", "-l", as_uid=as_uid),
               "host cassini -p ./pipes -l") == b"0: 0 * * echo hello\n"
    r = user.host_cassini("-p", "./pipes", "-c", "-H", "8", "true", as_uid=as_uid)
    assert _ok(r, "host cassini -c") == b"1\n"
    assert _ok(user.exec_cassini("-l"), "exec cassini -l") == (
        b"0: 0 * * echo hello\n1: * 8 * true\n")
    # nothing the newcomer cannot remove was left in their checkout
    for p in pipes.iterdir():
        assert p.lstat().st_uid == expected_uid, (p, p.lstat().st_uid)

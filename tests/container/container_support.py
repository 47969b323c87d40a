"""Helpers of the container tests (imported by conftest.py and the test modules)."""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = bool(os.environ.get("CI"))
SESSION = uuid.uuid4().hex[:10]
LABEL = "saturnd-test"
CONTAINER_PIPES = "/tmp/saturnd/saturnd/pipes"
CONTAINER_DATA = "/var/lib/saturnd"
# Any minute boundary works; a Monday in winter, so that Europe/Paris is UTC+1.
START = 1705312680          # 2024-01-15 09:58:00 UTC = 10:58 in Paris


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll ``predicate`` until it returns a true value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(interval)


# --- the container user and the host side ------------------------------------------------
def container_ids():
    """uid/gid for containers: the host user's, so that host and container share the pipes
    directory, or 1000:1000 (the image's user) when the tests run as root: the container
    user must not be root. (Root on the host still reaches the uid's pipes.)"""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return 1000, 1000
    return uid, gid


def host_cassini_cmd():
    exe = Path(sys.executable).parent / "cassini"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("cassini")
    return [found] if found else [sys.executable, "-m", "cassini"]


def host_run(args, timeout=30, env_extra=None):
    """Run a host command (as the test's user: the container's uid, or root)."""
    env = dict(os.environ)
    env.pop("POSIXLY_CORRECT", None)
    env.update(env_extra or {})
    return subprocess.run(args, capture_output=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def host_cassini(pipes_dir, *args, env_extra=None):
    if os.getuid() != container_ids()[0]:
        # Tests run as root, the container as 1000: the pipes directory is not root's, and
        # cassini refuses another user's pipes (as it must) unless told not to check them.
        # (A real host user shares the container's uid and never needs this.)
        env_extra = dict(env_extra or {}, CASSINI_SKIP_PIPES_CHECK="1")
    return host_run(host_cassini_cmd() + ["-p", str(pipes_dir), *args], env_extra=env_extra)


def host_clock(pipes_dir, *args):
    return host_run([sys.executable, "-m", "saturnd.clockctl", "-p", str(pipes_dir), *args],
                    timeout=60)


class Saturnd:
    """One container of the project image, with helpers to talk to it."""

    def __init__(self, client, image, pipes_dir, volume, args, env):
        self.client = client
        self.image = image
        self.pipes_dir = pipes_dir
        self.volume = volume
        self.args = list(args)
        self.env = dict(env)
        self.container = None
        self.run_options = {}

    def start(self):
        uid, gid = container_ids()
        self.container = self.client.containers.run(
            self.image, self.args, detach=True, init=True, network_mode="none",
            user=f"{uid}:{gid}", environment=self.env,
            labels={LABEL: SESSION},
            volumes={str(self.pipes_dir): {"bind": CONTAINER_PIPES, "mode": "rw"},
                     self.volume: {"bind": CONTAINER_DATA, "mode": "rw"}},
            **self.run_options)
        self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        def ready():
            self.container.reload()
            if self.container.status not in ("created", "running"):
                pytest.fail(f"the container stopped ({self.container.status}); logs:\n"
                            + self.logs(), pytrace=False)
            code, _ = self.container.exec_run(["cassini", "-l"], user=self.user,
                                              environment={"CASSINI_TIMEOUT": "1"})
            return code == 0
        wait_for(ready, timeout, "the daemon in the container to answer `cassini -l`", 0.2)

    @property
    def user(self):
        uid, gid = container_ids()
        return f"{uid}:{gid}"

    def exec(self, *args, env=None):
        """Run a command in the container: (exit code, stdout bytes, stderr bytes)."""
        code, (out, err) = self.container.exec_run(list(args), demux=True, user=self.user,
                                                    environment=env or {})
        return code, out or b"", err or b""

    def cassini(self, *args):
        return self.exec("cassini", *args)

    def ok(self, *args):
        """cassini in the container, which must succeed; its stdout."""
        code, out, err = self.cassini(*args)
        assert code == 0, f"cassini {' '.join(args)} -> {code}: {err!r}"
        return out

    def clock(self, *args):
        code, out, err = self.exec("saturnd-clock", *args)
        assert code == 0, f"saturnd-clock {' '.join(args)} -> {code}: {out!r} {err!r}"
        return out

    def logs(self):
        try:
            return self.container.logs().decode(errors="replace")
        except Exception as e:          # noqa: BLE001
            return f"(no logs: {e})"

    def stop(self, timeout=20):
        """`docker stop`; the container's exit code."""
        self.container.stop(timeout=timeout)
        return self.container.wait(timeout=timeout + 10)["StatusCode"]


def compose_commands():
    """The compose spellings this machine has: ['docker', 'compose'] and/or ['docker-compose']."""
    found = []
    docker_cli = shutil.which("docker")
    if docker_cli and subprocess.run([docker_cli, "compose", "version"], capture_output=True,
                                     stdin=subprocess.DEVNULL).returncode == 0:
        found.append([docker_cli, "compose"])
    v1 = shutil.which("docker-compose")
    if v1:
        found.append([v1])
    return found


def run_once(client, image, command, **options):
    """Run a throw-away container to its end: (exit code, stdout bytes). Its anonymous
    volume (the image's VOLUME) goes with it."""
    c = client.containers.run(image, command, detach=True, network_mode="none",
                              labels={LABEL: SESSION}, **options)
    try:
        code = c.wait(timeout=30)["StatusCode"]
        return code, c.logs(stderr=False)
    finally:
        c.remove(force=True, v=True)

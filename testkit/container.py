"""The container target and the Docker helpers of tests/container.

:class:`ContainerDaemon`: the daemon handle with saturnd running inside the project image
(``SATURND_IMAGE``, default ``saturnd:ci``), as the test's user, under the engine's init,
without network. The handle's root directory's parent is bind-mounted at the same path, so
that paths mean the same thing on both sides (pipes, data, home, files given to ``cassini
-I``). cassini and saturnd-clock run INSIDE the container (``docker exec``); ``raw()`` and
the readiness probe use the bind-mounted pipes from here. Outputs are bytes, unchanged.

Engine and image: :func:`engine` and :func:`project_image`; with ``CI`` set a missing
engine or image fails the test instead of skipping it. Every container and volume made here
carries the label ``saturnd-test=<session>`` and :func:`cleanup` removes them.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

from . import ROOT
from .daemon import DaemonHandle
from .waiting import wait_for

IN_CI = bool(os.environ.get("CI"))
SESSION = uuid.uuid4().hex[:10]
LABEL = "saturnd-test"
CONTAINER_PIPES = "/tmp/saturnd/saturnd/pipes"
CONTAINER_DATA = "/var/lib/saturnd"
DEFAULT_IMAGE = "saturnd:ci"
# Any minute boundary works; a Monday in winter, so that Europe/Paris is UTC+1.
START = 1705312680          # 2024-01-15 09:58:00 UTC = 10:58 in Paris


def unavailable(reason: str) -> NoReturn:
    """Skip (fail under CI) for want of an engine or an image."""
    if IN_CI:
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def engine() -> Any:
    """A client of the local Docker engine (docker SDK), or skip/fail."""
    try:
        import docker
    except ImportError:
        unavailable("the docker SDK is not installed")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as e:          # noqa: BLE001 - any failure means "no engine"
        unavailable(f"no Docker engine is reachable ({type(e).__name__}: {e}); "
                    "run ci/docker-setup.sh")
    return client


def has_image(client: Any, name: str) -> bool:
    import docker
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def project_image(client: Any, default: str | None = None) -> str:
    """The tag of the project image: ``SATURND_IMAGE`` (or ``default``) when set, which must
    exist; else the working tree built once as ``saturnd:test`` on the first base found."""
    tag = os.environ.get("SATURND_IMAGE") or default
    if tag:
        if not has_image(client, tag):
            unavailable(f"SATURND_IMAGE={tag} is not an image of this engine "
                        "(ci/build-base-image.sh builds it)")
        return tag
    candidates = [os.environ.get("SATURND_BASE_IMAGE"), "python:3.12-slim",
                  "saturnd-base:bookworm"]
    base = next((b for b in candidates if b and has_image(client, b)), None)
    if base is None:
        unavailable("no base image (python:3.12-slim or saturnd-base:bookworm); "
                    "run ci/build-base-image.sh")
    tag = "saturnd:test"
    client.images.build(path=str(ROOT), tag=tag, network_mode="none", rm=True, forcerm=True,
                        buildargs={"BASE_IMAGE": base})
    return tag


def cleanup(client: Any) -> None:
    """Remove this session's containers and volumes."""
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}={SESSION}"}):
        try:
            c.remove(force=True, v=True)
        except Exception:           # noqa: BLE001
            pass
    for v in client.volumes.list(filters={"label": f"{LABEL}={SESSION}"}):
        try:
            v.remove(force=True)
        except Exception:           # noqa: BLE001
            pass


# --- the container target -----------------------------------------------------------------
class ContainerProcess:
    """The Popen-like face of a container running saturnd (``docker stop`` semantics:
    signals go to the engine's init, which forwards them to saturnd)."""

    def __init__(self, container: Any) -> None:
        self.container = container

    @property
    def pid(self) -> int:
        """The host pid of the container's first process (the engine's init)."""
        self.container.reload()
        return self.container.attrs["State"]["Pid"]

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        self.container.reload()
        if self.container.status in ("created", "running"):
            return None
        return self.container.attrs["State"]["ExitCode"]

    def wait(self, timeout: float | None = None) -> int | None:
        limit = timeout if timeout is not None else 3600
        deadline = time.monotonic() + limit
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("saturnd (container)", limit)
            time.sleep(0.05)
        return self.poll()

    def send_signal(self, sig: int) -> None:
        try:
            self.container.kill(signal=int(sig))
        except Exception:           # noqa: BLE001 - already stopped
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ContainerDaemon(DaemonHandle):
    """The container target (see the module's docstring)."""

    target = "container"

    def __init__(self, root: "str | os.PathLike[str]", client: Any, image: str,
                 share: "str | os.PathLike[str] | None" = None, **kw: Any) -> None:
        super().__init__(root, **kw)
        self.client = client
        self.image = image
        self.share = Path(share or self.root.parent)
        self.user = f"{os.getuid()}:{os.getgid()}"
        self.made: list[Any] = []

    def argv(self) -> list[str]:
        return ["saturnd"] + self.saturnd_args()

    def _launch(self) -> None:
        env = {k: v for k, v in self.env.items() if k in ("TZ", "HOME")
               or k not in os.environ or os.environ[k] != v}
        container = self.client.containers.run(
            self.image, self.saturnd_args(), entrypoint=["/usr/local/bin/saturnd"],
            detach=True, init=True, network_mode="none", user=self.user, environment=env,
            working_dir=str(self.home), labels={LABEL: SESSION},
            volumes={str(self.share): {"bind": str(self.share), "mode": "rw"}})
        self.made.append(container)
        self.proc = ContainerProcess(container)

    @property
    def container(self) -> Any:
        return self.proc.container

    def _exec_argv(self, env: Mapping[str, str], interactive: bool) -> list[str]:
        argv = ["docker", "exec", "-u", self.user, "-w", str(self.home)]
        if interactive:
            argv.append("-i")
        for k, v in dict({"TZ": self.env.get("TZ", "UTC"), "HOME": str(self.home)},
                          **env).items():
            argv += ["-e", f"{k}={v}"]
        return argv + [self.container.id]

    def _cassini_argv(self) -> list[str]:
        return ["cassini"]

    def _clock_argv(self) -> list[str]:
        return ["saturnd-clock"]

    def _run(self, argv: list[str], env: Mapping[str, str], input: bytes | None,
             timeout: float) -> "subprocess.CompletedProcess[bytes]":
        return subprocess.run(self._exec_argv(env, input is not None) + argv,
                              capture_output=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def spawn_cassini(self, *args: str) -> "subprocess.Popen[bytes]":
        """A cassini started in the container and not waited for (output discarded)."""
        return subprocess.Popen(self._exec_argv({}, False) + ["cassini", "-p", str(self.pipes),
                                                              *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def pid_alive(self, pid: int) -> bool:
        """Whether ``pid`` (a pid of the container's namespace) runs, zombies aside."""
        code, out = self._proc_state(pid)
        return code == 0 and out.strip() not in (b"", b"Z")

    def _proc_state(self, pid: int) -> tuple[int, bytes]:
        res = self._run(["sh", "-c", f"cut -d')' -f2- /proc/{int(pid)}/stat 2>/dev/null "
                                     "| cut -d' ' -f2"], {}, None, 30)
        return res.returncode, res.stdout

    def stop(self) -> None:
        super().stop()
        for c in self.made:
            try:
                c.remove(force=True)
            except Exception:       # noqa: BLE001
                pass


# --- the project image as tests/container drives it ---------------------------------------
def container_ids() -> tuple[int, int]:
    """uid/gid for containers: the host user's, so that host and container share the pipes
    directory, or 1000:1000 (the image's user) when the tests run as root: the container
    user must not be root. (Root on the host still reaches the uid's pipes.)"""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return 1000, 1000
    return uid, gid


def host_cassini_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "cassini"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("cassini")
    return [found] if found else [sys.executable, "-m", "cassini"]


def host_run(args: Sequence[str], timeout: float = 30,
             env_extra: Mapping[str, str] | None = None) -> "subprocess.CompletedProcess[bytes]":
    """Run a host command (as the test's user: the container's uid, or root)."""
    env = dict(os.environ)
    env.pop("POSIXLY_CORRECT", None)
    env.update(env_extra or {})
    return subprocess.run(args, capture_output=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def host_cassini(pipes_dir: "str | os.PathLike[str]", *args: str,
                 env_extra: Mapping[str, str] | None = None
                 ) -> "subprocess.CompletedProcess[bytes]":
    if os.getuid() != container_ids()[0]:
        # Tests run as root, the container as 1000: the pipes directory is not root's, and
        # cassini refuses another user's pipes (as it must) unless told not to check them.
        # (A real host user shares the container's uid and never needs this.)
        env_extra = dict(env_extra or {}, CASSINI_SKIP_PIPES_CHECK="1")
    return host_run(host_cassini_cmd() + ["-p", str(pipes_dir), *args], env_extra=env_extra)


def host_clock(pipes_dir: "str | os.PathLike[str]", *args: str
               ) -> "subprocess.CompletedProcess[bytes]":
    return host_run([sys.executable, "-m", "saturnd.clockctl", "-p", str(pipes_dir), *args],
                    timeout=60)


class Saturnd:
    """One container of the project image, with helpers to talk to it."""

    def __init__(self, client: Any, image: str, pipes_dir: "str | os.PathLike[str]", volume: str,
                 args: Sequence[str], env: Mapping[str, str]) -> None:
        self.client = client
        self.image = image
        self.pipes_dir = pipes_dir
        self.volume = volume
        self.args = list(args)
        self.env = dict(env)
        self.container: Any = None
        self.run_options: dict[str, Any] = {}

    def start(self) -> "Saturnd":
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

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            self.container.reload()
            if self.container.status not in ("created", "running"):
                pytest.fail(f"the container stopped ({self.container.status}); logs:\n"
                            + self.logs(), pytrace=False)
            code, _ = self.container.exec_run(["cassini", "-l"], user=self.user,
                                              environment={"CASSINI_TIMEOUT": "1"})
            return code == 0
        wait_for(ready, timeout, "the daemon in the container to answer `cassini -l`", 0.2)

    @property
    def user(self) -> str:
        uid, gid = container_ids()
        return f"{uid}:{gid}"

    def exec(self, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, bytes, bytes]:
        """Run a command in the container: (exit code, stdout bytes, stderr bytes)."""
        code, (out, err) = self.container.exec_run(list(args), demux=True, user=self.user,
                                                    environment=env or {})
        return code, out or b"", err or b""

    def cassini(self, *args: str) -> tuple[int, bytes, bytes]:
        return self.exec("cassini", *args)

    def ok(self, *args: str) -> bytes:
        """cassini in the container, which must succeed; its stdout."""
        code, out, err = self.cassini(*args)
        assert code == 0, f"cassini {' '.join(args)} -> {code}: {err!r}"
        return out

    def clock(self, *args: str) -> bytes:
        code, out, err = self.exec("saturnd-clock", *args)
        assert code == 0, f"saturnd-clock {' '.join(args)} -> {code}: {out!r} {err!r}"
        return out

    def logs(self) -> str:
        try:
            return self.container.logs().decode(errors="replace")
        except Exception as e:          # noqa: BLE001
            return f"(no logs: {e})"

    def stop(self, timeout: float = 20) -> int:
        """`docker stop`; the container's exit code."""
        self.container.stop(timeout=timeout)
        return self.container.wait(timeout=timeout + 10)["StatusCode"]


def compose_commands() -> list[list[str]]:
    """The compose spellings this machine has: ['docker', 'compose'] and/or ['docker-compose']."""
    found: list[list[str]] = []
    docker_cli = shutil.which("docker")
    if docker_cli and subprocess.run([docker_cli, "compose", "version"], capture_output=True,
                                     stdin=subprocess.DEVNULL).returncode == 0:
        found.append([docker_cli, "compose"])
    v1 = shutil.which("docker-compose")
    if v1:
        found.append([v1])
    return found


def run_once(client: Any, image: str, command: Sequence[str],
             **options: Any) -> tuple[int, bytes]:
    """Run a throw-away container to its end: (exit code, stdout bytes). Its anonymous
    volume (the image's VOLUME) goes with it."""
    c = client.containers.run(image, command, detach=True, network_mode="none",
                              labels={LABEL: SESSION}, **options)
    try:
        code = c.wait(timeout=30)["StatusCode"]
        return code, c.logs(stderr=False)
    finally:
        c.remove(force=True, v=True)

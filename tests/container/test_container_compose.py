"""The repository's docker-compose.yml, with every compose spelling this machine has
(`docker compose` v2 and/or `docker-compose` v1)."""

import os
import subprocess
import uuid

import pytest

from testkit.container import (IN_CI, ROOT, SESSION, START, compose_commands, container_ids,
                               host_cassini, host_clock, wait_for)

COMPOSE_FILE = ROOT / "docker-compose.yml"
SPELLINGS = compose_commands()


def _ids(cmds):
    return [" ".join(os.path.basename(c[0]) if i == 0 else c[i] for i in range(len(c)))
            for c in cmds]


@pytest.fixture(params=SPELLINGS or [None], ids=_ids(SPELLINGS) or ["none"])
def compose(request, docker_client, image, pipes_dir):
    if request.param is None:
        msg = "neither `docker compose` nor `docker-compose` is installed"
        if IN_CI:
            pytest.fail(f"CI is set but {msg}", pytrace=False)
        pytest.skip(msg)
    project = f"saturnd-test-{SESSION}-{uuid.uuid4().hex[:6]}"
    uid, gid = container_ids()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SATURND_", "COMPOSE_"))}
    env.update(SATURND_IMAGE=image, SATURND_PIPES_DIR=str(pipes_dir), SATURND_UID=str(uid),
               SATURND_GID=str(gid), TZ="Europe/Paris",
               SATURND_ARGS=f"--clock manual --start-time {START} --grace 1")
    base = [*request.param, "-p", project, "-f", str(COMPOSE_FILE)]

    def run(*args, check=True, timeout=60):
        r = subprocess.run([*base, *args], capture_output=True, env=env, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=ROOT)
        if check:
            assert r.returncode == 0, (f"{' '.join(base[:-4])} {' '.join(args)} -> "
                                       f"{r.returncode}\n{r.stderr.decode(errors='replace')}")
        return r

    run.project = project
    try:
        yield run
    finally:
        run("down", "-v", "--remove-orphans", "-t", "10", check=False)
        for v in docker_client.volumes.list(filters={"name": project}):
            v.remove(force=True)


def _exec_list(compose):
    return compose("exec", "-T", "saturnd", "cassini", "-l", check=False)


def _ready(compose):
    wait_for(lambda: _exec_list(compose).returncode == 0, 30,
             "`compose exec saturnd cassini -l` to succeed", 0.2)


def _container(docker_client, project):
    found = docker_client.containers.list(
        all=True, filters={"label": [f"com.docker.compose.project={project}",
                                     "com.docker.compose.service=saturnd"]})
    assert len(found) == 1, found
    return found[0]


@pytest.mark.timeout(150)
def test_compose_up_gives_a_working_daemon(compose, docker_client, pipes_dir):
    compose("up", "-d", "--no-build")
    _ready(compose)
    c = _container(docker_client, compose.project)
    host = c.attrs["HostConfig"]
    uid, gid = container_ids()
    assert host["NetworkMode"] == "none" and host["Init"] is True
    assert host["RestartPolicy"]["Name"] == "on-failure"
    # started as root (the entry point), the daemon as SATURND_UID:SATURND_GID (never root)
    assert c.attrs["Config"]["User"] == "0:0" and uid != 0
    fifo = os.stat(pipes_dir / "saturnd-request-pipe")
    assert (fifo.st_uid, fifo.st_gid) == (uid, gid)
    assert "TZ=Europe/Paris" in c.attrs["Config"]["Env"]
    mounts = {m["Destination"]: m for m in c.attrs["Mounts"]}
    assert mounts["/var/lib/saturnd"]["Type"] == "volume"
    assert mounts["/var/lib/saturnd"]["Name"].endswith("saturnd-data")
    assert mounts["/tmp/saturnd/saturnd/pipes"]["Source"] == str(pipes_dir)

    # host cassini and `compose exec` cassini talk to the same daemon
    r = host_cassini(pipes_dir, "-c", "-m", "0", "-H", "11", "echo", "eleven")
    assert (r.returncode, r.stdout) == (0, b"0\n"), r.stderr
    r = _exec_list(compose)
    assert (r.returncode, r.stdout) == (0, b"0: 0 11 * echo eleven\n"), r.stderr
    # the manual clock from SATURND_ARGS, driven from the host; TZ=Europe/Paris schedules
    r = host_clock(pipes_dir, "advance", "2")
    assert (r.returncode, r.stdout) == (0, f"ok {START + 120}\n".encode()), r.stderr
    r = compose("exec", "-T", "saturnd", "cassini", "-x", "0")
    assert r.stdout == b"2024-01-15 11:00:00 0\n"
    r = compose("exec", "-T", "saturnd", "cassini", "-o", "0")
    assert r.stdout == b"eleven\n"

    # data survive `down` (without -v) and a new `up`: the named volume
    compose("down", "-t", "10")
    compose("up", "-d", "--no-build")
    _ready(compose)
    r = host_cassini(pipes_dir, "-x", "0", env_extra={"TZ": "UTC"})
    assert (r.returncode, r.stdout) == (0, b"2024-01-15 10:00:00 0\n"), r.stderr

    # the daemon logs to the engine
    logs = compose("logs", "--no-color", "saturnd").stdout.decode(errors="replace")
    assert "saturnd[" in logs and "ready (pid" in logs, logs[-2000:]

    # a crash (the daemon killed) is restarted by the restart policy (on-failure) ...
    c = _container(docker_client, compose.project)
    started = c.attrs["State"]["StartedAt"]
    status = dict(line.split(": ", 1) for line in
                  host_cassini(pipes_dir, "-S").stdout.decode().splitlines())
    r = c.exec_run(["sh", "-c", f"kill -KILL {int(status['pid'])}"], user="0")
    assert r.exit_code == 0, r.output

    def restarted():
        c.reload()
        return c.attrs["State"]["StartedAt"] != started and c.status == "running"

    wait_for(restarted, 30, "the restart policy to restart the container after a crash")
    _ready(compose)
    assert c.attrs["RestartCount"] >= 1
    r = _exec_list(compose)
    assert (r.returncode, r.stdout) == (0, b"0: 0 11 * echo eleven\n")

    # ... but TERMINATE (cassini -q, exit 0) stops the service for good
    count = c.attrs["RestartCount"]
    r = host_cassini(pipes_dir, "-q")
    assert r.returncode == 0, r.stderr

    def exited():
        c.reload()
        return c.status == "exited"

    wait_for(exited, 30, "the container to stop after cassini -q")
    assert c.attrs["State"]["ExitCode"] == 0
    import time
    time.sleep(2)                   # a restart would come within a second
    c.reload()
    assert c.status == "exited" and c.attrs["RestartCount"] == count

"""The example of giving tasks their tools (docs/containers.md): an image built FROM the project image
adding packages (examples/container/Dockerfile), a volume of scripts and the network
(examples/container/compose.tools.yml, an override of docker-compose.yml)."""

import os
import subprocess
import uuid

import pytest

from testkit.container import (IN_CI, ROOT, SESSION, compose_commands, container_ids,
                               host_cassini, wait_for)

EXAMPLE = ROOT / "examples" / "container"
SPELLINGS = compose_commands()


@pytest.fixture(scope="module")
def tools_image(docker_client, image):
    """The example image, built FROM the project image under test (apt-get: network)."""
    tag = f"saturnd-tools:test-{SESSION}"
    r = subprocess.run(["docker", "build", "-q", "--network", "default", "--build-arg",
                        f"SATURND_IMAGE={image}", "-t", tag, str(EXAMPLE)],
                       capture_output=True, timeout=600)
    if r.returncode != 0:
        msg = f"cannot build the example image (apt-get needs a mirror): {r.stderr[-400:]!r}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    yield tag
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=60)


@pytest.mark.timeout(300)
def test_tasks_get_tools_scripts_and_network(docker_client, image, tools_image, pipes_dir):
    if not SPELLINGS:
        if IN_CI:
            pytest.fail("no compose command")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    project = f"saturnd-tools-{SESSION}-{uuid.uuid4().hex[:6]}"
    uid, gid = container_ids()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SATURND_", "COMPOSE_"))}
    env.update(SATURND_IMAGE=image, SATURND_TOOLS_IMAGE=tools_image,
               SATURND_PIPES_DIR=str(pipes_dir), SATURND_UID=str(uid), SATURND_GID=str(gid),
               SATURND_ARGS="--clock manual --start-time 1705312680 --grace 1 --on-failure "
                            "'echo notice task=$SATURND_TASKID status=$SATURND_EXIT_STATUS "
                            "out=$(cat $SATURND_STDOUT)'")
    base = [*SPELLINGS[0], "-p", project, "-f", str(ROOT / "docker-compose.yml"),
            "-f", str(EXAMPLE / "compose.tools.yml")]

    def compose(*args, check=True):
        r = subprocess.run([*base, *args], capture_output=True, env=env, timeout=120,
                           stdin=subprocess.DEVNULL, cwd=ROOT)
        if check:
            assert r.returncode == 0, r.stderr.decode(errors="replace")
        return r

    try:
        compose("up", "-d", "--no-build")
        wait_for(lambda: compose("exec", "-T", "saturnd", "cassini", "-l",
                                 check=False).returncode == 0, 60, "the daemon", 0.2)
        found = docker_client.containers.list(filters={"label": [
            f"com.docker.compose.project={project}", "com.docker.compose.service=saturnd"]})
        c = found[0]
        assert c.attrs["HostConfig"]["NetworkMode"] == "bridge"
        assert c.attrs["Config"]["Image"] == tools_image
        # a script of the scripts volume, found on the tasks' PATH, uses the added tools
        r = host_cassini(pipes_dir, "-c", "tools-check.sh")
        assert (r.returncode, r.stdout) == (0, b"0\n"), r.stderr
        r = host_cassini(pipes_dir, "-i", "0")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: host_cassini(pipes_dir, "-x", "0").stdout, 30, "the run", 0.2)
        assert host_cassini(pipes_dir, "-x", "0").stdout.endswith(b" 0\n"), \
            host_cassini(pipes_dir, "-e", "0").stdout
        out = host_cassini(pipes_dir, "-o", "0").stdout.decode()
        assert out.startswith("curl ") and "\ngit version " in out and "\nrsync " in out, out
        # the network: the container has an interface besides lo
        r = c.exec_run(["cat", "/proc/net/dev"])
        assert b"eth0" in r.output
        # the failure notice works in the container: its output is in the engine's log
        r = host_cassini(pipes_dir, "-c", "--", "sh", "-c", "echo broken; exit 3")
        assert (r.returncode, r.stdout) == (0, b"1\n"), r.stderr
        assert host_cassini(pipes_dir, "-i", "1").returncode == 0
        wait_for(lambda: b"notice task=1 status=3 out=broken" in
                 compose("logs", "--no-color", "saturnd").stdout, 30, "the notice in the log",
                 0.2)
    finally:
        compose("down", "-v", "--remove-orphans", "-t", "5", check=False)

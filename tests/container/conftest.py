"""Fixtures for the container tests (marker ``container``).

Engine: the local Docker engine through the ``docker`` SDK. With ``CI`` set, no reachable
engine (or no image) is a failure; elsewhere these tests are skipped with the reason.

Image: ``SATURND_IMAGE`` when set (``.ci/run`` builds ``saturnd:ci`` with
``ci/build-base-image.sh`` and exports it); otherwise the working tree is built once per
session as ``saturnd:test`` on the first base found (``SATURND_BASE_IMAGE``,
``python:3.12-slim``, ``saturnd-base:bookworm``).

Every container and volume made here carries the label ``saturnd-test=<session id>`` and
is removed at the end of the session.
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from testkit.container import (LABEL, SESSION, START, Saturnd, cleanup, container_ids, engine,
                               project_image)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.container)


# --- engine and image -----------------------------------------------------------
@pytest.fixture(scope="session")
def docker_client():
    client = engine()
    yield client
    cleanup(client)
    client.close()


@pytest.fixture(scope="session")
def image(docker_client):
    """The tag of the project image to test."""
    return project_image(docker_client)


@pytest.fixture
def pipes_dir():
    """A fresh host directory, owned by the container's uid, bind-mounted as the pipes."""
    path = Path(tempfile.mkdtemp(prefix="saturnd-pipes-"))
    uid, gid = container_ids()
    os.chown(path, uid, gid)
    os.chmod(path, 0o700)
    if os.getuid() != uid:
        # Tests run as root, the container as 1000: the client lock files must belong to
        # the container's uid, or a root cassini on the host would create them root-owned
        # (0600) and lock the container's own cassini out. (A real host user shares the
        # container's uid and never needs this.)
        for name in ("cassini-lock", "clock-lock"):
            fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchown(fd, uid, gid)
            os.close(fd)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def saturnd_factory(docker_client, image, pipes_dir):
    """Make (not start) containers on a fresh pipes directory and a fresh named volume."""
    volume = docker_client.volumes.create(name=f"saturnd-test-{SESSION}-{uuid.uuid4().hex[:6]}",
                                          labels={LABEL: SESSION})
    made = []

    def make(args=(), env=None, volume_name=None):
        s = Saturnd(docker_client, image, pipes_dir, volume_name or volume.name, args,
                    {"TZ": "Etc/UTC", **(env or {})})
        made.append(s)
        return s

    yield make
    for s in made:
        if s.container is not None:
            try:
                s.container.remove(force=True)
            except Exception:           # noqa: BLE001
                pass
    try:
        volume.remove(force=True)
    except Exception:                   # noqa: BLE001
        pass


@pytest.fixture
def manual(saturnd_factory):
    """A started container with the manual clock at START (TZ Europe/Paris) and grace 1 s."""
    return saturnd_factory(["--clock", "manual", "--start-time", str(START), "--grace", "1"],
                           env={"TZ": "Europe/Paris"}).start()

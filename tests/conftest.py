"""Shared by every folder of tests/: the daemon handle's target and its fixtures.

``make_daemon(name="d", **options)`` makes a daemon handle (testkit.daemon) in the test's
temporary directory, ``daemon`` a started one, ``shared_daemon`` one per module. Scenario
modules (marker ``scenario``) get the selected target (``--target``, ``SATURND_TARGET``);
everything else always gets a local process.
"""

import pytest

from testkit import targets
from testkit.daemon import LocalDaemon
from testkit.stubs import time_zone


def pytest_addoption(parser):
    parser.addoption("--target", choices=targets.TARGETS, default=None,
                     help="where the daemon scenarios run saturnd (default: $SATURND_TARGET "
                          "or local)")


def pytest_configure(config):
    config.addinivalue_line("markers", "scenario: a daemon scenario that runs on every target")
    config.addinivalue_line("markers", "local_only(reason): a scenario the container target "
                                       "cannot run")


def pytest_runtest_setup(item):
    targets.skip_outside_target(item, targets.selected_target(item.config))


@pytest.fixture(scope="session")
def container_engine():
    """(docker client, image tag) of the container target, made once."""
    from testkit import container
    state = {}

    def get():
        if not state:
            client = container.engine()
            state["engine"] = (client, container.project_image(client, container.DEFAULT_IMAGE))
        return state["engine"]

    yield get
    if state:
        container.cleanup(state["engine"][0])


@pytest.fixture
def make_daemon(request, tmp_path, container_engine):
    target = "local"
    if request.node.get_closest_marker("scenario") is not None:
        target = targets.selected_target(request.config)
    factory = targets.Factory(tmp_path, target, container_engine)
    yield factory
    factory.close()


@pytest.fixture
def daemon(make_daemon):
    return make_daemon().start()


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    d = LocalDaemon(tmp_path_factory.mktemp("shared")).start()
    yield d
    d.stop()


@pytest.fixture
def tz():
    """``tz(name)`` sets TZ for this test (restored afterwards)."""
    with time_zone() as set_tz:
        yield set_tz


@pytest.fixture
def logs():
    """The messages a store logged (see ``open_store``)."""
    return []


@pytest.fixture
def open_store(tmp_path, logs):
    """``open_store(root=None)``: an opened saturnd Store under the test's directory
    (``root``: another directory), logging into ``logs``."""
    from saturnd.store import Store

    def make(root=None):
        s = Store(root or tmp_path / "data", logs.append)
        s.open()
        return s
    return make

"""Fixtures of the reliability tests: real manual-clock daemons (see reliability_harness).

Imported by each test module (not a conftest.py: tests/daemon imports its own conftest by
name, and a second module called ``conftest`` would shadow it)."""

import pytest

from reliability_harness import Daemon


@pytest.fixture
def make_daemon(tmp_path):
    made = []

    def make(name="d", **kw):
        d = Daemon(tmp_path / name, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.fixture
def daemon(make_daemon):
    return make_daemon().start()


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("shared")).start()
    yield d
    d.stop()

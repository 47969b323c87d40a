"""Fixtures of the reliability tests: real manual-clock daemons (see reliability_harness)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from reliability_harness import Daemon  # noqa: E402


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

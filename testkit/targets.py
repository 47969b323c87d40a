"""Choosing where the daemon under test runs: its *target*.

``local`` (default): saturnd of this checkout as a child process. ``container``: saturnd in
the project image (``SATURND_IMAGE``, default ``saturnd:ci``), cassini and saturnd-clock run
inside the container. Chosen by pytest's ``--target`` option, else ``SATURND_TARGET``.

Only the daemon scenarios (modules marked ``scenario``) follow the target; under the
container target the other tests are skipped, and so are scenarios marked
``local_only(reason)`` (they need what only a local process gives, e.g. its /proc).
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .daemon import DaemonHandle, LocalDaemon

TARGETS = ("local", "container")


def selected_target(config: pytest.Config) -> str:
    target = config.getoption("target", None) or os.environ.get("SATURND_TARGET") or "local"
    if target not in TARGETS:
        raise pytest.UsageError(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
    return target


def skip_outside_target(item: pytest.Item, target: str) -> None:
    """Called per test: skips what the selected target does not run."""
    if target == "local":
        return
    if item.get_closest_marker("scenario") is None:
        pytest.skip(f"runs on the local target only (selected: {target})")
    mark = item.get_closest_marker("local_only")
    if mark is not None:
        pytest.skip(f"local target only: {mark.args[0] if mark.args else mark.kwargs['reason']}")


class Factory:
    """``make(name="d", **options)`` -> a handle (not started) under ``base/name``; every
    handle made is stopped at the end."""

    def __init__(self, base: Path, target: str,
                 engine: "Callable[[], tuple[Any, str]] | None" = None) -> None:
        self.base = base
        self.target = target
        self.engine = engine        # (client, image) of the container target
        self.made: list[DaemonHandle] = []

    def __call__(self, name: str = "d", **kw: Any) -> DaemonHandle:
        d: DaemonHandle
        if self.target == "container":
            from .container import ContainerDaemon
            if self.engine is None:
                raise pytest.UsageError("the container target needs an engine")
            client, image = self.engine()
            d = ContainerDaemon(self.base / name, client, image, share=self.base, **kw)
        else:
            d = LocalDaemon(self.base / name, **kw)
        self.made.append(d)
        return d

    def close(self) -> None:
        for d in self.made:
            d.stop()

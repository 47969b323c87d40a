"""The one poll loop of the tests, the benchmark and the soak."""

import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


def wait_for(cond: "Callable[[], T]", timeout: float = 10.0, what: str = "condition",
             interval: float = 0.02,
             error: "Callable[[str], BaseException]" = AssertionError) -> "T":
    """Poll ``cond()`` until it returns a true value (returned); raise ``error`` once
    ``timeout`` seconds have passed without one."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)

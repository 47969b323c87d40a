"""The one poll loop of the tests, the benchmark and the soak."""

import time


def wait_for(cond, timeout=10.0, what="condition", interval=0.02, error=AssertionError):
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

"""kill -9 at random moments during a stream of changes and runs (>= 20 kills): every
change that got an OK survives, the unanswered one is all-or-nothing (no chimera command
line or timing), ids are never reused, run history is never truncated or torn, and the
daemon always starts again."""

import random

import pytest

from testkit.workloads import crash_rounds


@pytest.mark.timeout(120)
def test_kill_9_at_random_moments(daemon):
    w = crash_rounds(daemon, 25, random.Random(9))
    assert w.ops > 25
    # runs were recorded through the crashes (history checked as a growing prefix)
    assert sum(len(h) for h in w.history.values()) > 0

"""grader/own_requests_next.py against our own pair: the NEXT_RUNS scenarios pass (with a
system clock and with the manual clock), and a daemon that does not know NEXT_RUNS fails
them with a diagnosis."""

import os
import shutil
import tempfile

import pytest

from grader import own_requests_next as N
from grader.candidate import DaemonConfig
from grader.programs import our_programs
from grader.scenarios import run_scenario
from grader.sandbox import Options

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def config():
    base = tempfile.mkdtemp(prefix="grader-next-", dir="/var/tmp")
    os.chmod(base, 0o755)
    options = Options(base=base)        # options.base: in the container's box, if any
    cfg = DaemonConfig(options=options,
                       saturnd=our_programs(os.path.join(options.base, "bin"))["saturnd"],
                       clock="manual", speed=20, precreate=False, real_minutes=0,
                       libfaketime=None)
    yield cfg
    options.close()
    shutil.rmtree(base, ignore_errors=True)


def test_ours_passes(config):
    for name, func in N.PROTOCOL:
        outcome = run_scenario(config, "daemon-extension", name, func)
        assert outcome.status == "pass", (outcome.message, outcome.detail)
    outcomes = N.next_runs_scheduling(config)
    assert [o.status for o in outcomes] == ["pass"], [(o.message, o.detail) for o in outcomes]


WRONG = """
from saturnd.commands import HANDLERS
from saturnd import protocol
right = HANDLERS[protocol.NEXT_RUNS]

def off_by_one_minute(ctx, request):
    reply = right(ctx, request)
    if reply.times:
        reply.times = [t + 60 for t in reply.times]
    return reply

HANDLERS[protocol.NEXT_RUNS] = off_by_one_minute
from saturnd.__main__ import main
"""


def test_a_daemon_announcing_wrong_times_fails(config):
    with open(config.saturnd) as f:
        script = f.read()
    wrong = config.saturnd + "-wrong"
    with open(wrong, "w") as f:
        f.write(script.replace("from saturnd.__main__ import main\n", WRONG))
    os.chmod(wrong, 0o755)
    config.saturnd = wrong
    outcome = run_scenario(config, "daemon-extension", "next-runs", N.sc_own_next_runs)
    assert outcome.status == "fail" and "not a Sunday 03:07:00" in outcome.message
    outcomes = N.next_runs_scheduling(config)
    assert [o.status for o in outcomes] == ["fail"]
    assert "not the times NEXT_RUNS announced" in outcomes[0].message, outcomes[0].detail

"""Stop signals: a foreground saturnd stops gracefully on SIGHUP exactly as on SIGTERM
(a terminal hang-up, or a supervisor that sends HUP): the log says why, runs in
progress are stopped after the grace and recorded, outputs settled."""

import signal
import time

import pytest

from testkit import T0
from testkit.waiting import wait_for

pytestmark = [pytest.mark.timeout(60), pytest.mark.scenario]


def runs(*pairs):
    return b"".join(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)).encode()
                    + b" %d\n" % c for t, c in pairs)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["HUP", "TERM"])
def test_stop_signal_is_graceful(make_daemon, sig):
    d = make_daemon().start()
    d.cassini("-c", "--", "sh", "-c", "echo started; sleep 61; echo never")
    d.cassini("-c", "--", "sh", "-c", "echo quick")
    code, out = d.clock("advance", 1, 0)
    pid = int(out.split()[2].split(":")[1])
    wait_for(lambda: d.pid_alive(pid), what="the long run to start")
    started = time.monotonic()
    d.proc.send_signal(sig)
    assert d.wait_exit() == 0, d.log()
    assert time.monotonic() - started < 10                  # grace is 1 s
    assert f"stopping (signal {sig.name})" in d.log()
    assert d.log().rstrip().endswith("stopped"), d.log()
    wait_for(lambda: not d.pid_alive(pid), timeout=5, what="the run to be gone")
    d.start()
    assert d.out("-x", "0") == runs((T0 + 60, 65535))      # stopped by the daemon: recorded
    assert d.out("-o", "0") == b"started\n"
    assert d.out("-x", "1") == runs((T0 + 60, 0))
    assert d.out("-o", "1") == b"quick\n"

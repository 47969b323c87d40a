"""Fuzzing the request pipe: random and mutated requests, hypothesis, truncated writes and
writers killed mid-request. After each batch a well-formed exchange still gets the right
reply and the daemon is alive (>= 500 fuzzed requests in all)."""

import os
import random
import select

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from saturnd import protocol as P
from testkit.pipes import raw_exchange
from testkit.waiting import wait_for
from testkit.workloads import check_fuzz_reply, classify, dying_writer, fuzz_case, sanity


@pytest.mark.timeout(90)
def test_mutated_and_random_requests(shared_daemon):
    d = shared_daemon
    rng = random.Random(6)
    ids = [sanity(d)]
    sent = 0
    for _batch in range(4):
        for _ in range(100):
            data, what = fuzz_case(rng, ids)
            reply = raw_exchange(d.pipes, data)
            check_fuzz_reply(data, what, reply)
            if what[1] == P.CREATE:
                ids.append(P.decode_reply(reply, P.CREATE).value)
            sent += 1
        assert d.alive(), d.log()[-2000:]
        sanity(d)
    assert sent == 400


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.binary(max_size=80),
    st.builds(lambda op, rest: op + rest,
              st.sampled_from([b"LS", b"CR", b"RM", b"TX", b"SO", b"SE", b"\x43\xff", b"ST",
                               b"RT", b"\x48\xed"]),
              st.binary(max_size=60)),
))
@pytest.mark.timeout(120)
def test_hypothesis_byte_strings(shared_daemon, data):
    what = classify(data)
    if what is None or (what[0] == "reply" and what[1] in (P.EXEC_TASK, P.DELETE_ALL)):
        return
    check_fuzz_reply(data, what, raw_exchange(shared_daemon.pipes, data))
    assert shared_daemon.alive()


@pytest.mark.timeout(90)
def take_pending_reply(pipes, timeout=8.0):
    """Play the reader a dead client never was: return what the daemon answers it (b"" for
    the empty reply), or None when the daemon gave up first (REPLY_OPEN_TIMEOUT)."""
    fd = os.open(os.path.join(str(pipes), "saturnd-reply-pipe"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            return None
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def test_writers_killed_mid_request(shared_daemon):
    """A writer SIGKILLed in the middle of a request (no lock, like the reference client):
    the daemon sees its end of file (logged), answers the truncated request with the empty
    reply -- which the test takes, as the dead writer's reader would have -- and the next
    locked client gets its own reply; the daemon carries on.

    (The daemon cannot know that the writer is dead rather than about to read: a client
    that opens the reply pipe in the meantime, as cassini does before it writes, gets that
    empty reply. Two FIFOs have no framing and no client identity; see saturnd/server.py.)"""
    d = shared_daemon
    rng = random.Random(7)
    full = P.encode_request(P.Request(P.CREATE, timing=P.Timing(1, 1, 1),
                                      argv=[b"echo", b"x" * 300]))
    for _ in range(20):
        seen = d.log().count("malformed request")
        assert dying_writer(d.pipes, full, rng.randrange(1, len(full)))
        wait_for(lambda: d.log().count("malformed request") > seen, what="the end of file")
        assert take_pending_reply(d.pipes) in (b"", None), d.log()[-1500:]
        sanity(d)
        reply = raw_exchange(d.pipes, P.encode_request(P.Request(P.LIST)))
        assert reply, d.log()[-1500:]
        P.decode_reply(reply, P.LIST)
    assert d.alive()

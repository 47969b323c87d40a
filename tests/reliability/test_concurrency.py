"""Concurrency: 50 cassini processes at once (mixed create / list / remove), every reply
correct; clients that do not take the lock (raw writers like the reference C client) do
not corrupt the daemon's state nor desynchronize later requests.

What a lock-less client may observe (documented in the report): its request is never
mixed with another (each request is written in one write() of at most PIPE_BUF bytes,
which a FIFO keeps whole), but with other clients talking at the same time it may read
another client's reply, an empty reply, or none (then it times out), and a locked client
running at the same time may likewise get the lock-less client's reply. Once the lock-less
clients are gone, every request gets its own right reply."""

import random
import subprocess
import threading

import pytest

from saturnd import protocol as P
from testkit.daemon import CASSINI
from testkit.pipes import raw_exchange
from testkit.workloads import sanity, settle, wait_idle


def spawn(d, *args):
    return subprocess.Popen([CASSINI, "-p", str(d.pipes), *args], env=d.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.mark.timeout(120)
def test_fifty_cassini_at_once(daemon):
    d = daemon
    stable = []
    doomed = []
    for i in range(25):
        out = d.cassini("-c", "-m", "5", "--", "echo", f"stable {i}").stdout
        stable.append(int(out))
    for i in range(15):
        doomed.append(int(d.cassini("-c", "--", "echo", f"doomed {i}").stdout))
    procs = []
    for i in range(50):
        kind = ("create", "list", "remove")[i % 3] if i < 45 else "create"
        if kind == "create":
            procs.append((kind, i, spawn(d, "-c", "-H", "3", "--", "echo", f"new {i}", "x" * i)))
        elif kind == "list":
            procs.append((kind, i, spawn(d, "-l")))
        else:
            procs.append((kind, i, spawn(d, "-r", str(doomed.pop()))))
    created = {}
    lists = []
    for kind, i, p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (kind, i, err)
        assert err == b""
        if kind == "create":
            created[int(out)] = i
        elif kind == "list":
            lists.append(out)
        else:
            assert out == b""
    assert len(created) == 20           # 15 + 5 creates, every id distinct and new
    assert min(created) >= 40
    for out in lists:                   # a whole, well-formed listing each time
        lines = out.split(b"\n")
        assert lines[-1] == b""
        ids = [int(line.split(b":")[0]) for line in lines[:-1]]
        assert ids == sorted(set(ids))
        for i, tid in enumerate(stable):
            assert f"{tid}: 5 * * echo stable {i}\n".encode() in out
    assert doomed == []                 # every doomed task was removed by one client
    expected = b"".join(f"{tid}: 5 * * echo stable {i}\n".encode() for i, tid in enumerate(stable))
    expected += b"".join(f"{tid}: * 3 * echo new {i} {'x' * i}\n".encode()
                         for tid, i in sorted(created.items()))
    assert d.cassini("-l").stdout == expected


@pytest.mark.timeout(120)
def test_lockless_clients_do_not_corrupt_state(daemon):
    d = daemon
    stop = threading.Event()
    stats = {"ok": 0, "other": 0, "none": 0}
    lock = threading.Lock()
    names = [f"lockless-{i}".encode() for i in range(8)]

    def lockless(seed):
        r = random.Random(seed)
        for _ in range(40):     # each like a reference client run in a loop by a script
            if stop.is_set():
                break
            if r.random() < 0.5:
                req = P.Request(P.CREATE, timing=P.Timing(1, 1, 1), argv=[b"echo", r.choice(names)])
            else:
                req = P.Request(P.LIST)
            reply = raw_exchange(d.pipes, P.encode_request(req), timeout=10, lock=False)
            try:
                P.decode_reply(reply or b"", req.opcode)
                key = "ok"
            except P.ProtocolError:
                key = "other" if reply is not None else "none"
            with lock:
                stats[key] += 1
    threads = [threading.Thread(target=lockless, args=(s,), daemon=True) for s in range(4)]
    for t in threads:
        t.start()
    locked_errors = 0
    for _ in range(40):                 # locked cassini clients meanwhile: may be disturbed
        if spawn(d, "-l").wait(30) != 0:
            locked_errors += 1
    for t in threads:
        t.join(30)
    assert stats["ok"] > 0
    # afterwards (once the replies nobody read are dropped): state is whole and every
    # request gets its own reply
    wait_idle(d)
    sanity(d)
    tasks = d.call(P.Request(P.LIST)).tasks
    for _tid, timing, argv in tasks:
        assert timing == P.Timing(1, 1, 1) and argv[0] == b"echo" and argv[1] in names, argv
    for _ in range(20):
        assert d.call(P.Request(P.LIST)).tasks == tasks
        settle(d)
        r = raw_exchange(d.pipes, P.encode_request(P.Request(P.LIST)), lock=False)
        assert P.decode_reply(r, P.LIST).tasks == tasks
    print(stats, "locked cassini disturbed:", locked_errors)

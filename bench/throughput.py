"""Section 3: sequential CREATE throughput, through cassini and through the API.

One manual-clock daemon standing still (no task ever runs).  ``cassini -c``
is started N times one after the other (posix_spawn + waitpid, output to
/dev/null); the protocol-API client (:class:`bench.common.Client`) sends N CREATEs from
this process.
"""

import os
import sys
import time

from saturnd import protocol

from .common import BenchError, Daemon
from .rows import row

SECTION = "3 throughput"


def _cassini_creates(cassini, pipes, n):
    null = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
                   (os.POSIX_SPAWN_DUP2, null, 2)]
        argv = [cassini, "-p", pipes, "-c", "--", "echo", "hello"]
        t = time.perf_counter()
        for _ in range(n):
            pid = os.posix_spawn(cassini, argv, os.environ, file_actions=actions)
            _, status = os.waitpid(pid, 0)
            if status:
                raise BenchError(f"cassini -c exited with status {status}")
        return time.perf_counter() - t
    finally:
        os.close(null)


def _api_creates(client, n):
    data = protocol.encode_request(protocol.Request(protocol.CREATE, timing=protocol.EVERY_MINUTE,
                                                    argv=(b"echo", b"hello")))
    t = time.perf_counter()
    for _ in range(n):
        client.raw(data, protocol.CREATE)
    return time.perf_counter() - t


def run(cfg, workdir, log):
    rows = []
    n = cfg.creates
    cassini = os.path.join(os.path.dirname(sys.executable), "cassini")
    d = Daemon(os.path.join(workdir, "throughput"))
    with d:
        for key, what, fn in (
                ("cassini_creates", f"{n:,} x cassini -c (sequential)",
                 lambda: _cassini_creates(cassini, d.pipes, n)),
                ("api_creates", f"{n:,} x CREATE, protocol API, one process",
                 lambda: _api_creates(d.client(), n))):
            total = fn()
            rows.append(row(SECTION, key, what, n / total, "req/s", n=n,
                            note=f"{total:.2f} s in all, {total / n * 1e3:.2f} ms each",
                            extra={"total_s": total, "per_request_ms": total / n * 1e3}))
            log(f"  {what}: {n / total:.0f}/s ({total / n * 1e3:.2f} ms each)")
        got = len(d.client().list())
        if got != 2 * n:
            raise BenchError(f"the daemon lists {got} tasks after {2 * n} CREATEs")
    return rows

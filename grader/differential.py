"""Differential mode: the candidate client and a reference client, call for call.

Every client call of the protocol (and extension) scenarios goes to both clients, each
against its own daemon started the same way, so both see the same state; their exit
statuses and standard outputs must be byte-identical.
"""

import os
import time

from .candidate import Daemon, Failed
from .golden import describe_mismatch
from .report import Outcome
from .scenarios import Ctx, run_client


class DiffCtx(Ctx):
    """Each client call goes to the candidate and the reference client, each against its own
    daemon started the same way and driven through the same steps (so both see the same
    state); their exit statuses and standard outputs must be byte-identical."""

    diff = True

    def __init__(self, cand_daemon, ref_daemon, candidate, reference, sandbox_client):
        super().__init__(ref_daemon, reference, sandbox_client)
        self.created = 1
        self.cand_daemon = cand_daemon
        self.candidate = candidate
        self.diffs = []

    def cassini(self, *args):
        a = run_client(self.candidate, self.cand_daemon.pipes, args, self.sandbox_client)
        b = run_client(self.client, self.daemon.pipes, args, self.sandbox_client)
        if (a.code, a.out) != (b.code, b.out):
            lines = [f"{b.show()}:"]
            if a.code != b.code:
                lines.append(f"exit status: reference {b.code}, candidate {a.code}")
            if a.out != b.out:
                lines.append(describe_mismatch("stdout (expected = reference)", b.out, a.out))
            self.diffs.append("\n".join(lines))
        return b

    def expect(self, args, out=b"", code=0, why=""):
        return self.cassini(*args)

    def raw(self, request, opcode, what):
        from cassini.client import ClientError, exchange
        reply = None
        for d in (self.cand_daemon, self.daemon):
            try:
                reply = exchange(os.fsencode(d.pipes), request, opcode, timeout=5, reply_timeout=5,
                                 lock_timeout=10, check_pipes=False)
            except ClientError:
                reply = None
        return reply

    def expect_error(self, request, opcode, errcode, what):
        self.raw(request, opcode, what)

    def check(self, cond, message, detail=""):
        pass


def run_differential(config, name, func, candidate, reference):
    t0 = time.monotonic()
    a = Daemon(config.options, config, f"diff-cand-{name}")
    b = Daemon(config.options, config, f"diff-ref-{name}")
    try:
        a.start()
        b.start()
        ctx = DiffCtx(a, b, candidate, reference, config.options)
        func(ctx)
        if ctx.diffs:
            first = ctx.diffs[0].splitlines()
            return Outcome("differential", name, "fail",
                           f"{len(ctx.diffs)} call(s) differ; first: {' '.join(first[:2])}",
                           "\n\n".join(ctx.diffs), time.monotonic() - t0)
        return Outcome("differential", name, "pass", duration=time.monotonic() - t0)
    except Failed as e:
        return Outcome("differential", name, "fail", f"daemon: {e.message}",
                       e.detail or e.message, time.monotonic() - t0)
    finally:
        a.stop()
        b.stop()

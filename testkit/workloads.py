"""Workloads of the reliability tests and the soak: fuzz cases, the kill -9 workload, the
store's on-disk invariants, and waiting for the daemon to sit idle. Everything is bounded."""

import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from random import Random
from typing import Any

from cassini.client import ClientError
from saturnd import protocol as P

from .daemon import DaemonHandle
from .pipes import REQUEST

# a task as acknowledged: (the TIMING's fields, argv)
Acked = tuple[tuple[int, int, int], tuple[bytes, ...]]


def check_store_files(data_dir: "str | os.PathLike[str]") -> None:
    """On-disk invariants: whole records, argv/time_exec decodable, no leftovers in tasks/."""
    tasks = Path(data_dir) / "tasks"
    for entry in tasks.iterdir():
        assert entry.name.isdigit(), f"stray entry {entry}"
        exit_size = (entry / "exit").stat().st_size
        assert exit_size % P.RUN_RECORD_SIZE == 0, f"{entry}: torn exit file ({exit_size})"
        P.decode_commandline((entry / "argv").read_bytes(), forbid_nul=True)
        P.decode_timing((entry / "time_exec").read_bytes())


# --- fuzz cases ---------------------------------------------------------------------------
TIMING = P.Timing(1, 1, 1)


def valid_requests(rng: Random, ids: Sequence[int]) -> list[P.Request]:
    tid = rng.choice(ids) if ids and rng.random() < 0.7 else rng.randrange(1 << 64)
    argv = [b"true"] + [rng.randbytes(rng.randrange(6)).replace(b"\0", b"x")
                        for _ in range(rng.randrange(3))]
    timing = P.Timing(rng.randrange(1 << 60), rng.randrange(1 << 24), rng.randrange(1 << 7))
    return [
        P.Request(P.LIST), P.Request(P.CREATE, timing=timing, argv=argv),
        P.Request(P.REMOVE, taskid=tid), P.Request(P.TIMES_EXITCODES, taskid=tid),
        P.Request(P.STDOUT, taskid=tid), P.Request(P.STDERR, taskid=tid),
        P.Request(P.SET_CMD, taskid=tid, argv=argv), P.Request(P.SW_TIME, taskid=tid, timing=timing),
        P.Request(P.RESET_TASKMAX),
    ]


def mutate(rng: Random, request: bytes) -> bytes:
    data = bytearray(request)
    kind = rng.randrange(7)
    if kind == 0 and data:                       # bit flips
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1 and len(data) > 1:            # truncation
        del data[rng.randrange(1, len(data)):]
    elif kind == 2:                              # junk appended
        data += rng.randbytes(rng.randrange(1, 40))
    elif kind == 3 and len(data) > 2:            # a length field blown up
        i = rng.randrange(2, len(data))
        data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x10\x00\x01", b"\x7f\xff\xff\xff",
                                    b"\x00\x00\x00\x00"])
    elif kind == 4 and data:                     # a NUL in the middle
        data.insert(rng.randrange(len(data)), 0)
    elif kind == 5:                              # random bytes
        data = bytearray(rng.randbytes(rng.randrange(0, 64)))
    else:                                        # a random opcode
        data[:2] = struct.pack(">H", rng.randrange(1 << 16))
    return bytes(data)


def classify(data: bytes) -> tuple[str, int | None] | None:
    """What the daemon must answer to ``data`` written alone: ('empty', None),
    ('reply', opcode), or None when the case is unusable (TERMINATE, several requests)."""
    if not data:
        return None     # an open and close without a byte is no request: no reply
    reader = P.BufferReader(data, P.MAX_REQUEST)
    try:
        req = P.read_request(reader)
    except P.ProtocolError:
        return ("empty", None)
    if req.opcode == P.TERMINATE or reader.remaining():
        return None     # TERMINATE, or a whole request followed by more (the next request)
    return ("reply", req.opcode)


def fuzz_case(rng: Random, ids: Sequence[int]) -> tuple[bytes, tuple[str, int | None]]:
    while True:
        base = P.encode_request(rng.choice(valid_requests(rng, ids)))
        data = base if rng.random() < 0.1 else mutate(rng, base)
        what = classify(data)
        if what is not None:
            return data, what


def check_fuzz_reply(data: bytes, what: tuple[str, int | None], reply: bytes | None) -> None:
    kind, opcode = what
    assert reply is not None, f"no reply to {data[:64].hex()}"
    if kind == "empty":
        assert reply == b"", f"malformed {data[:64].hex()} got {reply[:64].hex()}"
    else:
        assert opcode is not None
        P.decode_reply(reply, opcode)    # a well-formed reply to that request


def sanity(d: DaemonHandle, model: object = None) -> int:
    """A well-formed round trip: create, list shows it exactly, remove. Returns the new id."""
    argv = [b"echo", b"sanity \xff", b""]
    timing = P.Timing(1 << 7, 1 << 3, 1 << 5)
    r = d.call(P.Request(P.CREATE, timing=timing, argv=argv))
    assert r.errcode is None
    tid = r.value
    listed = {t: (tm, a) for t, tm, a in d.call(P.Request(P.LIST)).tasks}
    assert listed[tid] == (timing, tuple(argv)), listed.get(tid)
    assert d.call(P.Request(P.REMOVE, taskid=tid)).errcode is None
    assert d.call(P.Request(P.REMOVE, taskid=tid)).errcode == P.NF
    settle(d)
    return tid


def settle(d: DaemonHandle) -> None:
    """Let the daemon close the writing end of its last reply before a client that opens
    the reply pipe without cassini's probe (like the reference C client) comes: cassini
    stops reading at the end of the reply, not at end of file, so under CPU load a
    reference client can otherwise attach to the previous reply's writer and see its
    end of file (Linux FIFO semantics; see the report)."""
    wait_idle(d, quiet=0.01, timeout=10)


def dying_writer(pipes: "str | os.PathLike[str]", data: bytes, cut: int) -> bool:
    """A process that takes no lock, writes ``data[:cut]`` and is SIGKILLed mid-request."""
    code = ("import os,sys,time\n"
            "fd=os.open(sys.argv[1],os.O_WRONLY)\n"
            "os.write(fd,bytes.fromhex(sys.argv[2]))\n"
            "os.write(1,b'w')\n"
            "time.sleep(30)\n")
    p = subprocess.Popen([sys.executable, "-c", code, os.path.join(str(pipes), REQUEST),
                          data[:cut].hex()], stdout=subprocess.PIPE)
    out = p.stdout
    assert out is not None      # stdout=PIPE
    ready, _, _ = select.select([out], [], [], 10)
    p.kill()
    p.wait(10)
    out.close()
    return bool(ready)


# --- kill -9 at random moments ------------------------------------------------------------
ARGVS = [(b"echo", b"alpha"), (b"printf", b"%s-%s", b"bravo-bravo-bravo", b"x" * 200),
         (b"true",), (b"sh", b"-c", b"exit 3")]
TIMINGS = [P.Timing(1, 1, 1), P.Timing(P.MINUTES_MASK, P.HOURS_MASK, P.DAYS_MASK),
           P.Timing(0xFFF0, 0xF0F0F, 0x55)]


class CrashWorkload:
    """A stream of create / set-cmd / switch-time / remove / exec / list / times requests,
    each checked against what earlier OKs promised; stops at the first unanswered request
    (the daemon was killed) and leaves that one change *ambiguous* (either outcome is fine,
    nothing in between)."""

    def __init__(self, d: DaemonHandle, rng: Random, call_timeout: float = 1.0) -> None:
        self.d = d
        self.rng = rng
        self.call_timeout = call_timeout
        self.tasks: dict[int, Acked] = {}     # id -> (timing tuple, argv tuple) acknowledged
        self.removed: set[int] = set()
        self.max_seen = -1       # highest id ever seen (ids are never reused)
        self.history: dict[int, bytes] = {}   # id -> bytes of records seen (must stay a prefix)
        # the unanswered change: (kind, id, before, after), what each holds depends on kind
        self.pending: Any = None
        self.ops = 0
        self.ticker: int | None = None

    def call(self, req: P.Request) -> P.Reply:
        return self.d.call(req, timeout=self.call_timeout)

    def setup(self) -> None:
        r = self.call(P.Request(P.CREATE, timing=P.Timing(0, 0, 0), argv=[b"true"]))
        self.ticker = r.value
        self.tasks[r.value] = (P.Timing(0, 0, 0).as_tuple(), (b"true",))
        self.max_seen = r.value

    def run(self, stop: threading.Event) -> None:
        """Issue requests until ``stop`` is set or one goes unanswered."""
        try:
            while not stop.is_set():
                self.step()
                self.ops += 1
        except (ClientError, OSError, AssertionError) as e:
            if isinstance(e, AssertionError) and "timed out" not in str(e):
                raise
            return

    def step(self) -> None:
        rng = self.rng
        live = sorted(self.tasks)
        others = [t for t in live if t != self.ticker]
        op = rng.random()
        if op < 0.3 or not others:
            timing, argv = rng.choice(TIMINGS), rng.choice(ARGVS)
            self.pending = ("create", None, None, (timing.as_tuple(), argv))
            r = self.call(P.Request(P.CREATE, timing=timing, argv=list(argv)))
            assert r.value > self.max_seen, f"id {r.value} reused/not increasing ({self.max_seen})"
            self.max_seen = r.value
            self.tasks[r.value] = (timing.as_tuple(), argv)
        elif op < 0.5:
            tid = rng.choice(others)
            argv = rng.choice(ARGVS)
            before = self.tasks[tid]
            after = (before[0], argv)
            self.pending = ("change", tid, before, after)
            assert self.call(P.Request(P.SET_CMD, taskid=tid, argv=list(argv))).errcode is None
            self.tasks[tid] = after
        elif op < 0.65:
            tid = rng.choice(others)
            timing = rng.choice(TIMINGS)
            before = self.tasks[tid]
            after = (timing.as_tuple(), before[1])
            self.pending = ("change", tid, before, after)
            assert self.call(P.Request(P.SW_TIME, taskid=tid, timing=timing)).errcode is None
            self.tasks[tid] = after
        elif op < 0.8:
            tid = rng.choice(others)
            self.pending = ("remove", tid, self.tasks[tid], None)
            assert self.call(P.Request(P.REMOVE, taskid=tid)).errcode is None
            del self.tasks[tid]
            self.removed.add(tid)
            self.history.pop(tid, None)
        elif op < 0.9:
            self.pending = None
            assert self.call(P.Request(P.EXEC_TASK, taskid=self.ticker)).errcode is None
        elif op < 0.95:
            self.pending = None
            self.check_list(self.call(P.Request(P.LIST)))
        else:
            self.pending = None
            tid = rng.choice(live)
            self.check_runs(tid, self.call(P.Request(P.TIMES_EXITCODES, taskid=tid)))
        self.pending = None

    def check_list(self, reply: P.Reply) -> dict[int, Any]:
        got = {tid: (timing.as_tuple(), tuple(argv)) for tid, timing, argv in reply.tasks}
        ids = [tid for tid, _, _ in reply.tasks]
        assert ids == sorted(set(ids)), f"LIST order {ids}"
        pend = self.pending
        for tid, want in self.tasks.items():
            if pend and pend[1] == tid:
                continue
            assert tid in got, f"task {tid} got an OK but is gone"
            assert got[tid] == want, f"task {tid}: {got[tid]} != acknowledged {want}"
        for tid, value in got.items():
            assert tid not in self.removed, f"removed task {tid} is back"
            if tid in self.tasks or (pend and pend[1] == tid):
                continue
            # only an unanswered CREATE may have made a task nobody saw the id of
            assert pend and pend[0] == "create" and tid > self.max_seen, \
                f"unexpected task {tid} {value}"
        return got

    def check_runs(self, tid: int, reply: P.Reply) -> None:
        records = b"".join(P.encode_run(t, c) for t, c in reply.runs)
        before = self.history.get(tid, b"")
        assert records[:len(before)] == before, f"task {tid}: run history rewritten"
        self.history[tid] = records

    def verify(self) -> None:
        """After a restart: every OK is there, the unanswered change is all-or-nothing."""
        got = self.check_list(self.call(P.Request(P.LIST)))
        pend = self.pending
        if pend:
            kind, tid, before, after = pend
            if kind == "create":
                extra = [t for t in got if t not in self.tasks]
                assert len(extra) <= 1, extra
                for t in extra:
                    assert got[t] == after, f"chimera create {got[t]} != {after}"
                    self.tasks[t] = after
                    self.max_seen = max(self.max_seen, t)
            elif kind == "change":
                assert got[tid] in (before, after), f"chimera {got[tid]} not {before}/{after}"
                self.tasks[tid] = got[tid]
            elif kind == "remove":
                if tid in got:
                    assert got[tid] == before
                else:
                    del self.tasks[tid]
                    self.removed.add(tid)
        self.pending = None
        for tid in list(self.tasks):
            self.check_runs(tid, self.call(P.Request(P.TIMES_EXITCODES, taskid=tid)))
        # a new id is above every id ever seen
        r = self.call(P.Request(P.CREATE, timing=P.Timing(0, 0, 0), argv=[b"true"]))
        assert r.value > self.max_seen, f"id {r.value} not above {self.max_seen}"
        self.max_seen = r.value
        self.tasks[r.value] = (P.Timing(0, 0, 0).as_tuple(), (b"true",))


def crash_rounds(d: DaemonHandle, kills: int, rng: Random,
                 log: "Callable[[int, CrashWorkload], object] | None" = None,
                 min_delay: float = 0.0, max_delay: float = 0.08) -> "CrashWorkload":
    """``kills`` rounds of: requests stream, kill -9 at a random instant, restart, verify."""
    w = CrashWorkload(d, rng)
    w.setup()
    for i in range(kills):
        stop = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                w.run(stop)
            except BaseException as e:      # reported by the main thread
                errors.append(e)
        t = threading.Thread(target=work, daemon=True)
        t.start()
        time.sleep(rng.uniform(min_delay, max_delay))
        d.kill9()
        stop.set()
        t.join(30)
        assert not t.is_alive(), "workload stuck"
        if errors:
            raise errors[0]
        d.start()
        w.verify()
        check_store_files(d.data)
        if log:
            log(i, w)
    return w


_POLL_SYSCALLS = {"x86_64": {"7", "271"}, "aarch64": {"73"}}.get(os.uname().machine, {"7", "73", "271"})


def wait_idle(d: DaemonHandle, quiet: float = 0.3, timeout: float = 60.0) -> None:
    """Wait until the daemon's request loop has sat in poll() (waiting for a request, no
    reply owed) for ``quiet`` seconds: after lock-less clients left, replies nobody reads
    are held for up to REPLY_OPEN_TIMEOUT each before being dropped."""
    deadline = time.monotonic() + timeout
    since = None
    last = ""
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{d.pid}/syscall") as f:
                last = f.read()
                nr = last.split()[0]
        except OSError:
            nr = last = "?"
        now = time.monotonic()
        if nr in _POLL_SYSCALLS:      # poll/ppoll: waiting for a request
            since = since or now
            if now - since >= quiet:
                return
        else:
            since = None
        time.sleep(0.005)
    raise AssertionError(f"the daemon did not become idle: {last} {d.log()[-500:]}")

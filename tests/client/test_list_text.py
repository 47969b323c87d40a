"""``cassini -l``'s bulk path (``render.read_list_output``: a LIST reply read straight into
its printed text) against the per-task path it replaces (``protocol.read_reply`` then
``render.list_output``), byte for byte: on random tasks, on random cuts of the reply into
the pieces a pipe delivers, and on damaged replies (the same error, with the same message,
or the same text)."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cassini import render
from saturnd import protocol as P

pytestmark = pytest.mark.timeout(120)


def per_task(data):
    """The old path: decode every task, then print them (what the bulk path must match)."""
    reader = P.BufferReader(data)
    reply = P.read_reply(reader, P.LIST)
    return reply, render.list_output(reply.tasks), reader.pos


class Pieces:
    """A reader that is handed the bytes in pieces (as a pipe delivers them), with
    ``peek``/``consume_to`` like ``cassini.client.PipeReader``: ``peek(n)`` gathers pieces
    until ``n`` unconsumed bytes are buffered, and the buffer then starts at 0."""

    def __init__(self, data, cuts):
        self.pieces = []
        last = 0
        for cut in sorted(set(cuts)) + [len(data)]:
            if last < cut <= len(data):
                self.pieces.append(data[last:cut])
                last = cut
        self.buf = b""
        self.pos = 0
        self.taken = 0

    def peek(self, n):
        if self.pos + n > len(self.buf):
            parts = [self.buf[self.pos:]]
            have = len(parts[0])
            while have < n:
                if not self.pieces:
                    raise P.Truncated("end of file")
                parts.append(self.pieces.pop(0))
                have += len(parts[-1])
            self.buf = b"".join(parts)
            self.pos = 0
        return self.buf, self.pos

    def consume_to(self, pos):
        self.pos = pos

    def remaining(self):
        return len(self.buf) - self.pos + sum(map(len, self.pieces))

    def read_exact(self, n):
        buf, pos = self.peek(n)
        self.pos = pos + n
        return buf[pos:pos + n]


def bulk(data, cuts=()):
    reader = Pieces(data, cuts) if cuts else P.BufferReader(data)
    reply = P.read_reply(reader, P.LIST, render.read_list_output)
    return reply, render.list_output(reply.tasks), reader


def outcome(call):
    """The text, or the error and its message (a Truncated's names how many bytes the
    reader was asked for, which differs between the paths: cassini prints one message for
    every Truncated, ``client.exchange``)."""
    try:
        return "ok", call()
    except P.Truncated:
        return "Truncated", None
    except P.ProtocolError as e:
        return type(e).__name__, str(e)


args = st.binary(min_size=0, max_size=12)
argv = st.lists(args, min_size=1, max_size=5).filter(lambda a: a[0] != b"")
timing = st.builds(P.Timing, st.integers(0, P.MINUTES_MASK), st.integers(0, P.HOURS_MASK),
                   st.integers(0, P.DAYS_MASK))
# a few timings and command lines repeated, so that equal neighbours (the bulk path's
# shortcut) and distinct ones mix
commons = st.sampled_from([P.EVERY_MINUTE, P.Timing(1, 1, 1), P.Timing(0, 0, 0)])
task = st.tuples(st.integers(0, (1 << 64) - 1), st.one_of(timing, commons),
                 st.one_of(argv.map(tuple), st.just((b"echo", b"hello", b"world"))))


def encode(tasks):
    return P.encode_reply(P.LIST, P.Reply(tasks=tasks))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(task, max_size=40), st.lists(st.integers(0, 2000), max_size=8))
def test_random_tasks_print_the_same_bytes(tasks, cuts):
    data = encode(tasks)
    _, expected, _ = per_task(data)
    for pieces in ((), cuts, range(1, len(data))):     # whole, random cuts, byte by byte
        _, got, reader = bulk(data, pieces)
        assert got == expected
        assert reader.remaining() == 0                  # the whole reply and no more


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(task, min_size=1, max_size=8), st.data())
def test_damaged_replies_fail_alike(tasks, data):
    raw = bytearray(encode(tasks))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    raw = bytes(raw)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=5))
    expected = outcome(lambda: per_task(raw)[1])
    assert outcome(lambda: bulk(raw)[1]) == expected
    assert outcome(lambda: bulk(raw, cuts)[1]) == expected


@pytest.mark.parametrize("reply, message", [
    (P._OK_U32.pack(P.OK, 1) + P._TASK_HEAD.pack(1, 0, 0, 0, 0), "ARGC is 0"),
    (P._OK_U32.pack(P.OK, 1) + P._TASK_HEAD.pack(1, 0, 0, 0, 1) + b"\0\0\0\0",
     "empty ARGV[0]"),
    (P._OK_U32.pack(P.OK, 1) + P._TASK_HEAD.pack(1, 1 << 60, 0, 0, 1) + b"\0\0\0\1x",
     "minute bits out of range: 0x1000000000000000"),
])
def test_bad_tasks_named(reply, message):
    assert outcome(lambda: bulk(reply)[1]) == ("ProtocolError", message)
    assert outcome(lambda: per_task(reply)[1]) == ("ProtocolError", message)


def test_many_tasks_equal_and_distinct_neighbours():
    rng = random.Random(7)
    tasks = []
    for i in range(5000):
        same = rng.random() < 0.7 and tasks
        tasks.append((i, tasks[-1][1], tasks[-1][2]) if same else
                     (i, P.Timing(rng.getrandbits(60), rng.getrandbits(24), rng.getrandbits(7)),
                      (b"cmd%d" % rng.randrange(50),) + (b"a",) * rng.randrange(3)))
    data = encode(tasks)
    assert bulk(data)[1] == per_task(data)[1]
    assert bulk(data, range(0, len(data), 4093))[1] == per_task(data)[1]


def test_error_reply_and_empty_list():
    reply = P.read_reply(P.BufferReader(P._ER.pack(P.ER, P.NF)), P.LIST,
                         render.read_list_output)
    assert reply.errcode == P.NF
    assert bulk(P._OK_U32.pack(P.OK, 0))[1] == b""


def test_plain_list_command_lines_parse_as_getopt_does(monkeypatch):
    """``cassini -l``'s usual command lines skip the option scanner: the same Command."""
    import itertools

    import cassini.__main__ as M

    tokens = [b"-l", b"-p", b"X", b"-", b"--", b"-pY", b"-lp", b"-h", b"a", b"-c"]
    plain = []
    for k in range(4):
        for args in itertools.product(tokens, repeat=k):
            cmd = M._plain_list(list(args))
            if cmd is not None:
                plain.append((list(args), cmd))
    assert len(plain) > 20
    monkeypatch.setattr(M, "_plain_list", lambda args: None)
    for args, cmd in plain:
        full = M.parse_command_line(args, {})
        assert full is not None
        assert {a: getattr(full, a) for a in M.Command.__slots__} == \
            {a: getattr(cmd, a) for a in M.Command.__slots__}, args

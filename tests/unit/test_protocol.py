"""Unit tests of saturnd/protocol.py: the wire format of protocol.md, byte for byte."""

import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saturnd import protocol as P

pytestmark = pytest.mark.timeout(60)

EVERY = P.Timing(P.MINUTES_MASK, P.HOURS_MASK, P.DAYS_MASK)


def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def s(b): return u32(len(b)) + b


# --- the worked example of protocol.md -----------------------------------------------------
WORKED_REQUEST = bytes.fromhex(
    "4352 0000 0000 4000 0001 0003 ff00 3e00"
    "0000 0200 0000 0962 6163 6b75 702e 7368"
    "0000 0006 2d2d 6661 7374")
WORKED_TIMING = P.Timing((1 << 0) | (1 << 30), sum(1 << h for h in range(8, 18)),
                         sum(1 << d for d in range(1, 6)))


def test_worked_example_request_encodes_byte_for_byte():
    req = P.Request(P.CREATE, timing=WORKED_TIMING, argv=(b"backup.sh", b"--fast"))
    assert P.encode_request(req) == WORKED_REQUEST


def test_worked_example_request_decodes():
    req = P.decode_request(WORKED_REQUEST)
    assert req.opcode == P.CREATE
    assert req.timing == WORKED_TIMING
    assert req.argv == (b"backup.sh", b"--fast")


def test_worked_example_create_reply():
    data = bytes.fromhex("4f4b 0000 0000 0000 0007")
    assert P.encode_reply(P.CREATE, P.Reply(value=7)) == data
    assert P.decode_reply(data, P.CREATE).value == 7


def test_worked_example_times_reply():
    data = bytes.fromhex("4f4b 0000 0002 0000 0000 6956 3790 0000"
                         "0000 0000 6957 8910 ffff")
    runs = [(1767258000, 0), (1767344400, 0xFFFF)]   # 2026-01-01 09:00 UTC, a day later
    assert P.decode_reply(data, P.TIMES_EXITCODES).runs == runs
    assert P.encode_reply(P.TIMES_EXITCODES, P.Reply(runs=runs)) == data


# --- opcodes and constants --------------------------------------------------------------
def test_opcode_values():
    assert (P.LIST, P.CREATE, P.REMOVE, P.TIMES_EXITCODES, P.STDOUT, P.STDERR,
            P.TERMINATE) == (0x4C53, 0x4352, 0x524D, 0x5458, 0x534F, 0x5345, 0x544D)
    assert (P.SET_CMD, P.DELETE_ALL, P.SW_TIME, P.EXEC_TASK, P.RESET_TASKMAX) == \
        (0x43FF, 0x444C, 0x5354, 0x48ED, 0x5254)
    assert (P.OK, P.ER, P.NF, P.NR) == (0x4F4B, 0x4552, 0x4E46, 0x4E52)
    # the twelve, plus this project's own: RH, CL, EL, NX (docs/own-requests.md)
    # ... and SF, PA, UP, SS, HI (everyday use)
    assert (P.SET_FIELDS, P.PAUSE, P.RESUME, P.STATUS, P.HISTORY) == \
        (0x5346, 0x5041, 0x5550, 0x5353, 0x4849)
    assert len(set(P.OPCODE_NAMES)) == 12 + 4 + 3 + 5
    assert (P.RESET_HISTORY, P.CLONE, P.ERROR_LOG, P.NEXT_RUNS) == (0x5248, 0x434C, 0x454C, 0x4E58)
    # ... and cron's other fields: LL, CC, TC
    assert (P.LONG_LIST, P.CREATE_CRON, P.SET_CRON) == (0x4C4C, 0x4343, 0x5443)


# --- every request, exact bytes and round trip ------------------------------------------------
REQUESTS = [
    (P.Request(P.LIST), b"LS"),
    (P.Request(P.TERMINATE), b"TM"),
    (P.Request(P.DELETE_ALL), b"DL"),
    (P.Request(P.RESET_TASKMAX), b"RT"),
    (P.Request(P.REMOVE, taskid=3), b"RM" + u64(3)),
    (P.Request(P.TIMES_EXITCODES, taskid=2**64 - 1), b"TX" + u64(2**64 - 1)),
    (P.Request(P.STDOUT, taskid=0), b"SO" + u64(0)),
    (P.Request(P.STDERR, taskid=9), b"SE" + u64(9)),
    (P.Request(P.EXEC_TASK, taskid=5), u16(0x48ED) + u64(5)),
    (P.Request(P.CREATE, timing=EVERY, argv=(b"echo", b"", b"a b")),
     b"CR" + u64(2**60 - 1) + u32(2**24 - 1) + b"\x7f" + u32(3) + s(b"echo") + s(b"") + s(b"a b")),
    (P.Request(P.SET_CMD, taskid=4, argv=(b"ls",)), u16(0x43FF) + u64(4) + u32(1) + s(b"ls")),
    (P.Request(P.SW_TIME, taskid=1, timing=P.Timing(1, 2, 4)),
     b"ST" + u64(1) + u64(1) + u32(2) + b"\x04"),
]


@pytest.mark.parametrize("req,data", REQUESTS, ids=[r.name for r, _ in REQUESTS])
def test_request_bytes_and_round_trip(req, data):
    assert P.encode_request(req) == data
    assert P.decode_request(data) == req


@pytest.mark.parametrize("req,data", REQUESTS, ids=[r.name for r, _ in REQUESTS])
def test_every_proper_prefix_of_a_request_is_truncated(req, data):
    for n in range(len(data)):
        with pytest.raises(P.Truncated):
            P.decode_request(data[:n])


@pytest.mark.parametrize("req,data", REQUESTS, ids=[r.name for r, _ in REQUESTS])
def test_trailing_bytes_after_a_request_are_refused(req, data):
    with pytest.raises(P.ProtocolError, match="trailing"):
        P.decode_request(data + b"\0")


# --- every reply -------------------------------------------------------------------------------
REPLIES = [
    (P.LIST, P.Reply(tasks=[]), b"OK" + u32(0)),
    (P.LIST, P.Reply(tasks=[(4, P.Timing(1 << 4 | 1 << 10, P.HOURS_MASK, 0b1010), (b"ls", b"X"))]),
     b"OK" + u32(1) + u64(4) + u64(1 << 4 | 1 << 10) + u32(2**24 - 1) + b"\x0a"
     + u32(2) + s(b"ls") + s(b"X")),
    (P.CREATE, P.Reply(value=2**64 - 1), b"OK" + u64(2**64 - 1)),
    (P.RESET_TASKMAX, P.Reply(value=8), b"OK" + u64(8)),
    (P.DELETE_ALL, P.Reply(value=3), b"OK" + u32(3)),
    (P.TIMES_EXITCODES, P.Reply(runs=[]), b"OK" + u32(0)),
    (P.TIMES_EXITCODES, P.Reply(runs=[(-1, 255)]), b"OK" + u32(1) + struct.pack(">q", -1) + u16(255)),
    (P.STDOUT, P.Reply(output=b"\0\xffbin"), b"OK" + s(b"\0\xffbin")),
    (P.STDERR, P.Reply(output=b""), b"OK" + u32(0)),
    (P.REMOVE, P.Reply(), b"OK"),
    (P.TERMINATE, P.Reply(), b"OK"),
    (P.SET_CMD, P.Reply(), b"OK"),
    (P.SW_TIME, P.Reply(), b"OK"),
    (P.EXEC_TASK, P.Reply(), b"OK"),
    (P.REMOVE, P.error_reply(P.NF), b"ERNF"),
    (P.STDOUT, P.error_reply(P.NR), b"ERNR"),
    (P.TIMES_EXITCODES, P.error_reply(P.NF), b"ERNF"),
]


@pytest.mark.parametrize("op,reply,data", REPLIES,
                         ids=[f"{P.OPCODE_NAMES[o]}-{i}" for i, (o, _, _) in enumerate(REPLIES)])
def test_reply_bytes_and_round_trip(op, reply, data):
    assert P.encode_reply(op, reply) == data
    assert P.decode_reply(data, op) == reply
    for n in range(len(data)):
        with pytest.raises(P.Truncated):
            P.decode_reply(data[:n], op)
    with pytest.raises(P.ProtocolError):
        P.decode_reply(data + b"x", op)


def test_unknown_reply_type():
    with pytest.raises(P.ProtocolError, match="unknown reply type"):
        P.decode_reply(b"XX", P.REMOVE)


def test_unknown_opcode_in_a_request():
    with pytest.raises(P.ProtocolError, match="unknown opcode"):
        P.decode_request(b"ZZ")
    with pytest.raises(P.ProtocolError):
        P.encode_request(P.Request(0x1234))


def test_run_records():
    rec = P.encode_run(1767258000, 0xFFFF)
    assert rec == struct.pack(">qH", 1767258000, 0xFFFF) and len(rec) == P.RUN_RECORD_SIZE
    assert P.decode_runs(rec * 2) == [(1767258000, 0xFFFF)] * 2
    assert P.encode_runs_reply(rec) == b"OK" + u32(1) + rec
    with pytest.raises(P.ProtocolError):
        P.decode_runs(rec[:-1])
    with pytest.raises(P.ProtocolError):
        P.encode_runs_reply(rec + b"x")


# --- malformed requests ----------------------------------------------------------------------
CR_HEAD = b"CR" + EVERY.encode()


def test_argc_zero_is_refused():
    with pytest.raises(P.ProtocolError, match="ARGC is 0"):
        P.decode_request(CR_HEAD + u32(0))
    with pytest.raises(P.ProtocolError, match="ARGC is 0"):
        P.decode_request(u16(P.SET_CMD) + u64(1) + u32(0))


def test_empty_argv0_is_refused():
    with pytest.raises(P.ProtocolError, match="ARGV"):
        P.decode_request(CR_HEAD + u32(2) + s(b"") + s(b"x"))
    with pytest.raises(P.ProtocolError):
        P.encode_commandline((b"",))
    with pytest.raises(P.ProtocolError):
        P.encode_commandline(())


def test_nul_in_an_argument_is_refused_in_requests_only():
    with pytest.raises(P.ProtocolError, match="NUL"):
        P.decode_request(CR_HEAD + u32(2) + s(b"echo") + s(b"a\0b"))
    with pytest.raises(P.ProtocolError, match="NUL"):
        P.decode_request(u16(P.SET_CMD) + u64(1) + u32(1) + s(b"e\0"))
    # a reply may carry any bytes (outputs are binary)
    assert P.decode_reply(b"OK" + s(b"a\0b"), P.STDOUT).output == b"a\0b"


@pytest.mark.parametrize("minutes,hours,days", [
    (1 << 60, 0, 0), (0, 1 << 24, 0), (0, 0, 1 << 7), (2**64 - 1, 0, 0), (0, 0, 0xFF)])
def test_timing_bits_out_of_range_are_refused(minutes, hours, days):
    data = b"CR" + u64(minutes) + u32(hours) + bytes([days]) + u32(1) + s(b"x")
    with pytest.raises(P.ProtocolError, match="out of range"):
        P.decode_request(data)
    with pytest.raises(P.ProtocolError):
        P.decode_request(b"ST" + u64(0) + u64(minutes) + u32(hours) + bytes([days]))
    with pytest.raises(P.ProtocolError):
        P.Timing(minutes, hours, days)


def test_request_over_one_mib_is_refused_but_one_mib_is_fine():
    fixed = len(CR_HEAD) + 4 + 4 + 1 + 4        # head, argc, "x", length of the big one
    ok = CR_HEAD + u32(2) + s(b"x") + s(b"a" * (P.MAX_REQUEST - fixed))
    assert len(ok) == P.MAX_REQUEST
    assert P.decode_request(ok).argv[1] == b"a" * (P.MAX_REQUEST - fixed)
    too_big = CR_HEAD + u32(2) + s(b"x") + s(b"a" * (P.MAX_REQUEST - fixed + 1))
    with pytest.raises(P.ProtocolError, match="limit") as info:
        P.decode_request(too_big)
    assert not isinstance(info.value, P.Truncated)


def test_a_lying_length_is_refused_without_allocating_it():
    tracemalloc.start()
    try:
        # a 4 GiB argument announced in a 30-byte request
        with pytest.raises(P.ProtocolError) as info:
            P.decode_request(CR_HEAD + u32(1) + u32(0xFFFFFFFF) + b"abc")
        assert not isinstance(info.value, P.Truncated)   # over the limit, not "need more"
        # 4 billion arguments
        with pytest.raises(P.ProtocolError):
            P.decode_request(CR_HEAD + u32(0xFFFFFFFF) + s(b"x"))
        # replies have no size limit: a lying OUTPUT or NBRUNS or NBTASKS is just truncated
        with pytest.raises(P.Truncated):
            P.decode_reply(b"OK" + u32(0xFFFFFFFF) + b"abc", P.STDOUT)
        with pytest.raises(P.Truncated):
            P.decode_reply(b"OK" + u32(0xFFFFFFFF) + b"abc", P.TIMES_EXITCODES)
        with pytest.raises(P.Truncated):
            P.decode_reply(b"OK" + u32(0xFFFFFFFF), P.LIST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_buffer_reader_limit_and_check_limit():
    r = P.BufferReader(b"abcdef", limit=4)
    assert r.read_exact(3) == b"abc"
    with pytest.raises(P.ProtocolError):
        r.check_limit(2)
    with pytest.raises(P.ProtocolError):
        r.read_exact(2)
    r = P.BufferReader(b"ab")
    with pytest.raises(P.Truncated):
        r.read_exact(3)


def test_list_reply_with_bad_task_is_refused():
    head = b"OK" + u32(1) + u64(0) + EVERY.encode()
    with pytest.raises(P.ProtocolError, match="ARGC"):
        P.decode_reply(head + u32(0), P.LIST)
    with pytest.raises(P.ProtocolError, match="ARGV"):
        P.decode_reply(head + u32(1) + s(b""), P.LIST)
    with pytest.raises(P.ProtocolError, match="out of range"):
        P.decode_reply(b"OK" + u32(1) + u64(0) + u64(1 << 60) + u32(0) + b"\0" + u32(1) + s(b"x"),
                       P.LIST)


# --- property: every request round-trips ----------------------------------------------------
args = st.binary(max_size=20).filter(lambda b: b"\0" not in b)
argv0 = st.binary(min_size=1, max_size=20).filter(lambda b: b"\0" not in b)
argvs = st.tuples(argv0).flatmap(lambda a: st.lists(args, max_size=5).map(lambda r: a + tuple(r)))
timings = st.builds(P.Timing, st.integers(0, P.MINUTES_MASK), st.integers(0, P.HOURS_MASK),
                    st.integers(0, P.DAYS_MASK))
taskids = st.integers(0, 2**64 - 1)
# the requests of each argument shape, from the table of operations
BARE_REQUESTS = sorted(o for o, op in P.OPERATIONS.items() if op.args == ())
TASKID_REQUESTS = sorted(o for o, op in P.OPERATIONS.items() if op.args == (P.ARG_TASKID,))
requests = st.one_of(
    st.sampled_from(BARE_REQUESTS).map(P.Request),
    st.builds(P.Request, st.sampled_from(TASKID_REQUESTS), taskid=taskids),
    st.builds(P.Request, st.just(P.CREATE), timing=timings, argv=argvs),
    st.builds(P.Request, st.just(P.SET_CMD), taskid=taskids, argv=argvs),
    st.builds(P.Request, st.just(P.SW_TIME), taskid=taskids, timing=timings),
    st.builds(P.Request, st.just(P.NEXT_RUNS), taskid=taskids, count=st.integers(0, 2**32 - 1)),
    st.builds(P.Request, st.just(P.ERROR_LOG), taskid=taskids, scope=st.just(P.ERROR_LOG_TASK)),
    st.just(P.Request(P.ERROR_LOG, scope=P.ERROR_LOG_DAEMON)),
    st.builds(P.Request, st.just(P.CREATE_CRON), timing=timings, argv=argvs,
              attrs=st.lists(st.tuples(st.sampled_from([b"mdays", b"months"]),
                                       st.sampled_from([b"*", b"1", b"1-12/3"])), max_size=3)),
    st.builds(P.Request, st.just(P.SET_CRON), taskid=taskids, timing=timings,
              attrs=st.lists(st.tuples(st.sampled_from([b"env", b"x-future"]),
                                       st.sampled_from([b"A=1", b"B="])), max_size=3)),
)


def test_argument_shapes_cover_the_table():
    # the twelve of the course project and RESET_HISTORY, CLONE: no argument or a TASKID
    assert BARE_REQUESTS == sorted((P.LIST, P.TERMINATE, P.DELETE_ALL, P.RESET_TASKMAX,
                                    P.LONG_LIST, P.STATUS))
    assert TASKID_REQUESTS == sorted((P.REMOVE, P.TIMES_EXITCODES, P.STDOUT, P.STDERR,
                                      P.EXEC_TASK, P.RESET_HISTORY, P.CLONE, P.PAUSE,
                                      P.RESUME))
    others = set(P.OPERATIONS) - set(BARE_REQUESTS) - set(TASKID_REQUESTS)
    assert others == {P.CREATE, P.SET_CMD, P.SW_TIME, P.NEXT_RUNS, P.ERROR_LOG,
                      P.CREATE_CRON, P.SET_CRON, P.SET_FIELDS, P.HISTORY}


@settings(max_examples=300, deadline=None)
@given(requests)
def test_property_request_round_trip(req):
    data = P.encode_request(req)
    assert P.decode_request(data) == req


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(taskids, timings, argvs), max_size=5))
def test_property_list_reply_round_trip(tasks):
    data = P.encode_reply(P.LIST, P.Reply(tasks=tasks))
    assert P.decode_reply(data, P.LIST).tasks == tasks

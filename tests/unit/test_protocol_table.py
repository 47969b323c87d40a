"""The table of operations (saturnd/protocol.py): one row per opcode, read by encoding,
decoding, cassini's option mapping and its rendering."""

import struct

import pytest

from saturnd import protocol as P

pytestmark = pytest.mark.timeout(60)

EVERY = P.EVERY_MINUTE

# one sample value per argument field, and the bytes it takes on the wire
FIELD_SAMPLES = {
    P.ARG_TASKID: (7, struct.pack(">Q", 7)),
    P.ARG_TIMING: (P.Timing(1, 2, 4), struct.pack(">QIB", 1, 2, 4)),
    P.ARG_COMMANDLINE: ((b"echo", b"a b"), struct.pack(">II", 2, 4) + b"echo"
                        + struct.pack(">I", 3) + b"a b"),
    P.ARG_COUNT: (9, struct.pack(">I", 9)),
    P.ARG_SCOPE: (P.ERROR_LOG_TASK, b"\x01"),
    P.ARG_SCOPED_TASKID: (7, struct.pack(">Q", 7)),
    P.ARG_FIELDS: (5, b"\x05"),
    P.ARG_RUN: (3, struct.pack(">Q", 3)),
    P.ARG_ATTRS: ([(b"mdays", b"1,15")], struct.pack(">II", 1, 5) + b"mdays"
                  + struct.pack(">I", 4) + b"1,15"),
}

# one sample payload per reply shape, and the bytes after OK
SHAPE_SAMPLES = {
    P.SHAPE_U64: (2**64 - 1, struct.pack(">Q", 2**64 - 1)),
    P.SHAPE_COUNT: (3, struct.pack(">I", 3)),
    P.SHAPE_LIST: ([(4, EVERY, (b"ls",))], struct.pack(">IQ", 1, 4) + EVERY.encode()
                   + struct.pack(">II", 1, 2) + b"ls"),
    P.SHAPE_RUNS: ([(-1, 255)], struct.pack(">IqH", 1, -1, 255)),
    P.SHAPE_OUTPUT: (b"\0out", struct.pack(">I", 4) + b"\0out"),
    P.SHAPE_ERROR_LOG: ([(5, b"why")], struct.pack(">IqI", 1, 5, 3) + b"why"),
    P.SHAPE_TIMES: ([60, -60], struct.pack(">Iqq", 2, 60, -60)),
    P.SHAPE_HISTORY: ([(3, 60, 1, b"o", b"")],
                      struct.pack(">IQqHI", 1, 3, 60, 1, 1) + b"o" + struct.pack(">I", 0)),
    P.SHAPE_LONG_LIST: ([(4, EVERY, (b"ls",), [(b"k", b"")])],
                        struct.pack(">IQ", 1, 4) + EVERY.encode() + struct.pack(">II", 1, 2)
                        + b"ls" + struct.pack(">II", 1, 1) + b"k" + struct.pack(">I", 0)),
}

# what protocol.md says of each request: its argument fields, reply shape, error codes
DOCUMENTED = {
    P.LIST: ((), P.SHAPE_LIST, ()),
    P.CREATE: ((P.ARG_TIMING, P.ARG_COMMANDLINE), P.SHAPE_U64, ()),
    P.REMOVE: ((P.ARG_TASKID,), P.SHAPE_OK, (P.NF,)),
    P.TIMES_EXITCODES: ((P.ARG_TASKID,), P.SHAPE_RUNS, (P.NF,)),
    P.STDOUT: ((P.ARG_TASKID,), P.SHAPE_OUTPUT, (P.NF, P.NR)),
    P.STDERR: ((P.ARG_TASKID,), P.SHAPE_OUTPUT, (P.NF, P.NR)),
    P.TERMINATE: ((), P.SHAPE_OK, ()),
    P.SET_CMD: ((P.ARG_TASKID, P.ARG_COMMANDLINE), P.SHAPE_OK, (P.NF,)),
    P.DELETE_ALL: ((), P.SHAPE_COUNT, ()),
    P.SW_TIME: ((P.ARG_TASKID, P.ARG_TIMING), P.SHAPE_OK, (P.NF,)),
    P.EXEC_TASK: ((P.ARG_TASKID,), P.SHAPE_OK, (P.NF,)),
    P.RESET_TASKMAX: ((), P.SHAPE_U64, ()),
    P.RESET_HISTORY: ((P.ARG_TASKID,), P.SHAPE_OK, (P.NF,)),
    P.CLONE: ((P.ARG_TASKID,), P.SHAPE_U64, (P.NF,)),
    P.ERROR_LOG: ((P.ARG_SCOPE, P.ARG_SCOPED_TASKID), P.SHAPE_ERROR_LOG, (P.NF,)),
    P.NEXT_RUNS: ((P.ARG_TASKID, P.ARG_COUNT), P.SHAPE_TIMES, (P.NF, P.PS)),
    P.SET_FIELDS: ((P.ARG_TASKID, P.ARG_FIELDS, P.ARG_TIMING), P.SHAPE_OK, (P.NF,)),
    P.PAUSE: ((P.ARG_TASKID,), P.SHAPE_OK, (P.NF,)),
    P.RESUME: ((P.ARG_TASKID,), P.SHAPE_OK, (P.NF,)),
    P.STATUS: ((), P.SHAPE_OUTPUT, ()),
    P.HISTORY: ((P.ARG_TASKID, P.ARG_RUN, P.ARG_COUNT), P.SHAPE_HISTORY, (P.NF, P.NR)),
    P.LONG_LIST: ((), P.SHAPE_LONG_LIST, ()),
    P.CREATE_CRON: ((P.ARG_TIMING, P.ARG_COMMANDLINE, P.ARG_ATTRS), P.SHAPE_U64, ()),
    P.SET_CRON: ((P.ARG_TASKID, P.ARG_TIMING, P.ARG_ATTRS), P.SHAPE_OK, (P.NF,)),
}

OPS = sorted(P.OPERATIONS)
IDS = [P.OPCODE_NAMES[o] for o in OPS]


def test_one_row_per_opcode_as_documented():
    assert set(P.OPERATIONS) == set(DOCUMENTED)
    for opcode, op in P.OPERATIONS.items():
        assert op.opcode == opcode
        assert (op.args, op.reply, op.errors) == DOCUMENTED[opcode], op.name
        assert P.OPCODE_NAMES[opcode] == op.name == P.Request(opcode).name


def test_the_opcode_is_its_name_in_ascii_for_the_lettered_ones():
    for opcode, op in P.OPERATIONS.items():
        letters = struct.pack(">H", opcode)
        if letters.isalpha():
            assert letters.isupper(), op.name


@pytest.mark.parametrize("opcode", OPS, ids=IDS)
def test_a_request_is_its_opcode_then_its_fields_in_order(opcode):
    op = P.OPERATIONS[opcode]
    kw = {f.attr: FIELD_SAMPLES[f][0] for f in op.args}
    data = struct.pack(">H", opcode) + b"".join(FIELD_SAMPLES[f][1] for f in op.args)
    req = P.Request(opcode, **kw)
    assert P.encode_request(req) == data
    assert P.decode_request(data) == req
    for n in range(len(data)):
        with pytest.raises(P.Truncated):
            P.decode_request(data[:n])


@pytest.mark.parametrize("opcode", OPS, ids=IDS)
def test_a_reply_is_ok_then_its_shape_or_an_error(opcode):
    shape = P.OPERATIONS[opcode].reply
    if shape.attr is None:
        reply, data = P.Reply(), b"OK"
    else:
        value, tail = SHAPE_SAMPLES[shape]
        reply, data = P.Reply(**{shape.attr: value}), b"OK" + tail
    assert P.encode_reply(opcode, reply) == data
    assert P.decode_reply(data, opcode) == reply
    for code in P.OPERATIONS[opcode].errors:
        err = b"ER" + struct.pack(">H", code)
        assert P.encode_reply(opcode, P.error_reply(code)) == err
        assert P.decode_reply(err, opcode).errcode == code


def test_every_shape_has_a_sample():
    assert {op.reply for op in P.OPERATIONS.values()} - {P.SHAPE_OK} == set(SHAPE_SAMPLES)


def test_unknown_opcode_everywhere():
    for call in (lambda: P.encode_request(P.Request(0x1234)),
                 lambda: P.decode_request(b"\x12\x34"),
                 lambda: P.encode_reply(0x1234, P.Reply()),
                 lambda: P.decode_reply(b"OK", 0x1234),
                 lambda: P.operation(0x1234)):
        with pytest.raises(P.ProtocolError, match="unknown opcode 0x1234"):
            call()
    # an error reply needs no row
    assert P.encode_reply(0x1234, P.error_reply(P.NF)) == b"ERNF"


def test_error_log_scope_rules():
    # the daemon-wide scope: TASKID sent as 0 and ignored on reading
    req = P.Request(P.ERROR_LOG, scope=P.ERROR_LOG_DAEMON)
    assert P.encode_request(req) == b"EL\x00" + bytes(8)
    assert P.decode_request(b"EL\x00" + struct.pack(">Q", 9)) == req
    with pytest.raises(P.ProtocolError, match="unknown error log scope 2"):
        P.decode_request(b"EL\x02" + bytes(8))


def test_encoded_tasks_are_the_same_tasks_and_the_same_bytes():
    tasks = [(0, EVERY, (b"echo", b"a")), (5, P.Timing(1, 2, 4), (b"x",))]
    encoded = P.EncodedTasks([P.encode_list_entry(*t) for t in tasks])
    assert len(encoded) == 2 and list(encoded) == tasks and encoded == tasks
    assert P.encode_reply(P.LIST, P.Reply(tasks=encoded)) == \
        P.encode_reply(P.LIST, P.Reply(tasks=tasks))
    assert P.Reply(tasks=encoded) == P.Reply(tasks=tasks)

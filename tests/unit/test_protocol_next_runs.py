"""NEXT_RUNS (this project's own request, 0x4e58): encode/decode of request and reply."""

import struct

import pytest

from saturnd import protocol as P

pytestmark = pytest.mark.timeout(30)

BASE_OPCODES = (0x4C53, 0x4352, 0x524D, 0x5458, 0x534F, 0x5345, 0x544D,
                0x43FF, 0x444C, 0x5354, 0x48ED, 0x5254)


def test_opcode_is_its_own():
    assert P.NEXT_RUNS == 0x4E58 == struct.unpack(">H", b"NX")[0]
    assert P.NEXT_RUNS not in BASE_OPCODES
    assert P.OPCODE_NAMES[P.NEXT_RUNS] == "NEXT_RUNS"


def test_request_bytes():
    req = P.Request(P.NEXT_RUNS, taskid=7, count=5)
    data = P.encode_request(req)
    assert data == b"NX" + bytes.fromhex("0000000000000007") + bytes.fromhex("00000005")
    assert P.decode_request(data) == req
    top = P.Request(P.NEXT_RUNS, taskid=2**64 - 1, count=2**32 - 1)
    assert P.decode_request(P.encode_request(top)) == top


@pytest.mark.parametrize("cut", range(1, 14))
def test_truncated_request(cut):
    data = P.encode_request(P.Request(P.NEXT_RUNS, taskid=1, count=3))
    with pytest.raises(P.ProtocolError):
        P.decode_request(data[:-cut])
    with pytest.raises(P.ProtocolError):
        P.decode_request(data + b"\0")


def test_reply_bytes():
    times = [1767225660, -60, 2**63 - 1]
    data = P.encode_reply(P.NEXT_RUNS, P.Reply(times=times))
    assert data == (b"OK" + struct.pack(">I", 3)
                    + b"".join(struct.pack(">q", t) for t in times))
    assert P.decode_reply(data, P.NEXT_RUNS).times == times
    assert P.encode_reply(P.NEXT_RUNS, P.Reply(times=[])) == b"OK\0\0\0\0"
    assert P.decode_reply(b"OK\0\0\0\0", P.NEXT_RUNS).times == []
    assert P.encode_reply(P.NEXT_RUNS, P.error_reply(P.NF)) == b"ERNF"
    assert P.decode_reply(b"ERNF", P.NEXT_RUNS).errcode == P.NF


def test_truncated_or_lying_reply():
    with pytest.raises(P.Truncated):
        P.decode_reply(b"OK" + struct.pack(">I", 2) + struct.pack(">q", 5), P.NEXT_RUNS)
    with pytest.raises(P.Truncated):      # a huge NBTIMES allocates nothing up front
        P.decode_reply(b"OK" + struct.pack(">I", 2**32 - 1), P.NEXT_RUNS)

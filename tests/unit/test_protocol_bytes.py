"""The encoders of saturnd/protocol.py that the server and the grader build bytes with,
checked against hex written by hand from docs/protocol.md and docs/own-requests.md."""

import pytest

from grader.scenarios import MALFORMED_REQUESTS, taskid_request
from saturnd import protocol as P

pytestmark = pytest.mark.timeout(30)


def hx(text):
    return bytes.fromhex(text)


def test_the_output_reply_head():
    # OK (0x4f4b), then the uint32 length of the string that follows
    assert P.encode_output_head(0) == hx("4f4b 00000000")
    assert P.encode_output_head(5) == hx("4f4b 00000005")
    assert P.encode_output_head(0x01020304) == hx("4f4b 01020304")
    # the same head as a whole STDOUT reply
    reply = P.Reply(output=b"hello")
    assert P.encode_reply(P.STDOUT, reply) == P.encode_output_head(5) + b"hello"
    assert P.encode_reply(P.STDERR, reply) == hx("4f4b 00000005 68656c6c6f")


@pytest.mark.parametrize("opcode, head", [
    (P.REMOVE, "524d"), (P.TIMES_EXITCODES, "5458"), (P.STDOUT, "534f"),
    (P.STDERR, "5345"), (P.EXEC_TASK, "48ed"), (P.RESET_HISTORY, "5248"), (P.CLONE, "434c"),
])
def test_taskid_requests(opcode, head):
    assert taskid_request(opcode, 0x0102030405060708) == hx(head + "0102030405060708")
    assert P.encode_request(P.Request(opcode, taskid=7)) == hx(head + "0000000000000007")


def test_the_error_log_request_carries_its_scope_in_its_own_field():
    one = P.Request(P.ERROR_LOG, taskid=5, scope=P.ERROR_LOG_TASK)
    assert P.encode_request(one) == hx("454c 01 0000000000000005")
    daemon = P.Request(P.ERROR_LOG, scope=P.ERROR_LOG_DAEMON)
    assert P.encode_request(daemon) == hx("454c 00 0000000000000000")
    decoded = P.decode_request(hx("454c 00 0000000000000009"))
    assert (decoded.scope, decoded.taskid, decoded.timing) == (P.ERROR_LOG_DAEMON, None, None)
    decoded = P.decode_request(hx("454c 01 0000000000000009"))
    assert (decoded.scope, decoded.taskid, decoded.timing) == (P.ERROR_LOG_TASK, 9, None)


def test_next_runs_request():
    req = P.Request(P.NEXT_RUNS, taskid=3, count=5)
    assert P.encode_request(req) == hx("4e58 0000000000000003 00000005")


def test_requests_without_arguments():
    assert P.encode_request(P.Request(P.LIST)) == hx("4c53")
    assert P.encode_request(P.Request(P.TERMINATE)) == hx("544d")


@pytest.mark.parametrize("junk", MALFORMED_REQUESTS)
def test_the_graders_malformed_requests_are_malformed(junk):
    with pytest.raises(P.ProtocolError):
        P.decode_request(junk)

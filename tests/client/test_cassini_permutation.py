"""Destructive operations are never chosen by permutation: ``cassini -c CMD ... -s`` is
refused in one line, exit 1, nothing sent, with a hint about ``--``; so are ``-w``, ``-R``,
``-q`` met after another operation and an operand.  The reference behaviour without an
operand in between (``-r 1 -s``: the last operation wins) is kept."""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_daemon import FakeDaemon, make_pipes  # noqa: E402
from test_cassini_client import assert_one_clean_line, run  # noqa: E402

from cassini.__main__ import Failure, UsageError, parse_command_line  # noqa: E402
from saturnd import protocol as P  # noqa: E402

pytestmark = pytest.mark.timeout(60)

REFUSED = [
    [b"-c", b"rsync-backup.sh", b"-s"],
    [b"-c", b"-m", b"5", b"job.sh", b"arg", b"-s"],
    [b"-c", b"job.sh", b"-w"],
    [b"-c", b"job.sh", b"-R", b"3"],
    [b"-c", b"job.sh", b"-q"],
    [b"-z", b"4", b"job.sh", b"-s"],
    [b"-l", b"foo", b"-s"],
    [b"-c", b"job.sh", b"-r", b"3"],       # the -r was job.sh's: task 3 would be removed
]


@pytest.mark.parametrize("args", REFUSED)
def test_destructive_after_an_operand_is_refused(args):
    with pytest.raises(Failure) as e:
        parse_command_line(args, {})
    assert "refusing" in str(e.value)
    if args[0] in (b"-c", b"-z"):
        assert "put -- before the command" in str(e.value)


@pytest.mark.parametrize("args,opcode", [
    ([b"-r", b"1", b"-s"], P.DELETE_ALL),          # no operand: the last operation wins
    ([b"-c", b"-s"], P.DELETE_ALL),
    ([b"-s"], P.DELETE_ALL),
    ([b"-c", b"--", b"rsync", b"-s"], P.CREATE),   # after --, the command's own option
    ([b"-c", b"ls", b"-l"], P.LIST),               # not destructive: as the reference
    ([b"-c", b"echo", b"-s"], None),
])
def test_reference_order_kept(args, opcode):
    if opcode is None:
        with pytest.raises(Failure):
            parse_command_line(args, {})
        # POSIXLY_CORRECT: the -s is an operand, not an option
        cmd = parse_command_line(args, {b"POSIXLY_CORRECT": b"1"})
        assert cmd.opcode == P.CREATE and cmd.operands == [b"echo", b"-s"]
        return
    assert parse_command_line(args, {}).opcode == opcode


@pytest.mark.parametrize("args,bad", [
    ([b"-c", b"echo", b"-n", b"hi"], "hi"),
    ([b"-c", b"tar", b"-czf", b"x.tgz"], "f"),
    ([b"-z", b"3", b"echo", b"-n", b"hi"], "hi"),
])
def test_invalid_taskid_after_a_command_hints_dashdash(args, bad):
    with pytest.raises(UsageError) as e:
        parse_command_line(args, {})
    assert f"invalid TASKID {bad!r}" in str(e.value)
    assert "put -- before the command" in str(e.value)


def test_invalid_taskid_alone_has_no_hint():
    with pytest.raises(UsageError) as e:
        parse_command_line([b"-r", b"x"], {})
    assert str(e.value) == "invalid TASKID 'x'"


def test_refused_in_one_line_and_nothing_sent(tmp_path):
    pipes = str(tmp_path / "pipes")
    make_pipes(pipes)
    d = FakeDaemon(pipes).start(b"OK\x00\x00\x00\x05")
    code, out, err, took = run(["-p", pipes, "-c", "rsync-backup.sh", "-s"])
    assert (code, out) == (1, b"")
    assert_one_clean_line(err)
    assert b"refusing -s" in err and b"--" in err
    time.sleep(0.1)
    assert d.requests == []
    d.stop.set()
    os.close(os.open(os.path.join(pipes, "saturnd-request-pipe"), os.O_WRONLY | os.O_NONBLOCK))
    d.join()

"""cassini's command line: the getopt emulation checked against glibc's own getopt
(through ctypes), TASKID parsing against C strtoull semantics, and option semantics."""

import ctypes
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cassini.__main__ import OPTSTRING, UsageError, parse_command_line, parse_taskid
from cassini.gnugetopt import GetoptState, getopt
from saturnd import protocol as P

pytestmark = pytest.mark.timeout(60)

# --- glibc as the oracle ----------------------------------------------------------------
libc = ctypes.CDLL(None)
_optind = ctypes.c_int.in_dll(libc, "optind")
_opterr = ctypes.c_int.in_dll(libc, "opterr")
_optopt = ctypes.c_int.in_dll(libc, "optopt")
_optarg = ctypes.c_char_p.in_dll(libc, "optarg")
libc.getopt.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.c_char_p]
libc.getopt.restype = ctypes.c_int
TAKES_ARG = {c for i, c in enumerate(OPTSTRING) if OPTSTRING[i + 1:i + 2] == ":"}


def glibc_getopt(args, posixly_correct):
    """Options glibc returns (stopping at the first error, as cassini does) + operands."""
    old = os.environ.pop("POSIXLY_CORRECT", None)
    if posixly_correct:
        os.environ["POSIXLY_CORRECT"] = "1"
    try:
        argv = (ctypes.c_char_p * (len(args) + 2))(b"cassini", *args, None)
        _optind.value = 0          # full re-initialisation (also re-reads POSIXLY_CORRECT)
        _opterr.value = 0
        out = []
        while True:
            c = libc.getopt(len(args) + 1, argv, OPTSTRING.encode())
            if c == -1:
                break
            if c == ord("?"):
                out.append(("?", _optopt.value & 0xFF))   # optopt holds a signed char
                return out, None
            ch = chr(c)
            out.append((ch, _optarg.value if ch in TAKES_ARG else None))
        return out, [argv[i] for i in range(_optind.value, len(args) + 1)]
    finally:
        os.environ.pop("POSIXLY_CORRECT", None)
        if old is not None:
            os.environ["POSIXLY_CORRECT"] = old


def ours(args, posixly_correct):
    state = GetoptState()
    out = []
    for opt, arg in getopt(args, OPTSTRING, state, posixly_correct=posixly_correct):
        if opt == "?":
            # the diagnostic names the option character: compare it with glibc's optopt
            out.append(("?", arg[arg.rindex(b"'") - 1]))
            return out, None
        out.append((opt, arg))
    return out, state.operands


TOKENS = [b"-l", b"-c", b"-q", b"-h", b"-s", b"-w", b"-m", b"-m5", b"-H", b"-d1-5", b"-p",
          b"-r", b"-r3", b"-x", b"-t", b"-z", b"-i", b"-o", b"-e", b"-lc", b"-cl", b"-cm5",
          b"-lcm", b"-k", b"-:", b"-lk", b"--", b"-", b"ls", b"5", b"x y", b"", b"-1",
          b"---", b"--x", b"-\xc3\xa9"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=8), st.booleans())
def test_property_same_as_glibc_getopt(args, posixly_correct):
    assert ours(args, posixly_correct) == glibc_getopt(args, posixly_correct)


@pytest.mark.parametrize("args,posix", [
    ([b"-c", b"ls", b"-l"], False),
    ([b"-c", b"ls", b"-l"], True),
    ([b"-c", b"--", b"ls", b"-l"], False),
    ([b"a", b"-m", b"5", b"b", b"--", b"c", b"-q"], False),
    ([b"-m"], False),
    ([b"-k", b"-l"], False),
    ([b"-lcm5", b"x"], False),
])
def test_examples_same_as_glibc(args, posix):
    assert ours(args, posix) == glibc_getopt(args, posix)


def test_glibc_diagnostics_wording():
    state = GetoptState()
    assert list(getopt([b"-k"], OPTSTRING, state)) == [("?", b"cassini: invalid option -- 'k'")]
    assert list(getopt([b"-m"], OPTSTRING, GetoptState())) == \
        [("?", b"cassini: option requires an argument -- 'm'")]


# --- TASKID = strtoull(s, &end, 10) using the whole argument ------------------------------------
_strtoull = libc.strtoull
_strtoull.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
_strtoull.restype = ctypes.c_ulonglong


def c_taskid(text):
    """What the reference does: strtoull, then refuse no digits or leftovers."""
    buf = ctypes.create_string_buffer(text)
    end = ctypes.c_char_p()
    value = _strtoull(buf, ctypes.byref(end), 10)
    consumed = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buf)
    if consumed == 0 or consumed != len(text):
        return None
    return value


@pytest.mark.parametrize("text", [
    b"0", b"7", b" 7", b"+7", b"-1", b"-0", b"\t\n\v\f\r 12", b"18446744073709551615",
    b"18446744073709551616", b"99999999999999999999999", b"-99999999999999999999999",
    b"-18446744073709551615", b"007", b"", b" ", b"7x", b"7 ", b"x7", b"0x10", b"+-7",
    b"- 7", b"+", b"-", b"1e3", b"\xd9\xa3"])
def test_taskid_like_strtoull(text):
    expected = c_taskid(text)
    if expected is None:
        with pytest.raises(UsageError):
            parse_taskid(text)
    else:
        assert parse_taskid(text) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \t+-0123456789x", max_size=25).map(str.encode))
def test_property_taskid_like_strtoull(text):
    expected = c_taskid(text)
    if expected is None:
        with pytest.raises(UsageError):
            parse_taskid(text)
    else:
        assert parse_taskid(text) == expected


# --- option semantics -------------------------------------------------------------------------
def request_of(*args, env=None):
    cmd = parse_command_line(list(args), env or {})
    return None if cmd is None else cmd.request()


def test_default_is_list():
    assert request_of() == b"LS"


def test_last_operation_wins():
    assert request_of(b"-q", b"-l") == b"LS"
    assert request_of(b"-l", b"-q") == b"TM"
    assert request_of(b"-r", b"1", b"-s") == b"DL"
    assert request_of(b"-w", b"-i", b"2") == b"\x48\xed" + (2).to_bytes(8, "big")


def test_help_is_immediate():
    assert request_of(b"-h") is None
    assert request_of(b"-h", b"-k") is None
    assert request_of(b"-h", b"-r", b"x") is None
    with pytest.raises(UsageError):
        request_of(b"-k", b"-h")
    with pytest.raises(UsageError):
        request_of(b"-r", b"x", b"-h")


def test_timing_only_parsed_for_the_operations_that_use_it():
    assert request_of(b"-m", b"99", b"-l") == b"LS"
    assert request_of(b"-d", b"bogus", b"-x", b"1") == b"TX" + (1).to_bytes(8, "big")
    with pytest.raises(UsageError):
        request_of(b"-m", b"99", b"-c", b"ls")
    with pytest.raises(UsageError):
        request_of(b"-t", b"1", b"-d", b"bogus")


def test_create_and_set_cmd_need_a_command():
    for args in ([b"-c"], [b"-c", b"--"], [b"-z", b"1"], [b"-c", b""]):
        with pytest.raises(UsageError):
            request_of(*args)


def test_create_permutation_and_posixly_correct():
    req = P.decode_request(request_of(b"-c", b"echo", b"-m", b"5", b"hi"))
    assert req.argv == (b"echo", b"hi") and req.timing.minutes == 1 << 5
    assert request_of(b"-c", b"ls", b"-l") == b"LS"
    req = P.decode_request(request_of(b"-c", b"ls", b"-l", env={b"POSIXLY_CORRECT": b""}))
    assert req.argv == (b"ls", b"-l")


def test_pipes_dir_last_one_wins():
    cmd = parse_command_line([b"-p", b"/a", b"-p/b"], {})
    assert cmd.pipes_dir == b"/b"


# --- the option -> operation mapping reads the table of operations ------------------------
def test_every_operation_has_an_option_and_its_argument_is_the_taskid():
    from cassini.__main__ import CRON_OPERATIONS, OPERATION_OPTIONS
    # CREATE_CRON, SET_CRON: -c, -t with a cron option (-j -M -a -y -B); SET_FIELDS: -t
    # with some timing field left out
    assert set(OPERATION_OPTIONS.values()) | set(CRON_OPERATIONS.values()) | {P.SET_FIELDS} \
        == set(P.OPERATIONS)
    for opt, opcode in OPERATION_OPTIONS.items():
        takes_taskid = any(f.attr == "taskid" for f in P.OPERATIONS[opcode].args)
        # an option with an argument selects an operation whose TASKID it is
        assert (opt in TAKES_ARG) <= takes_taskid, opt
        assert (opt in TAKES_ARG) == takes_taskid or opt == "D", opt


@pytest.mark.parametrize("args,request_bytes", [
    ([b"-l"], b"LS"),
    ([b"-r", b"3"], b"RM" + (3).to_bytes(8, "big")),
    ([b"-t", b"1", b"-m", b"0", b"-H", b"0", b"-d", b"0"],
     b"ST" + (1).to_bytes(8, "big") + P.Timing(1, 1, 1).encode()),
    ([b"-z", b"2", b"ls", b"a"], (0x43FF).to_bytes(2, "big")
     + (2).to_bytes(8, "big") + P.encode_commandline((b"ls", b"a"))),
    ([b"-c", b"echo"], b"CR" + P.EVERY_MINUTE.encode() + P.encode_commandline((b"echo",))),
    ([b"-n", b"4", b"-N", b"2"], b"NX" + (4).to_bytes(8, "big") + (2).to_bytes(4, "big")),
    ([b"-E", b"6"], b"EL\x01" + (6).to_bytes(8, "big")),
    ([b"-D"], b"EL\x00" + bytes(8)),
    ([b"-E", b"6", b"-D"], b"EL\x00" + bytes(8)),
    ([b"-r", b"5", b"-C", b"7"], b"CL" + (7).to_bytes(8, "big")),
])
def test_the_request_carries_the_tables_fields_from_the_command_line(args, request_bytes):
    assert parse_command_line(args, {}).request() == request_bytes


def test_every_reply_shape_with_a_payload_has_a_renderer():
    from cassini import render
    shapes = {op.reply for op in P.OPERATIONS.values()}
    assert set(render.RENDERERS) == shapes - {P.SHAPE_OK}
    assert render.stdout_bytes(P.REMOVE, P.Reply()) == b""
    assert render.stdout_bytes(P.CLONE, P.Reply(value=12)) == b"12\n"
    assert render.stdout_bytes(P.DELETE_ALL, P.Reply(value=0)) == b"0\n"
    assert render.stdout_bytes(P.STDERR, P.Reply(output=b"\0x")) == b"\0x"

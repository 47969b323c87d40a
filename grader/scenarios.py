"""Daemon conformance: the protocol and extension scenarios, and the :class:`Ctx` they use.

Each scenario (``sc_*``, listed in :data:`PROTOCOL` and :data:`EXTENSIONS`) gets a fresh
candidate daemon (:class:`grader.candidate.Daemon`) and drives it through a :class:`Ctx`:
our cassini (:func:`run_client`, in the sandbox when asked) and raw requests.
:func:`run_scenario` turns one scenario into an :class:`~grader.report.Outcome`.
"""

import os
import shlex
import struct
import subprocess
import sys
import time

from saturnd import protocol as P

from .candidate import Daemon, Failed
from .golden import describe_mismatch, show, show_difference
from .report import Outcome
from .sandbox import Sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT_TIMEOUT = 20.0       # seconds for one driver cassini call


def driver_cassini():
    return [sys.executable, "-m", "cassini"]


def driver_env():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LANG": "C.UTF-8",
           "PYTHONPATH": ROOT, "CASSINI_TIMEOUT": "5", "CASSINI_REPLY_TIMEOUT": "5",
           "CASSINI_LOCK_TIMEOUT": "10", "USER": "grader", "HOME": "/nonexistent",
           # the candidate daemon's pipes directory is not ours to vet (documented opt-out)
           "CASSINI_SKIP_PIPES_CHECK": "1"}
    return env



class Run:
    """The result of one client call."""

    def __init__(self, args, code, out, err):
        self.args, self.code, self.out, self.err = args, code, out, err

    def show(self):
        return "cassini " + " ".join(shlex.quote(os.fsdecode(a)) for a in self.args)


class Ctx:
    """What a scenario sees: a running daemon and ways to talk to it."""

    diff = False

    def __init__(self, daemon, client=None, sandbox_client=None, observed=None):
        self.daemon = daemon
        self.client = client or driver_cassini()
        self.sandbox_client = sandbox_client
        self.created = 0
        # what the daemon does where the reference fixes nothing (reported, never failed)
        self.observed = observed if observed is not None else set()

    def cassini(self, *args):
        r = run_client(self.client, self.daemon.pipes, args, self.sandbox_client)
        if r.code != 0 and (b"not running" in r.err or b"no reply" in r.err
                            or r.code is None):
            # the daemon does not answer: no point in going on with this scenario
            hint, detail = ("", "")
            if b"no reply" in r.err and self.daemon_fine():
                hint, detail = no_reply_hint(self.daemon.pipes)
            raise Failed(f"{r.show()}: the daemon did not answer ("
                         f"{r.err.decode('utf-8', 'replace').strip().removeprefix('cassini: ')})"
                         f"{hint}",
                         f"{r.show()}\nclient stderr: {r.err.decode('utf-8', 'replace').strip()}"
                         f"{detail}")
        return r

    def expect(self, args, out=b"", code=0, why=""):
        r = self.cassini(*args)
        if r.out != out or r.code != code:
            detail = [f"{r.show()}{' (' + why + ')' if why else ''}"]
            if r.code != code:
                detail.append(f"exit status: expected {code}, got {r.code}")
            if r.out != out:
                detail.append(f"stdout: {show_difference(out, r.out)}")
                detail.append(describe_mismatch("stdout", out, r.out))
            if r.err:
                detail.append("client stderr: " + r.err.decode("utf-8", "replace").strip()[:300])
            first = detail[1].splitlines()[0] if len(detail) > 1 else ""
            raise Failed(f"{r.show()}: {first}", "\n".join(detail))
        return r

    def create(self, *args, why=""):
        """CREATE through the client; the id the daemon returned (any id: none assumed)."""
        r = self.cassini("-c", *args)
        if self.diff:
            return parse_id(r.out)
        taskid = parse_id(r.out) if r.code == 0 else None
        if taskid is None:
            detail = [f"{r.show()}{' (' + why + ')' if why else ''}",
                      f"exit status: {r.code}, stdout: {show(r.out)}"]
            if r.err:
                detail.append("client stderr: " + r.err.decode("utf-8", "replace").strip()[:300])
            raise Failed(f"create failed: {r.show()}: expected a task id and exit 0, got "
                         f"{show(r.out)} (exit {r.code})", "\n".join(detail))
        if not self.created:
            self.observed.add(f"first task id of a fresh daemon: {taskid} (ours: 0)")
        self.created += 1
        return taskid

    def expect_lines(self, args, lines, why=""):
        """A LIST-like output: these lines, in any order (the reference fixes none)."""
        r = self.cassini(*args)
        want = sorted(lines)
        raw = r.out.splitlines(keepends=True)
        got = sorted(raw)
        ids = [parse_id(ln.split(b":", 1)[0] + b"\n") for ln in raw]
        if len(ids) > 1 and None not in ids and not self.diff:
            order = "increasing" if ids == sorted(ids) else \
                "decreasing" if ids == sorted(ids, reverse=True) else "no"
            self.observed.add(f"LIST order: {order} id order (ours: increasing)")
        if self.diff:
            return r
        if r.code != 0 or got != want or (r.out and not r.out.endswith(b"\n")):
            expected = b"".join(want)
            detail = [f"{r.show()}{' (' + why + ')' if why else ''} -- lines compared in any order"]
            if r.code != 0:
                detail.append(f"exit status: expected 0, got {r.code}")
            missing = [ln for ln in want if ln not in got]
            extra = [ln for ln in got if ln not in want]
            if missing:
                detail.append("missing lines: " + ", ".join(show(ln) for ln in missing[:5]))
            if extra:
                detail.append("unexpected lines: " + ", ".join(show(ln) for ln in extra[:5]))
            detail.append(describe_mismatch("stdout (sorted lines)", expected, b"".join(got)))
            if r.err:
                detail.append("client stderr: " + r.err.decode("utf-8", "replace").strip()[:300])
            raise Failed(f"{r.show()}: {detail[1]}", "\n".join(detail))
        return r

    def raw(self, request, opcode, what):
        from cassini.client import ClientError, exchange
        try:
            return exchange(os.fsencode(self.daemon.pipes), request, opcode, timeout=5,
                            reply_timeout=5, lock_timeout=10, check_pipes=False)
        except ClientError as e:
            hint, detail = no_reply_hint(self.daemon.pipes) \
                if "no reply" in str(e) and self.daemon_fine() else ("", "")
            raise Failed(f"{what}: {e}{hint}", f"{what}: {e}{detail}") from None

    def daemon_fine(self):
        """Still running, nothing of it crashed: a missing reply is then the daemon's way
        of reading requests (see :func:`no_reply_hint`), not its death."""
        try:
            return self.daemon.headline() == ""
        except Exception:
            return False

    def expect_error(self, request, opcode, errcode, what):
        reply = self.raw(request, opcode, what)
        if reply.errcode != errcode:
            got = "OK" if reply.errcode is None else f"ER 0x{reply.errcode:04x}"
            raise Failed(f"{what}: expected ER {errcode.to_bytes(2, 'big').decode()}, got {got}")

    def check(self, cond, message, detail=""):
        if not cond:
            raise Failed(message, detail)


def unread_request_bytes(pipes):
    """Bytes waiting, unread, in the daemon's request pipe (FIONREAD, nothing consumed);
    None when that cannot be told."""
    import fcntl
    import termios
    try:
        fd = os.open(os.path.join(os.fsencode(pipes), os.fsencode(P.REQUEST_PIPE)),
                     os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return None
    finally:
        os.close(fd)


def no_reply_hint(pipes):
    """What the kit did when a daemon gave no reply, and what a daemon must cope with (a
    daemon that serves only ``revents == POLLIN`` drops such requests)."""
    unread = unread_request_bytes(pipes)
    still = f"; {unread} bytes of it are still unread in the request pipe" if unread else ""
    hint = (f" -- the kit wrote the whole request and closed its end of the request pipe, "
            f"as the reference client does{still}: a daemon must serve a request whose "
            f"writer has gone (poll() then says POLLIN|POLLHUP, not POLLIN alone)")
    detail = ("\nwhat the kit did: it wrote the whole request into the request pipe and "
              "closed its end (as the reference cassini does), then waited 5 s for the reply "
              "on the reply pipe" + still + ".\n"
              "what a daemon must cope with: by the time it polls, the writer may have "
              "closed: poll() reports POLLIN|POLLHUP (not POLLIN alone) and read() returns "
              "the request, then 0 (end of file). A daemon that serves only when revents == "
              "POLLIN, or that closes and reopens the pipe on POLLHUP before reading, drops "
              "the request; test revents & POLLIN, read, then handle POLLHUP.")
    return hint, detail


def run_client(client, pipes, args, sandbox=None):
    argv = list(client) + ["-p", pipes] + [os.fsencode(a) if isinstance(a, str) else a
                                            for a in args]
    env = driver_env()
    try:
        if sandbox is not None:
            return _run_sandboxed_client(sandbox, argv, env, args)
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=CLIENT_TIMEOUT)
        return Run(args, p.returncode, p.stdout, p.stderr)
    except subprocess.TimeoutExpired:
        return Run(args, None, b"", f"client did not exit within {CLIENT_TIMEOUT:g} s".encode())


def _run_sandboxed_client(options, argv, env, args):
    sb = Sandbox(options, "client", private_tmp=False)
    try:
        env = sb.env({"TZ": "UTC", "CASSINI_SKIP_PIPES_CHECK": "1"})
        out = open(os.path.join(sb.root, "out"), "w+b")
        err = open(os.path.join(sb.root, "err"), "w+b")
        p = sb.start(argv, env, out, err, mode="client")
        try:
            code = p.wait(timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            sb.kill()
            code = None
        out.seek(0)
        err.seek(0)
        return Run(args, code, out.read(), err.read())
    finally:
        sb.kill()
        sb.remove()


# --- requests as bytes ----------------------------------------------------------------
def taskid_request(opcode, taskid):
    """The bytes of a request whose only argument is a TASKID (protocol.encode_request)."""
    return P.encode_request(P.Request(opcode, taskid=taskid))


# Deliberately malformed requests, kept raw (no encoder builds them): an unknown opcode,
# and CREATE cut in the middle of its TIMING (a truncated request).  A daemon must answer
# each with the empty reply (or none) and serve the next valid request.
MALFORMED_REQUESTS = (
    b"\x00\x00",     # opcode 0x0000: no such request
    b"CR\x00",        # CREATE cut after one byte of its TIMING
)


# --- protocol scenarios ------------------------------------------------------------------
NEVER = ["-m", "7", "-H", "3", "-d", "0"]      # Sundays 03:07 UTC only
NEVER_TEXT = b"7 3 0"


def parse_id(out):
    text = out.decode("ascii", "replace")
    if text.endswith("\n") and text[:-1].isdigit():
        return int(text[:-1])
    return None


def list_line(taskid, text):
    return b"%d: " % taskid + text + b"\n"


def unknown_id(*ids):
    """A task id the daemon did not hand out."""
    return max(ids, default=0) + 1000


def sc_list_empty(ctx):
    ctx.expect(["-l"], b"")
    ctx.expect([], b"", why="no option means LIST")


def sc_create_and_list(ctx):
    a = ctx.create(*NEVER, "echo", "a")
    b = ctx.create("-m", "4,10", "-H", "3", "-d", "0", "--", "ls", "-l", "NONEXISTENT")
    c = ctx.create("-m", "0-2,59", "-H", "3-5", "-d", "0", "--", "sh", "-c", "echo 'a b'")
    ctx.check(len({a, b, c}) == 3, f"three creates returned ids {a}, {b}, {c}: not distinct")
    ctx.expect_lines(["-l"], [list_line(a, NEVER_TEXT + b" echo a"),
                              list_line(b, b"4,10 3 0 ls -l NONEXISTENT"),
                              list_line(c, b"0-2,59 3-5 0 sh -c echo 'a b'")])


def sc_list_many(ctx):
    want = []
    for i in range(25):
        t = ctx.create("-m", str(i), "-H", "3", "-d", "0", "task", str(i) * (i + 1))
        want.append(list_line(t, b"%d 3 0 task %s" % (i, str(i).encode() * (i + 1))))
    ctx.expect_lines(["-l"], want)


def sc_remove(ctx):
    a, b, c = (ctx.create(*NEVER, "echo", name) for name in ("a", "b", "c"))
    ctx.expect(["-r", str(b)], b"")
    ctx.expect_lines(["-l"], [list_line(a, b"7 3 0 echo a"), list_line(c, b"7 3 0 echo c")],
                     why=f"after removing task {b}")
    ctx.expect(["-r", str(b)], b"", 1, why=f"task {b} is already removed")
    ctx.expect_error(taskid_request(P.REMOVE, b), P.REMOVE, P.NF,
                     "REMOVE of a removed task")


def sc_ids_not_reused(ctx):
    a = ctx.create(*NEVER, "true")
    b = ctx.create(*NEVER, "true")
    ctx.check(a != b, f"two creates returned the same id {a}")
    ctx.expect(["-r", str(b)], b"")
    c = ctx.create(*NEVER, "true")
    ctx.check(c not in (a, b), f"the id of removed task {b} was reused (create returned {c})")
    ctx.expect_lines(["-l"], [list_line(a, b"7 3 0 true"), list_line(c, b"7 3 0 true")])


def sc_unknown_ids(ctx):
    a = ctx.create(*NEVER, "true")
    bad = unknown_id(a)
    for opcode, opt in ((P.REMOVE, "-r"), (P.TIMES_EXITCODES, "-x"), (P.STDOUT, "-o"),
                        (P.STDERR, "-e")):
        ctx.expect([opt, str(bad)], b"", 1, why=f"no task {bad}")
        ctx.expect_error(taskid_request(opcode, bad), opcode, P.NF,
                         f"{P.OPCODE_NAMES.get(opcode, opt)} of unknown task {bad}")


def sc_never_ran(ctx):
    a = ctx.create(*NEVER, "true")
    ctx.expect(["-x", str(a)], b"", why="no run yet")
    ctx.expect(["-o", str(a)], b"", 1, why="never ran")
    ctx.expect(["-e", str(a)], b"", 1, why="never ran")
    ctx.expect_error(taskid_request(P.STDOUT, a), P.STDOUT, P.NR,
                     "STDOUT of a task that never ran")
    ctx.expect_error(taskid_request(P.STDERR, a), P.STDERR, P.NR,
                     "STDERR of a task that never ran")


HASTY_REPLY_WAIT = 1.0      # seconds a hasty run waits for a reply to a malformed request


def sc_malformed_then_valid(ctx):
    a = ctx.create(*NEVER, "true")
    from cassini.client import ClientError, exchange
    # a daemon may need a stall timeout to give up on a truncated request; a hasty run
    # (grader/suites.py) waits less, and is followed by a patient one when it fails
    wait = 8 if getattr(ctx, "patient", True) else HASTY_REPLY_WAIT
    for junk in MALFORMED_REQUESTS:
        try:
            exchange(os.fsencode(ctx.daemon.pipes), junk, P.LIST, timeout=5,
                     reply_timeout=wait, lock_timeout=10, check_pipes=False)
        except ClientError:
            pass                      # an empty reply (or none) is what we want
    ctx.expect_lines(["-l"], [list_line(a, b"7 3 0 true")],
                     why="a valid request after malformed ones")


def sc_terminate(ctx):
    ctx.create(*NEVER, "true")
    ctx.expect(["-q"], b"")
    deadline = time.monotonic() + 5
    while ctx.daemon.sb.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    ctx.check(not ctx.daemon.sb.alive(), "the daemon was still running 5 s after TERMINATE")


# Scenarios that go beyond what the course's subject asks: `skip` under `course`.
STRICT_ONLY = {
    "malformed-then-valid": "strict only: the subject says nothing about malformed requests",
}

PROTOCOL = [
    ("list-empty", sc_list_empty),
    ("create-and-list", sc_create_and_list),
    ("list-many", sc_list_many),
    ("remove", sc_remove),
    ("ids-not-reused", sc_ids_not_reused),
    ("unknown-task-ids", sc_unknown_ids),
    ("never-ran", sc_never_ran),
    ("malformed-then-valid", sc_malformed_then_valid),
    ("terminate", sc_terminate),
]


# --- extension scenarios --------------------------------------------------------------------
def sc_ext_delete_all(ctx):
    for _ in range(3):
        ctx.create(*NEVER, "true")
    ctx.expect(["-s"], b"3\n")
    ctx.expect(["-l"], b"")
    ctx.expect(["-s"], b"0\n")


def sc_ext_sw_time(ctx):
    a = ctx.create(*NEVER, "true")
    ctx.expect(["-t", str(a), "-m", "1,2", "-H", "4", "-d", "6"], b"")
    ctx.expect_lines(["-l"], [list_line(a, b"1-2 4 6 true")])
    # all three fields: SW_TIME (with some left out this cassini sends its own SET_FIELDS)
    ctx.expect(["-t", str(unknown_id(a)), "-m", "1", "-H", "*", "-d", "*"], b"", 1,
               why="no such task")


def sc_ext_set_cmd(ctx):
    a = ctx.create(*NEVER, "true")
    ctx.expect(["-z", str(a), "--", "echo", "-n", "x y"], b"")
    ctx.expect_lines(["-l"], [list_line(a, b"7 3 0 echo -n x y")])
    ctx.expect(["-z", str(unknown_id(a)), "true"], b"", 1, why="no such task")


def sc_ext_exec(ctx):
    a = ctx.create(*NEVER, "echo", "now")
    ctx.expect(["-i", str(a)], b"")
    deadline = time.monotonic() + 10
    while True:
        r = ctx.cassini("-o", str(a))
        if r.code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    ctx.expect(["-o", str(a)], b"now\n", why="after EXEC_TASK")
    ctx.expect(["-i", str(unknown_id(a))], b"", 1, why="no such task")


def sc_ext_reset_taskmax(ctx):
    ids = [ctx.create(*NEVER, "true") for _ in range(3)]
    ctx.cassini("-r", str(ids[-1]))
    r = ctx.cassini("-w")
    nxt = parse_id(r.out)
    if ctx.diff:
        return
    ctx.check(r.code == 0 and nxt is not None and nxt not in ids[:2],
              f"cassini -w: expected the next id (exit 0), got {show(r.out)} (exit {r.code})")
    got = ctx.create(*NEVER, "true")
    ctx.check(got == nxt, f"RESET_TASKMAX said the next id is {nxt}, the next create "
              f"returned {got}")


EXTENSIONS = [
    ("delete-all", sc_ext_delete_all),
    ("sw-time", sc_ext_sw_time),
    ("set-cmd", sc_ext_set_cmd),
    ("exec-task", sc_ext_exec),
    ("reset-taskmax", sc_ext_reset_taskmax),
]


def run_scenario(config, category, name, func, client=None, sandbox_client=None,
                 observed=None):
    t0 = time.monotonic()
    daemon = Daemon(config.options, config, name)
    try:
        daemon.start()
        func(Ctx(daemon, client, sandbox_client, observed))
        return Outcome(category, name, "pass", duration=time.monotonic() - t0)
    except Failed as e:
        detail = e.detail or e.message
        if daemon.sb.proc is not None and "daemon processes:" not in detail:
            detail += "\n" + daemon.diagnosis()
        return Outcome(category, name, "fail", e.message + daemon.headline(), detail,
                       time.monotonic() - t0)
    except Exception as e:      # a grader bug must not stop the run
        import traceback
        return Outcome(category, name, "fail", f"grader error: {e!r}",
                       traceback.format_exc(), time.monotonic() - t0)
    finally:
        daemon.stop()


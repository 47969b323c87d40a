"""Daemon conformance: scenarios driven by our cassini against a candidate saturnd.

Each protocol scenario starts a fresh candidate daemon in its own sandbox (so one
crash fails one scenario), finds its pipes (where we asked with ``{pipes}``, or
wherever it put them: ``/tmp/$USER/saturnd/pipes`` inside its private /tmp, its
home, its working directory), then drives it with our client and raw requests.

The scheduling scenario needs minutes to pass.  Clocks:

- ``faketime``: the daemon runs under libfaketime (``LD_PRELOAD``), starting at a
  fixed fake time and running ``speed`` times faster than real time;
- ``manual``: the daemon implements our manual clock control channel (ours does:
  ``--clock manual``); minutes are crossed on request, nothing is waited for;
- ``real``: real minutes, only when asked, within a stated budget.
"""

import glob
import os
import shlex
import struct
import subprocess
import sys
import time

from saturnd import protocol as P

from .golden import describe_mismatch, show, show_difference
from .report import Outcome
from .sandbox import Sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 10.0        # seconds for a daemon to make its pipes
CLIENT_TIMEOUT = 20.0       # seconds for one driver cassini call
FAKE_START = 1767603480     # 2026-01-05 08:58:00 UTC, a Monday


class Failed(Exception):
    def __init__(self, message, detail=""):
        super().__init__(message)
        self.message = message
        self.detail = detail


def driver_cassini():
    return [sys.executable, "-m", "cassini"]


def driver_env():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LANG": "C.UTF-8",
           "PYTHONPATH": ROOT, "CASSINI_TIMEOUT": "5", "CASSINI_REPLY_TIMEOUT": "5",
           "CASSINI_LOCK_TIMEOUT": "10", "USER": "grader", "HOME": "/nonexistent",
           # the candidate daemon's pipes directory is not ours to vet (documented opt-out)
           "CASSINI_SKIP_PIPES_CHECK": "1"}
    return env


def find_libfaketime(explicit=None):
    explicit = explicit or os.environ.get("GRADER_LIBFAKETIME")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                    "/usr/local/lib/faketime/libfaketime.so.1", "/usr/lib64/faketime/libfaketime.so.1"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def _utc(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _is_fifo(path):
    try:
        import stat
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


class Daemon:
    """One candidate daemon in its sandbox."""

    def __init__(self, options, config, label, clock="system", start_time=None):
        self.config = config
        self.sb = Sandbox(options, label)
        self.clock = clock
        self.start_time = start_time
        self.pipes = None
        self.log_path = os.path.join(self.sb.root, "daemon.log")

    def argv(self):
        values = {"saturnd": self.config.saturnd, "pipes": self.sb.pipes, "data": self.sb.data,
                  "home": self.sb.home, "user": self.sb.user,
                  "start_time": str(self.start_time or int(time.time()) // 60 * 60)}
        template = self.config.saturnd_cmd
        if self.clock == "manual" and self.config.manual_cmd:
            template = self.config.manual_cmd
        try:
            return [part.format(**values) for part in shlex.split(template)]
        except (KeyError, IndexError, ValueError) as e:
            raise Failed(f"bad daemon command template {template!r}: {e}") from None

    def start(self):
        self.made = []
        if not self.sb.private_tmp:
            # the shared /tmp (light isolation): remove afterwards only what did not exist
            d = "/tmp"
            for part in (self.sb.user, "saturnd", "pipes"):
                d = os.path.join(d, part)
                if not os.path.lexists(d):
                    self.made.append(d)
                    break
        if getattr(self.config, "precreate", False):
            # for daemons that expect their pipes directory to exist already
            for d in (self.sb.pipes, self.sb.host_path(P.default_pipes_dir(self.sb.user))):
                os.makedirs(d, 0o700, exist_ok=True)
            self.sb.grant(self.sb.root)
        env = self.sb.env()
        if self.clock == "faketime":
            env["LD_PRELOAD"] = self.config.libfaketime
            env["FAKETIME"] = f"@{_utc(self.start_time)} x{self.config.speed:g}"
        log = open(self.log_path, "wb")
        try:
            self.sb.start(self.argv(), env, log, log, mode="daemon")
        finally:
            log.close()
        self.pipes = self.wait_for_pipes()

    def candidates(self):
        sb = self.sb
        dirs = [sb.pipes]
        dirs += glob.glob(os.path.join(sb.tmp, "*", "saturnd", "pipes"))
        if not sb.private_tmp:
            dirs.append(P.default_pipes_dir(sb.user))
        for top in (sb.tmp, sb.home, sb.work, sb.data):
            for depth in range(0, 5):
                pattern = os.path.join(top, *(["*"] * depth), P.REQUEST_PIPE)
                dirs += [os.path.dirname(p) for p in glob.glob(pattern)]
        return dirs

    def wait_for_pipes(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for d in self.candidates():
                if _is_fifo(os.path.join(d, P.REQUEST_PIPE)) and \
                        _is_fifo(os.path.join(d, P.REPLY_PIPE)):
                    return d
            if not self.sb.alive():
                raise Failed("the daemon exited before making its pipes"
                             f" ({self.sb.main_status() or 'no status'})", self.diagnosis())
            if time.monotonic() > deadline:
                raise Failed(f"the daemon made no saturnd-request-pipe/saturnd-reply-pipe "
                             f"within {START_TIMEOUT:g} s (looked in {self.sb.pipes} and "
                             f"/tmp/$USER/saturnd/pipes, home, working directory)",
                             self.diagnosis())
            time.sleep(0.02)

    def log_tail(self, n=10):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - 4096))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return text.splitlines()[-n:]

    def headline(self):
        """A few words on the daemon's fate, for a failure's one-line message."""
        if self.sb.proc is None:
            return ""
        crashes = [s.split(" ", 1)[1] if not s.startswith("main ") else s.split(" ", 2)[2]
                   for s in self.sb.statuses() if "signal" in s]
        if crashes:
            return f" -- a daemon process was {crashes[0]}"
        if not self.sb.alive():
            return " -- the daemon is no longer running"
        return ""

    def diagnosis(self):
        lines = []
        if self.pipes:
            inside = ""
            if self.sb.private_tmp and self.pipes.startswith(self.sb.tmp + "/"):
                inside = f" (the daemon's /tmp{self.pipes[len(self.sb.tmp):]})"
            lines.append(f"pipes: {self.pipes}{inside}")
        alive = self.sb.alive()
        lines.append("daemon processes: " + ("still running" if alive else "none left"))
        ended = [s for s in self.sb.statuses() if not s.startswith("started")]
        if ended:
            lines.append("ended processes: " + "; ".join(ended[-6:]))
        tail = self.log_tail()
        if tail:
            lines.append("daemon output (last lines):")
            lines += ["  " + ln for ln in tail]
        return "\n".join(lines)

    def stop(self):
        self.sb.kill()
        import shutil
        for d in getattr(self, "made", []):
            shutil.rmtree(d, ignore_errors=True)
        self.sb.remove()


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
            raise Failed(f"{r.show()}: the daemon did not answer ("
                         f"{r.err.decode('utf-8', 'replace').strip().removeprefix('cassini: ')})",
                         f"{r.show()}\nclient stderr: {r.err.decode('utf-8', 'replace').strip()}")
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
            return _parse_id(r.out)
        taskid = _parse_id(r.out) if r.code == 0 else None
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
        ids = [_parse_id(ln.split(b":", 1)[0] + b"\n") for ln in raw]
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
            return exchange(os.fsencode(self.daemon.pipes), request, opcode, timeout=5, reply_timeout=5,
                            lock_timeout=10, check_pipes=False)
        except ClientError as e:
            raise Failed(f"{what}: {e}") from None

    def expect_error(self, request, opcode, errcode, what):
        reply = self.raw(request, opcode, what)
        if reply.errcode != errcode:
            got = "OK" if reply.errcode is None else f"ER 0x{reply.errcode:04x}"
            raise Failed(f"{what}: expected ER {errcode.to_bytes(2, 'big').decode()}, got {got}")

    def check(self, cond, message, detail=""):
        if not cond:
            raise Failed(message, detail)


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
        p = subprocess.Popen(sb.command(argv, env, "client", private_tmp=False),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True)
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
def _taskid_request(opcode, taskid):
    return struct.pack(">HQ", opcode, taskid)


# --- protocol scenarios ------------------------------------------------------------------
NEVER = ["-m", "7", "-H", "3", "-d", "0"]      # Sundays 03:07 UTC only
NEVER_TEXT = b"7 3 0"


def _parse_id(out):
    text = out.decode("ascii", "replace")
    if text.endswith("\n") and text[:-1].isdigit():
        return int(text[:-1])
    return None


def _line(taskid, text):
    return b"%d: " % taskid + text + b"\n"


def _unknown(*ids):
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
    ctx.expect_lines(["-l"], [_line(a, NEVER_TEXT + b" echo a"),
                              _line(b, b"4,10 3 0 ls -l NONEXISTENT"),
                              _line(c, b"0-2,59 3-5 0 sh -c echo 'a b'")])


def sc_list_many(ctx):
    want = []
    for i in range(25):
        t = ctx.create("-m", str(i), "-H", "3", "-d", "0", "task", str(i) * (i + 1))
        want.append(_line(t, b"%d 3 0 task %s" % (i, str(i).encode() * (i + 1))))
    ctx.expect_lines(["-l"], want)


def sc_remove(ctx):
    a, b, c = (ctx.create(*NEVER, "echo", name) for name in ("a", "b", "c"))
    ctx.expect(["-r", str(b)], b"")
    ctx.expect_lines(["-l"], [_line(a, b"7 3 0 echo a"), _line(c, b"7 3 0 echo c")],
                     why=f"after removing task {b}")
    ctx.expect(["-r", str(b)], b"", 1, why=f"task {b} is already removed")
    ctx.expect_error(_taskid_request(P.REMOVE, b), P.REMOVE, P.NF,
                     "REMOVE of a removed task")


def sc_ids_not_reused(ctx):
    a = ctx.create(*NEVER, "true")
    b = ctx.create(*NEVER, "true")
    ctx.check(a != b, f"two creates returned the same id {a}")
    ctx.expect(["-r", str(b)], b"")
    c = ctx.create(*NEVER, "true")
    ctx.check(c not in (a, b), f"the id of removed task {b} was reused (create returned {c})")
    ctx.expect_lines(["-l"], [_line(a, b"7 3 0 true"), _line(c, b"7 3 0 true")])


def sc_unknown_ids(ctx):
    a = ctx.create(*NEVER, "true")
    bad = _unknown(a)
    for opcode, opt in ((P.REMOVE, "-r"), (P.TIMES_EXITCODES, "-x"), (P.STDOUT, "-o"),
                        (P.STDERR, "-e")):
        ctx.expect([opt, str(bad)], b"", 1, why=f"no task {bad}")
        ctx.expect_error(_taskid_request(opcode, bad), opcode, P.NF,
                         f"{P.OPCODE_NAMES.get(opcode, opt)} of unknown task {bad}")


def sc_never_ran(ctx):
    a = ctx.create(*NEVER, "true")
    ctx.expect(["-x", str(a)], b"", why="no run yet")
    ctx.expect(["-o", str(a)], b"", 1, why="never ran")
    ctx.expect(["-e", str(a)], b"", 1, why="never ran")
    ctx.expect_error(_taskid_request(P.STDOUT, a), P.STDOUT, P.NR,
                     "STDOUT of a task that never ran")
    ctx.expect_error(_taskid_request(P.STDERR, a), P.STDERR, P.NR,
                     "STDERR of a task that never ran")


def sc_malformed_then_valid(ctx):
    a = ctx.create(*NEVER, "true")
    from cassini.client import ClientError, exchange
    for junk in (b"\x00\x00", b"CR\x00"):
        try:
            # a daemon may need a stall timeout to give up on a truncated request
            exchange(os.fsencode(ctx.daemon.pipes), junk, P.LIST, timeout=5, reply_timeout=8,
                     lock_timeout=10, check_pipes=False)
        except ClientError:
            pass                      # an empty reply (or none) is what we want
    ctx.expect_lines(["-l"], [_line(a, b"7 3 0 true")], why="a valid request after malformed ones")


def sc_terminate(ctx):
    ctx.create(*NEVER, "true")
    ctx.expect(["-q"], b"")
    deadline = time.monotonic() + 5
    while ctx.daemon.sb.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    ctx.check(not ctx.daemon.sb.alive(), "the daemon was still running 5 s after TERMINATE")


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
    ctx.expect_lines(["-l"], [_line(a, b"1-2 4 6 true")])
    ctx.expect(["-t", str(_unknown(a)), "-m", "1"], b"", 1, why="no such task")


def sc_ext_set_cmd(ctx):
    a = ctx.create(*NEVER, "true")
    ctx.expect(["-z", str(a), "--", "echo", "-n", "x y"], b"")
    ctx.expect_lines(["-l"], [_line(a, b"7 3 0 echo -n x y")])
    ctx.expect(["-z", str(_unknown(a)), "true"], b"", 1, why="no such task")


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
    ctx.expect(["-i", str(_unknown(a))], b"", 1, why="no such task")


def sc_ext_reset_taskmax(ctx):
    ids = [ctx.create(*NEVER, "true") for _ in range(3)]
    ctx.cassini("-r", str(ids[-1]))
    r = ctx.cassini("-w")
    nxt = _parse_id(r.out)
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


# --- scheduling -------------------------------------------------------------------------------
class Clock:
    def __init__(self, kind, daemon, config):
        self.kind, self.daemon, self.config = kind, daemon, config

    def now(self):
        if self.kind == "faketime":
            return self.daemon.start_time + (time.time() - self.daemon.sb.launched) * \
                self.config.speed
        if self.kind == "manual":
            return self._ctl("now")
        return time.time()

    def _ctl(self, line):
        from saturnd.clockctl import ClockError, request
        try:
            reply = request(self.daemon.pipes, line, timeout=30)
        except ClockError as e:
            raise Failed(f"manual clock: {e}") from None
        words = reply.split()
        if not words or words[0] != "ok":
            raise Failed(f"manual clock: {line!r} answered {reply!r}")
        return int(words[1])

    def wait_until(self, epoch):
        if self.kind == "manual":
            now = self.now()
            n = epoch // 60 - now // 60
            if n > 0:
                self._ctl(f"advance {n} 20")
            return
        speed = self.config.speed if self.kind == "faketime" else 1.0
        while True:
            left = (epoch - self.now()) / speed
            if left <= 0:
                return
            if not self.daemon.sb.alive():
                raise Failed("the daemon died while waiting for the clock", self.daemon.diagnosis())
            time.sleep(min(left, 0.5))


SCHEDULE_CHECKS = ["every-minute", "selected-minutes-only", "other-days-never",
                   "exit-codes", "outputs", "runs-within-their-minute"]


def scheduling(config, figures=None):
    """One daemon, five tasks, four minutes; one outcome per check.

    Runs are judged by the minute they are recorded in: any second of the scheduled minute
    is right (the protocol does not require second 0); how late in its minute each run was
    recorded is measured and reported (``figures``), never failed.  When the setup fails
    (the daemon does not start, a create fails), the first check reports the cause and the
    others say they were not examined."""
    cat = "daemon-scheduling"
    kind = config.clock
    t0 = time.monotonic()
    if kind == "real" and config.real_minutes < 6:
        return [Outcome(cat, c, "skip", f"real-time scheduling needs a budget of 6 minutes "
                        f"(--real-minutes {config.real_minutes:g})") for c in SCHEDULE_CHECKS]
    start = FAKE_START if kind in ("faketime", "manual") else None
    daemon = Daemon(config.options, config, "scheduling", clock=kind, start_time=start)
    outcomes = []
    try:
        try:
            daemon.start()
            ctx = Ctx(daemon)
            clock = Clock(kind, daemon, config)
            ids = [ctx.create("echo", "tick"),
                   ctx.create("--", "sh", "-c", "printf out; printf err >&2; exit 3"),
                   ctx.create("--", "sh", "-c", "kill -9 $$")]
            now = clock.now()
            wday = (time.gmtime(now).tm_wday + 1) % 7          # tm_wday: Monday = 0
            ids.append(ctx.create("-d", str((wday + 1) % 7), "true"))
            margin = 30 if kind != "real" else 20
            base = (int(clock.now()) + margin) // 60 * 60 + 60
            sel = sorted({time.gmtime(base).tm_min, time.gmtime(base + 120).tm_min})
            ids.append(ctx.create("-m", ",".join(map(str, sel)), "true"))
            if len(set(ids)) != 5:
                raise Failed(f"five creates returned ids {ids}: not distinct")
            created = clock.now()
            if created >= base - 1:
                raise Failed(f"creating the tasks took too long (clock at {_utc(created)}, "
                             f"first minute {_utc(base)}): try a lower --speed")
            end = base + 180
            clock.wait_until(end + 20)
            window = [base + 60 * i for i in range(4)]
            runs = {}
            deadline = time.monotonic() + 15
            while True:
                for k, t in enumerate(ids):
                    reply = ctx.raw(_taskid_request(P.TIMES_EXITCODES, t), P.TIMES_EXITCODES,
                                    f"TIMES_EXITCODES of task {t}")
                    if reply.errcode is not None:
                        raise Failed(f"TIMES_EXITCODES of task {t}: error reply")
                    runs[k] = [(tm // 60 * 60, c) for tm, c in reply.runs
                               if base <= tm // 60 * 60 <= end]
                    runs[("all", k)] = reply.runs
                if len(runs[0]) >= 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        except Failed as e:
            detail = e.detail or e.message
            if "daemon processes:" not in detail:
                detail += "\n" + daemon.diagnosis()
            first = SCHEDULE_CHECKS[0]
            return [Outcome(cat, first, "fail", e.message + daemon.headline(), detail,
                            time.monotonic() - t0)] + \
                [Outcome(cat, c, "fail", f"not examined: the scenario's setup failed "
                         f"(see {first})", "", 0.0) for c in SCHEDULE_CHECKS[1:]]
        fmt = lambda rs: ", ".join(f"{_utc(t)[11:]} -> {c}" for t, c in rs) or "none"  # noqa

        def check(name, cond, message, detail=""):
            status = "pass" if cond else "fail"
            outcomes.append(Outcome(cat, name, status, "" if cond else message,
                                    "" if cond else f"{message}\n{detail}\n{daemon.diagnosis()}",
                                    time.monotonic() - t0))
        span = f"{_utc(base)} to {_utc(end)} UTC"
        check("every-minute", [t for t, _ in runs[0]] == window and
              all(c == 0 for _, c in runs[0]),
              f"task `* * * echo tick`: expected one run with exit 0 at each minute of {span}",
              f"got (in that window): {fmt(runs[0])}")
        want = [(base, 0), (base + 120, 0)]
        check("selected-minutes-only", runs[4] == want and
              all(t // 60 * 60 in (base, base + 120) for t, _ in runs[("all", 4)]),
              f"task `-m {','.join(map(str, sel))} true`: expected runs at "
              f"{_utc(base)[11:]} and {_utc(base + 120)[11:]} only",
              f"got: {fmt(runs[('all', 4)])}")
        check("other-days-never", runs[("all", 3)] == [],
              "a task for tomorrow's weekday ran today", f"got: {fmt(runs[('all', 3)])}")
        ok_codes = [t for t, _ in runs[1]] == window and all(c == 3 for _, c in runs[1]) and \
            [t for t, _ in runs[2]] == window and all(c == 0xFFFF for _, c in runs[2])
        check("exit-codes", ok_codes,
              "expected exit code 3 for `exit 3` and 65535 for a run killed by a signal, "
              f"once a minute in {span}",
              f"`exit 3` task: {fmt(runs[1])}\n`kill -9 $$` task: {fmt(runs[2])}")
        problems = []
        for args, want_out in ((["-o", ids[0]], b"tick\n"), (["-o", ids[1]], b"out"),
                               (["-e", ids[1]], b"err"), (["-e", ids[0]], b"")):
            r = ctx.cassini(args[0], str(args[1]))
            if r.code != 0 or r.out != want_out:
                problems.append(f"{r.show()}: expected {show(want_out)} (exit 0), got "
                                f"{show(r.out)} (exit {r.code})")
        check("outputs", not problems, problems[0] if problems else "", "\n".join(problems))
        every = [tm for k in range(5) for tm, _ in runs[("all", k)]]
        stray = [(tm, c) for k in range(5) for tm, c in runs[("all", k)]
                 if not base - 60 <= tm < end + 60]
        check("runs-within-their-minute", not stray,
              "a run's recorded TIME must fall within the minute it was scheduled for",
              f"runs recorded outside the window {span}: {fmt(stray[:6])}")
        if every and figures is not None:
            late = [tm % 60 for tm in every]
            spread = f"{max(late)}" if min(late) == max(late) else f"{min(late)}-{max(late)}"
            figures.append(f"punctuality: {len(every)} runs recorded "
                           f"{spread} s after their minute "
                           f"(mean {sum(late) / len(late):.1f} s; any second of the minute "
                           f"passes)" if max(late) else
                           f"punctuality: {len(every)} runs, all recorded at second 0")
        return outcomes
    finally:
        daemon.stop()


def describe_clock(config):
    if config.clock == "faketime":
        return (f"scheduling under libfaketime ({config.libfaketime}), fake time starting "
                f"{_utc(FAKE_START)} UTC, x{config.speed:g} (one minute every "
                f"{60 / config.speed:.2g} s)")
    if config.clock == "manual":
        return f"scheduling with the daemon's manual clock (control channel), from {_utc(FAKE_START)} UTC"
    return f"scheduling in real time (real minutes, budget {config.real_minutes:g} min)"


# --- differential mode ---------------------------------------------------------------------------
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

"""Golden-vector runner core: plays the daemon's side of one golden case over real FIFOs
(the grader's client conformance; tests/golden/runner.py runs it standalone).  The case
format: grader/cases/README.md."""

import errno
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from saturnd import fifo
from saturnd.protocol import REPLY_PIPE, REQUEST_PIPE, ProtocolError, Truncated, decode_request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# the shipped golden cases (package grader.cases; format: grader/cases/README.md).
# (GRADER_CASES_DIR is ``saturnd-grade --cases-dir``: course-format cases, see __main__.)
CASES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
SHIPPED_TZ = "UTC"          # the zone the shipped cases were made in (unless a case's env says)
COURSE_TIMEOUT = 3.0        # the course script's timeout per case


TAGS = ("reference", "strict", "extension", "deviation")
REQUEST_DEADLINE = 2.0     # seconds to receive the whole request
REPLY_OPEN_DEADLINE = 5.0  # seconds for cassini to open the reply pipe
EXIT_DEADLINE = 15.0       # seconds for cassini to exit after it started
# The course's script starts the client and its pipe reader together, so the reader may
# come after the client's open: the fake daemon opens its end of the request pipe only
# READER_DELAY seconds after starting the client (sooner if the client has ended).  A
# client that waits for the daemon (a blocking open, O_WRONLY without O_NONBLOCK, or a
# retry) never notices; one that gives up when no reader is there (O_WRONLY|O_NONBLOCK:
# ENXIO) fails, every time, with a message naming the cause.
# Once a client has shown READER_PROOF times that it waits (still running when the reader
# came, then its request), its later cases get the reader at once: the wait costs a grade
# a second or two, not a second per case -- so the delay can be long enough (the sandbox's
# start and the client's own start-up on a loaded machine) to be deterministic.  A client
# that ever ends before the reader without its request keeps the delay on every case.
READER_DELAY = 1.0
READER_PROOF = 4
ENXIO_TEXT = (b"No such device or address", b"ENXIO")


class _ReaderPolicy:
    """How long the fake daemon holds its reader back, per client (an argv)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waited = {}
        self.gave_up = set()

    def delay(self, client):
        with self.lock:
            key = tuple(client)
            if key in self.gave_up or self.waited.get(key, 0) < READER_PROOF:
                return READER_DELAY
            return 0.0

    def record(self, client, play):
        if play.reader_delay <= 0 or play.req_fd is None or not play.case.request:
            return
        with self.lock:
            key = tuple(client)
            if play.ended_before_reader and not play.got:
                self.gave_up.add(key)
            elif not play.ended_before_reader and play.got == play.case.request:
                self.waited[key] = self.waited.get(key, 0) + 1


READER_POLICY = _ReaderPolicy()


# --- cases -------------------------------------------------------------------
class Case:
    def __init__(self, path, tz=SHIPPED_TZ):
        self.path = path
        self.name = os.path.basename(path.rstrip("/"))
        self.arguments = self._lines("arguments")
        self.request = self._bytes("request")
        self.reply = self._bytes("reply")
        self.stdout = self._bytes("stdout")
        self.exitcode = int(self._bytes("exitcode").strip() or b"0")
        self.env = {}
        if self._has("env"):
            for line in self._lines("env"):
                if line:
                    name, _, value = line.partition(b"=")
                    self.env[name] = value
        self.tag = self._bytes("tag").strip().decode() if self._has("tag") else "reference"
        if self.tag not in TAGS:
            raise ValueError(f"{self.name}: unknown tag {self.tag!r}")
        # the zone the client runs in: the case's own (env file), else the set's
        self.tz = self.env.pop(b"TZ", None) or (tz.encode() if tz else b"UTC")
        self.no_daemon = self._has("no-daemon")
        self.keep_open = self._has("keep-open")
        self.default_pipes = self._has("default-pipes")

    def _has(self, name):
        return os.path.exists(os.path.join(self.path, name))

    def _bytes(self, name):
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def _lines(self, name):
        data = self._bytes(name)
        if not data:
            return []
        if data.endswith(b"\n"):
            data = data[:-1]
        return data.split(b"\n")


def load_cases(names=(), cases_dir=None, tz=SHIPPED_TZ):
    cases_dir = cases_dir or CASES_DIR
    if names:
        paths = [n if os.path.isdir(n) else os.path.join(cases_dir, n) for n in names]
        missing = [n for n, p in zip(names, paths) if not os.path.isdir(p)]
        if missing:
            raise ValueError(f"no such case in {cases_dir}: {', '.join(missing)}")
    else:       # names starting with _ or . are not cases (__pycache__, _drafts, .git)
        paths = [os.path.join(cases_dir, n) for n in sorted(os.listdir(cases_dir))
                 if not n.startswith(("_", "."))]
    return [Case(p, tz) for p in paths if os.path.isdir(p)]


# --- the course script's rules -----------------------------------------------------
def course_normalise(data):
    """The course script's stdout normalisation, applied to both sides:
    ``sed 's/://g; s/^ //; s/ $//; s/[[:blank:]]+/ /g'`` (the last one is a no-op in
    sed's basic syntax: ``+`` is a literal), empty lines dropped (``grep -v '^$'``),
    then ``sort -n -k1,1`` (numeric on the first field, ties by the whole line)."""
    lines = []
    for line in data.split(b"\n"):
        line = line.replace(b":", b"")
        if line.startswith(b" "):
            line = line[1:]
        if line.endswith(b" "):
            line = line[:-1]
        if line:
            lines.append(line)

    def key(line):
        s = line.lstrip(b" \t")
        neg = s.startswith(b"-")
        if neg:
            s = s[1:]
        digits = b""
        for b in s:
            if 48 <= b <= 57:
                digits += bytes([b])
            else:
                break
        value = int(digits) if digits else 0
        return (-value if neg else value, line)
    return sorted(lines, key=key)


def show(data, limit=72):
    """Bytes as a Python literal, cut to about ``limit`` characters."""
    text = repr(bytes(data))
    return text if len(text) <= limit else text[:limit - 4] + "...'" + f" ({len(data)} bytes)"


def show_difference(expected, got, limit=72):
    """``expected b'0\\n', got b'1\\n'``, centred on the first difference when long."""
    if len(repr(expected)) > limit or len(repr(got)) > limit:
        first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
                     min(len(expected), len(got)))
        start = max(0, expected.rfind(b"\n", 0, first) + 1, first - 24)
        pre = f"at offset {start}: " if start else ""
        return f"{pre}expected {show(expected[start:], limit)}, got {show(got[start:], limit)}"
    return f"expected {show(expected)}, got {show(got)}"


# --- the client under test -------------------------------------------------
def default_cassini():
    script = os.path.join(os.path.dirname(sys.executable), "cassini")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "cassini"]


def cassini_command(path=None):
    path = path or os.environ.get("CASSINI")
    return ([path], True) if path else (default_cassini(), False)


def selected_tags(other_client, tags=None):
    tags = tags or os.environ.get("GOLDEN_TAGS")
    if tags:
        return {t.strip() for t in tags.split(",") if t.strip()}
    return {"reference"} if other_client else set(TAGS)


# --- hexdump for mismatches ----------------------------------------------------
def hexdump(data, limit=512):
    lines = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off:off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"  {off:08x}: {hexes:<47}  {text}")
    if len(data) > limit:
        lines.append(f"  ... ({len(data)} bytes in all)")
    if not data:
        lines.append("  (empty)")
    return "\n".join(lines)


def describe_mismatch(what, expected, got):
    first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
                 min(len(expected), len(got)))
    start = max(0, first - first % 16 - 32)
    return (f"{what} differs: expected {len(expected)} bytes, got {len(got)}; "
            f"first difference at offset {first}\n"
            f"expected (from offset {start}):\n{hexdump(expected[start:])}\n"
            f"got (from offset {start}):\n{hexdump(got[start:])}")


# --- one exchange ----------------------------------------------------------------
def _poll(fd, events, ms):
    return fifo.wait(fd, events, ms / 1000)


def _read_request(fd, proc, deadline):
    """Read until the bytes decode as one request, EOF, cassini's exit, or the deadline."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return buf, "deadline"
        events = _poll(fd, select.POLLIN, min(50, int(left * 1000) + 1))
        if not events:
            if proc.poll() is not None:
                # cassini is gone: take what is left and stop
                try:
                    buf += os.read(fd, 1 << 20)
                except BlockingIOError:
                    pass
                return buf, "exited"
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            return buf, "eof"
        buf += chunk
        try:
            decode_request(buf)
        except Truncated:
            continue
        except ProtocolError:
            continue          # malformed so far: wait for more, EOF or the deadline
        # complete: pick up whatever else is already there (trailing garbage)
        while _poll(fd, select.POLLIN, 20):
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            buf += chunk
        return buf, "complete"


def _open_reply(path, proc, deadline):
    """The reply pipe's writing end once cassini opened it; None when cassini exited or the
    deadline passed first."""
    try:
        return fifo.open_writer(path, deadline, give_up=lambda: proc.poll() is not None,
                                retry=0.002)
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise
        return None


def _write_reply(fd, data, proc, deadline):
    """Write the reply; what went wrong (None: nothing)."""
    try:
        fifo.write_all(fd, data, max(0.0, deadline - time.monotonic()),
                       give_up=lambda: proc.poll() is not None, step=0.05)
    except fifo.Stalled as e:
        return f"could only write {e.written} of {len(data)} reply bytes"
    except BrokenPipeError as e:
        return f"cassini closed the reply pipe after {e.written} bytes"
    return None


class Result:
    """``problems``: the strict profile's findings (byte-exact); ``course``: the course
    script's verdict ("pass", "fail", "skip") and ``course_why`` its reason."""

    def __init__(self, case):
        self.case = case
        self.problems = []
        self.headlines = []         # one line per problem, with the decoded values
        self.stderr = b""
        self.duration = 0.0
        self.course = "skip"
        self.course_why = ""

    @property
    def ok(self):
        return not self.problems

    def headline(self):
        urgent = [h for h in self.headlines if "did not exit" in h or "signal" in h]
        return (urgent or self.headlines or [""])[0]

    def report(self):
        head = f"{'PASS' if self.ok else 'FAIL'} {self.case.name} [{self.case.tag}]"
        if self.ok:
            return head
        body = "\n".join(self.problems)
        err = self.stderr.decode("utf-8", "replace")
        return f"{head}\n{body}\n--- cassini stderr ---\n{err}"


_DEFAULT_PIPES_LOCK = threading.Lock()


def _default_pipes_dirs(root, user):
    """The directories of ``ROOT/USER/saturnd/pipes`` that do not exist yet (to remove)."""
    made = []
    for part in (user, b"saturnd", b"pipes"):
        root = os.path.join(root, part)
        if not os.path.exists(root):
            made.append(root)
    return made


def run_case(case, cassini=None, run_id=None, jail=None, exit_deadline=EXIT_DEADLINE,
             reader_delay=None):
    """Play one case against ``cassini`` (an argv list).

    ``jail``, when given, is a callable ``jail(tmp_dir, user) -> Jail`` whose result
    confines the client (see :mod:`grader.sandbox`): ``env(env)`` adjusts its
    environment, ``grant(path)`` gives it a directory made here, ``wrap(argv, env)``
    returns the command to start and its environment, ``note(status)`` explains an exit
    status, ``close()`` kills whatever is left; optionally ``private_tmp(on)`` gives the
    client a private /tmp and returns where it is seen from here (None: no private /tmp).

    The result holds both verdicts: ``problems`` (strict: byte-exact request, stdout and
    exit status) and ``course`` (the course script's rules, see :func:`course_verdict`).
    """
    cassini = cassini or default_cassini()
    play = _Play(case, run_id, jail)
    play.reader_delay = READER_POLICY.delay(cassini) if reader_delay is None else reader_delay
    if not play.place_pipes():
        return play.result
    try:
        play.start(cassini)
        play.serve()
        play.finish(exit_deadline)
    finally:
        play.close()
    READER_POLICY.record(cassini, play)
    return play.result


class _Play:
    """One case being played (:func:`run_case`): the client's environment and pipes, the
    fake daemon's side of the exchange, what the client did."""

    def __init__(self, case, run_id, jail):
        self.case = case
        self.result = Result(case)
        self.tmp = tmp = tempfile.mkdtemp(prefix="golden-")
        os.chmod(tmp, 0o755)
        user = f"golden-{run_id or os.getpid()}-{os.path.basename(tmp)[7:]}"
        self.cleanup = [tmp]
        self.grants = [tmp]
        self.lock = None
        self.req_fd = self.rep_fd = self.proc = None
        self.got = b""
        self.code = None
        self.reader_delay = READER_DELAY
        self.held = 0.0             # how long the client waited for our reader
        self.ended_before_reader = False
        env = {k: v for k, v in os.environb.items()
               if k != b"POSIXLY_CORRECT" and not k.startswith(b"CASSINI")}
        env[b"TZ"] = case.tz
        self.confined = confined = jail(tmp, user) if jail else None
        if confined is not None:
            env = confined.env(env)
        # {user}: the name the client runs under (the sandbox's passwd name, so that a client
        # taking it from getpwuid() and one reading $USER agree)
        login = getattr(confined, "login", None) or user
        for k, v in case.env.items():
            env[k] = v.replace(b"{user}", login.encode())
        self.env = env

    def place_pipes(self):
        """The pipes directory and the client's arguments; False (the result says why)
        when the case cannot run."""
        case, env, confined, result = self.case, self.env, self.confined, self.result
        if case.default_pipes:
            if not env.get(b"USER"):
                raise ValueError(f"{case.name}: default-pipes needs USER in env")
            top = None
            if confined is not None and hasattr(confined, "private_tmp"):
                top = confined.private_tmp(True)
            if top is None:
                # the shared /tmp: one such case at a time, and remove only what we made
                self.lock = _DEFAULT_PIPES_LOCK
                self.lock.acquire()
                top = "/tmp"
            top = os.fsencode(top)
            pipes = os.path.join(top, env[b"USER"], b"saturnd", b"pipes")
            made = _default_pipes_dirs(top, env[b"USER"])
            if not made:
                if self.lock is not None:
                    self.lock.release()
                shutil.rmtree(self.tmp, ignore_errors=True)
                result.course = "skip"
                result.course_why = f"{os.fsdecode(pipes)} exists already: case not run"
                result.problems.append(result.course_why)
                result.headlines.append(result.course_why)
                return False
            self.cleanup.append(os.fsdecode(made[0]))
            self.grants.append(os.fsdecode(made[0]))
        else:
            pipes = os.fsencode(os.path.join(self.tmp, "pipes"))
        args = [a.replace(b"{pipes}", pipes) for a in case.arguments]
        if not case.default_pipes and not any(b"{pipes}" in a for a in case.arguments):
            args = [b"-p", pipes] + args
        self.pipes, self.args = pipes, args
        self.req_path = os.path.join(pipes, os.fsencode(REQUEST_PIPE))
        self.rep_path = os.path.join(pipes, os.fsencode(REPLY_PIPE))
        self.start_time = time.monotonic()
        return True

    def start(self, cassini):
        """The pipes made, the request pipe opened (unless no daemon), the client started."""
        confined, env = self.confined, self.env
        os.makedirs(self.pipes, 0o700)
        os.mkfifo(self.req_path, 0o600)
        os.mkfifo(self.rep_path, 0o600)
        if confined is not None:
            for path in self.grants:
                confined.grant(path)
        self.out = tempfile.TemporaryFile(dir=self.tmp)
        self.err = tempfile.TemporaryFile(dir=self.tmp)
        argv = [os.fsencode(c) for c in cassini] + self.args
        launched = time.monotonic()
        if confined is not None and hasattr(confined, "launch"):
            # in the submission's container when there is one (grader.sandbox)
            self.proc = confined.launch(argv, env, stdout=self.out, stderr=self.err)
        else:
            if confined is not None:
                argv, env = confined.wrap(argv, env)
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self.out, stderr=self.err)
        # the client first, its daemon's reader after (as in the course's script)
        if not self.case.no_daemon:
            try:
                if self.reader_delay > 0:
                    self.proc.wait(timeout=self.reader_delay)
                    self.ended_before_reader = True
            except subprocess.TimeoutExpired:
                self.held = time.monotonic() - launched
            self.req_fd = fifo.open_reader(self.req_path)
            self.reader_opened = time.monotonic()

    def serve(self):
        """The fake daemon's side: read the request, compare it, write the reply."""
        case, result, proc = self.case, self.result, self.proc
        if self.req_fd is None:
            return
        got, how = _read_request(self.req_fd, proc, self.reader_opened + REQUEST_DEADLINE)
        self.got = got
        if got != case.request:
            result.problems.append(describe_mismatch(f"request ({how})", case.request, got))
            result.headlines.append(
                "sent no request" + (f" (expected {show(case.request)})" if case.request
                                     else "") + self.why_no_request() if not got else
                f"request ({how}): {show_difference(case.request, got)}")
        if not (case.request or got):
            return
        self.rep_fd = _open_reply(self.rep_path, proc, time.monotonic() + REPLY_OPEN_DEADLINE)
        if self.rep_fd is None:
            if case.request == got:
                result.problems.append("cassini never opened the reply pipe")
                result.headlines.append("cassini never opened the reply pipe")
            return
        os.set_blocking(self.rep_fd, False)
        problem = _write_reply(self.rep_fd, case.reply, proc, time.monotonic() + EXIT_DEADLINE)
        if problem and case.request == got:
            result.problems.append(problem)
            result.headlines.append(problem)
        if not case.keep_open:
            os.close(self.rep_fd)
            self.rep_fd = None

    def why_no_request(self):
        """Why a client sent nothing, when the kit can tell: it ended before the fake
        daemon's reader was there (a non-blocking open of the request pipe, ENXIO)."""
        if not self.ended_before_reader:
            return ""
        self.result.stderr = self.result.stderr or self._stderr_so_far()
        ended = (f": it ended before the daemon's end of the request pipe was open (the kit "
                 f"opens it {self.reader_delay:g} s after starting the client, as the course's "
                 f"script may)")
        if not any(t in self.result.stderr for t in ENXIO_TEXT):
            return ended
        return (f"{ended} and said ENXIO -- a client must wait for the daemon (open the "
                f"request pipe O_WRONLY without O_NONBLOCK, or retry); with O_NONBLOCK the "
                f"open fails (ENXIO) when no reader is there yet")

    def _stderr_so_far(self):
        try:
            self.err.seek(0)
            return self.err.read()
        except (OSError, ValueError):
            return b""

    def finish(self, exit_deadline):
        """The client's exit, stdout and status compared; both verdicts."""
        case, result, proc, confined = self.case, self.result, self.proc, self.confined
        try:
            code = proc.wait(timeout=max(0.1, self.start_time + exit_deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            msg = f"cassini did not exit within {exit_deadline:g} s (killed)"
            result.problems.append(msg)
            result.headlines.append(msg)
            code = None
        self.code = code
        result.duration = time.monotonic() - self.start_time
        self.out.seek(0)
        stdout = self.out.read()
        self.err.seek(0)
        result.stderr = self.err.read()
        if stdout != case.stdout:
            result.problems.append(describe_mismatch("stdout", case.stdout, stdout))
            result.headlines.append(f"stdout: {show_difference(case.stdout, stdout)}")
        note = confined.note(code) if confined is not None and code is not None else ""
        if code is not None and code != case.exitcode:
            msg = f"exit status: expected {case.exitcode}, got {code}{note}"
            result.problems.append(msg)
            result.headlines.append(msg)
        elif note and result.problems:
            result.problems.append(note.strip(" ()"))
        if not case.request and not self.got and case.exitcode and code == case.exitcode \
                and stdout == case.stdout and not result.stderr.strip():
            # a rejected command line must be explained: else /bin/false passes
            msg = "rejected the command line without a word (expected an error message " \
                  "on stderr)"
            result.problems.append(msg)
            result.headlines.append(msg)
        ran = confined.elapsed() if confined is not None and hasattr(confined, "elapsed") \
            else None
        took = result.duration if ran is None else ran
        # the time it waited for our reader is ours, not the client's
        result.course, result.course_why = course_verdict(
            case, self.got, stdout, code, max(0.0, took - self.held))

    def close(self):
        """Whatever is left killed, closed, removed; the default-pipes lock released."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if self.confined is not None:
            self.confined.close()
        for fd in (self.req_fd, self.rep_fd):
            if fd is not None:
                os.close(fd)
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)
        if self.lock is not None:
            self.lock.release()


# Shipped cases a client right by the protocol may fail under the course's own rules or
# reference: they count under `strict` only (`skip` under `course`, with this reason).
STRICT_ONLY = {
    "007-list-empty-fields": "strict only: the course's reference (its "
                             "timing_string_from_field) leaves an all-zero field "
                             "unterminated, so the course cannot fix this output",
    "150-empty-reply": "strict only: the protocol has no empty reply (a daemon never sends "
                       "one), so the course script has no such case",
}


def course_graded(case):
    """Would the course script grade this case at all?"""
    return case.tag == "reference" and bool(case.request) and not case.no_daemon \
        and case.name not in STRICT_ONLY


def course_verdict(case, request, stdout, code, duration):
    """The course script's verdict on one case (its rules, in its order):

    1. only cases that send a request are course cases (``skip`` otherwise), and only
       those of the ``reference`` tag (``strict``, ``extension``, ... go beyond);
    2. the client must end within 3 s;
    3. it must send a request ("sent no request" fails), equal byte for byte;
    4. its exit status must equal the expected one;
    5. only when that status is 0, stdout is compared after :func:`course_normalise`
       on both sides.
    """
    if case.tag != "reference":
        return "skip", f"tag {case.tag}: beyond what the course's reference fixes"
    if case.name in STRICT_ONLY:
        return "skip", STRICT_ONLY[case.name]
    if not course_graded(case):
        return "skip", "no request to send: the course script grades no such case"
    if code is None or duration > COURSE_TIMEOUT:
        took = "killed" if code is None else f"took {duration:.1f} s"
        return "fail", f"did not end within the course's {COURSE_TIMEOUT:g} s ({took})"
    if not request:
        return "fail", "sent no request"
    if request != case.request:
        return "fail", f"request: {show_difference(case.request, request)}"
    if code != case.exitcode:
        return "fail", f"exit status: expected {case.exitcode}, got {code}"
    if code == 0:
        want, have = course_normalise(case.stdout), course_normalise(stdout)
        if want != have:
            w = b"\n".join(want) + b"\n" if want else b""
            h = b"\n".join(have) + b"\n" if have else b""
            return "fail", f"stdout (normalised): {show_difference(w, h)}"
    return "pass", ""


# --- JUnit -------------------------------------------------------------------------
def write_junit(path, results):
    """The golden runner's JUnit report, written by the grader's writer
    (:func:`grader.report.write_junit`): one suite per tag, class names ``golden.TAG``."""
    from .report import Outcome, write_junit as write
    write(path, [Outcome(r.case.tag, r.case.name, "pass" if r.ok else "fail",
                         "" if r.ok else "mismatch", "" if r.ok else r.report(), r.duration)
                 for r in results], name="golden", prefix="golden.")



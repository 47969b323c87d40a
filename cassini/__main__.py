"""cassini: the saturnd client (the C project's ``cassini.c``).

Options are read exactly as the reference reads them (glibc ``getopt``,
see :mod:`cassini.gnugetopt`), one at a time and in order: ``-h`` prints the
usage text and exits at once, a bad TASKID or an unknown option stops at once;
the last operation wins; timing text is parsed only for the operation that
uses it.  Then one request goes out and one reply comes back
(:mod:`cassini.client`), printed by :mod:`cassini.render`.

Environment: ``CASSINI_TIMEOUT`` (seconds to wait for saturnd to open the
request pipe, default 5), ``CASSINI_REPLY_TIMEOUT`` (seconds without progress
while waiting for or reading the reply, default 10), ``CASSINI_LOCK_TIMEOUT``
(seconds to wait for a proper ``cassini-lock``: another cassini to finish, or
saturnd to put a removed lock file back; default 30) -- plain decimal seconds
only, ``POSIXLY_CORRECT`` (stop option parsing at the first operand), ``USER`` (the
default pipes directory), ``TZ`` (the times of ``-x``).

Kept lean on purpose: ``cassini -l`` must start about as fast as Python.
"""

import os
import sys

from saturnd import protocol as P

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Mapping

USAGE = b"""\
   usage: cassini [OPTIONS] -l -> list all tasks
      or: cassini [OPTIONS]    -> same
      or: cassini [OPTIONS] -q -> terminate the daemon
      or: cassini [OPTIONS] -c [-m MINUTES] [-H HOURS] [-d DAYSOFWEEK] COMMAND_NAME [ARG_1] ... [ARG_N]
          -> add a new task and print its TASKID
             format & semantics of the "timing" fields defined here:
             https://pubs.opengroup.org/onlinepubs/9699919799/utilities/crontab.html
             default value for each field is "*"
      or: cassini [OPTIONS] -r TASKID -> remove a task
      or: cassini [OPTIONS] -x TASKID -> get info (time + exit code) on all the past runs of a task
      or: cassini [OPTIONS] -o TASKID -> get the standard output of the last run of a task
      or: cassini [OPTIONS] -e TASKID -> get the standard error
      or: cassini [OPTIONS] -s -> remove every task and print how many were removed
      or: cassini [OPTIONS] -t TASKID [-m MINUTES] [-H HOURS] [-d DAYSOFWEEK] -> give a task a new timing
      or: cassini [OPTIONS] -z TASKID COMMAND_NAME [ARG_1] ... [ARG_N] -> give a task a new command line
      or: cassini [OPTIONS] -i TASKID -> run a task once, now
      or: cassini [OPTIONS] -w -> let the next new task take the id after the highest existing one, and print it
      or: cassini [OPTIONS] -R TASKID -> forget the past runs and the last outputs of a task
      or: cassini [OPTIONS] -C TASKID -> copy a task (same timing and command line) and print the new TASKID
      or: cassini [OPTIONS] -E TASKID -> get the error log (time + message) of a task
      or: cassini [OPTIONS] -D -> get the daemon's error log (time + message)
      or: cassini [OPTIONS] -n TASKID [-N COUNT] -> print the next COUNT start times of a task (default 5)
      or: cassini [OPTIONS] -I FILE [-P] -> create one task per line of a crontab FILE ("-": stdin); nothing unless every line is accepted, or with -P the accepted ones
      or: cassini [OPTIONS] -X -> print every task as a crontab line
      or: cassini [OPTIONS] -Z TASKID -> pause a task (kept, not run until resumed)
      or: cassini [OPTIONS] -U TASKID -> resume a paused task
      or: cassini [OPTIONS] -Y TASKID [-K COUNT | -F RUN] -> print the kept runs of a task with their outputs (the last COUNT, or run number RUN)
      or: cassini [OPTIONS] -S -> print the daemon's status
      or: cassini -V -> print cassini's version (also --version)
      or: cassini [OPTIONS] -L -> list all tasks with every field (day of month, month, @reboot, catch-up, environment, zone)
          with -c or -t: -j DAYSOFMONTH, -M MONTHS (1-12 or jan-dec), -a (catch up a run missed while saturnd was stopped),
          -y NAME=VALUE (environment of the command, repeatable; CRON_TZ=ZONE: the time zone of its timing),
          -B (run once each time saturnd starts, instead of -m -H -d -j -M)
      or: cassini -h -> display this message

   options:
     -p PIPES_DIR -> look for the pipes in PIPES_DIR (default: /tmp/<USERNAME>/saturnd/pipes)
"""

OPTSTRING = "hlcqm:H:d:p:r:x:o:e:st:z:i:w"
OPTSTRING += "R:C:E:D"      # this project's own requests (reset history, clone, error log)
OPTSTRING += "n:N:I:PX"     # ... next runs, crontab import/export
OPTSTRING += "Z:U:Y:K:F:SV"  # ... pause, resume, run history, status, version
OPTSTRING += "Lj:M:ay:B"    # ... long listing; day of month, month, catch-up, environment, @reboot

# option letter -> the operation it selects; what the request then carries is the table's
# (saturnd/protocol.py, OPERATIONS): an option with an argument gives the TASKID
OPERATION_OPTIONS = {
    "l": P.LIST, "c": P.CREATE, "q": P.TERMINATE, "s": P.DELETE_ALL, "w": P.RESET_TASKMAX,
    "r": P.REMOVE, "x": P.TIMES_EXITCODES, "o": P.STDOUT, "e": P.STDERR,
    "t": P.SW_TIME, "z": P.SET_CMD, "i": P.EXEC_TASK,
    # this project's own requests: -D is the daemon-wide error log (no TASKID)
    "R": P.RESET_HISTORY, "C": P.CLONE, "E": P.ERROR_LOG, "D": P.ERROR_LOG, "n": P.NEXT_RUNS,
    "Z": P.PAUSE, "U": P.RESUME, "Y": P.HISTORY, "S": P.STATUS,
    "L": P.LONG_LIST,
}
VERSION = "version"          # -V, --version: no request
# -c / -t with cron options (-j -M -a -y -B) send this project's own request instead
CRON_OPERATIONS = {P.CREATE: P.CREATE_CRON, P.SW_TIME: P.SET_CRON}

# this project's own operations without a request: crontab import/export (cassini.crontab)
IMPORT = "import"
EXPORT = "export"
DEFAULT_COUNT = 5

_ULLONG_MAX = (1 << 64) - 1
_C_SPACE = b" \t\n\v\f\r"


# Destructive operations are never chosen by permutation: an option met after an operand
# (glibc's getopt moves the operands behind the options) that would replace the operation
# already chosen by a destructive one is refused (``cassini -c backup.sh -s``: the ``-s``
# was meant for backup.sh); with ``--`` before the command nothing is permuted
DESTRUCTIVE_OPTIONS = {"s": "remove every task", "w": "reset the next task id",
                       "R": "forget a task's runs", "q": "terminate the daemon",
                       "r": "remove a task"}
COMMAND_OPTIONS = ("c", "z")     # the operations whose operands are a command line


def dashdash_hint(chosen):
    """How to give the command of ``-c``/``-z`` options of its own."""
    where = "-c" if chosen == "c" else "-z TASKID"
    return f"put -- before the command to pass it its own options: cassini {where} -- COMMAND ARG..."


def check_permuted(opt, chosen, operands):
    """Refuse (:class:`Failure`, one line, nothing sent) the destructive ``-opt`` met after
    the operand ``operands[0]`` while ``-chosen`` was the operation."""
    if opt in DESTRUCTIVE_OPTIONS and chosen is not None and chosen != opt and operands:
        raise Failure(f"refusing -{opt} ({DESTRUCTIVE_OPTIONS[opt]}): it comes after "
                      f"-{chosen} and the operand {os.fsdecode(operands[0])!r}; "
                      + (dashdash_hint(chosen) if chosen in COMMAND_OPTIONS
                         else f"give -{opt} on its own"))


class UsageError(Exception):
    """A bad command line: print the message (if any) and the usage text on stderr, exit 1."""


class Failure(Exception):
    """Any other failure: one line on stderr, exit 1."""


def parse_taskid(text, after=None):
    """``strtoull(text, &end, 10)`` that must use the whole argument (bytes in, int out).
    ``after``: the operation option given before this one (a hint follows -c and -z)."""
    s = text.lstrip(_C_SPACE)
    negative = False
    if s[:1] in (b"+", b"-"):
        negative = s[:1] == b"-"
        s = s[1:]
    if not s or not s.isdigit():
        # no digit at all, or characters left over after the digits
        hint = f" ({dashdash_hint(after)})" if after in COMMAND_OPTIONS else ""
        raise UsageError(f"invalid TASKID {os.fsdecode(text)!r}{hint}")
    value = int(s)
    if value > _ULLONG_MAX:
        return _ULLONG_MAX            # ERANGE: saturates, whatever the sign
    if negative:
        value = -value & _ULLONG_MAX
    return value


def parse_count(text):
    """``-N COUNT``: a decimal uint32."""
    if not text or not text.isdigit() or not text.isascii() or int(text) > 0xFFFFFFFF:
        raise UsageError(f"invalid COUNT {os.fsdecode(text)!r}: expected 0 to 4294967295")
    return int(text)


def _plain_list(args: "list[bytes]") -> "Command | None":
    """The usual command lines of ``cassini -l`` (nothing, ``-l``, ``-p DIR`` with or
    without ``-l`` before or after it) -> their :class:`Command`, without loading the
    option scanner (getopt gives the same); None for any other."""
    cmd = Command()
    if len(args) >= 2 and args[0] == b"-p":
        cmd.pipes_dir = args[1]
        rest = args[2:]
    elif len(args) == 3 and args[0] == b"-l" and args[1] == b"-p":
        cmd.pipes_dir = args[2]
        rest = []
    else:
        rest = args
    return cmd if rest in ([], [b"-l"]) else None


def parse_command_line(args, environ):
    """``args`` (bytes, without the program name) -> a :class:`Command`, or exit for -h."""
    plain = _plain_list(args)
    if plain is not None:
        return plain
    from cassini.gnugetopt import GetoptState, getopt

    cmd = Command()
    state = GetoptState()
    posixly = b"POSIXLY_CORRECT" in environ
    chosen = None                   # the operation option given last, if any
    for opt, arg in getopt(args, OPTSTRING, state, posixly_correct=posixly):
        if opt == "?":
            raise UsageError(arg)
        if opt == "h":
            return None
        if opt in OPERATION_OPTIONS:
            check_permuted(opt, chosen, state.operands)
            cmd.opcode = OPERATION_OPTIONS[opt]
            if arg is not None:
                cmd.taskid = parse_taskid(arg, chosen)
            elif _takes_taskid(cmd.opcode):     # -D: the daemon-wide error log
                cmd.taskid = None
        elif opt == "m":
            cmd.minutes = arg or b""        # never None: -m takes an argument
            cmd.timing_given = True
            cmd.fields |= P.FIELD_MINUTES
        elif opt == "H":
            cmd.hours = arg or b""        # never None: -H takes an argument
            cmd.timing_given = True
            cmd.fields |= P.FIELD_HOURS
        elif opt == "d":
            cmd.days = arg or b""        # never None: -d takes an argument
            cmd.timing_given = True
            cmd.fields |= P.FIELD_DAYS
        elif opt == "K":
            cmd.history_count = parse_count(arg)
        elif opt == "F":
            cmd.run = parse_taskid(arg)
        elif opt == "V":
            cmd.opcode = VERSION
        elif opt == "p":
            cmd.pipes_dir = arg
        elif opt == "N":
            cmd.count = parse_count(arg)
        elif opt == "I":
            check_permuted(opt, chosen, state.operands)
            cmd.opcode = IMPORT
            cmd.import_file = arg
        elif opt == "X":
            cmd.opcode = EXPORT
        elif opt == "P":
            cmd.partial = True
        if opt in OPERATION_OPTIONS or opt in ("I", "X"):
            chosen = opt
        elif opt in "jMayB":
            cmd.cron_option(opt, arg)
    cmd.operands = state.operands
    if cmd.cron_given and cmd.opcode in CRON_OPERATIONS:
        cmd.opcode = CRON_OPERATIONS[cmd.opcode]
    if cmd.opcode == P.SW_TIME and cmd.fields != P.FIELDS_ALL:
        cmd.opcode = P.SET_FIELDS       # -t changes only the fields given
    elif cmd.opcode == P.HISTORY:
        cmd.count = cmd.history_count
    return cmd


class Command:
    """What the command line asks for."""

    __slots__ = ("opcode", "taskid", "minutes", "hours", "days", "pipes_dir", "operands",
                 "count", "import_file", "partial", "fields", "history_count", "run",
                 "cron_given", "mdays", "months", "catchup", "env", "reboot", "timing_given")

    def __init__(self):
        self.opcode: int | str = P.LIST    # or VERSION, IMPORT, EXPORT (no request)
        self.taskid: int | None = None
        self.minutes = b"*"
        self.hours = b"*"
        self.days = b"*"
        self.pipes_dir = None
        self.operands = []
        self.count = DEFAULT_COUNT      # -N
        self.import_file = None         # -I
        self.partial = False            # -P
        self.fields = 0                 # the timing fields given (-m -H -d: P.FIELD_*)
        self.history_count = 0          # -K (0: every kept run)
        self.run = 0                    # -F (0: none)
        self.cron_given = False         # any of -j -M -a -y -B
        self.mdays = None               # -j
        self.months = None              # -M
        self.catchup = False            # -a
        self.env = None                 # -y (a list of NAME=VALUE)
        self.reboot = False             # -B
        self.timing_given = False       # -m -H -d

    def cron_option(self, opt, arg):
        self.cron_given = True
        if opt == "j":
            self.mdays = arg
        elif opt == "M":
            self.months = arg
        elif opt == "a":
            self.catchup = True
        elif opt == "y":
            if b"=" not in arg or arg.startswith(b"="):
                raise UsageError(f"-y needs NAME=VALUE, not {os.fsdecode(arg)!r}")
            self.env = (self.env or []) + [arg]
        elif opt == "B":
            self.reboot = True

    def attrs(self):
        """The cron attributes of -j -M -a -y -B (CREATE_CRON, SET_CRON)."""
        from saturnd.timing import (CronSpec, TimingError, mdays_from_string,
                                    months_from_string)
        attrs = []
        try:
            for text, key, parse in ((self.mdays, b"mdays", mdays_from_string),
                                     (self.months, b"months", months_from_string)):
                if text is not None:
                    parse(text.decode("latin-1"))
                    attrs.append((key, text))
            if self.reboot:
                if self.timing_given or self.mdays is not None or self.months is not None:
                    raise UsageError("-B (at each start of saturnd) takes no -m -H -d -j -M")
                attrs.append((b"reboot", b"1"))
            if self.catchup:
                attrs.append((b"catchup", b"1"))
            for setting in self.env or ():
                name, _, value = setting.partition(b"=")
                if name == b"CRON_TZ":
                    attrs.append((b"tz", value))
                elif name == b"SATURND_CATCHUP":        # as in a crontab; =0 turns -a off
                    attrs.append((b"catchup", value))
                else:
                    attrs.append((b"env", setting))
            CronSpec.from_attributes(attrs)
        except TimingError as e:
            raise UsageError(f"bad cron field: {e}") from None
        if self.opcode == P.SET_CRON and self.fields != P.FIELDS_ALL and not self.reboot:
            # -t changes only the fields given: the daemon keeps the others (SET_FIELDS)
            attrs.append((P.ATTR_FIELDS, b"%d" % self.fields))
        return attrs

    def timing(self):
        from saturnd.timing import TimingError, timing_from_strings
        if self.reboot:
            return P.Timing(0, 0, 0)     # never by the clock: only at each start
        try:
            bits = timing_from_strings(self.minutes.decode("latin-1"),
                                       self.hours.decode("latin-1"),
                                       self.days.decode("latin-1"))
        except TimingError as e:
            raise UsageError(f"bad timing: {e}") from None
        return P.Timing(*bits)

    def argv(self):
        if not self.operands:
            raise UsageError("missing COMMAND_NAME")
        if not self.operands[0]:
            raise UsageError("COMMAND_NAME is empty")
        return tuple(self.operands)

    def scope(self):
        """ERROR_LOG's SCOPE: -E TASKID, one task's log; -D, the daemon's."""
        return P.ERROR_LOG_DAEMON if self.taskid is None else P.ERROR_LOG_TASK

    def request(self):
        """The request bytes (raises UsageError before anything is sent): the operation's
        argument fields (the table of operations), taken from the command line in order."""
        opcode = self.opcode
        if isinstance(opcode, str):     # VERSION, IMPORT, EXPORT: no request of their own
            raise Failure(f"no request for {opcode}")
        req = P.Request(opcode)
        for field in P.operation(opcode).args:
            setattr(req, field.attr, _ARGUMENTS[field](self))
        return P.encode_request(req)


# argument field of a request -> its value on the command line
_ARGUMENTS = {
    P.ARG_TASKID: lambda cmd: cmd.taskid,
    P.ARG_TIMING: Command.timing,               # -m -H -d
    P.ARG_COMMANDLINE: Command.argv,            # the operands
    P.ARG_COUNT: lambda cmd: cmd.count,         # -N
    P.ARG_SCOPE: Command.scope,
    P.ARG_SCOPED_TASKID: lambda cmd: cmd.taskid,
    P.ARG_FIELDS: lambda cmd: cmd.fields,       # SET_FIELDS: -t with fields left out
    P.ARG_RUN: lambda cmd: cmd.run,             # -F
    P.ARG_ATTRS: Command.attrs,                 # -j -M -a -y -B
}


def _takes_taskid(opcode):
    return any(field.attr == "taskid" for field in P.OPERATIONS[opcode].args)


def _env_seconds(environ, name, default):
    raw = environ.get(name.encode())
    if raw is None:
        return default
    # plain decimal only (``5``, ``0.5``, ``.5``, ``2.``): no sign, exponent, ``_``,
    # blanks, nan or inf, which float() would take
    whole, _, frac = raw.partition(b".")
    value = -1.0
    if (whole or frac) and (not whole or whole.isdigit()) and (not frac or frac.isdigit()):
        value = float(raw)
    if not (0 <= value <= 86400):
        raise Failure(f"bad {name} value {os.fsdecode(raw)!r}: expected a number of "
                      "seconds between 0 and 86400 (digits, an optional decimal point)")
    return value


def _write_stdout(data):
    """Write all of ``data`` on fd 1 (unbuffered: a closed reader raises BrokenPipeError)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(1, view):]
        except BlockingIOError:              # a non-blocking stdout: wait until writable
            import select
            select.select([], [1], [])
        except BrokenPipeError:
            raise
        except OSError as e:                 # /dev/full, a full disk, a closed fd...
            raise Failure(f"cannot write the output to standard output: "
                          f"{e.strerror or e}") from None


def _err(message):
    sys.stderr.buffer.write(b"cassini: " + message.encode("utf-8", "surrogateescape") + b"\n")
    sys.stderr.flush()


def run(args: "list[bytes]", environ: "Mapping[bytes, bytes]") -> int:
    """The whole program; returns the exit status."""
    try:
        if b"--version" in args[:args.index(b"--") if b"--" in args else len(args)]:
            args = [b"-V"]                    # the one long option (getopt knows none)
        cmd = parse_command_line(args, environ)
        if cmd is None:                       # -h
            try:
                _write_stdout(USAGE)
            except Failure as e:
                _err(str(e))
                return 1
            return 0
        if cmd.opcode == VERSION:
            from saturnd import __version__
            _write_stdout(b"cassini %s\n" % __version__.encode())
            return 0
        if cmd.opcode in (IMPORT, EXPORT):
            return _crontab(cmd, environ)
        request = cmd.request()
    except Failure as e:                      # refused before anything is sent
        _err(str(e))
        return 1
    except UsageError as e:
        message = e.args[0] if e.args else None
        if isinstance(message, bytes):        # glibc's own diagnostic, already prefixed
            sys.stderr.buffer.write(message + b"\n")
        elif message:
            sys.stderr.buffer.write(b"cassini: " + message.encode("utf-8", "surrogateescape")
                                    + b"\n")
        sys.stderr.buffer.write(USAGE)
        sys.stderr.flush()
        return 1

    from cassini import client
    from cassini import render
    try:
        # LIST's payload is read straight into its printed text (render.read_list_output)
        reply = _talker(cmd, environ, client)(
            request, cmd.opcode, render.read_list_output if cmd.opcode == P.LIST else None)
        if reply.errcode == P.PS and cmd.opcode == P.NEXT_RUNS:     # -n of a paused task
            _write_stdout(b"task %d is paused: no run until cassini -U %d\n"
                          % (cmd.taskid, cmd.taskid))
            return 0
        if not reply.ok:
            raise Failure(render.error_message(
                cmd.opcode, (cmd.taskid, cmd.run) if cmd.opcode == P.HISTORY else cmd.taskid,
                reply.errcode))
        data = render.stdout_bytes(cmd.opcode, reply)
        _write_stdout(data)
    except (Failure, client.ClientError, ValueError) as e:
        _err(str(e))
        return 1
    return 0


def _talker(cmd, environ, client):
    """``talk(request bytes, opcode) -> Reply`` with the pipes directory and the waits of
    ``cmd`` and the environment (ValueError on a bad CASSINI_* value, ClientError)."""
    timeout = _env_seconds(environ, "CASSINI_TIMEOUT", 5.0)
    reply_timeout = _env_seconds(environ, "CASSINI_REPLY_TIMEOUT", 10.0)
    lock_timeout = _env_seconds(environ, "CASSINI_LOCK_TIMEOUT", 30.0)
    pipes_dir = cmd.pipes_dir if cmd.pipes_dir is not None else client.default_pipes_dir()

    def talk(request, opcode, read_payload=None):
        return client.exchange(pipes_dir, request, opcode, timeout, reply_timeout,
                               lock_timeout, read_payload=read_payload,
                               big_reply=opcode == P.LIST)
    return talk


def _crontab(cmd, environ):
    """``-I`` / ``-X``: the crontab import/export (kept out of the plain requests' imports)."""
    from cassini import client, crontab

    try:
        exchange = _talker(cmd, environ, client)

        def talk(request, opcode):
            try:
                return exchange(request, opcode)
            except client.ClientError as e:
                raise ValueError(str(e)) from None

        if cmd.opcode == IMPORT:
            return crontab.import_crontab(cmd.import_file, cmd.partial, talk, _write_stdout,
                                          _err)
        return crontab.export_crontab(talk, _write_stdout, _err)
    except (Failure, ValueError) as e:
        _err(str(e))
        return 1


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    args = [a if isinstance(a, bytes) else os.fsencode(a) for a in argv]
    try:
        status = run(args, os.environb)
    except KeyboardInterrupt:
        exit_now(130)
    except BrokenPipeError:
        exit_now(141)
    except Exception as e:                    # never a traceback
        try:
            _err(f"internal error: {type(e).__name__}: {e}")
        except Exception:
            pass
        exit_now(1)
    return status


def exit_now(status):
    """End the process at once with ``status``.

    Everything cassini prints is already written (stdout unbuffered, stderr
    flushed here), so the interpreter's teardown is skipped: it would only
    free memory, and it costs several ms after a large LIST.  It also never
    flushes a broken stdout on the way out.
    """
    try:
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(status)


if __name__ == "__main__":
    exit_now(main())

"""crontab import (``cassini -I FILE``) and export (``cassini -X``).

Imported only for those two options, so that the plain requests start as fast as before.
The rules in full: docs/own-requests.md, "crontab import and export".

Import (:class:`Reader`, one line at a time, as cron reads a user's crontab): blank lines
and comments are skipped; a CR before the newline is dropped; ``NAME=value`` lines apply
to the lines after them (each task gets them as environment settings; ``SHELL`` is also the
shell its command runs with; ``CRON_TZ`` gives their zone and ``SATURND_CATCHUP=1`` their
catch-up, neither being a setting); ``MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK COMMAND`` and
the ``@`` words (``@reboot``, ``@hourly``, ``@daily``, ``@midnight``, ``@weekly``,
``@monthly``, ``@yearly``, ``@annually``) make a task whose command line is ``SHELL -c
COMMAND``, COMMAND with cron's ``%`` rule (``\\%`` is a literal ``%``; an unescaped ``%``,
cron's standard input, is refused).  Refused with the line number and why: a bad field,
four time fields, no command, a NUL byte, a command over the 1 MiB request limit, a system
crontab's user field.  A task that needs more than CREATE carries is made by CREATE_CRON.

By default nothing is created unless every line is accepted (all or nothing: nothing is
sent at all); ``-P`` creates the accepted lines all the same.  Every refused line is
reported on stderr (``cassini: FILE:LINE: refused: WHY``) and makes the exit status 1.
Each created task's id is printed on stdout, one per line, in the order of the file.

Export (:class:`Writer`): every task (LONG_LIST; LIST from a daemon without it), in id
order, preceded by the environment lines it needs, as ``MIN HOUR DOM MONTH DOW COMMAND`` or
``@reboot COMMAND``.  The COMMAND is TEXT for a ``SHELL -c TEXT`` task, else ``exec`` and the
shell-quoted arguments (``''-name`` for a program name starting with ``-``), every ``%``
written ``\\%``.  A task no crontab line can express is written as a comment line ``# task
ID not exported: WHY``, reported on stderr, and makes the exit status 1.
"""

import re

from saturnd import protocol as P
from saturnd.timing import (ALL_MDAYS, ALL_MONTHS, DAYS_RANGE, HOURS_RANGE, MINUTES_RANGE,
                            PLAIN, CronSpec, TimingError, check_zone, field_from_string,
                            field_to_string, mdays_from_string, mdays_to_string,
                            months_from_string, months_to_string)

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only: nothing more to import at start-up
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    Talk = Callable[[bytes, int], P.Reply]      # sends a request, returns the reply
    Write = Callable[[bytes], object]
    Say = Callable[[str], object]

SHELL = b"/bin/sh"
SPECIALS = {
    b"@hourly": (b"0", b"*", b"*", b"*", b"*"),
    b"@daily": (b"0", b"0", b"*", b"*", b"*"),
    b"@midnight": (b"0", b"0", b"*", b"*", b"*"),
    b"@weekly": (b"0", b"0", b"*", b"*", b"0"),
    b"@monthly": (b"0", b"0", b"1", b"*", b"*"),
    b"@yearly": (b"0", b"0", b"1", b"1", b"*"),
    b"@annually": (b"0", b"0", b"1", b"1", b"*"),
}
REBOOT = b"@reboot"
CATCHUP_VAR = b"SATURND_CATCHUP"    # SATURND_CATCHUP=1: the lines after it catch up (see doc)
TZ_VAR = b"CRON_TZ"
MAX_COMMAND = P.MAX_REQUEST - 64

_BLANK = b" \t"
_ENV_LINE = re.compile(rb"""[ \t]*("[^"]*"|'[^']*'|[^ \t=]+)[ \t]*=(.*)\Z""", re.S)
_FIELDS = re.compile(rb"[ \t]*([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)"
                     rb"[ \t]+([^ \t]+)(?:[ \t]+(.*))?\Z", re.S)
_SPECIAL = re.compile(rb"[ \t]*(@[^ \t]*)(?:[ \t]+(.*))?\Z", re.S)
_SAFE = re.compile(rb"[A-Za-z0-9_@+=:,./-]+\Z")
_ENV_NAME_SAFE = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*\Z")


class Refused(ValueError):
    """A crontab line this scheduler cannot express (the message says why)."""


class NotExpressible(ValueError):
    """Shell text that no crontab command yields (see :func:`cron_escape`)."""


# --- cron's % handling --------------------------------------------------------------
def cron_unescape(command: bytes) -> bytes:
    """The shell text cron runs for COMMAND: ``\\%`` becomes ``%``; every other backslash
    is kept with the character after it; an unescaped ``%`` is refused."""
    out = bytearray()
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if c == 0x5C:                                   # backslash: a pair with the next
            if i + 1 < n and command[i + 1] == 0x25:
                out.append(0x25)
            else:
                out += command[i:i + 2]
            i += 2
            continue
        if c == 0x25:
            raise Refused("'%' in the command (cron would make the rest of the line the "
                          "command's standard input); write \\% for a literal %")
        out.append(c)
        i += 1
    return bytes(out)


def cron_escape(text: bytes) -> bytes:
    """A COMMAND for which :func:`cron_unescape` gives ``text`` back: every ``%`` written
    ``\\%``.  Impossible when an odd run of backslashes comes right before a ``%``."""
    for match in re.finditer(rb"(\\*)%", text):
        if len(match.group(1)) % 2:
            raise NotExpressible("a backslash right before a '%'")
    return text.replace(b"%", b"\\%")


# --- import ---------------------------------------------------------------------------
def _field(text: bytes, what: str, lo_hi: tuple[int, int], days: bool = False) -> int:
    try:
        return field_from_string(text.decode("latin-1"), *lo_hi, days=days)
    except TimingError as e:
        raise Refused(f"bad {what} field {text.decode('latin-1')!r}: {e}") from None


def _parse_with(parse: "Callable[[str], int]", text: bytes, what: str) -> int:
    try:
        return parse(text.decode("latin-1"))
    except TimingError as e:
        raise Refused(f"bad {what} field {text.decode('latin-1')!r}: {e}") from None


def _unquote(text: bytes) -> bytes:
    """cron's rule for a NAME or a VALUE: blanks around it go, then one pair of matching
    quotes (single or double) around the whole of it."""
    text = text.strip(_BLANK)
    if len(text) >= 2 and text[:1] in (b"'", b'"') and text[-1:] == text[:1]:
        return text[1:-1]
    return text


def _is_user(word: bytes) -> bool:
    """Is ``word`` a user name of this machine (a system crontab's sixth field)?"""
    import pwd
    try:
        pwd.getpwnam(word.decode("latin-1"))
        return True
    except (KeyError, UnicodeDecodeError, ValueError):
        return False


def sendmail_path() -> str | None:
    """The machine's sendmail (what the daemon mails MAILTO output with), or None."""
    from saturnd.cronrun import sendmail_path as path
    return path()


class Reader:
    """Reads a crontab line by line, as cron does: environment lines (``NAME=value``)
    apply to the lines after them.  :meth:`line` returns None (blank, comment, environment
    line) or ``(Timing, argv, CronSpec)``; raises :class:`Refused`.  ``system``: the file
    is a system crontab (``/etc/crontab``, ``/etc/cron.d/*``), whose lines have a user
    field: refused with a hint."""

    def __init__(self, system: bool = False) -> None:
        self.env: dict[bytes, bytes] = {}   # NAME -> value, in the order first set
        self.tz: str | None = None
        self.catchup = False
        self.system = system

    def environment(self, name: bytes, value: bytes) -> None:
        if name == TZ_VAR:
            if value:
                try:
                    check_zone(value.decode("ascii"))
                except (TimingError, UnicodeDecodeError):
                    raise Refused(f"CRON_TZ: unknown time zone {value.decode('latin-1')!r}") \
                        from None
                self.tz = value.decode("ascii")
            else:
                self.tz = None          # CRON_TZ= : the daemon's own zone again
        elif name == CATCHUP_VAR:
            if value not in (b"0", b"1"):
                raise Refused(f"{CATCHUP_VAR.decode()} must be 0 or 1")
            self.catchup = value == b"1"
        else:
            self.env[name] = value

    def line(self, line: bytes) -> "tuple[P.Timing, tuple[bytes, ...], CronSpec] | None":
        if line.endswith(b"\r"):               # CRLF line ends
            line = line.rstrip(b"\r")
        body = line.lstrip(_BLANK)
        if not body or body.startswith(b"#"):
            return None
        if b"\0" in line:
            raise Refused("NUL byte in the line")
        env = _ENV_LINE.match(line)
        if body.startswith(b"="):
            raise Refused("environment setting with an empty name")
        if env:
            name = _unquote(env.group(1))
            if not name or b"=" in name:
                raise Refused("environment setting with an empty name")
            self.environment(name, _unquote(env.group(2)))
            return None
        reboot = False
        fields: tuple[bytes, ...] | None
        if body.startswith(b"@"):
            match = _SPECIAL.match(line)
            assert match is not None        # the line starts with blanks and "@"
            word, command = match.group(1), match.group(2)
            if word.lower() == REBOOT:
                reboot = True
                fields = None
            elif word.lower() in SPECIALS:
                fields = SPECIALS[word.lower()]
            else:
                raise Refused(f"unknown special {word.decode('latin-1')!r} (known: @reboot, "
                              "@hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
                              "@annually)")
        else:
            match = _FIELDS.match(line)
            if match is None:
                words = line.split()
                if len(words) == 4:
                    raise Refused("four fields: a crontab line has five time fields (minute "
                                  "hour day-of-month month day-of-week) and a command")
                raise Refused("expected five time fields (minute hour day-of-month month "
                              "day-of-week) and a command")
            fields, command = match.groups()[:5], match.group(6)
            self._check_four_fields(fields, command)
            if command and self._user_field(command):
                user = command.split(None, 1)[0].decode("latin-1")
                raise Refused(f"a system crontab line (user field {user!r}: /etc/crontab, "
                              "/etc/cron.d): remove the user field to import it as that "
                              "user's task")
        if not command:
            raise Refused("no command")
        if reboot:
            timing = P.Timing(0, 0, 0)
            mdays, months = ALL_MDAYS, ALL_MONTHS
        else:
            assert fields is not None
            minute, hour, dom, month, dow = fields
            timing = P.Timing(_field(minute, "minute", MINUTES_RANGE),
                              _field(hour, "hour", HOURS_RANGE),
                              _field(dow, "day-of-week", DAYS_RANGE, days=True))
            mdays = _parse_with(mdays_from_string, dom, "day-of-month")
            months = _parse_with(months_from_string, month, "month")
        text = cron_unescape(command)
        if len(text) > MAX_COMMAND:
            raise Refused("command too long (a request is at most 1 MiB)")
        shell = self.env.get(b"SHELL") or SHELL
        cron = CronSpec(mdays=mdays, months=months, reboot=reboot, catchup=self.catchup,
                        env=tuple(self.env.items()), tz=self.tz)
        return timing, (shell, b"-c", text), cron

    def _check_four_fields(self, fields: "Sequence[bytes]", command: bytes) -> None:
        """``* * * * cmd args``: four time fields and a command whose first word landed in
        DAY-OF-WEEK: say so rather than "bad day-of-week field"."""
        if re.fullmatch(rb"[0-9*,/-]+", fields[4]):
            return              # timing characters: a bad day of week, said as such
        try:
            field_from_string(fields[4].decode("latin-1"), *DAYS_RANGE, days=True)
        except TimingError:
            try:
                field_from_string(fields[0].decode("latin-1"), *MINUTES_RANGE)
                field_from_string(fields[1].decode("latin-1"), *HOURS_RANGE)
                mdays_from_string(fields[2].decode("latin-1"))
                months_from_string(fields[3].decode("latin-1"))
            except TimingError:
                return
            raise Refused(f"four time fields before the command "
                          f"{fields[4].decode('latin-1')!r}: a crontab line has five (minute "
                          "hour day-of-month month day-of-week)") from None

    def _user_field(self, command: bytes) -> bool:
        """Does the command start with a system crontab's user field?  In ``/etc/crontab``
        and ``/etc/cron.d`` always; elsewhere when it is ``root`` (no program has that
        name; another user name may well be a command: ``git pull``)."""
        word = command.split(None, 1)
        if len(word) < 2:
            return False
        return self.system or word[0] == b"root" and _is_user(word[0])


def parse_line(line: bytes) -> "tuple[P.Timing, tuple[bytes, ...], CronSpec] | None":
    """One line alone (no environment before it) -> None or ``(Timing, argv, CronSpec)``;
    raises :class:`Refused` (an environment line is accepted and gives None)."""
    return Reader().line(line)


def parse_crontab(data: bytes, name: str | None = None) -> tuple[list, list[tuple[int, str]]]:
    """``(accepted, refused)``: ``[(line number, Timing, argv, CronSpec)]``,
    ``[(line number, why)]``.  ``name``: the file's path (a system crontab is told by it)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    system = name is not None and (name == "/etc/crontab" or name.startswith("/etc/cron.d/"))
    reader = Reader(system)
    accepted: list[tuple[int, P.Timing, tuple[bytes, ...], CronSpec]] = []
    refused: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        try:
            parsed = reader.line(line)
        except Refused as e:
            refused.append((number, str(e)))
            continue
        if parsed is not None:
            accepted.append((number, *parsed))
    return accepted, refused


def _read(path: bytes) -> tuple[bytes, str]:
    if path == b"-":
        import sys
        return sys.stdin.buffer.read(), "<stdin>"
    name = path.decode("utf-8", "surrogateescape")
    try:
        with open(path, "rb") as f:
            return f.read(), name
    except OSError as e:
        raise ValueError(f"cannot read {name}: {e.strerror or e}") from None


def import_crontab(path: bytes, partial: bool, talk: "Talk", out: "Write", err: "Say") -> int:
    """``cassini -I FILE [-P]``; returns the exit status."""
    data, name = _read(path)
    accepted, refused = parse_crontab(data, name)
    for number, why in refused:
        err(f"{name}:{number}: refused: {why}")
    if refused and not partial:
        err(f"{name}: nothing created: {len(refused)} line(s) refused "
            "(-P creates the accepted lines all the same)")
        return 1
    mailing = [number for number, _, _, cron in accepted if cron.environ().get(b"MAILTO")]
    if mailing and sendmail_path() is None:
        err(f"{name}:{mailing[0]}: MAILTO: no sendmail on this machine: the output of "
            f"{len(mailing)} task(s) will not be mailed (the tasks are created)")
    created: list[int] = []
    for number, timing, argv, cron in accepted:
        if cron.plain:
            opcode, req = P.CREATE, P.Request(P.CREATE, timing=timing, argv=argv)
        else:
            opcode = P.CREATE_CRON
            req = P.Request(opcode, timing=timing, argv=argv, attrs=cron.attributes())
        request = P.encode_request(req)
        try:
            reply = talk(request, opcode)
            if not reply.ok:
                raise ValueError("saturnd refused the request")
        except ValueError as e:
            done = ", ".join(str(i) for i in created) or "none"
            err(f"{name}:{number}: not created: {e} (created before it: {done})")
            return 1
        created.append(reply.value)
        out(b"%d\n" % reply.value)
    return 1 if refused else 0


# --- export ---------------------------------------------------------------------------
def shell_quote(arg: bytes) -> bytes:
    """``arg`` as one shell word, its ``%`` left bare between quoted pieces (so that
    :func:`cron_escape` of the whole text always works)."""
    if _SAFE.match(arg):
        return arg
    if arg == b"":
        return b"''"
    return b"%".join(b"'" + piece.replace(b"'", b"'\\''") + b"'" if piece else b""
                     for piece in arg.split(b"%"))


def command_text(argv: "Sequence[bytes]", shell: bytes = SHELL) -> bytes:
    """The crontab COMMAND for a task's argv (see the module doc); raises NotExpressible.
    ``shell``: the SHELL in effect for the line (cron runs ``SHELL -c COMMAND``)."""
    if any(b"\n" in arg for arg in argv):
        raise NotExpressible("an argument holds a newline")
    if len(argv) == 3 and argv[0] == shell and argv[1] == b"-c" and argv[2] \
            and argv[2][:1] not in (b" ", b"\t", b"\r"):
        try:
            return cron_escape(argv[2])
        except NotExpressible:
            pass
    words = [shell_quote(arg) for arg in argv]
    if argv[0].startswith(b"-"):
        # not "exec -x" (an option of exec), nor a text starting with "-" (an option of
        # the shell): an empty quoted string before it, the word is the same
        words[0] = b"''" + words[0]
    else:
        words.insert(0, b"exec")
    return cron_escape(b" ".join(words))


def _env_line(name: bytes, value: bytes) -> bytes:
    """``NAME=value`` as cron reads it back (quoted when blanks or quotes would be lost)."""
    if not _ENV_NAME_SAFE.match(name):
        raise NotExpressible(f"environment name {name!r} cannot be written in a crontab")
    if b"\n" in value or b"\r" in value:
        raise NotExpressible(f"the value of {name.decode()} holds a line break")
    if value != value.strip(_BLANK) or (value[:1] in (b"'", b'"') and value[-1:] == value[:1]):
        quote = b"'" if b"'" not in value else b'"'
        if quote in value:
            raise NotExpressible(f"the value of {name.decode()} holds both kinds of quotes")
        value = quote + value + quote
    return name + b"=" + value + b"\n"


def _fields_text(timing: P.Timing, cron: CronSpec) -> bytes:
    for bits, what in ((timing.minutes, "minute"), (timing.hours, "hour"),
                       (timing.days, "day-of-week"), (cron.mdays, "day-of-month"),
                       (cron.months, "month")):
        if not bits:
            raise NotExpressible(f"its {what} field is empty (it never runs)")
    return b"%s %s %s %s %s" % (field_to_string(timing.minutes, *MINUTES_RANGE).encode(),
                                field_to_string(timing.hours, *HOURS_RANGE).encode(),
                                mdays_to_string(cron.mdays).encode(),
                                months_to_string(cron.months).encode(),
                                field_to_string(timing.days, *DAYS_RANGE).encode())


def task_line(taskid: int, timing: P.Timing, argv: "Sequence[bytes]", cron: CronSpec = PLAIN,
              shell: bytes = SHELL) -> bytes:
    """One crontab line (with its newline) for a task, environment lines apart; raises
    NotExpressible."""
    when = REBOOT if cron.reboot else _fields_text(timing, cron)
    return when + b" " + command_text(argv, shell) + b"\n"


class Writer:
    """Writes tasks as crontab lines, with the environment lines each one needs before it
    (cron's rule: a setting applies to the lines after it)."""

    def __init__(self) -> None:
        self.env: dict[bytes, bytes] = {}
        self.tz: str | None = None
        self.catchup = False
        self.notes: list[tuple[int, str]] = []         # (taskid, why): written, but not exactly

    def task(self, taskid: int, timing: P.Timing, argv: "Sequence[bytes]",
             cron: CronSpec = PLAIN) -> bytes:
        env = cron.environ()
        head = []
        for name in self.env:
            if name not in env:
                env_note = (f"its environment has no {name.decode('latin-1')}, which a line "
                            "before it sets; a crontab cannot unset it")
                self.notes.append((taskid, env_note))
        for name, value in env.items():
            if self.env.get(name) != value:
                head.append(_env_line(name, value))
        if cron.tz != self.tz:
            head.append(TZ_VAR + b"=" + (cron.tz or "").encode() + b"\n")
        if cron.catchup != self.catchup:
            head.append(CATCHUP_VAR + b"=" + (b"1" if cron.catchup else b"0") + b"\n")
        line = task_line(taskid, timing, argv, cron, env.get(b"SHELL") or SHELL)
        self.env.update(env)
        self.tz, self.catchup = cron.tz, cron.catchup
        return b"".join(head) + line


def export_lines(tasks: "Iterable[Sequence[Any]]") -> tuple[bytes, list[tuple[int, str]], list[tuple[int, str]]]:
    """``(bytes, [(taskid, why)], [(taskid, note)])`` for the tasks of a LIST reply
    (``(taskid, Timing, argv)``) or a LONG_LIST reply (``(taskid, Timing, argv, attrs)``)."""
    writer = Writer()
    lines, skipped = [], []
    for task in tasks:
        taskid, timing, argv = task[:3]
        try:
            cron = CronSpec.from_attributes(task[3]) if len(task) > 3 else PLAIN
            lines.append(writer.task(taskid, timing, argv, cron))
        except (NotExpressible, TimingError) as e:
            skipped.append((taskid, str(e)))
            lines.append(b"# task %d not exported: %s\n" % (taskid, str(e).encode()))
    return b"".join(lines), skipped, writer.notes


def export_crontab(talk: "Talk", out: "Write", err: "Say") -> int:
    """``cassini -X``; returns the exit status.  Every field comes from LONG_LIST; a daemon
    that answers it with the empty reply (one without LONG_LIST) is asked LIST instead."""
    try:
        reply = talk(P.encode_request(P.Request(P.LONG_LIST)), P.LONG_LIST)
    except ValueError as e:
        if "empty reply" not in str(e):         # the empty reply: a daemon without LONG_LIST
            raise
        reply = talk(P.encode_request(P.Request(P.LIST)), P.LIST)
    if not reply.ok:
        raise ValueError("saturnd answered with an error")
    data, skipped, notes = export_lines(reply.tasks)
    out(data)
    for taskid, why in skipped:
        err(f"task {taskid} not exported: {why}")
    for taskid, note in notes:
        err(f"task {taskid}: {note}")
    return 1 if skipped else 0

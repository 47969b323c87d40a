"""crontab import (``cassini -I FILE``) and export (``cassini -X``).

Imported only for those two options, so that the plain requests start as fast as before.

Import: one task per crontab line, created with CREATE requests, the command run the way
cron runs it, ``/bin/sh -c COMMAND`` (argv ``/bin/sh``, ``-c``, COMMAND).  A line is

- blank, or a comment (first non-blank character ``#``): skipped;
- ``MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK COMMAND``: the fields separated by blanks
  (spaces, tabs), each with the syntax ``cassini -c`` accepts (lists, ranges, steps,
  ``*/N``, day names ``sun``..``sat``, ``7`` = Sunday); DAY-OF-MONTH and MONTH must be
  ``*`` (this scheduler knows weekdays, not dates); the COMMAND is the rest of the line
  after the blanks that follow DAY-OF-WEEK, kept as it is;
- ``@hourly`` (``0 * * * *``), ``@daily`` and ``@midnight`` (``0 0 * * *``), ``@weekly``
  (``0 0 * * 0``) followed by blanks and the COMMAND.

Refused, with the line number and why: ``@reboot``, ``@monthly``, ``@yearly``,
``@annually`` and any other ``@`` word; DAY-OF-MONTH or MONTH other than ``*``;
environment lines (``NAME=value``); a ``%`` in the COMMAND (cron makes what follows an
unescaped ``%`` the command's standard input; ``\\%`` is cron's escape for a literal
``%`` and is accepted: the task's command has ``%`` there, as cron would run it); a
missing command; a bad field; a NUL byte; a command over the 1 MiB request limit.

By default nothing is created unless every line is accepted (all or nothing: nothing is
sent at all); ``-P`` creates the accepted lines all the same.  Every refused line is
reported on stderr (``cassini: FILE:LINE: refused: WHY``) and makes the exit status 1.
Each created task's id is printed on stdout, one per line, in the order of the file.
The tasks are created one CREATE at a time: if the daemon fails in the middle, the ones
already created stay (their ids are printed) and the failing line is reported.

Export: one line per task, in id order, ``MIN HOUR * * DAYS COMMAND``, the fields as
``cassini -l`` prints them.  The COMMAND is

- for a task whose command line is ``/bin/sh -c TEXT`` (what import creates): TEXT
  itself, so importing the line again gives exactly the same argv;
- for any other task: ``exec`` and the arguments, each shell-quoted (single quotes), so
  that ``/bin/sh -c`` of it runs exactly the task's argv (``exec`` bypasses the shell's
  built-ins, as the daemon does; it is left out when ARGV[0] starts with ``-``);

with every ``%`` written ``\\%``.  A task that cannot be written as a crontab line --
a timing field with no bit set (the task never runs), an argument holding a newline --
is written as a comment line ``# task ID not exported: WHY``, reported on stderr, and
makes the exit status 1.
"""

import re

from saturnd import protocol as P
from saturnd.timing import (DAYS_RANGE, HOURS_RANGE, MINUTES_RANGE, TimingError,
                            field_from_string, field_to_string)

SHELL = b"/bin/sh"
SPECIALS = {
    b"@hourly": (b"0", b"*", b"*"),
    b"@daily": (b"0", b"0", b"*"),
    b"@midnight": (b"0", b"0", b"*"),
    b"@weekly": (b"0", b"0", b"0"),
}
REFUSED_SPECIALS = {
    b"@reboot": "@reboot (run at start-up) is not a time this scheduler has",
    b"@monthly": "@monthly needs a day of month; this scheduler knows weekdays only",
    b"@yearly": "@yearly needs a day of month and a month; this scheduler knows weekdays only",
    b"@annually": "@annually needs a day of month and a month; "
                  "this scheduler knows weekdays only",
}
MAX_COMMAND = P.MAX_REQUEST - 64

_BLANK = b" \t"
_ENV_LINE = re.compile(rb"""[ \t]*("[^"]*"|'[^']*'|[^ \t=]+)[ \t]*=""")
_FIELDS = re.compile(rb"[ \t]*([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)"
                     rb"[ \t]+([^ \t]+)(?:[ \t]+(.*))?\Z", re.S)
_SPECIAL = re.compile(rb"[ \t]*(@[^ \t]*)(?:[ \t]+(.*))?\Z", re.S)
_SAFE = re.compile(rb"[A-Za-z0-9_@+=:,./-]+\Z")


class Refused(ValueError):
    """A crontab line this scheduler cannot express (the message says why)."""


class NotExpressible(ValueError):
    """Shell text that no crontab command yields (see :func:`cron_escape`)."""


# --- cron's % handling --------------------------------------------------------------
def cron_unescape(command):
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


def cron_escape(text):
    """A COMMAND for which :func:`cron_unescape` gives ``text`` back: every ``%`` written
    ``\\%``.  Impossible when an odd run of backslashes comes right before a ``%``."""
    for match in re.finditer(rb"(\\*)%", text):
        if len(match.group(1)) % 2:
            raise NotExpressible("a backslash right before a '%'")
    return text.replace(b"%", b"\\%")


# --- import ---------------------------------------------------------------------------
def _field(text, what, lo_hi, days=False):
    try:
        return field_from_string(text.decode("latin-1"), *lo_hi, days=days)
    except TimingError as e:
        raise Refused(f"bad {what} field {text.decode('latin-1')!r}: {e}") from None


def parse_line(line):
    """One line (bytes, no newline) -> None (blank or comment) or ``(Timing, argv)``;
    raises :class:`Refused`."""
    body = line.lstrip(_BLANK)
    if not body or body.startswith(b"#"):
        return None
    if b"\0" in line:
        raise Refused("NUL byte in the line")
    if _ENV_LINE.match(line):
        raise Refused("environment setting (NAME=value): not supported; "
                      "set the variable in the command instead")
    if body.startswith(b"@"):
        match = _SPECIAL.match(line)
        word, command = match.group(1), match.group(2)
        if word in REFUSED_SPECIALS:
            raise Refused(REFUSED_SPECIALS[word])
        if word not in SPECIALS:
            raise Refused(f"unknown special {word.decode('latin-1')!r} (known: @hourly, "
                          "@daily, @midnight, @weekly)")
        minute, hour, dow = SPECIALS[word]
    else:
        match = _FIELDS.match(line)
        if match is None:
            raise Refused("expected five time fields (minute hour day-of-month month "
                          "day-of-week) and a command")
        minute, hour, dom, month, dow, command = match.groups()
        if dom != b"*":
            raise Refused(f"day of month {dom.decode('latin-1')!r} is not '*': "
                          "this scheduler knows weekdays, not dates")
        if month != b"*":
            raise Refused(f"month {month.decode('latin-1')!r} is not '*': "
                          "this scheduler knows weekdays, not dates")
    if not command:
        raise Refused("no command")
    timing = P.Timing(_field(minute, "minute", MINUTES_RANGE),
                      _field(hour, "hour", HOURS_RANGE),
                      _field(dow, "day-of-week", DAYS_RANGE, days=True))
    text = cron_unescape(command)
    if len(text) > MAX_COMMAND:
        raise Refused("command too long (a request is at most 1 MiB)")
    return timing, (SHELL, b"-c", text)


def parse_crontab(data):
    """``(accepted, refused)``: ``[(line number, Timing, argv)]``, ``[(line number, why)]``."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    accepted, refused = [], []
    for number, line in enumerate(lines, 1):
        try:
            parsed = parse_line(line)
        except Refused as e:
            refused.append((number, str(e)))
            continue
        if parsed is not None:
            accepted.append((number, *parsed))
    return accepted, refused


def _read(path):
    if path == b"-":
        import sys
        return sys.stdin.buffer.read(), "<stdin>"
    name = path.decode("utf-8", "surrogateescape")
    try:
        with open(path, "rb") as f:
            return f.read(), name
    except OSError as e:
        raise ValueError(f"cannot read {name}: {e.strerror or e}") from None


def import_crontab(path, partial, talk, out, err):
    """``cassini -I FILE [-P]``; returns the exit status."""
    data, name = _read(path)
    accepted, refused = parse_crontab(data)
    for number, why in refused:
        err(f"{name}:{number}: refused: {why}")
    if refused and not partial:
        err(f"{name}: nothing created: {len(refused)} line(s) refused "
            "(-P creates the accepted lines all the same)")
        return 1
    created = []
    for number, timing, argv in accepted:
        request = P.encode_request(P.Request(P.CREATE, timing=timing, argv=argv))
        try:
            reply = talk(request, P.CREATE)
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
def shell_quote(arg):
    """``arg`` as one shell word, its ``%`` left bare between quoted pieces (so that
    :func:`cron_escape` of the whole text always works)."""
    if _SAFE.match(arg):
        return arg
    if arg == b"":
        return b"''"
    return b"%".join(b"'" + piece.replace(b"'", b"'\\''") + b"'" if piece else b""
                     for piece in arg.split(b"%"))


def command_text(argv):
    """The crontab COMMAND for a task's argv (see the module doc); raises NotExpressible."""
    if any(b"\n" in arg for arg in argv):
        raise NotExpressible("an argument holds a newline")
    if len(argv) == 3 and argv[0] == SHELL and argv[1] == b"-c" and argv[2] \
            and argv[2][:1] not in (b" ", b"\t"):
        try:
            return cron_escape(argv[2])
        except NotExpressible:
            pass
    words = [shell_quote(arg) for arg in argv]
    if not argv[0].startswith(b"-"):
        words.insert(0, b"exec")
    return cron_escape(b" ".join(words))


def task_line(taskid, timing, argv):
    """One crontab line (with its newline) for a task; raises NotExpressible."""
    for bits, what in ((timing.minutes, "minute"), (timing.hours, "hour"),
                       (timing.days, "day-of-week")):
        if not bits:
            raise NotExpressible(f"its {what} field is empty (it never runs)")
    fields = b"%s %s * * %s" % (field_to_string(timing.minutes, *MINUTES_RANGE).encode(),
                                field_to_string(timing.hours, *HOURS_RANGE).encode(),
                                field_to_string(timing.days, *DAYS_RANGE).encode())
    return fields + b" " + command_text(argv) + b"\n"


def export_lines(tasks):
    """``(bytes, [(taskid, why)])`` for the tasks of a LIST reply."""
    lines, skipped = [], []
    for taskid, timing, argv in tasks:
        try:
            lines.append(task_line(taskid, timing, argv))
        except NotExpressible as e:
            skipped.append((taskid, str(e)))
            lines.append(b"# task %d not exported: %s\n" % (taskid, str(e).encode()))
    return b"".join(lines), skipped


def export_crontab(talk, out, err):
    """``cassini -X``; returns the exit status."""
    reply = talk(P.encode_request(P.Request(P.LIST)), P.LIST)
    if not reply.ok:
        raise ValueError("saturnd answered LIST with an error")
    data, skipped = export_lines(reply.tasks)
    out(data)
    for taskid, why in skipped:
        err(f"task {taskid} not exported: {why}")
    return 1 if skipped else 0

"""Timing fields: crontab text <-> bit sets (the C project's ``timing-text-io``).

Text -> bits (``cassini -c/-t``), per ``docs/cassini.md``:

- ``*`` is every value of the field (only as the whole field: ``1,*`` is
  refused, as the reference refuses it);
- otherwise a comma-separated list of items, each ``N`` or ``A-B`` (A <= B),
  all within the field's range;
- beyond the reference: steps ``*/N`` and ``A-B/N`` (N >= 1); for days,
  ``7`` as Sunday (also in ranges: ``5-7``) and the names ``sun``..``sat`` in
  any case, alone or in ranges (``mon-fri``; ``fri-sun`` ends on Sunday).

Anything else (trailing characters, an empty field or item, ``*/0``, a value
out of range, signs, spaces) raises :class:`TimingError`.

Bits -> text (``cassini -l``): runs of consecutive values, ``*`` for a run
covering the whole range, ``N`` for a run of one, ``A-B`` otherwise, joined
by commas; no bit set gives the empty string.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:            # names for the hints only: nothing more to import at start-up
    from collections.abc import Iterable

MINUTES_RANGE = (0, 59)
HOURS_RANGE = (0, 23)
DAYS_RANGE = (0, 6)

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class TimingError(ValueError):
    """A timing field that is not valid crontab text."""


def _number(text: str, hi: int, days: bool, lo: int = 0) -> int:
    """Parse one value; days accept 7 and names.  Returns an int in [lo, hi] (7 for days)."""
    if days and text.isalpha():
        name = text.lower()
        if name not in DAY_NAMES:
            raise TimingError(f"unknown day name {text!r}")
        return DAY_NAMES.index(name)
    if not text or not text.isascii() or not text.isdigit():
        raise TimingError(f"{text!r} is not a number")
    value = int(text)
    limit = 7 if days else hi
    if value > limit or value < lo:
        raise TimingError(f"{value} is out of range ({lo}-{limit})")
    return value


def field_from_string(text: str, lo: int, hi: int, days: bool = False) -> int:
    """Parse one crontab field into a bit set over [lo, hi]."""
    if text == "":
        raise TimingError("empty timing field")
    bits = 0
    for item in text.split(","):
        if item == "":
            raise TimingError(f"empty item in {text!r}")
        step = 1
        step_text = None
        if "/" in item:
            item, _, step_text = item.partition("/")
            if not step_text.isascii() or not step_text.isdigit():
                raise TimingError(f"bad step {step_text!r}")
            step = int(step_text)
            if step < 1:
                raise TimingError("a step must be at least 1")
            if item != "*" and "-" not in item:
                raise TimingError(f"a step needs '*' or a range, not {item!r}")
        if item == "*":
            if step_text is None and text != "*":
                # the reference accepts '*' only as the whole field ('1,*' is an error)
                raise TimingError(f"'*' must be the whole field, not part of {text!r}")
            start, end = lo, hi
        elif "-" in item:
            a, _, b = item.partition("-")
            start = _number(a, hi, days, lo)
            end = _number(b, hi, days, lo)
            if days and end == 0 and start > 0 and b.isalpha():
                end = 7   # "fri-sun": a range may end on Sunday by name
            if start > end:
                raise TimingError(f"range {item!r} runs backwards")
        else:
            start = end = _number(item, hi, days, lo)
        for value in range(start, end + 1, step):
            bits |= 1 << (0 if days and value == 7 else value)
    return bits


def minutes_from_string(text: str) -> int:
    return field_from_string(text, *MINUTES_RANGE)


def hours_from_string(text: str) -> int:
    return field_from_string(text, *HOURS_RANGE)


def days_from_string(text: str) -> int:
    return field_from_string(text, *DAYS_RANGE, days=True)


def timing_from_strings(minutes: str = "*", hours: str = "*",
                        days: str = "*") -> tuple[int, int, int]:
    """Return the ``(minutes, hours, days)`` bit sets of three crontab fields."""
    return (minutes_from_string(minutes), hours_from_string(hours), days_from_string(days))


def field_to_string(bits: int, lo: int, hi: int) -> str:
    """Render a bit set over [lo, hi] as runs: ``*``, ``N``, ``A-B``, joined by commas."""
    parts = []
    value = lo
    while value <= hi:
        if (bits >> value) & 1:
            start = value
            while value + 1 <= hi and (bits >> (value + 1)) & 1:
                value += 1
            if start == lo and value == hi:
                parts.append("*")
            elif start == value:
                parts.append(str(start))
            else:
                parts.append(f"{start}-{value}")
        value += 1
    return ",".join(parts)


def timing_to_string(minutes: int, hours: int, days: int) -> str:
    """``MIN HOUR DAYS`` as ``cassini -l`` prints them."""
    return " ".join((field_to_string(minutes, *MINUTES_RANGE),
                     field_to_string(hours, *HOURS_RANGE),
                     field_to_string(days, *DAYS_RANGE)))


# --- cron's other fields: day of month, month; @reboot, catch-up, environment, zone ------
# What a task may have beyond the reference's TIMING (minutes, hours, days of week).  On
# the wire and on disk it is a list of attributes, ``(KEY, VALUE)`` byte strings
# (``docs/own-requests.md``, "Cron attributes"); :class:`CronSpec` is its parsed form.
MDAYS_RANGE = (1, 31)
MONTHS_RANGE = (1, 12)
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
               "dec")
ALL_MDAYS = ((1 << 32) - 1) & ~1       # bits 1..31
ALL_MONTHS = ((1 << 13) - 1) & ~1      # bits 1..12

KEY_MDAYS = b"mdays"       # day-of-month field, as text (absent: "*")
KEY_MONTHS = b"months"     # month field, as text (absent: "*")
KEY_REBOOT = b"reboot"     # "1": runs once each time the daemon starts, never by the clock
KEY_CATCHUP = b"catchup"   # "1": a run missed while the daemon was stopped runs at start-up
KEY_ENV = b"env"           # "NAME=value", repeated, in order (applied in that order)
KEY_TZ = b"tz"             # the zone (CRON_TZ) whose wall clock schedules the task
CRON_KEYS = (KEY_MDAYS, KEY_MONTHS, KEY_REBOOT, KEY_CATCHUP, KEY_ENV, KEY_TZ)


def _month_number(text: str) -> str:
    if text.isalpha():
        name = text.lower()
        if name not in MONTH_NAMES:
            raise TimingError(f"unknown month name {text!r}")
        return str(MONTH_NAMES.index(name) + 1)
    return text


def mdays_from_string(text: str) -> int:
    """A day-of-month field (``1``-``31``, lists, ranges, steps) -> bits 1..31."""
    return field_from_string(text, *MDAYS_RANGE)


def months_from_string(text: str) -> int:
    """A month field (``1``-``12`` or ``jan``..``dec``, lists, ranges, steps) -> bits 1..12."""
    if any(c.isalpha() for c in text):
        items = []
        for item in text.split(","):
            item, slash, step = item.partition("/")
            ends = [_month_number(end) for end in item.split("-")]
            items.append("-".join(ends) + slash + step)
        text = ",".join(items)
    return field_from_string(text, *MONTHS_RANGE)


def mdays_to_string(bits: int) -> str:
    return field_to_string(bits, *MDAYS_RANGE)


def months_to_string(bits: int) -> str:
    return field_to_string(bits, *MONTHS_RANGE)


def _is_env_name(name: bytes) -> bool:
    return bool(name) and b"=" not in name and b"\0" not in name


class CronSpec:
    """A task's cron attributes (all optional; the defaults are a reference task's).

    ``mdays``/``months``: bit sets (1..31, 1..12); ``reboot``, ``catchup``: booleans;
    ``env``: a tuple of ``(name, value)`` byte strings, in order; ``tz``: a zone name
    (str) or None for the daemon's own.  Immutable once made.
    """

    __slots__ = ("mdays", "months", "reboot", "catchup", "env", "tz")

    def __init__(self, mdays: int = ALL_MDAYS, months: int = ALL_MONTHS, reboot: bool = False,
                 catchup: bool = False, env: "Iterable[tuple[bytes, bytes]]" = (),
                 tz: str | None = None) -> None:
        self.mdays = mdays
        self.months = months
        self.reboot = bool(reboot)
        self.catchup = bool(catchup)
        self.env = tuple(env)
        self.tz = tz or None

    def _key(self) -> tuple:
        return (self.mdays, self.months, self.reboot, self.catchup, self.env, self.tz)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronSpec) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"CronSpec({self.attributes()!r})"

    @property
    def dated(self) -> bool:
        """True when the day of month or the month is restricted."""
        return self.mdays != ALL_MDAYS or self.months != ALL_MONTHS

    @property
    def plain(self) -> bool:
        """True when the task is what a reference task is (nothing beyond TIMING)."""
        return self == PLAIN

    def replace(self, **changes: object) -> "CronSpec":
        values = dict(zip(self.__slots__, self._key()))
        values.update(changes)
        return CronSpec(**values)

    def environ(self) -> dict[bytes, bytes]:
        """The task's environment lines as a dict (later lines win)."""
        return dict(self.env)

    def attributes(self) -> list[tuple[bytes, bytes]]:
        """The ``(KEY, VALUE)`` list (only what differs from the defaults)."""
        attrs = []
        if self.mdays != ALL_MDAYS:
            attrs.append((KEY_MDAYS, mdays_to_string(self.mdays).encode()))
        if self.months != ALL_MONTHS:
            attrs.append((KEY_MONTHS, months_to_string(self.months).encode()))
        if self.reboot:
            attrs.append((KEY_REBOOT, b"1"))
        if self.catchup:
            attrs.append((KEY_CATCHUP, b"1"))
        for name, value in self.env:
            attrs.append((KEY_ENV, name + b"=" + value))
        if self.tz:
            attrs.append((KEY_TZ, self.tz.encode()))
        return attrs

    @classmethod
    def from_attributes(cls, attrs: "Iterable[tuple[bytes, bytes]]",
                        base: "CronSpec | None" = None) -> "CronSpec":
        """Parse ``(KEY, VALUE)`` pairs over ``base`` (default: a reference task's): each
        key given replaces that attribute (all the ``env`` pairs together replace the
        environment; an ``env`` pair with an empty value clears it).  Unknown keys are
        ignored (an older daemon's or client's attributes pass through).  Raises
        :class:`TimingError`."""
        values = dict(zip(cls.__slots__, (base or PLAIN)._key()))
        env = None
        for key, value in attrs:
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                text = None
            if key == KEY_MDAYS:
                values["mdays"] = mdays_from_string(_ascii(text, key))
            elif key == KEY_MONTHS:
                values["months"] = months_from_string(_ascii(text, key))
            elif key in (KEY_REBOOT, KEY_CATCHUP):
                if value not in (b"0", b"1"):
                    raise TimingError(f"{key.decode()} must be 0 or 1, not {value!r}")
                values[key.decode()] = value == b"1"
            elif key == KEY_ENV:
                env = [] if env is None else env
                if value:
                    name, eq, val = value.partition(b"=")
                    if not eq or not _is_env_name(name) or b"\0" in val:
                        raise TimingError(f"bad environment setting {value!r}: NAME=value")
                    env.append((name, val))
            elif key == KEY_TZ:
                values["tz"] = check_zone(_ascii(text, key)) if value else None
        if env is not None:
            values["env"] = tuple(env)
        return cls(**values)


def _ascii(text: str | None, key: bytes) -> str:
    if text is None:
        raise TimingError(f"{key.decode()} is not ASCII text")
    return text


def check_zone(name: str) -> str:
    """``name`` if it is a time zone this machine knows (``zoneinfo``), else TimingError."""
    try:
        import zoneinfo
        zoneinfo.ZoneInfo(name)
    except Exception:
        raise TimingError(f"unknown time zone {name!r}") from None
    return name


PLAIN = CronSpec()


def day_matches(days: int, spec: CronSpec, weekday: int, mday: int, month: int) -> bool:
    """cron's day rule: the month must match; then, when both the day of month and the
    day of week are restricted (neither covers every value), either may match, else both
    must (a field covering every value always matches)."""
    if not (spec.months >> month) & 1:
        return False
    dom = (spec.mdays >> mday) & 1
    dow = (days >> weekday) & 1
    if spec.mdays != ALL_MDAYS and days != 0x7F:
        return bool(dom or dow)
    return bool(dom and dow)

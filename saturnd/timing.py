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

MINUTES_RANGE = (0, 59)
HOURS_RANGE = (0, 23)
DAYS_RANGE = (0, 6)

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class TimingError(ValueError):
    """A timing field that is not valid crontab text."""


def _number(text, hi, days):
    """Parse one value; days accept 7 and names.  Returns an int in [0, hi] (7 for days)."""
    if days and text.isalpha():
        name = text.lower()
        if name not in DAY_NAMES:
            raise TimingError(f"unknown day name {text!r}")
        return DAY_NAMES.index(name)
    if not text or not text.isascii() or not text.isdigit():
        raise TimingError(f"{text!r} is not a number")
    value = int(text)
    limit = 7 if days else hi
    if value > limit:
        raise TimingError(f"{value} is out of range (0-{hi})")
    return value


def field_from_string(text, lo, hi, days=False):
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
            start = _number(a, hi, days)
            end = _number(b, hi, days)
            if days and end == 0 and start > 0 and b.isalpha():
                end = 7   # "fri-sun": a range may end on Sunday by name
            if start > end:
                raise TimingError(f"range {item!r} runs backwards")
        else:
            start = end = _number(item, hi, days)
        for value in range(start, end + 1, step):
            bits |= 1 << (0 if days and value == 7 else value)
    return bits


def minutes_from_string(text):
    return field_from_string(text, *MINUTES_RANGE)


def hours_from_string(text):
    return field_from_string(text, *HOURS_RANGE)


def days_from_string(text):
    return field_from_string(text, *DAYS_RANGE, days=True)


def timing_from_strings(minutes="*", hours="*", days="*"):
    """Return the ``(minutes, hours, days)`` bit sets of three crontab fields."""
    return (minutes_from_string(minutes), hours_from_string(hours), days_from_string(days))


def field_to_string(bits, lo, hi):
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


def timing_to_string(minutes, hours, days):
    """``MIN HOUR DAYS`` as ``cassini -l`` prints them."""
    return " ".join((field_to_string(minutes, *MINUTES_RANGE),
                     field_to_string(hours, *HOURS_RANGE),
                     field_to_string(days, *DAYS_RANGE)))

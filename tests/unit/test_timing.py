"""Unit tests of saturnd/timing.py: crontab text <-> bit sets (cassini.md)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saturnd.timing import (
    TimingError, days_from_string, field_from_string, field_to_string, hours_from_string,
    minutes_from_string, timing_from_strings, timing_to_string,
)

pytestmark = pytest.mark.timeout(60)

ALL_MIN = (1 << 60) - 1
ALL_HOURS = (1 << 24) - 1
ALL_DAYS = (1 << 7) - 1


def bits(*values):
    return sum(1 << v for v in set(values))


# --- text -> bits: every accepted form ---------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("*", ALL_MIN),
    ("0", bits(0)),
    ("59", bits(59)),
    ("05", bits(5)),
    ("4-10", bits(*range(4, 11))),
    ("0-59", ALL_MIN),
    ("7-7", bits(7)),
    ("0,30", bits(0, 30)),
    ("4,10,45", bits(4, 10, 45)),
    ("0-4,10,58-59", bits(0, 1, 2, 3, 4, 10, 58, 59)),
    ("5,5,4-6", bits(4, 5, 6)),
    # beyond the reference: steps
    ("*/15", bits(0, 15, 30, 45)),
    ("*/1", ALL_MIN),
    ("*/59", bits(0, 59)),
    ("*/60", bits(0)),
    ("10-20/5", bits(10, 15, 20)),
    ("1-3/2", bits(1, 3)),
    ("*/15,7", bits(0, 7, 15, 30, 45)),
])
def test_minutes_accepted(text, expected):
    assert minutes_from_string(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("*", ALL_HOURS), ("0", bits(0)), ("23", bits(23)), ("8-17", bits(*range(8, 18))),
    ("8-18/2", bits(8, 10, 12, 14, 16, 18)), ("0,12", bits(0, 12)),
])
def test_hours_accepted(text, expected):
    assert hours_from_string(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("*", ALL_DAYS), ("0", bits(0)), ("6", bits(6)), ("1-5", bits(1, 2, 3, 4, 5)),
    ("1,3", bits(1, 3)),
    # beyond the reference: 7 is Sunday, names in any case, alone or in ranges
    ("7", bits(0)), ("5-7", bits(5, 6, 0)), ("0,7", bits(0)),
    ("sun", bits(0)), ("SAT", bits(6)), ("Mon", bits(1)),
    ("mon-fri", bits(1, 2, 3, 4, 5)), ("MON-FRI", bits(1, 2, 3, 4, 5)),
    ("fri-sun", bits(5, 6, 0)), ("sun-sat", ALL_DAYS), ("mon,wed", bits(1, 3)),
    ("mon-fri/2", bits(1, 3, 5)), ("*/2", bits(0, 2, 4, 6)),
])
def test_days_accepted(text, expected):
    assert days_from_string(text) == expected


def test_timing_from_strings_defaults_and_example():
    assert timing_from_strings() == (ALL_MIN, ALL_HOURS, ALL_DAYS)
    assert timing_from_strings("0,30", "8-17", "1-5") == (
        bits(0, 30), bits(*range(8, 18)), bits(1, 2, 3, 4, 5))


# --- text -> bits: every rejection -----------------------------------------------------------
@pytest.mark.parametrize("text", [
    "", ",", "1,", ",1", "1,,2", "60", "99", "100", "99999999999999999999",
    "5x", "x5", "five", "-1", "+1", " 1", "1 ", "1-", "-", "5-3", "1-2-3",
    "*/0", "*/", "*/x", "*/-1", "1/2", "/2", "1-5/0", "**", "*5", "1,*", "*,1",
    "\u0663", "1\u0663", "0x1", "1.0", "mon",
])
def test_minutes_rejected(text):
    with pytest.raises(TimingError):
        minutes_from_string(text)


@pytest.mark.parametrize("text", ["24", "0-24", "23-0", "", "*/0", "sun"])
def test_hours_rejected(text):
    with pytest.raises(TimingError):
        hours_from_string(text)


@pytest.mark.parametrize("text", ["8", "0-8", "funday", "mon-", "-fri", "sat-mon", "6-5",
                                  "", "monday", "7-1", "su"])
def test_days_rejected(text):
    with pytest.raises(TimingError):
        days_from_string(text)


# --- bits -> text --------------------------------------------------------------------------
@pytest.mark.parametrize("value,lo,hi,text", [
    (bits(*range(4, 11), 45), 0, 59, "4-10,45"),     # the spec's examples
    (bits(1, 3, 5, 7), 0, 23, "1,3,5,7"),
    (ALL_DAYS, 0, 6, "*"),
    (ALL_MIN, 0, 59, "*"),
    (0, 0, 59, ""),
    (bits(0), 0, 59, "0"),
    (bits(59), 0, 59, "59"),
    (bits(0, 1), 0, 59, "0-1"),
    (bits(0, 2), 0, 59, "0,2"),
    (ALL_MIN & ~bits(30), 0, 59, "0-29,31-59"),
    (bits(*range(23)), 0, 23, "0-22"),
    (bits(*range(1, 24)), 0, 23, "1-23"),
    (bits(0, 6), 0, 6, "0,6"),
])
def test_field_to_string(value, lo, hi, text):
    assert field_to_string(value, lo, hi) == text


def test_timing_to_string_spec_example():
    assert timing_to_string(bits(4, 10), ALL_HOURS, bits(1, 3)) == "4,10 * 1,3"
    assert timing_to_string(0, ALL_HOURS, ALL_DAYS) == " * *"


# --- properties ------------------------------------------------------------------------------
FIELDS = [(0, 59, minutes_from_string), (0, 23, hours_from_string), (0, 6, days_from_string)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FIELDS).flatmap(
    lambda f: st.tuples(st.just(f), st.integers(1, (1 << (f[1] + 1)) - 1))))
def test_property_text_of_bits_parses_back(field_and_bits):
    (lo, hi, parse), value = field_and_bits
    text = field_to_string(value, lo, hi)
    assert parse(text) == value
    # and the text is canonical: printing the parsed bits gives the same text
    assert field_to_string(parse(text), lo, hi) == text


def reference_field(text, lo, hi):
    """A model of the reference's timing_field_from_string (facts of the course's C code):
    returns (bits, characters consumed), or None on failure."""
    if text == "":
        return None
    if text[0] == "*":
        return (1 << (hi - lo + 1)) - 1, 1
    result = 0
    pos = 0
    while True:
        start_pos = pos
        while pos < len(text) and text[pos] in "0123456789":
            pos += 1
        if pos == start_pos:
            return None
        start = end = int(text[start_pos:pos])
        if pos < len(text) and text[pos] == "-":
            pos += 1
            end_pos = pos
            while pos < len(text) and text[pos] in "0123456789":
                pos += 1
            if pos == end_pos:
                return None
            end = int(text[end_pos:pos])
        if start < lo or end < start or hi < end:
            return None
        for v in range(start, end + 1):
            result |= 1 << (v - lo)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return result, pos


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(FIELDS[:2]), st.text(alphabet="0123456789,-*", max_size=10))
def test_property_same_bits_as_the_reference_on_every_complete_field(field, text):
    """Every complete field the reference accepts gives the same bits; anything it does not
    accept as a whole is refused (over the reference's own alphabet)."""
    lo, hi, parse = field
    ref = reference_field(text, lo, hi)
    if ref is not None and ref[1] == len(text):
        assert parse(text) == ref[0]
    else:
        with pytest.raises(TimingError):
            parse(text)


def test_field_from_string_generic_bounds():
    assert field_from_string("1-2", 0, 6) == bits(1, 2)
    with pytest.raises(TimingError):
        field_from_string("7", 0, 6)

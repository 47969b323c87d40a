"""Foreign bytes: nothing a candidate produces -- in its paths, its names, its outputs --
crashes a report writer, and teacher-facing output is inert (escape sequences made
visible in the summary, the JUnit and JSON reports; spreadsheet formulas and raw HTML
neutralised in the class table)."""

import csv
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import classtable, report

ESC = "\x1b"


def _no_raw_controls(text):
    bad = [c for c in text if (ord(c) < 32 and c not in "\n") or 0x7f <= ord(c) <= 0x9f]
    return not bad


# --- the helpers --------------------------------------------------------------------------
@pytest.mark.parametrize("raw, want", [
    ("\x1b[2J", "\\x1b[2J"),
    ("a\x07b", "a\\x07b"),
    ("\x9b31m", "\\x9b31m"),
    ("x\udcffy", "x\\xffy"),                       # os.fsdecode of a byte that is not UTF-8
    (b"\xff\xfe\x1b", "\\xff\\xfe\\x1b"),
    ("line\nnext", "line\nnext"),
    ("\u202eevil", "\\u202eevil"),                 # bidirectional override
    ("é ok", "é ok"),
])
def test_visible(raw, want):
    assert report.visible(raw) == want


def test_every_writer_survives_foreign_bytes(tmp_path):
    bad = "pipes /tmp/nobody\udcff\udcfe/saturnd/pipes \x1b]52;c;ZWNobw==\x07 \x00"
    outcomes = [report.Outcome("daemon-protocol", "remove\udcff", "fail", bad, bad + "\n" + bad,
                               tags=["t\udcff"]),
                report.Outcome("client", "001", "pass")]
    report.write_junit(tmp_path / "j.xml", outcomes, [("note", bad)])
    ET.parse(tmp_path / "j.xml")                                   # valid XML
    raw = (tmp_path / "j.xml").read_bytes()
    assert b"\x1b" not in raw and b"\\xff" in raw
    report.write_json(tmp_path / "r.json", outcomes, "strict", {"cassini": bad, "saturnd": None},
                      None, 1, notes=[bad])
    data = json.loads((tmp_path / "r.json").read_text())
    assert ESC not in json.dumps(data, ensure_ascii=False)
    assert "\\xff" in data["cases"][0]["message"]
    text = report.summary(outcomes, [bad])
    assert _no_raw_controls(text) and "\\x1b]52" in text
    text.encode("utf-8")                                           # no lone surrogate left


# --- the class table (attack: spreadsheet formula, raw HTML) ------------------------------
HOSTILE = "=HYPERLINK(\"http://evil\",\"click\")"
HTML = "<img src=x onerror=alert(1)>"


def _row(sub, **kw):
    row = {"submission": sub, "build": "ok", "build_status": "0", "cassini": "cassini",
           "saturnd": "saturnd", "grading": "ok", "runs": "1",
           "strict_passed": "1", "strict_total": "2", "strict_percent": "50.0",
           "course_passed": "1", "course_total": "2", "course_percent": "50.0",
           "flaky_count": "0", "flaky": "", "strict:client": "1/2", "course:client": "1/2"}
    row.update(kw)
    return row


def test_class_table_cells_are_inert(tmp_path):
    rows = [_row(HOSTILE, cassini=HTML + "/cassini", grading="error: \x1b[2J" + HTML),
            _row("+cmd|' /C calc'!A0", saturnd="@SUM(1+1)", build_status="-9"),
            _row("\tTAB", cassini="-2+3"),
            _row("bob\udcff")]
    paths = classtable.write_all(rows, str(tmp_path / "class"))
    assert len(paths) == 3
    with open(tmp_path / "class.csv", newline="", encoding="utf-8") as f:
        cells = [c for r in csv.reader(f) for c in r]
    for c in cells:
        assert not c.startswith(classtable.FORMULA_START), c
        assert _no_raw_controls(c), c
    assert "'" + HOSTILE in cells and "'@SUM(1+1)" in cells and "'-2+3" in cells
    md = (tmp_path / "class.md").read_text()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert ESC not in md and "\\x1b[2J" in md and "bob\\xff" in md
    page = (tmp_path / "class.html").read_text()
    assert "<img" not in page and ESC not in page
    # merge reads the table back as it was (the quote is the CSV's, not the value's)
    back = classtable.read_csv(str(tmp_path / "class.csv"))
    subs = {r["submission"] for r in back}
    assert HOSTILE in subs and "+cmd|' /C calc'!A0" in subs
    assert classtable.to_csv(classtable.fill_missing(back)) == \
        (tmp_path / "class.csv").read_text()


# --- end to end: hostile candidates through the real grader ------------------------------
@pytest.mark.timeout(90)
def test_terminal_escapes_in_a_clients_output_stay_visible(grade, candidates, tmp_path):
    g = grade("--cassini", candidates("client", "terminal-escapes"), "--cases",
              "001-list-empty,003-list-one-task", "--summary", str(tmp_path / "summary.txt"))
    assert g.code == 1 and "Traceback" not in g.stderr, g.stderr
    assert g.json is not None and g.json["exit_status"] == 1
    for text in (g.stdout, (tmp_path / "summary.txt").read_text(),
                 json.dumps(g.json, ensure_ascii=False)):
        assert _no_raw_controls(text), repr(text[:400])
    assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in g.stdout      # shown, not obeyed
    assert "\\x1b[2J" in g.stdout
    junit = (tmp_path / "junit.xml").read_bytes()
    assert b"\x1b" not in junit and b"\x07" not in junit and b"\\x1b[2J" in junit


@pytest.mark.timeout(90)
def test_a_daemon_whose_pipes_path_is_not_utf8(grade, candidates):
    g = grade("--saturnd", candidates("daemon", "bad-utf8-pipes"), "--scenarios",
              "list-empty,remove", "--no-scheduling")
    assert "Traceback" not in g.stderr and "UnicodeEncodeError" not in g.stderr, g.stderr
    assert g.json is not None, g.stderr                            # the JSON is not lost
    assert g.status("daemon-protocol", "list-empty") == "pass", g.stdout
    assert g.status("daemon-protocol", "remove") == "fail"
    assert g.code == 1
    text = g.text("daemon-protocol", "remove")
    assert "\\xff\\xfe" in text, text                               # the path, shown
    assert _no_raw_controls(g.stdout)


@pytest.mark.timeout(90)
def test_a_candidate_path_that_is_not_utf8(grade, candidates):
    where = Path(tempfile.mkdtemp(prefix="grader-bad-name-", dir="/var/tmp"))
    try:
        where.chmod(0o755)
        odd = os.path.join(os.fsencode(where), b"sub\xff\xfe\x1b[2J")
        os.mkdir(odd, 0o755)
        dest = os.path.join(odd, b"cassini")
        shutil.copy2(candidates("client", "ok"), dest)
        g = grade("--cassini", os.fsdecode(dest), "--cases", "001-list-empty")
        assert g.code == 0, g.stdout + g.stderr
        assert "\\xff\\xfe\\x1b[2J" in g.json["candidate"]["cassini"]
        assert g.verdicts("client", "001-list-empty") == {"strict": "pass", "course": "pass"}
    finally:
        shutil.rmtree(where, ignore_errors=True)

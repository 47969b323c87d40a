"""class.html in a real browser (headless Chromium, Debian package `chromium`): the page
loads, sorts when a header is clicked, links to every submission's reports, fits the
window (no horizontal scroll at 1280 px), and a screenshot is taken (kept under the
test's tmp path, and copied to $GRADER_ARTIFACTS_DIR when set)."""

import html.parser
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from grader import classtable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") \
    or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no headless browser (Debian package chromium)")

CATS = ["client", "client-strict", "daemon-protocol", "daemon-scheduling"]


def _row(sub, strict, course, grading="ok", build="ok", reasons=()):
    totals = {"client": (78, 55), "client-strict": (3, 0), "daemon-protocol": (9, 8),
              "daemon-scheduling": (6, 6)}
    row = {"submission": sub, "build": build, "build_status": "0" if build == "ok" else "2",
           "cassini": "cassini", "saturnd": "saturnd", "grading": grading, "runs": "1",
           "flaky_count": "0", "flaky": "",
           "reasons": classtable.REASONS_SEP.join(reasons)}
    for p, score in (("strict", strict), ("course", course)):
        if score is None:
            row.update({f"{p}_passed": "", f"{p}_total": "", f"{p}_percent": ""})
            continue
        passed = total = 0
        for cat in CATS:
            t = totals[cat][0 if p == "strict" else 1]
            # daemon scenarios: the same verdicts under both profiles
            got = 0 if cat == "client-strict" else \
                round(t * (strict if cat.startswith("daemon") else score))
            row[f"{p}:{cat}"] = f"{got}/{t}"
            passed, total = passed + got, total + t
        row.update({f"{p}_passed": str(passed), f"{p}_total": str(total),
                    f"{p}_percent": f"{100 * passed / total:.1f}"})
    return row


@pytest.fixture
def page(tmp_path):
    out = tmp_path / "grade-class"
    rows = [_row("alice", 0.9, 1.0, reasons=["client: 7x stdout: expected b'0\\n', got b'1\\n'"]),
            _row("bob", 0.3, 0.5, reasons=["client: 40x sent no request (expected b'LS')",
                                            "daemon-protocol: 2x cassini -l: no reply"]),
            _row("carol", 0.0, 0.0, build="failed", grading="not graded (build failed)"),
            _row("dave", None, None, grading="error: run 1: no JSON report"),
            _row("erin", 0.6, 0.7)]
    rows[2]["build_status"] = "2"
    for r in rows:
        d = out / r["submission"]
        d.mkdir(parents=True)
        (d / "build.log").write_text("make: ok\n")
        if r["build"] == "ok":
            for f in ("run1.log", "run1.json", "run1.junit.xml", "result.json"):
                (d / f).write_text("{}\n")
    classtable.write_all(rows, str(out / "class"))
    return out / "class.html"


def _browse(url, *args, timeout=60):
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--window-size=1280,900",
                        "--virtual-time-budget=3000", *args, url],
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


class Dom(html.parser.HTMLParser):
    """The rows' order, the links and the root's data attributes of a dumped DOM."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.links, self.root, self.sorted = [], [], {}, {}
        self._in_body = self._first_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.depth = getattr(self, "depth", 0) + 1
        if getattr(self, "depth", 0) > 1 and tag in ("tr", "td"):
            return                                  # a row's details, not a row
        if tag == "html":
            self.root = a
        elif tag == "tbody" and not self.rows:
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._first_cell = True
        elif tag == "td" and self._in_body and self._first_cell:
            self.rows.append(a.get("data-v"))
            self._first_cell = False
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "th" and a.get("aria-sort"):
            self.sorted[a.get("data-key")] = a["aria-sort"]

    def handle_endtag(self, tag):
        if tag == "table":
            self.depth -= 1
        if tag == "tbody" and self.depth == 1:
            self._in_body = False


@pytest.mark.timeout(180)
def test_class_page_sorts_links_and_fits_in_a_browser(page, tmp_path):
    url = page.resolve().as_uri()
    dom = Dom(_browse(url, "--dump-dom"))
    assert dom.rows == ["alice", "bob", "carol", "dave", "erin"]      # loads, by name
    assert dom.root.get("data-overflow") == "false"                   # no horizontal scroll
    # every link goes to a report that exists
    assert dom.links, "no links to the submissions' reports"
    for href in dom.links:
        assert (page.parent / unquote(href)).is_file(), href
    assert "alice/run1.log" in dom.links and "carol/build.log" in dom.links
    # sorted by clicks on the header (the page's #sort= clicks it): best strict first,
    # the failed grade (no score) last; then by course, lowest first
    dom = Dom(_browse(url + "#sort=-strict", "--dump-dom"))
    assert dom.rows == ["alice", "erin", "bob", "carol", "dave"], dom.rows
    assert dom.sorted == {"strict": "descending"}
    dom = Dom(_browse(url + "#sort=course", "--dump-dom"))
    assert dom.rows[:1] == ["dave"] and dom.rows[-1] == "alice", dom.rows
    dom = Dom(_browse(url + "#sort=-submission", "--dump-dom"))
    assert dom.rows == ["erin", "dave", "carol", "bob", "alice"]
    # a screenshot, for a human to look at (CI keeps it as an artifact)
    shot = tmp_path / "class-page.png"
    _browse(url + "#sort=-strict", f"--screenshot={shot}")
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5000
    artifacts = os.environ.get("GRADER_ARTIFACTS_DIR")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(artifacts) / "class-page.png")


def test_class_page_reads_at_a_glance(page):
    text = page.read_text()
    head = text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    # one score column per profile, not one per profile and category
    assert head.count("<th") <= 8, head
    assert "0/0" not in text.split("<tbody>", 1)[1].split("<details>", 1)[0]
    assert "grading failed" in text                       # a failed grade shown as such
    assert "Denominators: strict counts every test the kit ran (96); course" in text
    assert "Nobody passed a single test of: strict:client-strict" in text
    assert "Same under both profiles (shown once): daemon-scheduling" in text
    assert "<details>" in text and "sent no request" in text

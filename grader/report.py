"""Grading outcomes, the JUnit XML report and the human summary.

Every text here may carry a candidate's bytes (its stderr, the paths it chose, its output
decoded): :func:`visible` makes them inert -- bytes that are not UTF-8 (lone surrogates
from ``os.fsdecode``) become ``\\xNN``, control and escape characters become ``\\xNN``
too -- before any writer sees them, so no report writer can fail on them and no escape
sequence reaches a teacher's terminal.
"""

from xml.sax.saxutils import escape, quoteattr

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    import os
    from collections.abc import Iterable, Mapping, Sequence

CATEGORY_TITLES = {
    "build": "build (make)",
    "client": "client conformance (golden vectors)",
    "client-strict": "client: beyond the course's reference (NUL bytes, ...)",
    "course-cases": "client: the course's own cases (--cases-dir)",
    "daemon-protocol": "daemon conformance: protocol",
    "daemon-scheduling": "daemon conformance: scheduling",
    "daemon-extension": "daemon conformance: extension requests",
    "differential": "differential (candidate vs reference client)",
}


PROFILES = ("strict", "course")


class Outcome:
    """One test's result.  ``verdicts`` holds one verdict per profile (``strict``: byte
    for byte; ``course``: the course script's rules); ``status`` is the headline
    profile's.  Where the profiles do not differ (daemon scenarios, build) both equal
    ``status``.  ``lines``: one-line facts the summary always shows (client stderr,
    the other profile's reason)."""

    def __init__(self, category: str, name: str, status: str, message: str = "",
                 detail: str = "", duration: float = 0.0,
                 verdicts: "Mapping[str, str] | None" = None, lines: "Iterable[str]" = (),
                 tags: "Iterable[str]" = ()) -> None:
        assert status in ("pass", "fail", "skip")
        self.category = category
        self.name = name
        self.status = status
        self.message = message      # one line
        self.detail = detail        # the full diagnosis
        self.duration = duration
        self.verdicts = dict(verdicts) if verdicts else {p: status for p in PROFILES}
        self.lines = list(lines)
        self.tags = list(tags)

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def __repr__(self) -> str:
        return f"Outcome({self.category}/{self.name}: {self.status} {self.message!r})"


def _invisible(c: str, keep: str) -> bool:
    o = ord(c)
    if c in keep:
        return False
    return o < 32 or 0x7f <= o <= 0x9f or 0xd800 <= o <= 0xdfff or \
        o in (0x2028, 0x2029, 0xfeff, 0xfffe, 0xffff) or 0x202a <= o <= 0x202e or \
        0x2066 <= o <= 0x2069


def visible(text: object, keep: str = "\n") -> str:
    """``text`` (str or bytes) made inert for a terminal, a text report, XML or a table:
    C0 and C1 control characters (ESC included), DEL, bidirectional overrides and bytes
    that are not UTF-8 (``os.fsdecode``'s lone surrogates) become ``\\xNN`` / ``\\uNNNN``;
    the characters of ``keep`` (newline by default) stay.  Never raises."""
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "surrogateescape")
    elif not isinstance(text, str):
        text = str(text)
    out = []
    for c in text:
        if not _invisible(c, keep):
            out.append(c)
            continue
        o = ord(c)
        if 0xdc80 <= o <= 0xdcff:          # an undecodable byte kept by surrogateescape
            out.append(f"\\x{o - 0xdc00:02x}")
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}")
    return "".join(out)


def _clean(text: object) -> str:
    # XML 1.0 cannot carry most control characters, even escaped; nor lone surrogates
    return visible(text, keep="\t\n")


def write_junit(path: "str | os.PathLike[str]", outcomes: "Sequence[Outcome]",
                properties: "Sequence[tuple[str, object]]" = (), name: str = "saturnd-grade",
                prefix: str = "grade.") -> None:
    """The JUnit XML report: one ``testsuite`` per category, in order of appearance; each
    test's class name is ``prefix`` + its category.  The grader's and the golden runner's
    (:func:`grader.golden.write_junit`) reports."""
    cats: list[str] = []
    for o in outcomes:
        if o.category not in cats:
            cats.append(o.category)
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n']
    total = len(outcomes)
    fails = sum(o.status == "fail" for o in outcomes)
    skips = sum(o.status == "skip" for o in outcomes)
    parts.append(f'<testsuites name={quoteattr(_clean(name))} tests="{total}" failures="{fails}" '
                 f'skipped="{skips}">\n')
    for cat in cats:
        mine = [o for o in outcomes if o.category == cat]
        parts.append(f'  <testsuite name={quoteattr(_clean(cat))} tests="{len(mine)}" '
                     f'failures="{sum(o.status == "fail" for o in mine)}" '
                     f'skipped="{sum(o.status == "skip" for o in mine)}" '
                     f'time="{sum(o.duration for o in mine):.3f}">\n')
        if properties:
            parts.append("    <properties>\n")
            for k, v in properties:
                parts.append(f"      <property name={quoteattr(_clean(k))} "
                             f"value={quoteattr(_clean(v))}/>\n")
            parts.append("    </properties>\n")
        for o in mine:
            parts.append(f'    <testcase classname={quoteattr(_clean(prefix + cat))} '
                         f'name={quoteattr(_clean(o.name))} time="{o.duration:.3f}">')
            if o.status == "fail":
                parts.append(f'\n      <failure message={quoteattr(_clean(o.message))}>'
                             f'{escape(_clean(o.detail or o.message))}</failure>\n    ')
            elif o.status == "skip":
                parts.append(f'\n      <skipped message={quoteattr(_clean(o.message))}/>\n    ')
            parts.append("</testcase>\n")
        parts.append("  </testsuite>\n")
    parts.append("</testsuites>\n")
    with open(path, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write("".join(parts))


def scores(outcomes: "Iterable[Outcome]") -> dict[str, dict[str, dict[str, int]]]:
    """{profile: {category: {"passed": N, "total": N}}}; skipped tests are not counted."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for prof in PROFILES:
        table: dict[str, dict[str, int]] = {}
        for o in outcomes:
            t = table.setdefault(o.category, {"passed": 0, "total": 0})
            v = o.verdicts.get(prof, o.status)
            if v != "skip":
                t["total"] += 1
                t["passed"] += v == "pass"
        out[prof] = table
    return out


def summary(outcomes: "Sequence[Outcome]", notes: "Sequence[str]" = (), failure_lines: int = 6,
            headline: str = "strict") -> str:
    """A text a teacher can read: the score per category under both profiles (the
    headline one first), then every failure -- grouped by category and by message, with
    the decoded values and the client's stderr -- never truncated."""
    other = "course" if headline == "strict" else "strict"
    lines = ["saturnd-grade summary", ""]
    cats: list[str] = []
    for o in outcomes:
        if o.category not in cats:
            cats.append(o.category)
    width = max([len(CATEGORY_TITLES.get(c, c)) for c in cats] + [10])
    sc = scores(outcomes)
    lines.append(f"  {'':<{width}}  {headline + ' (headline)':<20}  {other}")

    def cell(t: dict[str, int]) -> str:
        if not t["total"]:
            return f"{'n/a':<20}"
        return f"{t['passed']:3d}/{t['total']:<3d} {100 * t['passed'] / t['total']:5.1f}%".ljust(20)
    totals = {p: {"passed": 0, "total": 0} for p in PROFILES}
    for cat in cats:
        mine = [o for o in outcomes if o.category == cat]
        skipped = sum(o.status == "skip" for o in mine)
        extra = f"  ({skipped} skipped)" if skipped else ""
        for p in PROFILES:
            totals[p]["passed"] += sc[p][cat]["passed"]
            totals[p]["total"] += sc[p][cat]["total"]
        lines.append(f"  {CATEGORY_TITLES.get(cat, cat):<{width}}  {cell(sc[headline][cat])}  "
                     f"{cell(sc[other][cat]).rstrip()}{extra}")
    if totals[headline]["total"] or totals[other]["total"]:
        lines.append(f"  {'total':<{width}}  {cell(totals[headline])}  "
                     f"{cell(totals[other]).rstrip()}")
    if notes:
        lines.append("")
        lines.extend(f"  note: {n}" for n in notes)
    failed = [o for o in outcomes if "fail" in (o.status, *o.verdicts.values())]
    told: set[str] = set()                # a message shared by two categories is told once
    if failed:
        lines.append("")
        lines.append(f"failures ({sum(o.status == 'fail' for o in outcomes)} under {headline}, "
                     f"{sum(o.verdicts.get(other) == 'fail' for o in outcomes)} under {other}), "
                     f"grouped:")
        for cat in cats:
            mine = [o for o in failed if o.category == cat]
            if not mine:
                continue
            lines.append(f"[{cat}]")
            groups: dict[str, list[Outcome]] = {}
            for o in mine:
                groups.setdefault(o.message, []).append(o)
            for message, group in groups.items():
                if message in told and message:
                    lines.append(f"- {len(group)} tests: the same reason as above")
                    lines.append(f"    {', '.join(f'{o.name} ({_marks(o)})' for o in group)}")
                    continue
                told.add(message)
                if len(group) > 1:
                    names = ", ".join(f"{o.name} ({_marks(o)})" for o in group)
                    lines.append(f"- {len(group)} tests: {message}")
                    lines.append(f"    {names}")
                    shown = group[:1]
                else:
                    lines.append(f"- {group[0].name} ({_marks(group[0])}): {message}")
                    shown = group
                for o in shown:
                    body = [ln for ln in (o.detail or "").splitlines() if ln.strip()]
                    body = [ln for ln in body if not ln.startswith(("FAIL ", "PASS "))
                            and ln not in o.lines and ln.strip() != o.message.strip()
                            and ln != "--- cassini stderr ---"]
                    for ln in o.lines:
                        lines.append(f"    {ln}")
                    for ln in body[:failure_lines]:
                        lines.append(f"    {ln}")
                    if len(body) > failure_lines:
                        lines.append(f"    ... ({len(body) - failure_lines} more lines in the "
                                     f"JUnit report)")
                if len(group) > 1:
                    stderr_lines = [(o.name, ln) for o in group[1:] for ln in o.lines
                                    if ln.startswith("client stderr:")]
                    for name, ln in stderr_lines:
                        lines.append(f"    {name}: {ln}")
    not_run = [o for o in outcomes if o.status == "skip"]
    if not_run:
        reasons = sorted({o.message for o in not_run})
        lines.append("")
        lines.append(f"skipped ({len(not_run)}): " + "; ".join(reasons))
    return visible("\n".join(lines) + "\n")


def _marks(o: Outcome) -> str:
    return ", ".join(f"{p} {o.verdicts.get(p, o.status)}" for p in PROFILES)


def write_json(path: "str | os.PathLike[str]", outcomes: "Sequence[Outcome]", headline: str,
               candidate: "Mapping[str, str | None]", build_status: object, exit_status: int,
               notes: "Sequence[str]" = ()) -> None:
    """The machine-readable report (version 1; the contract is in grader/README.md)."""
    import json
    def text(value: object) -> str | None:
        return None if value is None else visible(value, keep="")
    data = {
        "version": 1,
        "headline": headline,
        "candidate": {"cassini": text(candidate.get("cassini")),
                      "saturnd": text(candidate.get("saturnd"))},
        "build": {"status": build_status},
        "cases": [{"category": text(o.category), "name": text(o.name),
                   "tags": [text(t) for t in o.tags],
                   "verdicts": {p: o.verdicts.get(p, o.status) for p in PROFILES},
                   "message": text(" ".join(o.message.split()))}
                  for o in outcomes],
        "scores": scores(outcomes),
        "exit_status": exit_status,
        "notes": [text(n) for n in notes],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")

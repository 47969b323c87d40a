"""Grading outcomes, the JUnit XML report and the human summary."""

from xml.sax.saxutils import escape, quoteattr

CATEGORY_TITLES = {
    "build": "build (make)",
    "client": "client conformance (golden vectors)",
    "daemon-protocol": "daemon conformance: protocol",
    "daemon-scheduling": "daemon conformance: scheduling",
    "daemon-extension": "daemon conformance: extension requests",
    "differential": "differential (candidate vs reference client)",
}


class Outcome:
    def __init__(self, category, name, status, message="", detail="", duration=0.0):
        assert status in ("pass", "fail", "skip")
        self.category = category
        self.name = name
        self.status = status
        self.message = message      # one line
        self.detail = detail        # the full diagnosis
        self.duration = duration

    @property
    def ok(self):
        return self.status == "pass"

    def __repr__(self):
        return f"Outcome({self.category}/{self.name}: {self.status} {self.message!r})"


def _clean(text):
    # XML 1.0 cannot carry most control characters, even escaped
    return "".join(c if c in "\t\n\r" or ord(c) >= 32 else f"\\x{ord(c):02x}" for c in text)


def write_junit(path, outcomes, properties=()):
    cats = []
    for o in outcomes:
        if o.category not in cats:
            cats.append(o.category)
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n']
    total = len(outcomes)
    fails = sum(o.status == "fail" for o in outcomes)
    skips = sum(o.status == "skip" for o in outcomes)
    parts.append(f'<testsuites name="saturnd-grade" tests="{total}" failures="{fails}" '
                 f'skipped="{skips}">\n')
    for cat in cats:
        mine = [o for o in outcomes if o.category == cat]
        parts.append(f'  <testsuite name={quoteattr(cat)} tests="{len(mine)}" '
                     f'failures="{sum(o.status == "fail" for o in mine)}" '
                     f'skipped="{sum(o.status == "skip" for o in mine)}" '
                     f'time="{sum(o.duration for o in mine):.3f}">\n')
        if properties:
            parts.append("    <properties>\n")
            for k, v in properties:
                parts.append(f"      <property name={quoteattr(k)} value={quoteattr(_clean(v))}/>\n")
            parts.append("    </properties>\n")
        for o in mine:
            parts.append(f'    <testcase classname={quoteattr("grade." + cat)} '
                         f'name={quoteattr(o.name)} time="{o.duration:.3f}">')
            if o.status == "fail":
                parts.append(f'\n      <failure message={quoteattr(_clean(o.message))}>'
                             f'{escape(_clean(o.detail or o.message))}</failure>\n    ')
            elif o.status == "skip":
                parts.append(f'\n      <skipped message={quoteattr(_clean(o.message))}/>\n    ')
            parts.append("</testcase>\n")
        parts.append("  </testsuite>\n")
    parts.append("</testsuites>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(parts))


def summary(outcomes, notes=(), failure_lines=6, max_failures=30):
    """A short text a teacher can read: score per category, then each failure's head."""
    lines = ["saturnd-grade summary", ""]
    cats = []
    for o in outcomes:
        if o.category not in cats:
            cats.append(o.category)
    width = max([len(CATEGORY_TITLES.get(c, c)) for c in cats] + [10])
    total_run = total_pass = 0
    for cat in cats:
        mine = [o for o in outcomes if o.category == cat]
        run = [o for o in mine if o.status != "skip"]
        passed = sum(o.ok for o in run)
        total_run += len(run)
        total_pass += passed
        pct = f"{100 * passed / len(run):5.1f}%" if run else "  n/a "
        skipped = len(mine) - len(run)
        extra = f"  ({skipped} skipped)" if skipped else ""
        lines.append(f"  {CATEGORY_TITLES.get(cat, cat):<{width}}  {passed:3d}/{len(run):<3d} "
                     f"{pct}{extra}")
    if total_run:
        lines.append(f"  {'total':<{width}}  {total_pass:3d}/{total_run:<3d} "
                     f"{100 * total_pass / total_run:5.1f}%")
    if notes:
        lines.append("")
        lines.extend(f"  note: {n}" for n in notes)
    failed = [o for o in outcomes if o.status == "fail"]
    if failed:
        lines.append("")
        lines.append(f"failures ({len(failed)}):")
        for o in failed[:max_failures]:
            lines.append(f"- [{o.category}] {o.name}: {o.message}")
            body = [ln for ln in (o.detail or "").splitlines() if ln.strip()]
            body = [ln for ln in body if not ln.startswith(("FAIL ", "PASS "))]
            if body and body[0].strip() == o.message.strip():
                body = body[1:]
            for ln in body[:failure_lines]:
                lines.append(f"    {ln}")
            if len(body) > failure_lines:
                lines.append(f"    ... ({len(body) - failure_lines} more lines in the JUnit report)")
        if len(failed) > max_failures:
            lines.append(f"- ... and {len(failed) - max_failures} more failures "
                         f"(all in the JUnit report)")
    skipped = [o for o in outcomes if o.status == "skip"]
    if skipped:
        reasons = sorted({o.message for o in skipped})
        lines.append("")
        lines.append(f"skipped ({len(skipped)}): " + "; ".join(reasons))
    return "\n".join(lines) + "\n"

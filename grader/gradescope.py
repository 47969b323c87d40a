"""Gradescope's autograder results (``results.json``) from a grade.

The format is Gradescope's "Autograder Specifications" (``/autograder/results/results.json``):
a top-level ``score``, ``output``, ``execution_time``, and ``tests``, one per graded case
with ``name``, ``number``, ``score``, ``max_score``, ``status`` (``passed``/``failed``) and
``output``.  Here:

- one test per case not skipped under the headline profile (``--profile``): a case the
  course's script never grades is not a test under ``course``; every test is worth the
  same (``points`` / the number of tests; default 1 each);
- ``output`` is the case's one-line reason and its facts (client stderr, the other
  profile's verdict), as plain text (``output_format`` ``text``: never HTML, Markdown or
  ANSI, so a candidate's bytes cannot format anything), every control character visible;
- the submission's ``output`` is the summary's head: the score per category under both
  profiles and the notes;
- the grade's other reports (JUnit for CI systems, ``--json``) are unchanged.
"""

import json

from .report import CATEGORY_TITLES, PROFILES, scores, visible

OUTPUT_LIMIT = 4000         # characters of output per test (Gradescope shows them all)


def _text(value, limit=OUTPUT_LIMIT):
    text = visible(value)
    return text if len(text) <= limit else text[:limit - 20] + "\n... (cut)"


def results(outcomes, headline="strict", notes=(), execution_time=None, points=None):
    """The results.json object of a grade (see the module's docstring)."""
    graded = [o for o in outcomes if o.verdicts.get(headline, o.status) != "skip"]
    each = (points / len(graded)) if points and graded else 1.0
    tests = []
    for n, o in enumerate(graded, 1):
        verdict = o.verdicts.get(headline, o.status)
        other = [f"{p}: {o.verdicts.get(p, o.status)}" for p in PROFILES]
        lines = [o.message] if o.message else []
        lines += [ln for ln in o.lines if ln and ln != o.message]
        if o.category == "build" and o.detail:
            lines.append("build log (last lines):\n" + o.detail)
        lines.append("verdicts: " + ", ".join(other))
        tests.append({
            "name": _text(f"{o.category}: {o.name}", 200),
            "number": str(n),
            "score": round(each if verdict == "pass" else 0.0, 4),
            "max_score": round(each, 4),
            "status": "passed" if verdict == "pass" else "failed",
            "output": _text("\n".join(lines)),
            "output_format": "text",
            "tags": [_text(o.category, 100)],
            "visibility": "visible",
        })
    sc = scores(outcomes)
    head = [f"saturnd-grade: the tests are graded under the {headline} profile; both "
            f"profiles' scores:"]
    for cat in sc[headline]:
        cells = [f"{p} {sc[p][cat]['passed']}/{sc[p][cat]['total']}" for p in PROFILES
                 if sc[p].get(cat, {}).get("total")]
        if cells:
            head.append(f"{CATEGORY_TITLES.get(cat, cat)}: {', '.join(cells)}")
    head += [f"note: {n}" for n in notes]
    skipped = len(outcomes) - len(graded)
    if skipped:
        head.append(f"{skipped} cases not graded under {headline} (not tests here)")
    data = {
        "score": round(sum(t["score"] for t in tests), 4),
        "output": _text("\n".join(head)),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if execution_time is not None:
        data["execution_time"] = int(round(execution_time))
    return data


def write_results(path, outcomes, headline="strict", notes=(), execution_time=None,
                  points=None):
    data = results(outcomes, headline, notes, execution_time, points)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    return data

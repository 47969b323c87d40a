"""Result rows: one measured quantity each, with its baseline, ratio and target."""

import math


def row(section, key, what, value, unit, *, p99=None, n=None, baseline=None,
        baseline_value=None, limit=None, on="value", note=None, extra=None):
    """A result row.

    ``value`` (and ``p99``, ``baseline_value``) are in ``unit``.  When
    ``baseline_value`` is given, ``ratio = value / baseline_value``.  When
    ``limit`` is given the target is ``<on> <= limit`` (``on`` is ``"value"``,
    ``"p99"`` or ``"ratio"``) and ``met`` says whether it holds.
    """
    ratio = None
    if baseline_value:
        ratio = value / baseline_value
    r = {
        "section": section,
        "key": key,
        "what": what,
        "unit": unit,
        "value": value,
        "p99": p99,
        "n": n,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "target": None,
        "met": None,
        "note": note,
    }
    if limit is not None:
        measured = {"value": value, "p99": p99, "ratio": ratio}[on]
        r["target"] = {"on": on, "max": limit}
        r["met"] = measured is not None and not math.isnan(measured) and measured <= limit
    if extra:
        r["extra"] = extra
    return r


def target_text(r):
    t = r.get("target")
    if not t:
        return ""
    if t["on"] == "ratio":
        return f"<= {t['max']:g}x"
    label = "p99 " if t["on"] == "p99" else ""
    return f"{label}<= {_num(t['max'])} {r['unit']}"


def _num(v):
    if v is None:
        return ""
    if isinstance(v, int):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def table(rows, markdown=False):
    """The result table as text (plain columns, or a Markdown table)."""
    head = ["section", "measure", "median/p50", "p99", "baseline", "ratio", "target", "met"]
    lines = []
    for r in rows:
        unit = r["unit"]
        base = ""
        if r["baseline_value"] is not None:
            base = f"{_num(r['baseline_value'])} {unit} ({r['baseline']})"
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        lines.append([
            r["section"],
            r["what"],
            f"{_num(r['value'])} {unit}",
            f"{_num(r['p99'])} {unit}" if r["p99"] is not None else "",
            base,
            f"{r['ratio']:.2f}x" if r["ratio"] is not None else "",
            target_text(r),
            met,
        ])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(head)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line).rstrip() for line in lines]
    return "\n".join(out)

"""The class table: one row per submission, written as CSV, Markdown and HTML.

The CSV is the canonical form: the Markdown and HTML tables are rendered from the same
rows, and ``merge`` rebuilds the whole table from per-shard CSVs (CI sharding), so a row
must carry everything the table shows.

Columns: the fixed ones below, then one column per profile and category
(``strict:client``, ``course:daemon-protocol``, ...) holding ``passed/total``.
"""

import csv
import html
import io

from grader.report import visible

PROFILES = ("strict", "course")
FIXED = ["submission", "build", "build_status", "cassini", "saturnd", "grading", "runs",
         "strict_passed", "strict_total", "strict_percent",
         "course_passed", "course_total", "course_percent",
         "flaky_count", "flaky"]


class TableError(Exception):
    pass


def category_columns(rows):
    """``profile:category`` columns present in ``rows``, in a fixed order."""
    cats = set()
    for row in rows:
        for key in row:
            if ":" in key:
                prof, cat = key.split(":", 1)
                if prof in PROFILES:
                    cats.add(cat)
    return [f"{p}:{c}" for p in PROFILES for c in sorted(cats)]


def columns(rows):
    return FIXED + category_columns(rows)


def sort_rows(rows):
    return sorted(rows, key=lambda r: visible(r["submission"], keep=""))


# A spreadsheet takes a cell starting with one of these for a formula (=HYPERLINK(...),
# +cmd|...): such cells are written as text, behind a quote (read_csv takes it off again).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value):
    """A CSV cell a spreadsheet shows as text: control characters (tab, CR included) made
    visible, a leading formula character behind a ``'``."""
    text = visible(value, keep="")
    return "'" + text if text.startswith(FORMULA_START) else text


def _uninert(value):
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) \
        else value


def to_csv(rows):
    rows = sort_rows(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[inert_cell(c) for c in columns(rows)], restval="",
                       lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({inert_cell(k): inert_cell(v) for k, v in row.items()})
    return buf.getvalue()


def read_csv(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "submission" not in reader.fieldnames:
                raise TableError(f"{path}: not a class table (no 'submission' column)")
            missing = [c for c in FIXED if c not in reader.fieldnames]
            if missing:
                raise TableError(f"{path}: not a class table (missing column {missing[0]!r})")
            rows = []
            for row in reader:
                if None in row:
                    raise TableError(f"{path}: line {reader.line_num}: more fields than columns")
                rows.append({k: _uninert(v or "") for k, v in row.items()})
            return rows
    except OSError as e:
        raise TableError(f"{path}: {e.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise TableError(f"{path}: not a readable CSV file ({e})") from None


def merge(tables):
    """Rows of several class tables (``[(name, rows)]``): a submission in two is an error."""
    seen = {}
    out = []
    for name, rows in tables:
        for row in rows:
            sub = row["submission"]
            if sub in seen:
                raise TableError(f"submission {sub!r} is in both {seen[sub]} and {name}")
            seen[sub] = name
            out.append(row)
    return sort_rows(out)


def _totals(rows):
    """A last line: how many submissions, built, and the class's mean per profile."""
    built = sum(1 for r in rows if r.get("build") == "ok")
    means = {}
    for p in PROFILES:
        vals = [float(r[f"{p}_percent"]) for r in rows if r.get(f"{p}_percent")]
        means[p] = f"{sum(vals) / len(vals):.1f}" if vals else ""
    return len(rows), built, means


SHORT = {"submission": "submission", "build": "build", "cassini": "cassini",
         "saturnd": "saturnd", "grading": "grading", "flaky": "flaky cases"}


def _display(rows):
    """Header and cells for the human tables (fewer columns than the CSV)."""
    cats = category_columns(rows)
    head = ["submission", "build", "cassini", "saturnd", "grading",
            "strict", "course"] + cats + ["flaky cases"]
    body = []
    for r in rows:
        cells = [r["submission"],
                 r["build"] + (f" ({r['build_status']})" if r["build"] == "failed" else ""),
                 r["cassini"], r["saturnd"], r["grading"]]
        for p in PROFILES:
            if r[f"{p}_total"]:
                cells.append(f"{r[f'{p}_passed']}/{r[f'{p}_total']} ({r[f'{p}_percent']} %)")
            else:
                cells.append("")
        cells += [r.get(c, "") for c in cats]
        cells.append(r["flaky"].replace(";", "; ") if r["flaky"] else "")
        body.append(cells)
    return head, body


def to_markdown(rows):
    rows = sort_rows(rows)
    head, body = _display(rows)

    def esc(s):
        # no raw HTML (a Markdown viewer renders it), no table break, nothing invisible
        text = html.escape(visible(str(s).replace("\n", " "), keep=""), quote=False)
        return text.replace("|", "\\|").replace("`", "\\`")
    lines = ["| " + " | ".join(esc(h) for h in head) + " |", "|" + "---|" * len(head)]
    for cells in body:
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    n, built, means = _totals(rows)
    lines.append("")
    lines.append(f"{n} submissions, {built} built; class mean: strict {means['strict'] or '-'} %, "
                 f"course {means['course'] or '-'} %. Flaky cases (verdict changed between "
                 f"runs) are not counted as passed; a program not built or not found scores 0 of "
                 f"the full count.")
    return "\n".join(lines) + "\n"


def to_html(rows, title="Class table"):
    rows = sort_rows(rows)
    head, body = _display(rows)
    def e(text):
        return html.escape(visible(text, keep=""))
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
           f"<title>{e(title)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:2px 6px;text-align:left}"
           "tr.bad td{background:#fdd}td.flaky{color:#a60}</style>",
           "</head><body>", f"<h1>{e(title)}</h1>", "<table>",
           "<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for r, cells in zip(rows, body):
        bad = r["build"] != "ok" or not r["grading"].startswith("ok")
        tds = "".join(f"<td>{e(str(c))}</td>" for c in cells[:-1])
        tds += f"<td class=\"flaky\">{e(cells[-1])}</td>"
        cls = ' class="bad"' if bad else ""
        out.append(f"<tr{cls}>{tds}</tr>")
    n, built, means = _totals(rows)
    out.append("</table>")
    out.append(f"<p>{n} submissions, {built} built; class mean: strict "
               f"{e(means['strict'] or '-')} %, course {e(means['course'] or '-')} %. "
               f"Flaky cases (verdict changed between runs) are not counted as passed; a "
               f"program not built or not found scores 0 of the full count.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def program_of(category):
    """Which program a category grades (daemon-* the daemon, everything else the client)."""
    return "saturnd" if category.startswith("daemon") else "cassini"


def fill_missing(rows):
    """A program that was not built or not found scores 0 of the class's full count.

    Its empty ``profile:category`` cells become ``0/T`` (T: the largest total of that column
    in the class) and the row's totals are recomputed from its cells, so a missing daemon or
    a failed build never shows as a smaller total.  Rows whose grading failed (``error``)
    are left as they are: that is the kit's failure, for the teacher to look at.
    Idempotent: shards filled on their own are filled again, consistently, when merged."""
    cols = category_columns(rows)
    full = {}
    for col in cols:
        totals = [int(r[col].split("/")[1]) for r in rows if r.get(col)]
        if totals:
            full[col] = max(totals)
    out = []
    for row in rows:
        row = dict(row)
        if not row["grading"].startswith("error"):
            changed = False
            for col in cols:
                prog = program_of(col.split(":", 1)[1])
                if not row.get(col) and col in full and row[prog] in ("", "missing"):
                    row[col] = f"0/{full[col]}"
                    changed = True
            if changed:
                for p in PROFILES:
                    cells = [row[c] for c in cols if c.startswith(p + ":") and row.get(c)]
                    passed = sum(int(c.split("/")[0]) for c in cells)
                    total = sum(int(c.split("/")[1]) for c in cells)
                    row[f"{p}_passed"], row[f"{p}_total"] = str(passed), str(total)
                    row[f"{p}_percent"] = f"{100.0 * passed / total:.1f}" if total else ""
        out.append(row)
    return out


def write_all(rows, prefix):
    """``prefix.csv``, ``prefix.md``, ``prefix.html``; returns their paths."""
    try:
        rows = fill_missing(rows)
    except (ValueError, IndexError):
        raise TableError("a score cell is not PASSED/TOTAL") from None
    paths = []
    for ext, text in (("csv", to_csv(rows)), ("md", to_markdown(rows)),
                      ("html", to_html(rows))):
        path = f"{prefix}.{ext}"
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        paths.append(path)
    return paths

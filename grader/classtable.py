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
import os

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
    return FIXED + [c for c in OPTIONAL if any(c in r for r in rows)] + category_columns(rows)


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


OPTIONAL = ["reasons"]      # columns newer than some shards' tables: empty when absent
REASONS_SEP = " || "


def _failed_grade(r):
    return r.get("grading", "").startswith("error")


def _totals(rows):
    """How many submissions, built, graded, failed grades, and the class's mean per
    profile (over the graded rows only: a failed grade has no score)."""
    built = sum(1 for r in rows if r.get("build") == "ok")
    means = {}
    for p in PROFILES:
        vals = [float(r[f"{p}_percent"]) for r in rows
                if r.get(f"{p}_percent") and not _failed_grade(r)]
        means[p] = f"{sum(vals) / len(vals):.1f}" if vals else ""
    scored = sum(1 for r in rows if not _failed_grade(r) and any(
        r.get(f"{p}_percent") for p in PROFILES))
    return len(rows), built, means, scored, sum(1 for r in rows if _failed_grade(r))


def _same_under_both(rows, cats):
    """Categories whose cell is the same under both profiles in every row."""
    names = sorted({c.split(":", 1)[1] for c in cats})
    return [n for n in names
            if f"strict:{n}" in cats and f"course:{n}" in cats
            and all(r.get(f"strict:{n}", "") == r.get(f"course:{n}", "") for r in rows)]


def _nobody_passes(rows, cats):
    """Columns where nobody passed a single test (each cell 0/T, T > 0)."""
    out = []
    for c in cats:
        cells = [r.get(c, "") for r in rows if r.get(c)]
        if cells and all(x.split("/")[0] == "0" and x.split("/")[1] != "0" for x in cells):
            out.append(c)
    return out


def _max_total(rows, p):
    vals = [int(r[f"{p}_total"]) for r in rows if r.get(f"{p}_total", "").isdigit()]
    return max(vals) if vals else 0


def notes(rows):
    """The lines under the table: counts and means, denominators, columns worth a word."""
    cats = category_columns(rows)
    n, built, means, scored, failed = _totals(rows)
    out = [f"{n} submissions, {built} built, {scored} scored"
           + (f", {failed} whose grading failed (no score, not in the mean: see its run log)"
              if failed else "")
           + f"; class mean over the {scored} scored: strict {means['strict'] or '-'} %, "
             f"course {means['course'] or '-'} %."]
    ts, tc = _max_total(rows, "strict"), _max_total(rows, "course")
    if ts or tc:
        out.append(f"Denominators: strict counts every test the kit ran ({ts}); course only "
                   f"those the course's own script would grade ({tc}): no usage-error case "
                   f"(it fails 'sent no request' on them), nothing beyond its reference "
                   f"(tag strict, extension), no strict-only case or scenario.")
    same = [n for n in _same_under_both(rows, cats)
            if any(r.get(f"strict:{n}", "") not in ("", "0/0") for r in rows)]
    if same:
        out.append("Same under both profiles (shown once): " + ", ".join(same) + ".")
    nobody = _nobody_passes(rows, cats)
    if nobody:
        out.append("Nobody passed a single test of: " + ", ".join(nobody)
                   + " -- check the kit or the subject before counting it.")
    out.append("Flaky cases (verdict changed between runs) are not counted as passed; a "
               "program not built or not found scores 0 of the full count.")
    return out


def _score(r, p):
    if _failed_grade(r):
        return "grading failed"
    if r.get(f"{p}_total"):
        return f"{r[f'{p}_passed']}/{r[f'{p}_total']} ({r[f'{p}_percent']} %)"
    return ""


def _reasons(r):
    return [x for x in r.get("reasons", "").split(REASONS_SEP) if x]


def _display(rows):
    """Header and cells for the Markdown table (fewer columns than the CSV): a category
    the same under both profiles is one column."""
    cats = category_columns(rows)
    same = set(_same_under_both(rows, cats))
    shown = [c for c in cats if c.split(":", 1)[1] not in same] + \
        [f"strict:{n}" for n in sorted(same)]
    # a column where no row has a single test (0/0 everywhere) says nothing
    shown = [c for c in shown if any(r.get(c, "") not in ("", "0/0") for r in rows)]
    heads = [c if c.split(":", 1)[1] not in same else c.split(":", 1)[1] + " (both)"
             for c in shown]
    head = ["submission", "build", "cassini", "saturnd", "grading",
            "strict", "course"] + heads + ["flaky cases", "top reasons"]
    body = []
    for r in rows:
        cells = [r["submission"],
                 r["build"] + (f" ({r['build_status']})" if r["build"] == "failed" else ""),
                 r["cassini"], r["saturnd"], r["grading"], _score(r, "strict"),
                 _score(r, "course")]
        cells += [r.get(c, "") for c in shown]
        cells.append(r["flaky"].replace(";", "; ") if r["flaky"] else "")
        cells.append("; ".join(_reasons(r)))
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
    return "\n".join(lines) + "\n\n" + "\n\n".join(esc(n) for n in notes(rows)) + "\n"


REPORT_FILES = (("run log", "run1.log"), ("JUnit", "run1.junit.xml"), ("JSON", "run1.json"),
                ("build log", "build.log"), ("result", "result.json"))

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%;max-width:80em}
th,td{border-bottom:1px solid #ccc;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.bad td{background:#fde8e8}tr.error td{background:#fff1cc}
.bar{display:inline-block;height:.6em;background:#4a8;margin-left:.4em;vertical-align:middle}
details summary{cursor:pointer;color:#036}
ul.reasons{margin:.2em 0;padding-left:1.2em}
table.cats{width:auto;margin:.3em 0}table.cats td,table.cats th{border:1px solid #ddd;cursor:auto}
.flag{color:#a00;font-weight:bold}.notes li{margin:.2em 0}.flaky{color:#a60}
"""

_SCRIPT = """
(function(){
var table=document.getElementById('class');var heads=table.tHead.rows[0].cells;
function sortBy(i,dir){var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
 var num=heads[i].dataset.type==='num';
 rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;
  if(num){x=x===''?-1:parseFloat(x);y=y===''?-1:parseFloat(y);return dir*(x-y)||
   a.cells[0].dataset.v.localeCompare(b.cells[0].dataset.v);}
  return dir*x.localeCompare(y);});
 rows.forEach(function(r){body.appendChild(r);});
 for(var j=0;j<heads.length;j++)heads[j].removeAttribute('aria-sort');
 heads[i].setAttribute('aria-sort',dir>0?'ascending':'descending');}
for(var i=0;i<heads.length;i++)(function(i){if(heads[i].dataset.key===undefined)return;
 heads[i].addEventListener('click',function(){
  sortBy(i,heads[i].getAttribute('aria-sort')==='descending'?1:
   (heads[i].getAttribute('aria-sort')==='ascending'?-1:
  (heads[i].dataset.type==='num'?-1:1)));});})(i);
// class.html#sort=-strict: sorted as by clicks on that header (descending with '-')
var m=/sort=(-?)([\\w-]+)/.exec(location.hash);
if(m)for(var k=0;k<heads.length;k++)if(heads[k].dataset.key===m[2]){
 var want=m[1]?'descending':'ascending';heads[k].click();
 if(heads[k].getAttribute('aria-sort')!==want)heads[k].click();}
var root=document.documentElement;
root.dataset.overflow=String(root.scrollWidth>root.clientWidth);
})();
"""


def to_html(rows, title="Class table", links=None):
    """A page that reads at a glance: one score column per profile (sortable: click a
    header, or open ``class.html#sort=-strict``), the top reasons, details on demand (the
    category cells, every reason, links to the submission's reports).  ``links``:
    ``{submission: [(label, relative href)]}``."""
    rows = sort_rows(rows)
    links = links or {}
    cats = category_columns(rows)
    same = set(_same_under_both(rows, cats))
    nobody = set(_nobody_passes(rows, cats))
    own = [c for c in cats if c.endswith(":course-cases")]

    def e(text):
        return html.escape(visible(text, keep=""))

    def num(r, p):
        return "" if _failed_grade(r) else r.get(f"{p}_percent", "")

    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
           f"<title>{e(title)}</title>", f"<style>{_STYLE}</style>", "</head><body>",
           f"<h1>{e(title)}</h1>",
           "<p>Click a column header to sort. Open a row's details for every category, "
           "its reasons and its reports.</p>",
           "<table id=\"class\"><thead><tr>",
           "<th data-key=\"submission\">submission</th><th data-key=\"build\">build</th>",
           "<th data-key=\"grading\">grading</th>",
           "<th data-key=\"strict\" data-type=\"num\" title=\"byte for byte\">strict</th>",
           "<th data-key=\"course\" data-type=\"num\" title=\"the course script's rules\">"
           "course</th>"]
    for c in own:
        out.append(f"<th data-key=\"{e(c.replace(':', '-'))}\" data-type=\"num\">"
                   f"{e(c.split(':')[0])}: course's own cases</th>")
    out.append("<th data-key=\"flaky\" data-type=\"num\">flaky</th>"
               "<th data-key=\"reasons\">top reasons (details)</th></tr></thead><tbody>")
    for r in rows:
        cls = "error" if _failed_grade(r) else \
            "bad" if r["build"] not in ("ok", "no makefile") or not r["grading"].startswith("ok") \
            else ""
        sub = r["submission"]
        mine = links.get(sub, [])
        name = e(sub) if not mine else f"<a href=\"{e(mine[0][1])}\">{e(sub)}</a>"
        build = r["build"] + (f" ({r['build_status']})" if r["build"] == "failed" else "")
        cells = [f"<td data-v=\"{e(sub)}\">{name}</td>",
                 f"<td data-v=\"{e(build)}\">{e(build)}</td>",
                 f"<td data-v=\"{e(r['grading'])}\">{e(r['grading'])}</td>"]
        for p in PROFILES:
            v = num(r, p)
            bar = f"<span class=\"bar\" style=\"width:{float(v) * 0.6:.0f}px\"></span>" \
                if v else ""
            cells.append(f"<td class=\"num\" data-v=\"{e(v)}\">{e(_score(r, p))}{bar}</td>")
        for c in own:
            cell = r.get(c, "")
            try:
                v = f"{100 * int(cell.split('/')[0]) / int(cell.split('/')[1]):.1f}"
            except (ValueError, IndexError, ZeroDivisionError):
                v = ""
            cells.append(f"<td class=\"num\" data-v=\"{v}\">{e(cell)}</td>")
        cells.append(f"<td class=\"num flaky\" data-v=\"{e(r.get('flaky_count') or '0')}\" "
                     f"title=\"{e(r['flaky'])}\">"
                     f"{e(r.get('flaky_count', '').strip('0') and r['flaky_count'])}</td>")
        reasons = _reasons(r)
        short = reasons[0] if reasons else ("" if r["grading"].startswith("ok")
                                            else r["grading"])
        detail = ["<details><summary>" + (e(short[:90] + ("..." if len(short) > 90 else ""))
                                          or "details") + "</summary>"]
        if reasons:
            detail.append("<ul class=\"reasons\">" + "".join(f"<li>{e(x)}</li>" for x in reasons)
                          + "</ul>")
        detail.append(f"<div>cassini: {e(r['cassini'] or '-')}; saturnd: "
                      f"{e(r['saturnd'] or '-')}; runs: {e(r['runs'])}</div>")
        if r["flaky"]:
            detail.append(f"<div class=\"flaky\">flaky: {e(r['flaky'].replace(';', '; '))}</div>")
        names = sorted({c.split(":", 1)[1] for c in cats})
        if names:
            detail.append("<table class=\"cats\"><tr><th>category</th><th>strict</th>"
                          "<th>course</th></tr>")
            for n in names:
                flag = " <span class=\"flag\">nobody passes</span>" \
                    if f"strict:{n}" in nobody or f"course:{n}" in nobody else ""
                detail.append(f"<tr><td>{e(n)}{flag}</td><td>{e(r.get('strict:' + n, ''))}</td>"
                              f"<td>{e(r.get('course:' + n, '')) if n not in same else '(same)'}"
                              f"</td></tr>")
            detail.append("</table>")
        if mine:
            detail.append("<div>reports: " + ", ".join(
                f"<a href=\"{e(href)}\">{e(label)}</a>" for label, href in mine) + "</div>")
        detail.append("</details>")
        cells.append(f"<td data-v=\"{e(short)}\">{''.join(detail)}</td>")
        out.append(f"<tr class=\"{cls}\">" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    out.append("<ul class=\"notes\">" + "".join(f"<li>{e(n)}</li>" for n in notes(rows))
               + "</ul>")
    out.append(f"<script>{_SCRIPT}</script>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def report_links(rows, folders, page_dir):
    """``{submission: [(label, href)]}`` for the reports that exist: ``folders`` maps a
    submission to the folder holding its ``NAME/`` reports (a batch's output folder, or
    the shard's folder next to its class.csv); hrefs are relative to ``page_dir``.  The
    first is the submission's run log (else its build log)."""
    from urllib.parse import quote
    out = {}
    for r in rows:
        sub = r["submission"]
        folder = folders.get(sub)
        if not folder:
            continue
        rel = os.path.relpath(os.path.join(folder, sub), page_dir)
        have = [(label, "/".join(quote(os.fsencode(part))
                                 for part in rel.split(os.sep) + [f]))
                for label, f in REPORT_FILES if os.path.isfile(os.path.join(folder, sub, f))]
        if have:
            out[sub] = have
    return out


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


def write_all(rows, prefix, folders=None):
    """``prefix.csv``, ``prefix.md``, ``prefix.html``; returns their paths.  ``folders``:
    where each submission's reports are (see :func:`report_links`), default the folder of
    ``prefix``."""
    try:
        rows = fill_missing(rows)
    except (ValueError, IndexError):
        raise TableError("a score cell is not PASSED/TOTAL") from None
    paths = []
    page_dir = os.path.dirname(os.path.abspath(prefix))
    if folders is None:
        folders = {r["submission"]: page_dir for r in rows}
    links = report_links(rows, folders, page_dir)
    for ext, text in (("csv", to_csv(rows)), ("md", to_markdown(rows)),
                      ("html", to_html(rows, links=links))):
        path = f"{prefix}.{ext}"
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        paths.append(path)
    return paths

"""saturnd-grade batch: a class graded at once, its class table, flaky cases, CI shards.

Most tests use a stub grader (batch_fixtures/stub_grader.py) writing the grader's JSON
report, so they exercise batch itself in seconds; one test runs the real grader end to
end on two fixture submissions (when `saturnd-grade --json` exists).
"""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader import batch, classtable
from testkit.procs import default_sigint

ROOT = Path(__file__).resolve().parents[2]
STUB = Path(__file__).resolve().parent / "batch_fixtures" / "stub_grader.py"
STUB_CMD = f"{sys.executable} {STUB}"

CASES = [["client", "list-empty", "pass", "pass"],
         ["client", "list-one", "fail", "pass"],
         ["client", "remove", "pass", "pass"],
         ["daemon-protocol", "list-empty", "pass", "pass"],
         ["daemon-protocol", "remove", "fail", "fail"]]

# Makefiles: the programs are tiny shell scripts (the stub grader never runs them)
MAKE_TOP = "all:\n\tprintf '#!/bin/sh\\nexit 0\\n' > cassini\n\tcp cassini saturnd\n" \
           "\tchmod +x cassini saturnd\n"
MAKE_BIN = "all:\n\tmkdir -p bin\n\tprintf '#!/bin/sh\\nexit 0\\n' > bin/cassini\n" \
           "\tcp bin/cassini bin/saturnd\n\tchmod +x bin/cassini bin/saturnd\n"
MAKE_FAILS = "all:\n\t@echo 'cassini.c:1: error: expected ;'\n\texit 2\n"
MAKE_NO_SATURND = "all:\n\tprintf '#!/bin/sh\\nexit 0\\n' > cassini\n\tchmod +x cassini\n"
MAKE_SLOW = "all:\n\tsleep 120\n"


def make_submission(cls, name, makefile, stub=None):
    d = cls / name
    d.mkdir(parents=True)
    (d / "Makefile").write_text(makefile)
    (d / "stub.json").write_text(json.dumps(stub if stub is not None else {"cases": CASES}))
    return d


@pytest.fixture
def work():
    """A build folder the unprivileged build user can reach (not under /tmp)."""
    d = tempfile.mkdtemp(prefix="batch-test-", dir="/var/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_batch(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "grader", "batch", *args],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(ROOT))


def read_table(path):
    with open(path, newline="") as f:
        return {r["submission"]: r for r in csv.DictReader(f)}


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None)
                  for p in Path(folder).rglob("*"))


@pytest.fixture
def klass(tmp_path):
    cls = tmp_path / "class"
    make_submission(cls, "alice", MAKE_TOP)
    make_submission(cls, "bob", MAKE_BIN)
    make_submission(cls, "carol", MAKE_FAILS)
    make_submission(cls, "dave", MAKE_NO_SATURND)
    return cls


@pytest.mark.timeout(120)
def test_class_table_reports_and_builds(klass, tmp_path, work):
    before = snapshot(klass)
    out = tmp_path / "out"
    p = run_batch(str(klass), "-o", str(out), "-j", "2", "--grade-cmd", STUB_CMD,
                  "--work-dir", work, "--", "--extensions")
    assert p.returncode == 0, p.stderr
    assert snapshot(klass) == before, "the teacher's folders must not be built in"
    rows = read_table(out / "class.csv")
    assert list(rows) == ["alice", "bob", "carol", "dave"]
    a, b, c, d = (rows[n] for n in ("alice", "bob", "carol", "dave"))
    # both profiles, per category, from the grader's report
    assert (a["build"], a["cassini"], a["saturnd"], a["grading"]) == \
        ("ok", "cassini", "saturnd", "ok")
    assert (a["strict_passed"], a["strict_total"], a["course_passed"], a["course_total"]) == \
        ("3", "5", "4", "5")
    assert a["strict:client"] == "2/3" and a["course:client"] == "3/3"
    assert a["strict:daemon-protocol"] == "1/2" and a["strict_percent"] == "60.0"
    # make put them in bin/
    assert (b["cassini"], b["saturnd"]) == ("bin/cassini", "bin/saturnd")
    assert b["strict_passed"] == "3"
    # a failed build: its status, its log, nothing graded
    assert (c["build"], c["build_status"]) == ("failed", "2")
    assert c["grading"].startswith("not graded")
    # ... and it scores 0 of the class's full count (a failed build is not a smaller total)
    assert (c["strict_passed"], c["strict_total"], c["strict_percent"]) == ("0", "5", "0.0")
    assert (c["strict:client"], c["course:daemon-protocol"]) == ("0/3", "0/2")
    assert "expected ;" in (out / "carol" / "build.log").read_text()
    assert not (out / "carol" / "run1.json").exists()
    assert (c["cassini"], c["saturnd"]) == ("", "")
    # no saturnd: reported, and the grader is not told about one
    assert (d["saturnd"], d["cassini"]) == ("missing", "cassini")
    rep = json.loads((out / "dave" / "run1.json").read_text())
    assert "--saturnd" not in rep["argv"] and rep["argv"][-1] == "--extensions"
    assert d["strict:client"] == "2/3"
    assert d["reasons"].startswith("saturnd: missing (scored 0 of the full count)")
    # the missing daemon scores 0 of its full count, beside the others' 5
    assert d["strict:daemon-protocol"] == "0/2" and d["course:daemon-protocol"] == "0/2"
    assert (d["strict_passed"], d["strict_total"], d["strict_percent"]) == ("2", "5", "40.0")
    # per-submission reports
    for n in ("alice", "bob", "dave"):
        res = json.loads((out / n / "result.json").read_text())
        assert res["runs"] == 1 and res["grading"] == "ok"
        assert (out / n / "run1.log").read_text().startswith("stub: graded")
    # Markdown and HTML hold the same rows
    md = (out / "class.md").read_text()
    assert "| alice | ok | cassini | saturnd | ok | 3/5 (60.0 %) | 4/5 (80.0 %) |" in md
    assert "| carol | failed (2) |  |  | not graded (build failed) | 0/5 (0.0 %) |" in md
    assert "mean over the 4 scored: strict 40.0 %, course 55.0 %" in md
    html = (out / "class.html").read_text()
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr class=") == 4 and "cassini: bin/cassini" in html
    # each row links to its reports, which exist
    assert '<a href="alice/run1.log">alice</a>' in html
    assert '<a href="carol/build.log">carol</a>' in html
    for href in {h.split('"')[0] for h in html.split('href="')[1:]}:
        assert (out / href).is_file(), href
    # the top reasons of each submission, in every table
    assert "client: 1x" in a["reasons"] and "daemon-protocol: 1x" in a["reasons"]
    assert "client: 1x" in md and "client: 1x" in html
    # the built copies are gone
    assert os.listdir(work) == []


@pytest.mark.timeout(120)
def test_flaky_cases_are_listed_and_not_counted(tmp_path, work):
    cls = tmp_path / "class"
    make_submission(cls, "erin", MAKE_TOP,
                    {"cases": CASES, "flaky": [["client", "list-empty"]]})
    make_submission(cls, "frank", MAKE_TOP)
    out1, out2 = tmp_path / "once", tmp_path / "twice"
    p = run_batch(str(cls), "-o", str(out1), "--grade-cmd", STUB_CMD, "--work-dir", work)
    assert p.returncode == 0, p.stderr
    once = read_table(out1 / "class.csv")
    # one run cannot see it: counted as the run said (pass)
    assert once["erin"]["strict:client"] == "2/3" and once["erin"]["flaky_count"] == "0"
    p = run_batch(str(cls), "-o", str(out2), "--repeat", "2", "--grade-cmd", STUB_CMD,
                  "--work-dir", work)
    assert p.returncode == 0, p.stderr
    twice = read_table(out2 / "class.csv")
    e = twice["erin"]
    assert (e["flaky_count"], e["flaky"]) == ("1", "client/list-empty")
    assert e["strict:client"] == "1/3" and e["course:client"] == "2/3"
    assert (e["strict_passed"], e["strict_total"], e["runs"]) == ("2", "5", "2")
    assert "client/list-empty" in (out2 / "class.md").read_text()
    f = twice["frank"]
    assert f["flaky_count"] == "0" and f["strict_passed"] == "3"
    res = json.loads((out2 / "erin" / "result.json").read_text())
    assert res["flaky"][0]["verdicts"] == [{"strict": "pass", "course": "pass"},
                                           {"strict": "fail", "course": "fail"}]


@pytest.mark.timeout(120)
def test_grading_the_same_class_twice_gives_the_same_table(klass, tmp_path, work):
    tables = []
    for k in (1, 2):
        out = tmp_path / f"out{k}"
        p = run_batch(str(klass), "-o", str(out), "-j", "3", "--grade-cmd", STUB_CMD,
                      "--work-dir", work)
        assert p.returncode == 0, p.stderr
        tables.append(tuple((out / f"class.{ext}").read_bytes() for ext in ("csv", "md", "html")))
    assert tables[0] == tables[1]


@pytest.mark.timeout(120)
def test_a_crashing_or_hanging_grader_costs_one_submission(tmp_path, work):
    cls = tmp_path / "class"
    make_submission(cls, "gina", MAKE_TOP, {"cases": CASES, "crash": True})
    make_submission(cls, "hugo", MAKE_TOP, {"cases": CASES, "hang": True})
    make_submission(cls, "ivan", MAKE_TOP)
    out = tmp_path / "out"
    t0 = time.monotonic()
    p = run_batch(str(cls), "-o", str(out), "-j", "3", "--timeout", "4",
                  "--grade-cmd", STUB_CMD, "--work-dir", work, "--keep-builds")
    assert time.monotonic() - t0 < 45
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    rows = read_table(out / "class.csv")
    assert rows["gina"]["grading"] == "error: run 1: no JSON report (grader exit status 3)"
    assert rows["hugo"]["grading"] == "error: run 1: the grader took more than 4 s"
    assert rows["ivan"]["grading"] == "ok" and rows["ivan"]["strict_passed"] == "3"
    # the hanging grader was killed, not left behind
    hanging = list(Path(work).glob("batch-hugo-*/src/hanging"))
    assert len(hanging) == 1
    pid = int(hanging[0].read_text())
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")


@pytest.mark.timeout(60)
def test_a_build_that_never_ends_is_stopped(tmp_path, work):
    cls = tmp_path / "class"
    make_submission(cls, "jack", MAKE_SLOW)
    out = tmp_path / "out"
    t0 = time.monotonic()
    p = run_batch(str(cls), "-o", str(out), "--build-timeout", "2", "--grade-cmd", STUB_CMD,
                  "--work-dir", work)
    assert time.monotonic() - t0 < 30
    assert p.returncode == 0, p.stderr
    row = read_table(out / "class.csv")["jack"]
    assert (row["build"], row["grading"]) == ("timeout", "not graded (build timeout)")
    assert "killed after 2 s" in (out / "jack" / "build.log").read_text()


@pytest.mark.timeout(180)
def test_shards_merge_into_the_class_table(klass, tmp_path, work):
    make_submission(klass, "erin", MAKE_TOP, {"cases": CASES[:3]})
    full = tmp_path / "full"
    p = run_batch(str(klass), "-o", str(full), "--grade-cmd", STUB_CMD, "--work-dir", work)
    assert p.returncode == 0, p.stderr
    # a class list (relative paths, comments), in two shards as the CI matrix runs it
    listing = tmp_path / "class.txt"
    listing.write_text("# the class\n" + "\n".join(f"class/{n}" for n in
                                                   ("dave", "alice", "erin", "carol", "bob"))
                       + "\n\n")
    shards = []
    for k in (1, 2):
        out = tmp_path / f"shard{k}"
        p = run_batch(str(listing), "-o", str(out), "--shard", f"{k}/2",
                      "--grade-cmd", STUB_CMD, "--work-dir", work)
        assert p.returncode == 0, p.stderr
        shards.append(out / "class.csv")
    assert list(read_table(shards[0])) == ["alice", "carol", "erin"]
    assert list(read_table(shards[1])) == ["bob", "dave"]
    # shard 2 has no client-only submission with fewer categories: columns differ, merge copes
    merged = tmp_path / "merged" / "class"
    p = run_batch("merge", "-o", str(merged), str(shards[1]), str(shards[0]))
    assert p.returncode == 0, p.stderr
    for ext in ("csv", "md"):
        assert (tmp_path / "merged" / f"class.{ext}").read_bytes() == \
            (full / f"class.{ext}").read_bytes(), ext
    # the same page, its links going to the shards' reports
    page = (tmp_path / "merged" / "class.html").read_text()
    assert '<a href="../shard1/alice/run1.log">alice</a>' in page
    assert '<a href="../shard2/bob/run1.log">bob</a>' in page
    for k in (1, 2):
        page = page.replace(f"../shard{k}/", "")
    assert page == (full / "class.html").read_text()
    # the same submission in two shards is an error, not a silent double
    p = run_batch("merge", "-o", str(tmp_path / "dup"), str(shards[0]), str(shards[0]))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "'alice' is in both" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["batch", "merge", "{tmp}/nothing.csv"], "nothing.csv: No such file"),
    (["batch", "merge", "{tmp}/bad.csv"], "not a class table"),
    (["batch", "{tmp}/nothing"], "no such folder or class list file"),
    (["batch", "{tmp}/empty"], "no submission folder"),
    (["batch", "{tmp}/list.txt"], "list.txt:2: no such submission folder: ghost"),
    (["batch", "{tmp}/dups.txt"], "two submissions are named 'x'"),
    (["batch", "{tmp}/empty", "--repeat", "0"], "--repeat must be at least 1"),
    (["batch", "{tmp}/empty", "--shard", "3/2"], "need 1 <= K <= N"),
    (["batch", "{tmp}/empty", "--shard", "x"], "expected K/N"),
])
@pytest.mark.timeout(30)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.csv").write_text("name,score\nx,1\n")
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "b" / "x").mkdir(parents=True)
    (tmp_path / "list.txt").write_text("a/x\nghost\n")
    (tmp_path / "dups.txt").write_text("a/x\nb/x\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "grader",
                        *[a.format(tmp=tmp_path) for a in args]],
                       capture_output=True, text=True, timeout=20, env=env, cwd=str(ROOT))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and message in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_combine_counts_a_flaky_case_nowhere_as_passed():
    def rep(*verdicts):
        cases = [{"category": "client", "name": f"c{i}", "verdicts": {"strict": s, "course": c}}
                 for i, (s, c) in enumerate(verdicts)]
        return {"cases": cases, "scores": batch.scores_from_cases(cases)}
    # c0 stable pass, c1 flips under course only, c2 stable fail, c3 fail then pass
    r1 = rep(("pass", "pass"), ("fail", "pass"), ("fail", "fail"), ("fail", "fail"))
    r2 = rep(("pass", "pass"), ("fail", "fail"), ("fail", "fail"), ("pass", "pass"))
    scores, flaky = batch.combine([r1, r2, r1])
    assert [f["name"] for f in flaky] == ["c1", "c3"]
    assert scores == {"strict": {"client": {"passed": 1, "total": 4}},
                      "course": {"client": {"passed": 1, "total": 4}}}
    # a case missing from a run is flaky too
    r3 = {"cases": r1["cases"][:3], "scores": r1["scores"]}
    assert [f["name"] for f in batch.combine([r1, r3])[1]] == ["c3"]
    assert batch.combine([r1, r1]) == (r1["scores"], [])


def test_merge_rejects_rows_that_do_not_fit(tmp_path):
    good = classtable.to_csv([{"submission": "x", **{c: "" for c in classtable.FIXED[1:]}}])
    path = tmp_path / "t.csv"
    path.write_text(good + "y,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n")
    with pytest.raises(classtable.TableError, match="more fields than columns"):
        classtable.read_csv(path)
    rows = list(csv.DictReader(io.StringIO(good)))
    assert rows[0]["submission"] == "x"


# -- the real grader, end to end -------------------------------------------------------------

def _grader_has_json():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "grader", "--help"], capture_output=True,
                       text=True, timeout=30, env=env, cwd=str(ROOT))
    return "--json" in p.stdout


def our_pair_makefile(lib, python):
    """A submission whose make writes wrappers running this project's cassini/saturnd
    (``lib``: where the packages are, relative to the submission when not absolute: a
    container sees nothing but the submission)."""
    lines = ["all:"]
    # a script's sys.path[0] is its own folder
    where = f'"{lib}"' if os.path.isabs(lib) else f'sys.path[0] + "/{lib}"'
    for prog in ("cassini", "saturnd"):
        lines.append(f"\tprintf '#!{python}\\nimport sys\\nsys.path.insert(0, {where})\\n"
                     f"from {prog}.__main__ import main\\nsys.exit(main())\\n' > {prog}")
        lines.append(f"\tchmod 755 {prog}")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(240)
@pytest.mark.skipif(not _grader_has_json(), reason="saturnd-grade has no --json report yet")
def test_real_grader_end_to_end(tmp_path, work):
    from grader.programs import copy_packages
    cls = tmp_path / "class"
    (cls / "ours").mkdir(parents=True)
    copy_packages(str(cls / "ours" / "lib"))        # inside the submission: all it sees
    (cls / "ours" / "Makefile").write_text(our_pair_makefile("lib", "/usr/bin/python3"))
    make_submission(cls, "broken", MAKE_FAILS)
    out = tmp_path / "out"
    p = run_batch(str(cls), "-o", str(out), "-j", "2", "--work-dir", work, "--",
                  "--cases", "001-list-empty,003-list-one-task", "--scenarios", "list-empty",
                  "--no-scheduling", timeout=200)
    assert p.returncode == 0, p.stderr + "".join(
        f.read_text() for f in out.glob("*/run1.log"))
    rows = read_table(out / "class.csv")
    assert rows["broken"]["build"] == "failed"
    ours = rows["ours"]
    assert ours["grading"] == "ok"
    assert ours["strict_total"] != "0" and ours["strict_passed"] == ours["strict_total"]
    assert ours["course_passed"] == ours["course_total"]


# -- the CI templates --------------------------------------------------------------------------

PIPELINES = ROOT / "ci" / "pipelines"


def gitlab_jobs(text):
    """The templates' GitLab jobs, read without a YAML library (PyYAML is not a dependency):
    {job: {"script": [line, ...], key: value, ...}} for top-level keys and their direct
    scalar children, plus the list items of ``script:`` (continuation lines folded)."""
    jobs, job, in_script = {}, None, False
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("- ") else raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            job = jobs.setdefault(line.rstrip(":").split(":")[0], {"script": []})
            in_script = False
        elif indent == 2:
            key, _, value = line.strip().partition(":")
            in_script = key == "script"
            if not in_script:
                job[key] = value.strip()
        elif in_script and line.lstrip().startswith("- "):
            job["script"].append(line.strip()[2:])
        elif in_script and indent > 4:
            job["script"][-1] += " " + line.strip()
    return jobs


@pytest.mark.timeout(180)
def test_gitlab_class_pipeline_shards_and_merges(klass, tmp_path, work):
    """Run the GitLab template's own script lines, shard by shard, then its merge job."""
    text = (PIPELINES / "gitlab-ci-class.yml").read_text()
    spec = gitlab_jobs(text)
    shards = int(spec["grade-shard"]["parallel"])
    assert shards >= 2
    assert spec["class-table"]["needs"] == "[grade-shard]"
    assert spec["class-table"]["when"] == "always"
    variables = {k: v.strip('"') for k, v in spec["variables"].items() if k != "script"}
    project = tmp_path / "project"
    project.mkdir()
    (project / "class.txt").write_text("".join(f"{klass}/{n}\n" for n in sorted(os.listdir(klass))))
    stub = tmp_path / "stub-grade"
    stub.write_text(f"#!/bin/sh\nexec {sys.executable} {STUB} \"$@\"\n")
    stub.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "saturnd-grade").write_text(f"#!/bin/sh\nexec {sys.executable} -m grader \"$@\"\n")
    (bindir / "saturnd-grade").chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{bindir}:{os.environ['PATH']}",
               **variables)
    env["BATCH_OPTIONS"] += f" --grade-cmd {stub} --work-dir {work}"
    from grader import container
    env["GRADER_CANDIDATE_IMAGE"] = container.IMAGE     # the job's image, here the local one
    if not container.available():
        env["BATCH_OPTIONS"] += " --trusted"

    def job(name, **extra):
        assert spec[name]["script"]
        for line in spec[name]["script"]:
            p = subprocess.run(["bash", "-ec", line], cwd=project, env=dict(env, **extra),
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (line, p.stderr)
        return p
    for k in range(1, shards + 1):
        job("grade-shard", CI_NODE_INDEX=str(k), CI_NODE_TOTAL=str(shards))
    assert len(list(project.glob("grade-out/shard-*/class.csv"))) == shards
    p = job("class-table")
    assert "| alice | ok |" in p.stdout
    full = tmp_path / "full"
    q = run_batch(str(klass), "-o", str(full), *variables["BATCH_OPTIONS"].split(),
                  "--grade-cmd", STUB_CMD, "--work-dir", work)
    assert q.returncode == 0, q.stderr
    assert (project / "class-table" / "class.csv").read_bytes() == \
        (full / "class.csv").read_bytes()


def test_github_class_pipeline_is_consistent():
    text = (PIPELINES / "github-actions-class.yml").read_text()
    import re
    matrix = re.search(r"^\s+shard: \[([0-9, ]+)\]$", text, re.M).group(1)
    shards = int(re.search(r"^  SHARDS: (\d+)", text, re.M).group(1))
    assert [int(x) for x in matrix.split(",")] == list(range(1, shards + 1))
    assert '--shard "${{ matrix.shard }}/$SHARDS"' in text
    table = text[text.index("  class-table:"):]
    assert "    needs: grade\n" in table and "    if: always()" in table
    assert "grader batch merge -o class-table/class shards/shard-*/class.csv" in table
    assert "name: shard-${{ matrix.shard }}" in text and "pattern: shard-*" in table


@pytest.mark.timeout(60)
def test_the_output_folder_never_overwrites_a_submission(klass, tmp_path, work):
    before = snapshot(klass)
    for out in (klass, klass / "alice", klass / "alice" / "deeper"):
        p = run_batch(str(klass), "-o", str(out), "--grade-cmd", STUB_CMD, "--work-dir", work)
        assert p.returncode == 2, (out, p.stderr)
        assert "would overwrite the submission" in p.stderr and p.stderr.count("\n") == 1
    assert snapshot(klass) == before
    # an output folder inside the class folder is not graded as a submission, run after run
    for _ in range(2):
        p = run_batch(str(klass), "-o", str(klass / "zz-results"), "--grade-cmd", STUB_CMD,
                      "--work-dir", work)
        assert p.returncode == 0, p.stderr
        assert list(read_table(klass / "zz-results" / "class.csv")) == \
            ["alice", "bob", "carol", "dave"]


@pytest.mark.timeout(60)
def test_a_fifo_left_in_a_submission_does_not_stop_its_build(tmp_path, work):
    """Students commit their daemon's pipes: the copy skips special files (and says so)."""
    cls = tmp_path / "class"
    d = make_submission(cls, "kim", MAKE_TOP)
    (d / "pipes").mkdir()
    os.mkfifo(d / "pipes" / "saturnd-request-pipe")
    out = tmp_path / "out"
    p = run_batch(str(cls), "-o", str(out), "--grade-cmd", STUB_CMD, "--work-dir", work)
    assert p.returncode == 0, p.stderr
    row = read_table(out / "class.csv")["kim"]
    assert (row["build"], row["grading"], row["strict_passed"]) == ("ok", "ok", "3")
    assert "not copied (not a regular file): pipes/saturnd-request-pipe" in \
        (out / "kim" / "build.log").read_text()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])     # Ctrl-C; a cancelled CI job
def test_interrupting_the_batch_leaves_no_grader_behind(tmp_path, work, sig):
    import signal
    cls = tmp_path / "class"
    for n in ("lea", "max", "ned"):
        make_submission(cls, n, MAKE_TOP, {"cases": CASES, "hang": True})
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "grader", "batch", str(cls), "-o",
                             str(tmp_path / "out"), "-j", "2", "--grade-cmd", STUB_CMD,
                             "--work-dir", work, "--keep-builds"],
                            cwd=str(ROOT), env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.monotonic() + 40
    def hanging():
        """{submission's build folder: its 'hanging' file} (in its container's box while
        it is graded, in the build folder once kept)"""
        found = list(Path(work).glob("batch-*/src/hanging")) + \
            list(Path(work).glob("batch-*/saturnd-box-*/src/hanging"))
        return {p.relative_to(work).parts[0]: p for p in found}
    while len(hanging()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    pids = [int(p.read_text()) for p in hanging().values()]
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=40)
    assert proc.returncode == 128 + getattr(signal, sig) and "interrupted" in err, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if os.path.exists(f"/proc/{p}")]
    # the third submission was never started
    assert len(hanging()) == 2


@pytest.mark.timeout(120)
def test_a_grade_starved_of_processes_by_its_neighbours_is_redone_alone(tmp_path, work):
    """Parallel grades share the sandbox user (nobody) and its process limit: a fork bomb
    in one submission makes another's candidate fail with EAGAIN ("Resource temporarily
    unavailable"). Batch grades such a submission again, alone, and keeps that grade."""
    cls = tmp_path / "class"
    counter = tmp_path / "grades-of-lena"
    make_submission(cls, "lena", MAKE_TOP, {"cases": CASES, "starve": str(counter)})
    make_submission(cls, "mona", MAKE_TOP)
    out = tmp_path / "out"
    p = run_batch(str(cls), "-o", str(out), "-j", "2", "--grade-cmd", STUB_CMD,
                  "--work-dir", work)
    assert p.returncode == 0, p.stderr
    assert counter.read_text() == "2"
    rows = read_table(out / "class.csv")
    lena = rows["lena"]
    assert lena["grading"] == "ok (graded again alone: out of processes beside others)"
    assert (lena["strict_passed"], lena["strict_total"]) == ("3", "5")
    assert "Resource temporarily unavailable" not in (out / "lena" / "run1.log").read_text()
    assert "Resource temporarily unavailable" in (out / "lena" / "parallel-run1.log").read_text()
    assert rows["mona"]["grading"] == "ok"
    # one at a time (-j 1) there is no neighbour to blame: the grade stands
    counter.unlink()
    p = run_batch(str(cls), "-o", str(out), "-j", "1", "--grade-cmd", STUB_CMD,
                  "--work-dir", work)
    assert p.returncode == 0, p.stderr
    assert counter.read_text() == "1"
    lena = read_table(out / "class.csv")["lena"]
    assert (lena["grading"], lena["strict_passed"]) == ("ok", "0")


@pytest.mark.timeout(120)
def test_hostile_submission_names_and_paths_stay_inert(tmp_path, work):
    """A submission named like a spreadsheet formula, with escape sequences and bytes that
    are not UTF-8 in its name and in the folder its programs are in: batch finishes, its
    progress lines and tables carry none of it raw."""
    cls = tmp_path / "class"
    cls.mkdir()
    odd = os.path.join(os.fsencode(cls), b"=HYPERLINK(\"x\")\x1b[2J\xff")
    os.mkdir(odd)
    nested = "all:\n\tmkdir -p '<img src=x onerror=alert(1)>'\n" \
             "\tprintf '#!/bin/sh\\nexit 0\\n' > '<img src=x onerror=alert(1)>/cassini'\n" \
             "\tchmod +x '<img src=x onerror=alert(1)>/cassini'\n"
    with open(os.path.join(odd, b"Makefile"), "w") as f:
        f.write(nested)
    with open(os.path.join(odd, b"stub.json"), "w") as f:
        json.dump({"cases": CASES}, f)
    make_submission(cls, "alice", MAKE_TOP)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "grader", "batch", str(cls), "-o", str(out),
                        "--grade-cmd", STUB_CMD, "--work-dir", work], capture_output=True,
                       timeout=100, env=env, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert b"\x1b" not in p.stderr and b"Traceback" not in p.stderr
    assert b"\\x1b[2J\\xff" in p.stderr
    with open(out / "class.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cells = [c for r in rows for c in r.values()]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))], cells
    assert "'=HYPERLINK(\"x\")\\x1b[2J\\xff" in cells
    for name in ("class.md", "class.html"):
        text = (out / name).read_text()
        assert "\x1b" not in text and "<img" not in text, name
    assert "&lt;img src=x onerror=alert(1)&gt;/cassini" in (out / "class.md").read_text()


def test_top_reasons_group_alike_failures_and_hide_no_category():
    def case(cat, msg, strict="fail", course="fail"):
        return {"category": cat, "name": msg, "verdicts": {"strict": strict, "course": course},
                "message": msg}
    report = {"cases": [case("client", f"stdout: expected b'{i}\\n', got b'{i}'", course="pass")
                        for i in range(5)]
              + [case("client", "exit status: expected 1, got 0")] * 2
              + [case("client", "sent no request")] * 2
              + [case("daemon-protocol", "cassini -r 0: the daemon did not answer")]
              + [case("client", "ok", "pass", "pass")]}
    assert batch.top_reasons(report) == [
        "client: 5x stdout: expected b'0\\n', got b'0'",      # 5 alike, the first shown
        "daemon-protocol: 1x cassini -r 0: the daemon did not answer",   # not hidden
        "client: 2x exit status: expected 1, got 0"]

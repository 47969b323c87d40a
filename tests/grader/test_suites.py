"""The grader's suites are declared once (grader/suites.py); counts come from the cases; the
"Add a case" and "Add a scenario" how-tos of grader/README.md work as written."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import ROOT

from grader import golden, own_requests, own_requests_next, report, scenarios, scheduling
from grader import suites

README = Path(ROOT) / "grader" / "README.md"


def test_the_registry_is_sound_and_holds_every_scenario_list():
    suites.check()
    for s in suites.SUITES:
        assert s.category in report.CATEGORY_TITLES, s
        assert set(s.profiles) <= set(report.PROFILES) and "strict" in s.profiles, s
    declared = [sc for s in suites.SUITES for sc in s.scenarios]
    for lst in (scenarios.PROTOCOL, scenarios.EXTENSIONS, own_requests.SCENARIOS,
                own_requests_next.PROTOCOL):
        assert all(sc in declared for sc in lst)
    checks = [c for s in suites.SUITES for c in s.checks]
    assert checks == scheduling.SCHEDULE_CHECKS + own_requests_next.SCHEDULE_CHECKS
    assert suites.golden_tags(False) == {"reference", "strict"}
    assert suites.golden_tags(True) == {"reference", "strict", "extension"}


def test_main_lists_no_suite_by_hand():
    """__main__ loops over the registry: no scenario list, check list or tag set of its own."""
    tree = ast.parse((Path(ROOT) / "grader" / "__main__.py").read_text())
    used = {f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    for name in ("scenarios.PROTOCOL", "scenarios.EXTENSIONS", "scheduling.SCHEDULE_CHECKS",
                 "own_requests.SCENARIOS", "own_requests_next.PROTOCOL",
                 "own_requests_next.SCHEDULE_CHECKS", "scheduling.scheduling",
                 "own_requests_next.next_runs_scheduling"):
        assert name not in used, name
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert not {"daemon-protocol", "daemon-extension", "daemon-scheduling", "extension"} \
        & strings


def test_loaders_skip_underscore_and_dot_names(tmp_path):
    src = Path(golden.CASES_DIR) / "061-remove-not-found"
    for name in ("061-remove-not-found", "_draft", ".hidden", "__pycache__"):
        shutil.copytree(src, tmp_path / name)
    (tmp_path / "README.md").write_text("not a case\n")
    assert [c.name for c in golden.load_cases(cases_dir=str(tmp_path))] == \
        ["061-remove-not-found"]


def test_the_generator_leaves_the_package_files_alone(tmp_path):
    copy = tmp_path / "cases"
    shutil.copytree(golden.CASES_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "_drafts").mkdir()
    (copy / "999-stale").mkdir()
    p = subprocess.run([sys.executable, str(copy / "make_cases.py")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (copy / "__init__.py").exists() and (copy / "README.md").exists()
    assert (copy / "make_cases.py").exists() and (copy / "_drafts").is_dir()
    assert not (copy / "999-stale").exists()
    # same bytes as the shipped cases
    for case in golden.load_cases():
        for f in Path(case.path).iterdir():
            assert (copy / case.name / f.name).read_bytes() == f.read_bytes(), f


def _grade(kit, *args, timeout=120):
    out = kit.parent / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("GRADER_CASES_DIR",)}
    env.update(PYTHONPATH=str(kit), GRADER_ISOLATION="light")
    p = subprocess.run([sys.executable, "-m", "grader", "--json", str(out), *args],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=str(kit))
    return p, (json.loads(out.read_text()) if out.exists() else None)


def _totals(rep, profile):
    return {cat: s["total"] for cat, s in rep["scores"][profile].items()
            if cat != "build" and s["total"]}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("extensions", [False, True])
def test_a_failed_build_is_scored_out_of_the_declared_counts(tmp_path, extensions):
    kit = _copy_kit(tmp_path)
    p, rep = _grade(kit, "--build-status", "2", *(["--extensions"] if extensions else []))
    assert p.returncode == 1, p.stdout + p.stderr
    for profile in ("strict", "course"):
        assert _totals(rep, profile) == suites.counts(extensions, profile), profile


def _copy_kit(tmp_path):
    kit = tmp_path / "kit"
    kit.mkdir()
    for pkg in ("saturnd", "cassini", "grader"):
        shutil.copytree(Path(ROOT) / pkg, kit / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return kit


def _howto(title):
    """The fenced code blocks of one section of grader/README.md, in order."""
    text = README.read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def _as_python_grader(command):
    """The how-to's `saturnd-grade ...` line as our test runs it (python -m grader)."""
    assert command.startswith("saturnd-grade "), command
    return command.split()[1:]


@pytest.mark.timeout(120)
def test_add_a_case_as_the_readme_says(tmp_path):
    kit = _copy_kit(tmp_path)
    blocks = _howto("Add a case")
    assert [lang for lang, _ in blocks] == ["sh", "sh"]
    before = suites.counts(False, "strict")["client"]
    p = subprocess.run(["sh", "-euc", blocks[0][1]], cwd=str(kit), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    new = re.search(r"mkdir grader/cases/(\S+)", blocks[0][1]).group(1)
    # a draft is not a case
    shutil.copytree(kit / "grader" / "cases" / new, kit / "grader" / "cases" / "_drafts" / new)
    # our client passes it
    p, rep = _grade(kit, *_as_python_grader(blocks[1][1].strip()))
    assert p.returncode == 0, p.stdout + p.stderr
    mine = [c for c in rep["cases"] if c["name"] == new]
    assert len(mine) == 1 and mine[0]["verdicts"] == {"strict": "pass", "course": "pass"}
    # and it is counted: one more test than the shipped cases
    p, rep = _grade(kit, "--build-status", "2", "--no-scheduling")
    assert rep["scores"]["strict"]["client"]["total"] == before + 1
    assert rep["scores"]["course"]["client"]["total"] == \
        suites.counts(False, "course")["client"] + 1


@pytest.mark.timeout(120)
def test_add_a_scenario_as_the_readme_says(tmp_path):
    kit = _copy_kit(tmp_path)
    blocks = _howto("Add a scenario")
    assert [lang for lang, _ in blocks] == ["python", "python", "sh"]
    module = re.search(r"e\.g\. `(grader/\w+\.py)`",
                       README.read_text().split("\n## Add a scenario\n", 1)[1]).group(1)
    (kit / module).write_text(blocks[0][1])
    with open(kit / "grader" / "suites.py", "a") as f:
        f.write("\n" + blocks[1][1])
    p, rep = _grade(kit, *_as_python_grader(blocks[2][1].strip()))
    assert p.returncode == 0, p.stdout + p.stderr
    mine = [c for c in rep["cases"] if c["name"] == "two-tasks-two-ids"]
    assert len(mine) == 1 and mine[0]["category"] == "daemon-protocol"
    assert mine[0]["verdicts"] == {"strict": "pass", "course": "pass"}
    # counted with the protocol scenarios: one more than declared in the shipped registry
    p, rep = _grade(kit, "--build-status", "2", "--no-scheduling")
    assert rep["scores"]["strict"]["daemon-protocol"]["total"] == \
        suites.counts(False, "strict")["daemon-protocol"] + 1


# --- grading that waits less, losing nobody points ------------------------------------------
def _stub_grading(monkeypatch, suite_list, speed=None, cassini=None):
    """A Grading whose daemon phase runs ``suite_list`` with no daemon at all."""
    import argparse
    from types import SimpleNamespace

    from grader import __main__ as main
    from grader.candidate import DaemonConfig, Failed

    monkeypatch.setattr(suites, "SUITES", suite_list)
    monkeypatch.setattr(main, "daemon_config", lambda g: DaemonConfig(
        options=None, saturnd="saturnd", clock="faketime", speed=speed or main.FAST_SPEED,
        libfaketime="/libfaketime.so.1"))
    monkeypatch.setattr(main, "daemon_slot", lambda g: __import__("contextlib").nullcontext())

    def run_scenario(cfg, category, name, func, observed=None):
        try:
            func(SimpleNamespace())
            return report.Outcome(category, name, "pass")
        except Failed as e:
            return report.Outcome(category, name, "fail", e.message)
    monkeypatch.setattr(scenarios, "run_scenario", run_scenario)
    opts = argparse.Namespace(extensions=False, scenarios=None, no_scheduling=False,
                              profile="strict", saturnd="saturnd", ours=False, speed=speed)
    g = main.Grading(opts, SimpleNamespace(box=None), "/nonexistent", [])
    g.saturnd, g.cassini = "saturnd", cassini
    return main, g


def test_a_hasty_scenario_that_fails_is_run_again_patient(monkeypatch):
    from grader.candidate import Failed
    seen = []

    def sc_needs_patience(ctx):
        seen.append(getattr(ctx, "patient", True))
        if not getattr(ctx, "patient", True):
            raise Failed("no reply within the hasty wait")

    def sc_quick(ctx):
        seen.append(getattr(ctx, "patient", True))

    suite = suites.Suite("t", "daemon-protocol", "scenarios",
                         scenarios=[("needs-patience", sc_needs_patience),
                                    ("quick", sc_quick)], hasty=("needs-patience",))
    main, g = _stub_grading(monkeypatch, [suite])
    g.opts.no_scheduling = True
    main.daemon_conformance(g)
    assert [(o.name, o.status) for o in g.outcomes] == [("needs-patience", "pass"),
                                                         ("quick", "pass")]
    assert seen == [False, True, True]      # hasty, then patient; a non-hasty one patient


@pytest.mark.parametrize("speed, runs, status", [
    (None, [60.0, 20.0], "pass"),       # too slow for x60: graded again at x20, passes
    (60.0, [60.0], "fail"),             # --speed given: one speed, no second attempt
])
def test_a_scheduling_suite_failing_fast_is_graded_again_at_the_safe_speed(
        monkeypatch, speed, runs, status):
    speeds = []

    def run(cfg, figures):
        speeds.append(cfg.speed)
        figures.append(f"figure at x{cfg.speed:g}")
        ok = cfg.speed <= 20
        return [report.Outcome("daemon-scheduling", "every-minute", "pass" if ok else "fail")]

    suite = suites.Suite("sched", "daemon-scheduling", "schedule", checks=["every-minute"],
                         run=run)
    main, g = _stub_grading(monkeypatch, [suite], speed=speed)
    main.daemon_conformance(g)
    assert speeds == runs
    assert [o.status for o in g.outcomes] == [status]
    assert g.figures == [f"figure at x{runs[-1]:g}"]     # the figures of the verdict kept
    assert any("graded again at x20" in n for n in g.notes) == (len(runs) == 2)


@pytest.mark.parametrize("client", ["fail", "pass"])
def test_daemon_outcomes_failing_beside_clients_are_graded_again_alone(monkeypatch, client):
    """A client writing into the daemon's pipes while they run side by side cannot cost the
    daemon points: what failed then is graded again with nothing beside it."""
    from grader.candidate import Failed
    beside = {"clients": False}

    def sc_disturbed(ctx):
        if beside["clients"]:
            raise Failed("a stranger's task in the listing")

    def sc_broken(ctx):
        raise Failed("always wrong")

    suite = suites.Suite("t", "daemon-protocol", "scenarios",
                         scenarios=[("disturbed", sc_disturbed), ("broken", sc_broken)])
    main, g = _stub_grading(monkeypatch, [suite], cassini="cassini")
    g.opts.no_scheduling = True

    def client_conformance(g):
        g.outcomes.append(report.Outcome("client", "001", client))

    def daemon_then_clients_done(g, only=None, safe=False):
        real(g, only=only, safe=safe)
        if only is None:
            beside["clients"] = False           # the client phase is over

    real = main.daemon_conformance
    monkeypatch.setattr(main, "client_conformance", client_conformance)
    monkeypatch.setattr(main, "daemon_conformance", daemon_then_clients_done)
    beside["clients"] = True                    # from the start: clients run beside
    main.conformance(g)
    got = {o.name: o.status for o in g.outcomes}
    assert [o.name for o in g.outcomes] == ["001", "disturbed", "broken"]  # client first
    if client == "fail":
        assert got == {"001": "fail", "disturbed": "pass", "broken": "fail"}
        assert any("2 failed outcomes graded again" in n and "(1 changed)" in n
                   for n in g.notes), g.notes
    else:
        # a client that passes every case writes where it is told: nothing graded again
        assert got == {"001": "pass", "disturbed": "fail", "broken": "fail"}
        assert not any("graded again" in n for n in g.notes), g.notes


@pytest.mark.parametrize("late", [2, 19])
def test_clients_late_beside_the_daemon_phase_are_played_again_alone(monkeypatch, late):
    """A client slowed down by the daemon phase beside it loses nothing: the cases whose
    request missed the fake daemon's deadline are played again alone (unless the client is
    late everywhere: more than LATE_LIMIT)."""
    from types import SimpleNamespace

    from grader import __main__ as main
    monkeypatch.setattr(main, "LATE_LIMIT", 12)
    cases = [SimpleNamespace(name=f"{i:03d}-case") for i in range(20)]
    monkeypatch.setattr(main, "_client_cases", lambda opts: cases)
    replayed = []

    def grade_case(g, case, jail):
        replayed.append(case.name)
        return report.Outcome("client", case.name, "pass")
    monkeypatch.setattr(main, "grade_case", grade_case)
    g = SimpleNamespace(opts=SimpleNamespace(jobs=4), options=None, cassini="cassini", notes=[], outcomes=[
        report.Outcome("build", "make", "pass")])
    for i, c in enumerate(cases):
        if i < late:
            g.outcomes.append(report.Outcome(
                "client", c.name, "fail", "sent no request",
                "request (deadline) differs: expected 2 bytes, got 0"))
        elif i == 19:
            g.outcomes.append(report.Outcome("client", c.name, "fail", "stdout differs",
                                             "stdout differs"))
        else:
            g.outcomes.append(report.Outcome("client", c.name, "pass"))
    main.replay_late_clients(g, 1)
    if late <= main.LATE_LIMIT:
        assert sorted(replayed) == [c.name for c in cases[:late]]
        assert [o.status for o in g.outcomes[1:]] == ["pass"] * 19 + ["fail"]
        assert g.notes == [f"client: {late} cases late beside the daemon phase played again "
                           f"alone ({late} changed)"]
    else:
        assert replayed == [] and g.notes == []

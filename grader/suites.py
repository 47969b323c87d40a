"""The grader's suites, declared once: what is graded, under which category, whether only
with ``--extensions``, under which profiles, and how it runs.  ``grader/__main__.py`` loops
over :data:`SUITES`; nothing else lists scenarios.

Three kinds of suite:

``cases``      golden cases (``grader/cases``, or ``--cases-dir``) whose tag is in ``tags``:
               one candidate client per case, against a fake daemon (:mod:`grader.golden`).
               The count is the number of case folders: adding a folder adds a test.
``scenarios``  daemon scenarios: ``[(name, function(ctx))]``, one fresh candidate daemon
               per scenario (:func:`grader.scenarios.run_scenario`).
``schedule``   checks judged on one daemon whose fake minutes pass: ``checks`` names the
               outcomes, ``run(config, figures)`` returns one per check.

``profiles`` says which profiles grade a suite (``strict`` and ``course``, or ``strict``
only: then its verdicts are ``skip`` under ``course``); a single scenario can also be
strict-only (:data:`grader.scenarios.STRICT_ONLY`), a single case course-ungraded
(:func:`grader.golden.course_graded`).  How to add a case or a scenario: grader/README.md.
"""

from dataclasses import dataclass, field
from typing import Callable

from grader import own_requests, own_requests_next, scenarios, scheduling

KINDS = ("cases", "scenarios", "schedule")


@dataclass(frozen=True)
class Suite:
    name: str
    category: str                       # the report's category (grader.report.CATEGORY_TITLES)
    kind: str                           # one of KINDS
    extensions: bool = False            # graded only with --extensions
    profiles: tuple = ("strict", "course")
    tags: tuple = ()                    # cases: the golden tags of this suite
    scenarios: list = field(default_factory=list)      # scenarios: [(name, func)]
    checks: list = field(default_factory=list)         # schedule: outcome names
    run: Callable | None = None                         # schedule: run(config, figures)
    differential: bool = False          # scenarios replayed by --reference-cassini
    # scenarios first run hasty (``ctx.patient`` False: shorter waits for what a correct
    # daemon may never send); one that fails so is run again patient, and that verdict counts
    hasty: tuple = ()

    def names(self):
        """The test names this suite reports (cases: see :func:`cases_of`)."""
        if self.kind == "scenarios":
            return [name for name, _ in self.scenarios]
        return list(self.checks)


def _scheduling(config, figures):
    return scheduling.scheduling(config, figures)


def _next_runs(config, figures):
    return own_requests_next.next_runs_scheduling(config)


SUITES = [
    # the client against the shipped golden cases; a case's tag says its suite (and its
    # category: strict cases report as client-strict, see grader.__main__.client_category)
    Suite("golden", "client", "cases", tags=("reference", "strict")),
    Suite("golden-extensions", "client", "cases", extensions=True, tags=("extension",)),
    # the daemon: one fresh daemon per scenario
    Suite("protocol", "daemon-protocol", "scenarios", scenarios=scenarios.PROTOCOL,
          differential=True, hasty=("malformed-then-valid",)),
    Suite("extension-requests", "daemon-extension", "scenarios", extensions=True,
          scenarios=scenarios.EXTENSIONS, differential=True),
    Suite("own-requests", "daemon-extension", "scenarios", extensions=True,
          scenarios=own_requests.SCENARIOS + own_requests_next.PROTOCOL),
    # the daemon's scheduling: one daemon, minutes passing
    Suite("scheduling", "daemon-scheduling", "schedule", checks=scheduling.SCHEDULE_CHECKS,
          run=_scheduling),
    Suite("next-runs-scheduling", "daemon-extension", "schedule", extensions=True,
          checks=own_requests_next.SCHEDULE_CHECKS, run=_next_runs),
]


def selected(extensions, kind=None):
    """The suites a run grades: every one, but the ``extensions`` ones only with
    ``--extensions``; of one ``kind`` when given."""
    return [s for s in SUITES
            if (extensions or not s.extensions) and (kind is None or s.kind == kind)]


def golden_tags(extensions):
    """The golden tags graded by default."""
    return {t for s in selected(extensions, "cases") for t in s.tags}


def cases_of(extensions, cases_dir=None):
    """The shipped golden cases a run grades by default (the counts come from here)."""
    from grader import golden
    tags = golden_tags(extensions)
    return [c for c in golden.load_cases(cases_dir=cases_dir) if c.tag in tags]


def counts(extensions, profile="strict", cases_dir=None):
    """{category: tests} a run grades under ``profile`` (skips not counted), derived from
    the registry and the case folders: what a submission that fails everything is scored
    out of."""
    from grader import golden
    out = {}

    def add(cat, n=1):
        out[cat] = out.get(cat, 0) + n

    for c in cases_of(extensions, cases_dir):
        if profile == "course" and not golden.course_graded(c):
            continue
        add("client-strict" if c.tag == "strict" else "client")
    for s in selected(extensions):
        if s.kind == "cases" or profile not in s.profiles:
            continue
        for name in s.names():
            if profile == "course" and name in scenarios.STRICT_ONLY:
                continue
            add(s.category)
    return out


def check():
    """The registry is sound: known kinds, no test name reported twice in one category."""
    seen = set()
    for s in SUITES:
        if s.kind not in KINDS:
            raise ValueError(f"suite {s.name}: unknown kind {s.kind!r}")
        if s.kind == "schedule" and s.run is None:
            raise ValueError(f"suite {s.name}: a schedule suite needs run")
        if set(s.hasty) - set(s.names()):
            raise ValueError(f"suite {s.name}: hasty names no scenario of it")
        for name in s.names():
            if (s.category, name) in seen:
                raise ValueError(f"suite {s.name}: {name} already in {s.category}")
            seen.add((s.category, name))

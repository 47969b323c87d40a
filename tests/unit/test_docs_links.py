"""The Markdown holds together: every relative link and #anchor of the front door (README.md),
CONTRIBUTING.md, CHANGELOG.md, docs/*.md and grader/README.md resolves inside the repository;
the README stays a front door (at most 12 KB); its Architecture map names every module of
saturnd/, saturnd/commands/ and cassini/ and every top-level folder."""

import re
import sys
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_BYTES = 12 * 1024

FENCE = re.compile(r"^(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _documents():
    names = [README, ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", ROOT / "grader" / "README.md"]
    names += sorted((ROOT / "docs").glob("*.md"))
    return names


def _prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fenced = None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line.lstrip())
        if m:
            if fenced is None:
                fenced = m.group(1)
            elif m.group(1) == fenced:
                fenced = None
            continue
        if fenced is None:
            yield n, line


def slug(heading):
    """GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)      # a link: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    text = path.read_text(encoding="utf-8")
    seen = {}
    found = set()
    for _, line in _prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path):
    """(line number, target) of every link of a Markdown file, code left out."""
    out = []
    for n, line in _prose_lines(path.read_text(encoding="utf-8")):
        m = REF_LINK.match(line)
        if m:
            out.append((n, m.group(1)))
            continue
        prose = INLINE_CODE.sub("", line)
        out += [(n, target) for target in INLINE_LINK.findall(prose)]
    return out


def _relative(target):
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)   # http:, https:, mailto: ...


def _check_link(doc, target, root=ROOT):
    """The problem with one relative link, or None."""
    path_part, _, anchor = target.partition("#")
    dest = doc if not path_part else (doc.parent / path_part).resolve()
    try:
        dest.relative_to(root)
    except ValueError:
        return f"leaves the repository: {target}"
    if not dest.exists():
        return f"no such file: {target}"
    if anchor:
        if dest.is_dir() or dest.suffix != ".md":
            return f"an anchor on something that is not Markdown: {target}"
        if anchor not in anchors(dest):
            return f"no heading #{anchor} in {dest.relative_to(root)}"
    return None


@pytest.mark.parametrize("doc", [d for d in _documents()],
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(doc):
    assert doc.is_file(), f"{doc.relative_to(ROOT)} is missing"
    problems = []
    for n, target in links(doc):
        if _relative(target):
            problem = _check_link(doc, target)
            if problem:
                problems.append(f"{doc.relative_to(ROOT)}:{n}: {problem}")
    assert problems == []


def test_the_link_checker_sees_broken_links(tmp_path):
    """The checker itself: a missing file, a missing anchor and a way out are each caught;
    links in code are not links."""
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "outside.md").write_text("# Out\n", encoding="utf-8")
    doc = root / "a.md"
    doc.write_text("# Title here\n\n## Two: `x`, y — z\n\n```\n[no](link.md)\n```\n"
                   "[ok](#title-here) [ok2](#two-x-y--z) [bad](#nope) [file](b.md) "
                   "[out](../outside.md) `[code](c.md)`\n", encoding="utf-8")
    found = [(t, _check_link(doc, t, root)) for _, t in links(doc)]
    assert [t for t, _ in found] == ["#title-here", "#two-x-y--z", "#nope", "b.md",
                                     "../outside.md"]
    assert [p is None for _, p in found] == [True, True, False, False, False]


def test_the_readme_is_a_front_door_of_at_most_12_kb():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes (at most {README_MAX_BYTES}): move details to docs/")


def _architecture():
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Architecture")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _modules(folder):
    return sorted(p.name for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("folder", ["saturnd", "cassini"])
def test_the_architecture_map_names_every_module(folder):
    section = _architecture()
    missing = [f"{folder}/{name}" for name in _modules(folder) if f"{folder}/{name}" not in section]
    assert missing == [], f"README.md's Architecture section does not name {missing}"


def test_the_architecture_map_names_every_request_module():
    section = _architecture()
    assert "saturnd/commands/" in section
    missing = [name for name in _modules("saturnd/commands")
               if not re.search(rf"(?<![\w/]){re.escape(name[:-3])}(?!\w)", section)]
    assert missing == [], f"README.md's Architecture section does not name commands {missing}"


def _top_level_folders():
    try:
        r = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, timeout=30,
                           check=True)
        names = {line.split("/", 1)[0] for line in r.stdout.decode().splitlines() if "/" in line}
    except (OSError, subprocess.SubprocessError):
        names = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
                 and not p.name.endswith(".egg-info") and p.name not in ("build", "dist")}
    return sorted(n for n in names if (ROOT / n).is_dir())


def test_the_architecture_map_names_every_top_level_folder():
    section = _architecture()
    folders = _top_level_folders()
    assert "saturnd" in folders and "tests" in folders
    missing = [name for name in folders
               if not re.search(rf"(?<![\w.]){re.escape(name)}/", section)]
    assert missing == [], f"README.md's Architecture section does not name {missing}"


def _help(module):
    r = subprocess.run([sys.executable, "-m", module, "-h"], capture_output=True, timeout=30,
                       cwd=ROOT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def _readme_table_options(heading):
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    section = text[start:text.index("\n## ", start + 1)]
    found = set()
    for line in section.splitlines():
        if line.startswith("|"):
            first_cell = re.split(r"(?<!\\)\|", line)[1]     # a `\|` stays in its cell
            found |= set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", first_cell))
    return found


def test_the_readme_saturnd_table_has_the_options_of_saturnd_h():
    helped = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", _help("saturnd")))
    assert _readme_table_options("saturnd") == helped


def test_the_readme_cassini_table_has_every_option_of_cassini_h():
    helped = set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", _help("cassini")))
    missing = helped - _readme_table_options("cassini")
    assert not missing, f"README.md's cassini table lacks {sorted(missing)}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / target.partition("#")[0]).resolve()
              for _, target in links(README) if _relative(target) and not target.startswith("#")}
    orphans = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert orphans == [], f"docs pages the README does not link: {orphans}"

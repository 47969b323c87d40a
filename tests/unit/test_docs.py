"""The reference documentation in docs/ and the man pages stay true to the code: every wire
constant is documented with its value, cassini's usage text is quoted byte for byte, the
daemon's options match `saturnd -h`, the man pages render cleanly and are installed with the
package, and the repository stands alone (no reference to a folder outside it)."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from saturnd import protocol

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MAN = DOCS / "man"
OUTSIDE = "shared" + "/"          # spelt so that this file does not match itself


def _read(name):
    return (DOCS / name).read_text(encoding="utf-8")


def _run(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k != "POSIXLY_CORRECT"}
    e.update(env or {})
    return subprocess.run(list(args), capture_output=True, timeout=30, env=e,
                          stdin=subprocess.DEVNULL, cwd=ROOT)


def _fenced_after(text, heading):
    """The first fenced block after the line ``heading``, as bytes with its newline."""
    start = text.index(heading + "\n")
    m = re.compile(r"^```[^\n]*\n(.*?)^```$", re.S | re.M).search(text, start)
    assert m, f"no fenced block after {heading!r}"
    return m.group(1).encode()


@pytest.mark.parametrize("name", ["protocol.md", "cassini.md", "saturnd.md",
                                  "man/cassini.1", "man/saturnd.8"])
def test_reference_documents_exist(name):
    assert (DOCS / name).is_file()
    assert len((DOCS / name).read_text(encoding="utf-8")) > 1000


def _constants():
    names = dict(protocol.OPCODE_NAMES)
    names.update({protocol.OK: "OK", protocol.ER: "ER"})
    names.update(protocol.ERRCODE_NAMES)
    return sorted(names.items())


@pytest.mark.parametrize("value,name", _constants(), ids=[n for _, n in _constants()])
def test_every_wire_constant_is_documented_with_its_value(value, name):
    text = _read("protocol.md")
    assert getattr(protocol, name) == value
    rows = [line for line in text.splitlines()
            if line.startswith("|") and f"`{name}`" in line]
    assert rows, f"docs/protocol.md has no table row naming `{name}`"
    assert any(f"0x{value:04x}" in row.lower() for row in rows), (
        f"docs/protocol.md does not give `{name}` its value 0x{value:04x}: {rows}")


def test_the_worked_example_is_what_the_encoder_produces():
    text = _read("protocol.md")
    block = _fenced_after(text, "## Worked example").decode()
    hexdump = "".join(line.split(":", 1)[1][:41] for line in block.splitlines())
    wire = bytes.fromhex(hexdump.replace(" ", ""))
    timing = protocol.Timing(1 | 1 << 30, sum(1 << h for h in range(8, 18)), 0b0111110)
    req = protocol.Request(protocol.CREATE, timing=timing, argv=[b"backup.sh", b"--fast"])
    assert wire == protocol.encode_request(req)


def test_cassini_usage_in_the_docs_is_cassini_h_byte_for_byte():
    r = _run(sys.executable, "-m", "cassini", "-h")
    assert r.returncode == 0
    assert _fenced_after(_read("cassini.md"), "## Usage") == r.stdout


def _saturnd_help_options():
    r = _run(sys.executable, "-m", "saturnd", "-h")
    assert r.returncode == 0, r.stderr
    opts = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", r.stdout.decode()))
    return opts


def test_saturnd_options_in_the_docs_match_saturnd_h():
    text = _read("saturnd.md")
    table = text[text.index("## Options"):]
    table = table[:table.index("\n## ", 1)]
    documented = set()
    for line in table.splitlines():
        if line.startswith("| `-"):
            documented |= set(re.findall(r"`(--?[a-zA-Z][\w-]*)", line.split("|")[1]))
    assert documented == _saturnd_help_options()


def _render(path):
    groff = shutil.which("groff")
    mandoc = shutil.which("mandoc")
    if mandoc:
        lint = _run(mandoc, "-T", "lint", "-W", "warning", str(path))
        assert lint.returncode == 0, lint.stdout + lint.stderr
        r = _run(mandoc, "-T", "utf8", str(path))
    elif groff:
        r = _run(groff, "-man", "-Tutf8", "-ww", "-b", "-z", str(path))
        assert (r.returncode, r.stderr) == (0, b""), r.stderr
        r = _run(groff, "-man", "-Tutf8", "-ww", str(path))
    else:
        pytest.skip("neither groff nor mandoc is installed (Debian: groff-base or mandoc)")
    assert r.returncode == 0 and not r.stderr, r.stderr
    return re.sub(r".\x08", "", r.stdout.decode())


@pytest.mark.parametrize("page,section", [("cassini.1", "1"), ("saturnd.8", "8")])
def test_man_page_renders_cleanly(page, section):
    text = _render(MAN / page)
    name = page.split(".")[0]
    assert text.startswith(f"{name.upper()}({section})") or f"{name.upper()}({section})" in text
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES", "SEE ALSO"):
        assert re.search(rf"^{heading}$", text, re.M), f"{page}: no {heading} section"


def test_man_l_renders_cassini_1():
    if not shutil.which("man"):
        pytest.skip("man is not installed")
    r = _run("man", "-l", str(MAN / "cassini.1"), env={"MANPAGER": "cat", "PAGER": "cat",
                                                      "MANWIDTH": "80"})
    assert r.returncode == 0 and b"cassini" in r.stdout and not r.stderr.strip(), r.stderr


def test_cassini_1_documents_every_option_of_the_usage_text():
    text = _render(MAN / "cassini.1")
    usage = _run(sys.executable, "-m", "cassini", "-h").stdout.decode()
    for opt in sorted(set(re.findall(r"(?<![\w-])-[a-zA-Z]\b", usage))):
        assert re.search(rf"^\s+{opt}\b", text, re.M), f"cassini.1 does not describe {opt}"


def test_saturnd_8_documents_every_option():
    text = _render(MAN / "saturnd.8")
    for opt in sorted(_saturnd_help_options()):
        assert re.search(rf"^\s+{re.escape(opt)}\b|, {re.escape(opt)}\b", text, re.M), (
            f"saturnd.8 does not describe {opt}")


def test_man_pages_are_installed_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["data-files"]
    assert data["share/man/man1"] == ["docs/man/cassini.1"]
    assert data["share/man/man8"] == ["docs/man/saturnd.8"]


def test_the_readme_opens_with_the_two_set_up_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_section = text.index("\n## ")
    block = _fenced_after(text, text.splitlines()[0]).decode()
    assert text.index("```") < first_section
    assert "docker compose up -d" in block and "ci/test.sh" in block
    assert "pip install ." in block and "saturnd" in block


def test_the_repository_stands_alone():
    hits = []
    for top in ("README.md", "docs", "saturnd", "cassini", "grader", "tests"):
        paths = [ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*")
        for path in paths:
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            hits += [f"{path.relative_to(ROOT)}:{n}" for n, line in
                     enumerate(text.splitlines(), 1) if OUTSIDE in line]
    assert hits == []

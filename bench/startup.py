"""Section 1: how fast ``cassini -l`` answers, next to ``python -I -S -c pass`` (the floor).

Both are whole commands started the same way (hyperfine ``-N`` when installed,
else a posix_spawn loop), on the same interpreter, in a venv laid out as a
regular ``pip install .`` lays it out (packages in site-packages, ``bin/cassini``
beside that venv's python3, which the launcher starts isolated): not the development
venv, whose launcher has to run ``site`` to find an editable install.
Also timed, as a second floor: the launcher's own way of starting the interpreter plus
the bare LIST exchange with the daemon (``bare_exchange``: no pipes check, no lock, no
reply checks, no import beyond ``posix`` and ``select``) -- what any cassini started this
way costs at least.  Also reported: cassini's import graph (``python -X importtime``), the modules
it loads beyond what ``python -I -S -c pass`` loads.
"""

import os
import subprocess

from .common import BenchError, Daemon, populate, time_commands
from .rows import row

SECTION = "1 startup"


def _imports(python, argv, env=None):
    """{module: (self_us, cumulative_us)} of ``python -X importtime`` argv."""
    proc = subprocess.run([python, "-X", "importtime"] + argv, capture_output=True,
                          env=env, timeout=60)
    mods = {}
    for line in proc.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3:
            continue
        try:
            self_us, cum_us, name = int(parts[0]), int(parts[1]), parts[2]
        except ValueError:
            continue
        mods[name.strip()] = (int(self_us), int(cum_us))
    return mods


def compile_bytecode():
    """Write the bytecode cache of cassini and saturnd where the interpreter imports them
    from, as an install does (pip, the container image).  Otherwise, with a stale or missing
    cache (or PYTHONDONTWRITEBYTECODE set), every start compiles the sources: ~10 ms more."""
    import compileall
    import importlib
    dirs = []
    for name in ("cassini", "saturnd"):
        d = os.path.dirname(importlib.import_module(name).__file__)
        if not compileall.compile_dir(d, quiet=1):
            raise BenchError(f"cannot compile the bytecode of {d}")
        dirs.append(d)
    return dirs


def regular_install(dest):
    """A venv holding this checkout as ``pip install .`` would install it, offline.

    Returns ``(python, cassini)``: the venv's interpreter and its ``bin/cassini`` (the
    checkout's launcher, copied as pip installs a script file that does not start with
    ``#!python``), bytecode compiled as pip compiles it.
    """
    import shutil
    import venv
    venv.EnvBuilder(with_pip=False, symlinks=True).create(dest)
    python = os.path.join(dest, "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    for pkg in ("cassini", "saturnd"):
        shutil.copytree(os.path.join(ROOT, pkg), os.path.join(site, pkg),
                        ignore=shutil.ignore_patterns("__pycache__"))
    # the launcher is a shell-and-Python script that pip copies unchanged (its first line is
    # not `#!python`): it starts the python3 beside it with -I -S
    cassini = os.path.join(dest, "bin", "cassini")
    shutil.copyfile(os.path.join(ROOT, "bin", "cassini"), cassini)
    os.chmod(cassini, 0o755)
    subprocess.run([python, "-m", "compileall", "-q", os.path.join(site, "cassini"),
                    os.path.join(site, "saturnd")], check=True, timeout=120)
    return python, cassini


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_BARE = """#!/bin/sh
''':'
exec "${0%/*}/python3" -I -S "$0" "$@"
'''
# the bench's second floor: cassini's launcher, then LIST written and its reply read raw
import posix, select, sys
d = sys.argv[1].encode()
r = posix.open(d + b"/saturnd-reply-pipe", posix.O_RDONLY | posix.O_NONBLOCK)
w = posix.open(d + b"/saturnd-request-pipe", posix.O_WRONLY | posix.O_NONBLOCK)
posix.write(w, b"LS")
posix.close(w)
p = select.poll()
p.register(r, select.POLLIN)
got = b""
while len(got) < 6:
    p.poll(5000)
    got += posix.read(r, 65536)
"""


def bare_exchange(venv_bin):
    """The second floor's script, beside the venv's python3 (as the launcher is)."""
    path = os.path.join(venv_bin, "bare-exchange")
    with open(path, "w") as f:
        f.write(_BARE)
    os.chmod(path, 0o755)
    return path


def run(cfg, workdir, log):
    rows = []
    compiled = compile_bytecode()
    log(f"  bytecode up to date in {', '.join(compiled)}")
    base = os.path.join(workdir, "startup")
    python, cassini = regular_install(os.path.join(base, "venv"))
    log(f"  regular install in {os.path.join(base, 'venv')}")
    empty = Daemon(os.path.join(base, "empty"))
    full = Daemon(os.path.join(base, "full"))
    populate(full.data, cfg.cassini_tasks, argv=(b"echo", b"hello", b"world"))
    with empty, full:
        commands = {
            "python -I -S -c pass": [python, "-I", "-S", "-c", "pass"],
            "cassini -l (empty)": [cassini, "-p", empty.pipes, "-l"],
            f"cassini -l ({cfg.cassini_tasks} tasks)": [cassini, "-p", full.pipes, "-l"],
            "python -c pass": [python, "-c", "pass"],
            "bare exchange": [bare_exchange(os.path.dirname(cassini)), empty.pipes],
        }
        # the daemons answer, and the listing is complete, before anything is timed
        for name, argv in list(commands.items())[1:3]:
            out = subprocess.run(argv, capture_output=True, timeout=60)
            if out.returncode != 0:
                raise BenchError(f"{name} failed: {out.stderr.decode(errors='replace').strip()}")
        n_lines = subprocess.run(commands[f"cassini -l ({cfg.cassini_tasks} tasks)"],
                                 capture_output=True, timeout=60).stdout.count(b"\n")
        if n_lines != cfg.cassini_tasks:
            raise BenchError(f"cassini -l printed {n_lines} lines, expected {cfg.cassini_tasks}")
        tool, res = time_commands(commands, cfg.startup_runs, cfg.startup_warmup, base,
                                  use_hyperfine=cfg.hyperfine)
        log(f"  timed with {tool}")
        names = list(commands)
        # the floor: what an isolated interpreter costs (no site, no .pth, no PYTHON*
        # variables), which is how the launcher starts cassini
        floor = res[names[0]]
        rows.append(row(SECTION, "python_IS_pass", "python -I -S -c pass (the floor)",
                        floor["p50"] * 1e3, "ms", p99=floor["p99"] * 1e3,
                        n=floor["n"], extra={"tool": tool}))
        for key, name, limit in (("cassini_l_empty", names[1], cfg.startup_ratio),
                                 ("cassini_l_full", names[2], cfg.startup_full_ratio)):
            s = res[name]
            fails = s.get("failures") or []
            rows.append(row(SECTION, key, name, s["p50"] * 1e3, "ms", p99=s["p99"] * 1e3,
                            n=s["n"], baseline="python -I -S -c pass",
                            baseline_value=floor["p50"] * 1e3, limit=limit,
                            on="ratio", extra={"tool": tool, "failures": fails,
                                               "bytecode_compiled": compiled},
                            note=f"{len(fails)} failed run(s): {fails[0]}" if fails else None))
            log(f"  {name}: {s['p50'] * 1e3:.1f} ms vs {floor['p50'] * 1e3:.1f} ms")
        # informative: a plain interpreter start (site and the venv's .pth files)
        plain = res[names[3]]
        rows.append(row(SECTION, "python_pass", "python -c pass (with site)",
                        plain["p50"] * 1e3, "ms", p99=plain["p99"] * 1e3, n=plain["n"],
                        baseline="python -I -S -c pass", baseline_value=floor["p50"] * 1e3))

        bx = res[names[4]]
        rows.append(row(SECTION, "bare_exchange", "launcher + bare LIST exchange, empty daemon "
                        "(no checks, no lock: the floor of any cassini started this way)",
                        bx["p50"] * 1e3, "ms", p99=bx["p99"] * 1e3, n=bx["n"],
                        baseline="python -I -S -c pass", baseline_value=floor["p50"] * 1e3))

        # import graph of the console script, beyond a bare interpreter
        bare = _imports(python, ["-I", "-S", "-c", "pass"])
        mods = _imports(python, ["-I", "-S", cassini, "-p", empty.pipes, "-l"])
    extra = {m: v for m, v in mods.items() if m not in bare}
    top = sorted(extra.items(), key=lambda kv: -kv[1][0])[:8]
    total_self_ms = sum(v[0] for v in extra.values()) / 1e3
    rows.append(row(SECTION, "cassini_imports",
                    f"cassini -l imports beyond python -I -S -c pass ({len(extra)} modules)",
                    total_self_ms, "ms", n=len(extra),
                    note="self time of the extra modules, python -X importtime",
                    extra={"modules": sorted(extra), "top_self_us": [[m, v[0]] for m, v in top]}))
    return rows

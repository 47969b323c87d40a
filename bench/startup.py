"""Section 1: how fast ``cassini -l`` answers, next to ``python -c pass``.

Both are whole commands started the same way (hyperfine ``-N`` when installed,
else a posix_spawn loop), on the same interpreter, in a venv laid out as a
regular ``pip install .`` lays it out (packages in site-packages, ``bin/cassini``
with that venv's python in its ``#!``): not the development venv, whose
editable-install finder costs every ``python`` start ~10 ms and so flatters
the ratio.
Also reported: cassini's import graph (``python -X importtime``), the modules
it loads beyond what ``python -c pass`` loads.
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

    Returns ``(python, cassini)``: the venv's interpreter and its ``bin/cassini``
    (the checkout's launcher script with the venv's python in its ``#!``, as pip
    installs a script file), bytecode compiled as pip compiles it.
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
    with open(os.path.join(ROOT, "bin", "cassini"), "rb") as f:
        body = f.read().split(b"\n", 1)[1]
    cassini = os.path.join(dest, "bin", "cassini")
    with open(cassini, "wb") as f:
        f.write(b"#!" + os.fsencode(python) + b"\n" + body)
    os.chmod(cassini, 0o755)
    subprocess.run([python, "-m", "compileall", "-q", os.path.join(site, "cassini"),
                    os.path.join(site, "saturnd")], check=True, timeout=120)
    return python, cassini


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
        no_site = ("import sys; sys.path.insert(0, %r); "
                   "from cassini.__main__ import exit_now, main; exit_now(main())" % ROOT)
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "cassini -l (empty)": [cassini, "-p", empty.pipes, "-l"],
            f"cassini -l ({cfg.cassini_tasks} tasks)": [cassini, "-p", full.pipes, "-l"],
            "python -S -c pass": [python, "-S", "-c", "pass"],
            "python -S, cassini -l (empty)": [python, "-S", "-c", no_site, "-p", empty.pipes, "-l"],
            f"python -S, cassini -l ({cfg.cassini_tasks} tasks)":
                [python, "-S", "-c", no_site, "-p", full.pipes, "-l"],
        }
        # the daemons answer, and the listing is complete, before anything is timed
        for name, argv in list(commands.items())[:3]:
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
        baseline = res[names[0]]
        rows.append(row(SECTION, "python_pass", "python -c pass (baseline)",
                        baseline["p50"] * 1e3, "ms", p99=baseline["p99"] * 1e3,
                        n=baseline["n"], extra={"tool": tool}))
        for key, name in (("cassini_l_empty", names[1]), ("cassini_l_full", names[2])):
            s = res[name]
            fails = s.get("failures") or []
            rows.append(row(SECTION, key, name, s["p50"] * 1e3, "ms", p99=s["p99"] * 1e3,
                            n=s["n"], baseline="python -c pass",
                            baseline_value=baseline["p50"] * 1e3, limit=cfg.startup_ratio,
                            on="ratio", extra={"tool": tool, "failures": fails,
                                               "bytecode_compiled": compiled},
                            note=f"{len(fails)} failed run(s): {fails[0]}" if fails else None))
            log(f"  {name}: {s['p50'] * 1e3:.1f} ms vs {baseline['p50'] * 1e3:.1f} ms")
        # the same without site (the venv's editable-install finder alone costs the bare
        # interpreter ~10 ms: pathlib, re, urllib...): closer to a regular install
        bare = res[names[3]]
        rows.append(row(SECTION, "python_S_pass", "python -S -c pass (no site)",
                        bare["p50"] * 1e3, "ms", p99=bare["p99"] * 1e3, n=bare["n"]))
        for key, name in (("cassini_l_empty_S", names[4]), ("cassini_l_full_S", names[5])):
            s = res[name]
            rows.append(row(SECTION, key, name, s["p50"] * 1e3, "ms", p99=s["p99"] * 1e3,
                            n=s["n"], baseline="python -S -c pass",
                            baseline_value=bare["p50"] * 1e3,
                            note="informative: no site, cassini imported from the checkout"
                            + (f"; {len(s['failures'])} failed run(s): {s['failures'][0]}"
                               if s.get("failures") else ""),
                            extra={"failures": s.get("failures") or []}))

        # import graph of the console script, beyond a bare interpreter
        bare = _imports(python, ["-c", "pass"])
        mods = _imports(python, [cassini, "-p", empty.pipes, "-l"])
    extra = {m: v for m, v in mods.items() if m not in bare}
    top = sorted(extra.items(), key=lambda kv: -kv[1][0])[:8]
    total_self_ms = sum(v[0] for v in extra.values()) / 1e3
    rows.append(row(SECTION, "cassini_imports",
                    f"cassini -l imports beyond python -c pass ({len(extra)} modules)",
                    total_self_ms, "ms", n=len(extra),
                    note="self time of the extra modules, python -X importtime",
                    extra={"modules": sorted(extra), "top_self_us": [[m, v[0]] for m, v in top]}))
    return rows

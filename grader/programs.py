"""The programs under grade, where the sandbox user can run them.

:func:`candidate_program` takes a candidate's executable (or its submission folder, or a
Python package folder) and copies it where the sandbox user can reach it if need be;
:func:`our_programs` writes wrappers for this project's own cassini and saturnd
(``--ours``, the differential mode's daemon); :func:`copy_packages` copies our packages
where everyone can read them.
"""

import os
import shutil
import stat
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Usage(Exception):
    """A command-line mistake (saturnd-grade exits with status 2)."""


def traversable_by_others(path):
    d = os.path.abspath(path)
    try:
        while True:
            if not os.stat(d).st_mode & stat.S_IXOTH:
                return False
            if d == "/":
                return True
            d = os.path.dirname(d)
    except OSError:
        return False


def _reachable_by_others(path):
    """Can a non-root sandbox user run ``path`` where it is?"""
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
        if not st.st_mode & stat.S_IXOTH or not st.st_mode & stat.S_IROTH:
            return False
        d = os.path.dirname(path)
        while d and d != "/":
            if not os.stat(d).st_mode & stat.S_IXOTH:
                return False
            d = os.path.dirname(d)
        return True
    except OSError:
        return False


def _package_wrapper(pkgdir, bindir, name):
    """A script that runs the Python package folder ``pkgdir`` (``python -m PKG``) from a
    copy the sandbox user can read, with our packages beside it."""
    pkgdir = os.path.abspath(pkgdir)
    pkg = os.path.basename(pkgdir.rstrip("/"))
    base = os.path.dirname(os.path.abspath(bindir))
    lib = copy_packages(os.path.join(base, "lib"))
    mine = os.path.join(base, f"lib-{name}")
    shutil.rmtree(mine, ignore_errors=True)
    shutil.copytree(pkgdir, os.path.join(mine, pkg),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for top, _dirs, files in os.walk(mine):
        os.chmod(top, 0o755)
        for f in files:
            os.chmod(os.path.join(top, f), 0o644)
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    dest = os.path.join(bindir, name)
    with open(dest, "w") as f:
        f.write(f"#!{_python_for_sandbox()}\nimport runpy, sys\n"
                f"sys.path[:0] = [{mine!r}, {lib!r}]\n"
                f"runpy.run_module({pkg!r}, run_name='__main__', alter_sys=True)\n")
    os.chmod(dest, 0o755)
    return dest


def _python_for_sandbox():
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(cand) and _reachable_by_others(cand):
            return cand
    return sys.executable


def candidate_program(path, bindir, name, uid, notes=None, box=None):
    """The candidate's executable, copied where the sandbox user can run it if need be.

    A directory is accepted when it holds an executable named ``name`` (a submission or
    build folder) or is a Python package folder (``__main__.py``: e.g. ``./cassini`` from
    this repository's root, run as ``python -m cassini``).

    With a container's ``box``, a program built in the box is graded where it is (a regular
    file reached through no symlink, else it is no program); any other is copied into the
    box (``bindir`` is in it): the container sees nothing else of this machine."""
    if box is not None and os.path.abspath(path).startswith(box.root + "/"):
        from .container import regular_in
        inner = regular_in(box.root, path)
        if inner is None and os.path.isdir(path) and not os.path.islink(path):
            inner = regular_in(box.root, os.path.join(path, name))
        if inner is None:
            raise Usage(f"{name}: {path} is not a regular executable file of the submission")
        return inner
    if not os.path.exists(path):
        raise Usage(f"{name}: no such file: {path}")
    if os.path.isdir(path):
        inner = os.path.join(path, name)
        if os.path.isfile(inner) and os.access(inner, os.X_OK):
            if notes is not None:
                notes.append(f"{name}: {path} is a directory: graded {inner}")
            path = inner
        elif os.path.isfile(os.path.join(path, "__main__.py")):
            if notes is not None:
                notes.append(f"{name}: {path} is a Python package folder: graded as "
                             f"python -m {os.path.basename(os.path.abspath(path))}")
            return _package_wrapper(path, bindir, name)
        else:
            raise Usage(f"{name}: {path} is a directory, with no executable {name} nor "
                        f"__main__.py in it: give the executable")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise Usage(f"{name}: not an executable file: {path}")
    path = os.path.abspath(path)
    real = os.path.realpath(path)
    under_tmp = real == "/tmp" or real.startswith("/tmp/") or path.startswith("/tmp/")
    if box is None and not under_tmp and (uid is None or _reachable_by_others(path)):
        return path
    # copied: out of the sandbox user's reach, or under /tmp (hidden by the private /tmp)
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    dest = os.path.join(bindir, name)
    shutil.copyfile(path, dest)        # contents only: no setuid bit, no owner kept
    os.chmod(dest, 0o755)
    return dest


def our_programs(bindir):
    """Wrapper scripts for our own cassini and saturnd, runnable by the sandbox user.

    The packages are copied next to ``bindir`` first: the checkout may be where the
    sandbox cannot see it (under /tmp, which it replaces by a private one, or under a
    home directory the sandbox user cannot enter).
    """
    python = _python_for_sandbox()
    lib = copy_packages(os.path.join(os.path.dirname(os.path.abspath(bindir)), "lib"))
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    out = {}
    for prog in ("cassini", "saturnd"):
        dest = os.path.join(bindir, prog)
        with open(dest, "w") as f:
            f.write(f"#!{python}\nimport sys\nsys.path.insert(0, {lib!r})\n"
                    f"from {prog}.__main__ import main\nsys.exit(main())\n")
        os.chmod(dest, 0o755)
        out[prog] = dest
    return out


def copy_packages(lib, extra=()):
    """Copy the ``cassini`` and ``saturnd`` packages (and ``extra`` files) into ``lib``,
    readable by everyone; returns ``lib``."""
    os.makedirs(lib, exist_ok=True)
    for pkg in ("cassini", "saturnd"):
        dest = os.path.join(lib, pkg)
        if not os.path.exists(dest):
            shutil.copytree(os.path.join(ROOT, pkg), dest,
                            ignore=shutil.ignore_patterns("__pycache__"))
    for path in extra:
        shutil.copy2(path, lib)
    for top, _dirs, files in os.walk(lib):
        os.chmod(top, 0o755)
        for name in files:
            os.chmod(os.path.join(top, name), 0o644)
    return lib

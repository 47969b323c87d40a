"""How much of the daemon's and the client's public surface carries type hints.

A public function is a module-level function or a method (of a class at any depth) whose
name does not start with ``_``; it is *fully hinted* when its return and every parameter
but ``self``/``cls`` carry an annotation.  The test counts them with :mod:`ast` over
saturnd/ and cassini/ and fails under the floor, printing the figure and the files that
still have unhinted public functions.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("saturnd", "cassini")
FLOOR = 0.80


def _public_functions(tree):
    """The public functions of a module: module level, and class bodies at any depth."""
    bodies = [tree.body]
    while bodies:
        for node in bodies.pop():
            if isinstance(node, ast.ClassDef):
                bodies.append(node.body)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not node.name.startswith("_"):
                    yield node


def _fully_hinted(fn):
    args = fn.args
    params = args.posonlyargs + args.args + args.kwonlyargs
    if params and params[0].arg in ("self", "cls"):
        params = params[1:]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    return fn.returns is not None and all(p.annotation is not None for p in params)


def coverage():
    """``(hinted, total, {file: unhinted count})`` over saturnd/ and cassini/."""
    hinted = total = 0
    unhinted = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_bytes(), filename=str(path))
            for fn in _public_functions(tree):
                total += 1
                if _fully_hinted(fn):
                    hinted += 1
                else:
                    name = str(path.relative_to(ROOT))
                    unhinted[name] = unhinted.get(name, 0) + 1
    return hinted, total, unhinted


def test_public_functions_are_mostly_hinted():
    hinted, total, unhinted = coverage()
    share = hinted / total
    print(f"\n{hinted} of {total} public functions in saturnd/ and cassini/ fully hinted "
          f"({share:.1%})")
    for name, count in sorted(unhinted.items()):
        print(f"  {name}: {count} unhinted")
    assert share >= FLOOR, f"{share:.1%} of public functions hinted, under {FLOOR:.0%}"


def test_the_count_sees_hints():
    tree = ast.parse("def a(x: int) -> int: ...\n"
                     "def b(x): ...\n"
                     "def _c(x): ...\n"
                     "class K:\n"
                     "    def m(self, *a: int, **k: str) -> None: ...\n"
                     "    def n(self, y: int): ...\n")
    found = {fn.name: _fully_hinted(fn) for fn in _public_functions(tree)}
    assert found == {"a": True, "b": False, "m": True, "n": False}

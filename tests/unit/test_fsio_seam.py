"""The store's I/O seam is whole: every file operation saturnd/store.py and
saturnd/history.py make goes through ``store.fs`` (a :class:`saturnd.fsio.FileOps`), never
straight to ``os``, ``os.path`` or ``shutil``, so a fault injected on ``store.fs`` reaches
all of them."""

import ast
import os
import pathlib
import shutil

from saturnd.fsio import FileOps

ROOT = pathlib.Path(__file__).resolve().parents[2]
THROUGH_THE_SEAM = ("saturnd/store.py", "saturnd/history.py")
MODULES = {"os": os, "os.path": os.path, "shutil": shutil}


def _seam_calls():
    """``{(module name, function name)}`` of the calls a FileOps instance stands for."""
    fs = FileOps()
    found = set()
    for attr, value in vars(fs).items():
        for module_name, module in MODULES.items():
            if value is not None and getattr(module, attr, None) is value:
                found.add((module_name, attr))
    return found


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def test_every_fileops_attribute_is_the_library_call():
    seam = _seam_calls()
    assert len(seam) == len([v for v in vars(FileOps()).values() if v is not None])
    assert ("os", "open") in seam and ("os.path", "isdir") in seam
    assert ("shutil", "rmtree") in seam and ("os", "link") in seam


def test_the_store_makes_no_file_operation_around_the_seam():
    seam = {f"{module}.{name}" for module, name in _seam_calls()}
    bypass = []
    for rel in THROUGH_THE_SEAM:
        tree = ast.parse((ROOT / rel).read_bytes(), filename=rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _dotted(node.func) in seam:
                bypass.append(f"{rel}:{node.lineno}: {_dotted(node.func)}")
    assert bypass == []

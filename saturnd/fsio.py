"""The file operations of the store and the error log, behind one small seam.

:class:`FileOps` holds the ``os`` (and ``shutil``) calls the store makes, one attribute
each, plus the durable-write recipes built on them (:meth:`FileOps.fsync_dir`,
:meth:`FileOps.write_file`, :meth:`FileOps.write_atomic`).  A :class:`~saturnd.store.Store`
has its own instance (``store.fs``): a fault test replaces an attribute of that instance
(``monkeypatch.setattr(store.fs, "replace", failing)``) and nothing else in the process
sees the fault.  The module functions :func:`fsync_dir`, :func:`write_file` and
:func:`write_atomic` are those of a default instance.

This module imports nothing of the daemon: the store and the error log both use it.
"""

import os
import shutil
from typing import Any

READ_CHUNK = 1 << 16


class FileOps:
    """``open``, ``close``, ``read``, ``write``, ``pread``, ``pwrite``, ``fsync``, ``fstat``,
    ``stat``, ``ftruncate``, ``listdir``, ``mkdir``, ``makedirs``, ``rmdir``, ``rename``,
    ``replace``, ``unlink``, ``link``, ``copy_file_range`` (``os``); ``isdir``, ``islink``,
    ``exists``, ``lexists`` (``os.path``); ``rmtree`` (``shutil``).  Replace any of them on
    an instance to inject a fault; the recipes below go through them."""

    # os.copy_file_range, or None where the platform has none (the copy then reads and
    # writes); Any, because its callers test for None once and call it later in a loop
    copy_file_range: Any

    def __init__(self) -> None:
        self.open = os.open
        self.close = os.close
        self.read = os.read
        self.write = os.write
        self.pread = os.pread
        self.pwrite = os.pwrite
        self.fsync = os.fsync
        self.fstat = os.fstat
        self.stat = os.stat
        self.ftruncate = os.ftruncate
        self.listdir = os.listdir
        self.mkdir = os.mkdir
        self.makedirs = os.makedirs
        self.rmdir = os.rmdir
        self.rename = os.rename
        self.replace = os.replace
        self.unlink = os.unlink
        self.link = os.link
        self.isdir = os.path.isdir
        self.islink = os.path.islink
        self.exists = os.path.exists
        self.lexists = os.path.lexists
        self.copy_file_range = getattr(os, "copy_file_range", None)
        self.rmtree = shutil.rmtree

    def read_file(self, path: str) -> bytes:
        """The whole content of ``path`` (bytes)."""
        fd = self.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks: list[bytes] = []
            while True:
                data = self.read(fd, READ_CHUNK)
                if not data:
                    return b"".join(chunks)
                chunks.append(data)
        finally:
            self.close(fd)

    def fsync_dir(self, path: str) -> None:
        fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.fsync(fd)
        finally:
            self.close(fd)

    def write_file(self, path: str, data: bytes) -> None:
        """Create ``path`` with ``data`` and fsync it (no rename)."""
        fd = self.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[self.write(fd, view):]
            self.fsync(fd)
        finally:
            self.close(fd)

    def write_atomic(self, path: str, data: bytes) -> None:
        """Replace ``path`` by ``data``: temp file, fsync, rename, fsync the directory."""
        directory = os.path.dirname(path)
        tmp = os.path.join(directory, "." + os.path.basename(path) + ".tmp")
        try:
            self.write_file(tmp, data)
            self.replace(tmp, path)
        except OSError:
            try:
                self.unlink(tmp)
            except OSError:
                pass
            raise
        self.fsync_dir(directory)

    def unlink_quiet(self, *paths: str) -> None:
        for p in paths:
            try:
                self.unlink(p)
            except OSError:
                pass


DEFAULT = FileOps()
fsync_dir = DEFAULT.fsync_dir
write_file = DEFAULT.write_file
write_atomic = DEFAULT.write_atomic

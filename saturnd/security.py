"""Permission checks on the pipes directory (the cronie ``security.c``).

The pipes directory is where anyone who can write a request can make the
daemon run commands as its user, so it must be nobody else's; and a client that
sends its request there must know the daemon is its own user's.  The same
rules therefore serve both: the daemon (at start-up, and when it makes its
pipes again, :mod:`saturnd.pipes`) and cassini (before it sends a byte; only
``os`` and ``stat`` are imported here, so this costs cassini next to nothing).

The ancestor rules below are checked on the part of the path that exists
before the daemon creates what is missing (mode 0700; so it never creates a
directory inside someone else's), then everything is checked before use:

- the pipes directory itself: a real directory (not a symlink), owned by the
  effective uid, not writable by group or others;
- each ancestor, as written (``lstat`` of every prefix of the absolute path):
  a symlink is accepted only when owned by the effective uid or root (so
  ``/tmp/<user>`` planted as a symlink by another user is refused, while a
  system link such as ``/var/run -> /run`` is fine);
- each ancestor directory of the real path (after resolving those trusted
  symlinks): owned by the effective uid or root, and, when group/world
  writable, sticky (``/tmp``, or ``/tmp/saturnd`` and ``/tmp/saturnd/saturnd``
  which the container image creates root-owned with mode 1777): in a sticky
  directory only its owner can rename or remove our entry, so no one else can
  swap the pipes directory after the check;
- each FIFO (request, reply, clock control): a FIFO, not a symlink, owned by
  the effective uid, not writable by group or others (:func:`check_fifo`).
  The daemon never repairs the mode of an existing FIFO (someone may hold it
  open already): it removes its own and makes them afresh, 0600.

In the container the pipes directory is a bind mount owned by the container's
uid (mode 0700 or 0755): it passes.  The data directory is not checked this
way (it is in the user's home, or a container volume with mode 1777); its
files are created 0600 and its directories 0700.

A failed check is a :class:`InsecurePath` with a one-line message; the daemon
prints it and exits 1 (or, for pipes it makes again while running, logs it and
tries again later); cassini prints it and exits 1.
"""

import os
import stat


class InsecurePath(Exception):
    """A path the daemon refuses to use (one line, for the user)."""


def _who(uid: int) -> str:
    try:
        import pwd
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _ancestors(path: str) -> list[str]:
    """``/``, ``/a``, ``/a/b`` ... up to but excluding ``path`` itself."""
    out = []
    parent = os.path.dirname(path)
    while True:
        out.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return list(reversed(out))


def check_before_creating(path: str, uid: int | None = None) -> None:
    """The ancestor rules on the part of ``path`` that exists: called before the daemon
    creates what is missing, so it never makes a directory inside someone else's."""
    path = os.path.abspath(path)
    existing = path
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            return
        existing = parent
    if existing == path:
        return
    _check_ancestors(os.path.join(existing, "x"), uid)    # ``existing`` included


def _check_ancestors(path: str, uid: int | None) -> None:
    trusted = (os.geteuid() if uid is None else uid, 0)
    _check_symlinks(path, trusted, "the pipes directory")
    _check_owners(os.path.realpath(path), trusted, "the pipes directory")


def _check_symlinks(path: str, trusted: tuple[int, ...], subject: str) -> None:
    """Each ancestor of ``path`` as written: a symlink only if owned by us or root."""
    for prefix in _ancestors(path):
        st = os.lstat(prefix)
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in trusted:
            raise InsecurePath(f"{prefix} is a symlink owned by {_who(st.st_uid)}; refusing "
                               f"{subject}")


def _check_owners(real: str, trusted: tuple[int, ...], subject: str) -> None:
    """Each ancestor of the real path: ours or root's, and sticky when others may write."""
    for prefix in _ancestors(real):
        st = os.lstat(prefix)
        if st.st_uid not in trusted:
            raise InsecurePath(f"{prefix} belongs to {_who(st.st_uid)}; refusing {subject}")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            raise InsecurePath(f"{prefix} is writable by others and not sticky "
                               f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing {subject}")


def check_pipes_dir(path: str, uid: int | None = None) -> None:
    """Raise :class:`InsecurePath` unless ``path`` is safe to serve on (see module doc)."""
    uid = os.geteuid() if uid is None else uid
    path = os.path.abspath(path)
    trusted = (uid, 0)
    subject = f"the pipes directory {path}"
    _check_symlinks(path, trusted, subject)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise InsecurePath(f"the pipes directory {path} is a symlink; refusing it")
    if not stat.S_ISDIR(st.st_mode):
        raise InsecurePath(f"the pipes directory {path} is not a directory")
    real = os.path.realpath(path)
    _check_owners(real, trusted, subject)
    st = os.lstat(real)
    if st.st_uid != uid:
        raise InsecurePath(f"the pipes directory {path} belongs to {_who(st.st_uid)}, "
                           f"not to {_who(uid)}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecurePath(f"the pipes directory {path} is writable by group or others "
                           f"(mode {stat.S_IMODE(st.st_mode):04o})")


def check_fifo(path: str, uid: int | None = None, any_mode: bool = False) -> os.stat_result:
    """Raise :class:`InsecurePath` unless ``path`` is a FIFO of ``uid`` (not a symlink) that
    neither group nor others may write (``any_mode``: whatever its mode).  Raises
    ``FileNotFoundError`` when ``path`` does not exist."""
    uid = os.geteuid() if uid is None else uid
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise InsecurePath(f"{path} is a symlink, not a FIFO; refusing it")
    if not stat.S_ISFIFO(st.st_mode):
        raise InsecurePath(f"{path} exists and is not a FIFO")
    if st.st_uid != uid:
        raise InsecurePath(f"{path} belongs to {_who(st.st_uid)}, not to {_who(uid)}")
    if not any_mode and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecurePath(f"{path} is writable by group or others "
                           f"(mode {stat.S_IMODE(st.st_mode):04o})")
    return st

"""One light-isolation candidate on the machine's shared /tmp at a time.

In light isolation (no container engine) every candidate of every grade on this machine
runs as the same user (``nobody`` when the kit is root) and shares /tmp: two daemons, or a
daemon and a golden case's client, that use the default pipes directory
``/tmp/nobody/saturnd/pipes`` would meet there.  The kit holds this machine-wide lock (an
``flock`` on ``/tmp/saturnd-grade-light.lock``, or ``$GRADER_LIGHT_LOCK``) while such a
candidate runs, and makes that directory clean when it takes the lock: whatever is there
then is the litter of a grade that was killed before it could clean up.

Taken once per process (a count): the threads of one grade share it.  Containers need
none of this (each submission has its own /tmp).
"""

import fcntl
import glob
import os
import shutil
import stat
import sys
import threading

DEFAULT_PATH = "/tmp/saturnd-grade-light.lock"

_state = {"fd": None, "count": 0}
_mutex = threading.Lock()


def path():
    return os.environ.get("GRADER_LIGHT_LOCK") or DEFAULT_PATH


def acquire(user=None, uid=None):
    """Take the machine-wide lock (blocking); on first taking it in this process, the stale
    pipes of ``user`` (uid ``uid``, default ours) under /tmp are removed."""
    with _mutex:
        if _state["count"] == 0:
            fd = _open()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
            _state["fd"] = fd
            if user:
                clean_stale(user, os.geteuid() if uid is None else uid)
        _state["count"] += 1


def release():
    with _mutex:
        if _state["count"] == 0:
            return
        _state["count"] -= 1
        if _state["count"] == 0:
            fd, _state["fd"] = _state["fd"], None
            if fd is not None:
                os.close(fd)        # closing the only descriptor releases the flock


def _open():
    """The lock file, read-only (enough for flock, whoever made it: with
    fs.protected_regular an O_CREAT open of another user's file in /tmp is refused), made
    world-readable when missing; never through a link.  None (and one line on stderr) when
    it cannot be opened: the grade goes on without the machine-wide lock."""
    p = path()
    why = "it keeps appearing and disappearing"
    for _ in range(5):
        try:
            return os.open(p, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            pass
        except OSError as e:
            why = e.strerror or str(e)
            break
        try:
            fd = os.open(p, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o644)
        except FileExistsError:
            continue
        except OSError as e:
            why = e.strerror or str(e)
            break
        try:
            os.fchmod(fd, 0o644)            # whatever our umask
        except OSError:
            pass
        return fd
    print(f"saturnd-grade: light isolation without the machine-wide lock ({p}: {why}): "
          f"concurrent light grades may meet in /tmp", file=sys.stderr, flush=True)
    return None


def held():
    return _state["count"] > 0


def clean_stale(user, uid):
    """Remove what a killed grade's daemon left in ``/tmp/<user>*/saturnd`` (a name may
    hold any byte: bytes paths throughout), when that folder is owned by ``uid`` (the
    candidates'), then ``/tmp/<user>*`` itself when it is left empty.  Nothing is followed
    through a link."""
    pattern = os.path.join(b"/tmp", glob.escape(os.fsencode(user)) + b"*", b"saturnd")
    for top in glob.glob(pattern):
        try:
            st = os.lstat(top)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            continue
        shutil.rmtree(top, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(top))
        except OSError:
            pass

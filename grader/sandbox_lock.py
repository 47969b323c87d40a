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
            fd = os.open(path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
            try:
                try:
                    os.fchmod(fd, 0o666)     # every user's grades share it
                except OSError:
                    pass
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
            os.close(fd)            # closing the only descriptor releases the flock


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

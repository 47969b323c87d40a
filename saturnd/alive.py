"""Telling a dead saturnd at once: a lock the daemon holds while it lives.

The daemon holds an open-file-description read lock (``F_OFD_SETLK``) on byte ``ALIVE`` of
its lock file ``PIPES_DIR/saturnd.lock`` (taken with the file's ``flock``, see
``saturnd/instance.py``); the kernel drops it when the daemon exits, however it exits
(``kill -9`` included).  When the request pipe has no reader, cassini asks
:func:`dead_daemon`: the lock file is there, names a process that no longer exists, and
nobody holds the lock -- the daemon that made these pipes is dead, and cassini says so at
once instead of waiting ``CASSINI_TIMEOUT`` seconds for a reader.  In every other case (no
lock file: another implementation, such as the C reference; an older saturnd that holds no
such lock but is alive; a daemon starting up) cassini waits as before.  The test only looks
(``F_OFD_GETLK``): it never takes a lock a daemon could trip on.
"""

import os

from . import busy
from . import protocol

ALIVE = 0      # the byte of saturnd.lock the living daemon holds a read lock on


def hold(fd: int) -> bool:
    """Take the daemon's lock on its open lock file ``fd`` (best effort: False when the
    system has no OFD locks; cassini then always waits, as with any other daemon)."""
    try:
        busy.hold(fd, ALIVE, True)
        return True
    except OSError:
        return False


def dead_daemon(pipes_dir: str | bytes) -> str | None:
    """A reason (str) when the saturnd that made ``pipes_dir`` is known to be dead, else
    None (bytes or str path)."""
    path = os.path.join(pipes_dir, protocol.DAEMON_LOCK) if isinstance(pipes_dir, str) else \
        os.path.join(pipes_dir, os.fsencode(protocol.DAEMON_LOCK))
    try:
        fd = os.open(path,
                     os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None                     # no lock file: not ours, or never started
    try:
        words = os.pread(fd, 64, 0).split()
        if len(words) < 2 or words[0] not in (b"running", b"stopping") \
                or not words[1].isdigit():
            return None                 # being written, or not ours
        if busy._GETLK is None or busy.held(fd, ALIVE):
            return None
    except OSError:
        return None
    finally:
        os.close(fd)
    pid = int(words[1])
    try:
        os.kill(pid, 0)
        return None                     # that process lives (an older saturnd, or a reuse)
    except ProcessLookupError:
        pass
    except OSError:
        return None                     # EPERM: it exists
    return f"saturnd (pid {pid}) is dead: its lock is free and nobody reads the request pipe"

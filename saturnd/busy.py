"""saturnd's "busy" signal on its request FIFO, read by cassini before it writes.

The daemon holds open-file-description read locks (``F_OFD_SETLK``) on its reading end of
the request FIFO:

- byte ``PUBLISHER`` for as long as it serves that FIFO: "this daemon publishes busy";
- byte ``BUSY`` from the moment it is about to read request bytes until the reply pipe is
  closed and no request bytes are left in its buffer;
- byte ``MARKS_LOCK`` along with ``PUBLISHER``: "this daemon makes ``cassini-lock`` and
  marks the one in place" (an open-file-description read lock on byte ``LOCK_MARK`` of
  that file, ``saturnd/pipes.py``): cassini then talks only under the marked file.

A client holding ``cassini-lock`` tests both with ``F_OFD_GETLK`` (it never takes them, so
it cannot stall the daemon) and ``FIONREAD`` on a descriptor of its own on the same FIFO.
The locks are advisory and only describe; they guard nothing.  Everything here is Linux
(OFD locks, ``FIONREAD`` on a FIFO); anywhere else ``published`` answers False and cassini
behaves as with a daemon that publishes nothing.
"""

import fcntl
import struct

PUBLISHER = 1
BUSY = 0
MARKS_LOCK = 2     # "this daemon makes cassini-lock and marks the one in place"
LOCK_MARK = 0      # on cassini-lock: "made by the daemon, the one in place" (saturnd/pipes.py)

_FLOCK = struct.Struct("hhqqi4x")    # struct flock with a 64-bit off_t (Linux)
_GETLK = getattr(fcntl, "F_OFD_GETLK", None)
_SETLK = getattr(fcntl, "F_OFD_SETLK", None)


def hold(fd: int, byte: int, on: bool) -> None:
    """Take (``on``) or release the daemon's read lock on ``byte``; raises OSError."""
    if _SETLK is None:
        raise OSError("open file description locks are not available")
    kind = fcntl.F_RDLCK if on else fcntl.F_UNLCK
    fcntl.fcntl(fd, _SETLK, _FLOCK.pack(kind, 0, byte, 1, 0))


def held(fd: int, byte: int) -> bool:
    """True when some descriptor holds a lock on ``byte`` of ``fd``'s file."""
    if _GETLK is None:
        return False
    try:
        got = fcntl.fcntl(fd, _GETLK, _FLOCK.pack(fcntl.F_WRLCK, 0, byte, 1, 0))
    except (OSError, struct.error):
        return False
    return _FLOCK.unpack(got)[0] != fcntl.F_UNLCK


# FIONREAD is 0x541B on the Linux architectures of the generic ioctl numbering; loading
# termios for it costs cassini about 0.6 ms at every start, so it is read from termios
# only elsewhere (alpha, mips, powerpc, sparc number it otherwise).
_GENERIC_IOCTL = ("x86_64", "i386", "i486", "i586", "i686", "aarch64", "arm", "riscv",
                  "s390", "loongarch")


_FIONREAD: list[int] = []      # the number, once known


def _fionread() -> int:
    if not _FIONREAD:
        import os
        import sys
        if sys.platform.startswith("linux") and os.uname().machine.startswith(_GENERIC_IOCTL):
            _FIONREAD.append(0x541B)
        else:
            import termios
            _FIONREAD.append(termios.FIONREAD)
    return _FIONREAD[0]


def pending(fd: int) -> int:
    """Bytes waiting in the FIFO of ``fd`` (0 when that cannot be told)."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, _fionread(), b"\0\0\0\0"))[0]
    except OSError:
        return 0

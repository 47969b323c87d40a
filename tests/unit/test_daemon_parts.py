"""The daemon's small parts on their own: the stop flag, the instance claim, the store's I/O
seam, the handler context, and the module graph (no import cycle)."""

import os
import select
import stat
import subprocess
import sys

import pytest

from saturnd import protocol as P
from saturnd.commands import Context, dispatch
from saturnd.fsio import FileOps
from saturnd.instance import LOCK_NAME, StartupError, claim
from saturnd.stop import StopFlag
from saturnd.store import Store

FIFOS = ["saturnd-request-pipe", "saturnd-reply-pipe"]
CLOCK_FIFOS = ["saturnd-clock-request-pipe", "saturnd-clock-reply-pipe"]


def _readable(fd):
    return bool(select.select([fd], [], [], 0)[0])


def test_stop_flag_keeps_the_first_reason_and_wakes_the_loop():
    seen = []
    stop = StopFlag(on_stop=seen.append)
    stop.request("before the pipe")          # no wake-up pipe yet: no error
    stop.open()
    assert stop.is_set() and stop.reason == "before the pipe" and seen == ["before the pipe"]
    stop.request("again")
    assert stop.reason == "before the pipe" and seen == ["before the pipe"]
    assert _readable(stop.fd)
    stop.drain()
    assert not _readable(stop.fd)
    os.close(stop.fd)
    os.close(stop.write_fd)


def test_claim_makes_private_dirs_fifos_and_locks(tmp_path):
    pipes, data = tmp_path / "a" / "pipes", tmp_path / "b" / "data"
    (tmp_path / "a").mkdir(mode=0o700)
    leftover = tmp_path / "a" / "pipes"
    leftover.mkdir(mode=0o700)
    os.mkfifo(leftover / CLOCK_FIFOS[0], 0o600)     # a manual-clock daemon's leftover
    inst = claim(str(pipes), str(data), FIFOS, CLOCK_FIFOS, 0.1, lambda m: None)
    try:
        for name in FIFOS:
            st = os.lstat(pipes / name)
            assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert not os.path.lexists(pipes / CLOCK_FIFOS[0])
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        for d in (pipes, data):
            assert (d / LOCK_NAME).read_text() == f"running {os.getpid()}\n"
        with pytest.raises(StartupError, match="another saturnd"):
            claim(str(pipes), str(data), FIFOS, [], 0.1, lambda m: None)
        inst.set_state("stopping")
        assert (data / LOCK_NAME).read_text() == f"stopping {os.getpid()}\n"
    finally:
        for lock in inst.locks:
            os.close(lock.fd)


def test_claim_refuses_a_symlinked_fifo(tmp_path):
    pipes = tmp_path / "pipes"
    pipes.mkdir(mode=0o700)
    os.symlink("/dev/null", pipes / FIFOS[0])
    with pytest.raises(StartupError):
        claim(str(pipes), str(tmp_path / "data"), FIFOS, [], 0.1, lambda m: None)
    assert os.path.islink(pipes / FIFOS[0])


def test_a_fault_in_one_stores_seam_is_seen_by_that_store_only(tmp_path):
    faulty = Store(tmp_path / "one", lambda m: None)
    healthy = Store(tmp_path / "two", lambda m: None, fs=FileOps())
    faulty.open()
    healthy.open()

    def failing(path):
        raise OSError(5, "Input/output error")
    faulty.fs.fsync_dir = failing
    with pytest.raises(OSError):
        faulty.create(P.EVERY_MINUTE, (b"true",))
    assert healthy.create(P.EVERY_MINUTE, (b"true",)) == 0
    assert faulty.list_tasks() == []


def test_handlers_get_a_context_not_the_daemon(tmp_path):
    store = Store(tmp_path / "data", lambda m: None)
    store.open()
    stops = []
    ctx = Context(store, runner=None, clock=None, request_stop=stops.append)
    reply = dispatch(ctx, P.Request(P.CREATE, timing=P.EVERY_MINUTE, argv=(b"true",)))
    assert reply.value == 0
    dispatch(ctx, P.Request(P.TERMINATE))
    assert stops == ["TERMINATE request"]
    with pytest.raises(AttributeError):
        ctx.stopping = True                  # nothing else of the daemon rides along


def test_no_import_cycle_between_errlog_scheduler_and_store():
    code = ("import sys, saturnd.errlog; "
            "print(sorted(m for m in sys.modules if m.startswith('saturnd.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "saturnd.scheduler" not in out and "saturnd.store" not in out


def test_the_fionread_number_is_the_one_termios_knows():
    """saturnd.busy spares cassini the termios import by knowing FIONREAD's number."""
    import termios

    from saturnd import busy
    assert busy._fionread() == termios.FIONREAD

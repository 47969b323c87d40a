"""History and task set integrity under storage failures.

- a run record is written whole or not at all (a short write is truncated back and logged),
  outputs are published only with their record, start-up recovery keeps every whole record;
- DELETE_ALL removes every task or none; a damaged ``taskid_max`` is rebuilt at start-up.
"""

import os
import subprocess

import pytest

from saturnd import protocol as P
from testkit import T0
from testkit.stubs import spool

pytestmark = pytest.mark.timeout(60)
EVERY = P.EVERY_MINUTE


def _exit_bytes(s, tid):
    with open(os.path.join(s.tasks_dir, str(tid), "exit"), "rb") as f:
        return f.read()


# --- point 5: the run record ---------------------------------------------------------

@pytest.mark.parametrize("failure", ["short", "enospc"])
def test_a_record_is_written_whole_or_not_at_all(open_store, logs, monkeypatch, failure):
    s = open_store()
    s.create(EVERY, (b"x",))
    assert s.publish(0, s.get(0).token, T0, 0, *spool(s, b"first", b"e1"))
    real_write = s.fs.write

    def write(fd, data):
        if len(data) == P.RUN_RECORD_SIZE:
            if failure == "short":
                return real_write(fd, bytes(data)[:6])     # a full disk: 6 bytes land
            raise OSError(28, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(s.fs, "write", write)
    recorded = s.publish(0, s.get(0).token, T0 + 60, 1, *spool(s, b"second", b"e2"))
    monkeypatch.setattr(s.fs, "write", real_write)
    assert recorded is False
    assert _exit_bytes(s, 0) == P.encode_run(T0, 0)              # truncated back
    assert s.output(0, "stdout") == b"first"                     # not published
    assert s.output(0, "stderr") == b"e1"
    assert any("run" in line and "task 0" in line for line in logs), logs
    assert sorted(os.listdir(os.path.join(s.tasks_dir, "0"))) == \
        ["argv", "exit", "stderr", "stdout", "time_exec"]
    # the next run is recorded normally, and a restart keeps both whole records
    assert s.publish(0, s.get(0).token, T0 + 120, 2, *spool(s, b"third", b"e3"))
    s2 = open_store()
    assert P.decode_runs(s2.runs(0)) == [(T0, 0), (T0 + 120, 2)]
    assert s2.output(0, "stdout") == b"third"


def test_recovery_keeps_every_whole_record_around_a_torn_one(open_store, tmp_path, logs):
    """A file torn by an older daemon: whole, 6 torn bytes, whole, whole. Recovery drops
    the 6 bytes, not the valid tail."""
    s = open_store()
    s.create(EVERY, (b"x",))
    recs = [P.encode_run(T0 + 60 * i, i) for i in range(4)]
    exit_path = tmp_path / "data" / "tasks" / "0" / "exit"
    exit_path.write_bytes(recs[0] + recs[1][:6] + recs[2] + recs[3])
    s2 = open_store()
    assert P.decode_runs(s2.runs(0)) == [(T0, 0), (T0 + 120, 2), (T0 + 180, 3)]
    assert exit_path.read_bytes() == recs[0] + recs[2] + recs[3]
    assert any("torn" in line for line in logs), logs


def test_recovery_of_a_torn_last_record_still_drops_only_it(open_store, tmp_path):
    s = open_store()
    s.create(EVERY, (b"x",))
    recs = [P.encode_run(T0 + 60 * i, 255 if i == 1 else 0xFFFF) for i in range(3)]
    exit_path = tmp_path / "data" / "tasks" / "0" / "exit"
    exit_path.write_bytes(recs[0] + recs[1] + recs[2][:9])
    assert P.decode_runs(open_store().runs(0)) == [(T0, 0xFFFF), (T0 + 60, 255)]


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_tmpfs_leaves_whole_records_only(open_store, small_tmpfs, logs):
    """A real full disk: the ``exit`` file ends 6 bytes before a page boundary, so the next
    record's first 6 bytes land and the rest finds no page."""
    root = small_tmpfs / "data"
    s = open_store(root)
    s.create(EVERY, (b"x",))
    exit_path = root / "tasks" / "0" / "exit"
    s.publish(0, s.get(0).token, T0, 0, *spool(s, b"first"))
    page = os.sysconf("SC_PAGE_SIZE")
    n = (page - 6) // P.RUN_RECORD_SIZE        # 409 records: 4090 bytes, 6 left in the page
    history = b"".join(P.encode_run(T0 + 60 * i, 0) for i in range(n))
    with open(exit_path, "wb") as f:
        f.write(history)
    o, e = spool(s)                            # empty outputs: they need no page
    with open(root / "filler", "wb", buffering=0) as f:     # fill the file system
        try:
            while f.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    assert not s.publish(0, s.get(0).token, T0 + 60 * n, 3, o, e)
    assert exit_path.read_bytes() == history                   # whole, or truncated back
    assert any("cannot record" in line for line in logs), logs
    assert s.output(0, "stdout") == b"first"                    # not published
    os.unlink(root / "filler")
    s2 = open_store(root)
    assert P.decode_runs(s2.runs(0)) == [(T0 + 60 * i, 0) for i in range(n)]


# --- point 8: DELETE_ALL, taskid_max ----------------------------------------------------

def _make_tasks(s, n):
    return [s.create(EVERY, (b"echo", str(i).encode())) for i in range(n)]


def test_delete_all_with_an_unremovable_task_is_all_or_nothing(open_store, monkeypatch, logs):
    """One task directory cannot be moved or removed (as with ``chattr +i``): every task
    goes or none does, and the count says how many went."""
    s = open_store()
    ids = _make_tasks(s, 4)
    stuck = os.path.join(s.tasks_dir, "2")
    real_rename, real_rmtree = s.fs.rename, s.fs.rmtree

    def rename(src, dst, *a, **kw):
        if os.fspath(src) == stuck:
            raise OSError(1, "Operation not permitted")
        return real_rename(src, dst, *a, **kw)

    def rmtree(path, *a, **kw):
        kw.pop("ignore_errors", None)
        try:
            real_rmtree(path, *a, **kw)
        except OSError:
            pass
        raise OSError(1, "Operation not permitted")     # something stays behind
    monkeypatch.setattr(s.fs, "rename", rename)
    monkeypatch.setattr(s.fs, "rmtree", rmtree)
    try:
        count = s.remove_all()
    except OSError:
        count = None
    monkeypatch.undo()
    left = [t.taskid for t in s.list_tasks()]
    reopened = [t.taskid for t in open_store().list_tasks()]
    if count is None:                                  # none went
        assert left == ids and reopened == ids
    else:                                              # all went
        assert count == 4 and left == [] and reopened == []


def test_delete_all_whose_rename_fails_removes_nothing(open_store, monkeypatch):
    s = open_store()
    ids = _make_tasks(s, 3)

    def rename(src, dst, *a, **kw):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(s.fs, "rename", rename)
    with pytest.raises(OSError):
        s.remove_all()
    monkeypatch.undo()
    assert [t.taskid for t in s.list_tasks()] == ids
    assert [t.taskid for t in open_store().list_tasks()] == ids
    assert s.remove_all() == 3 and s.list_tasks() == []
    assert s.create(EVERY, (b"true",)) == 3                  # ids are never reused


def test_delete_all_interrupted_is_finished_at_start_up(open_store, tmp_path):
    """A crash after the task directory was moved away: start-up finds no tasks (all gone),
    recreates ``tasks/`` and clears the moved directory."""
    s = open_store()
    _make_tasks(s, 3)
    data = tmp_path / "data"
    os.rename(data / "tasks", data / "trash" / "tasks.all.1")
    s2 = open_store()
    assert s2.list_tasks() == [] and os.listdir(data / "tasks") == []
    assert os.listdir(data / "trash") == []
    assert s2.create(EVERY, (b"true",)) == 3


def test_damaged_taskid_max_is_rebuilt_at_start_up(open_store, tmp_path, logs):
    s = open_store()
    _make_tasks(s, 3)
    s.remove(2)
    path = tmp_path / "data" / "taskid_max"
    path.write_bytes(b"\xff" * 8)
    s2 = open_store()
    assert any("taskid_max" in line for line in logs), logs
    assert s2.create(EVERY, (b"true",)) == 2       # rebuilt from the highest id (1) + 1
    assert path.read_bytes() == (3).to_bytes(8, "big")


@pytest.mark.timeout(90)
def test_delete_all_with_an_immutable_task_directory(make_daemon, tmp_path):
    """DELETE_ALL when one task directory cannot be removed (``chattr +i`` on it, a real
    file system): every task goes or none does, across a restart too."""
    d = make_daemon().start()
    for i in range(3):
        assert d.cassini("-c", "--", "echo", str(i)).returncode == 0
    stuck = d.data / "tasks" / "1"
    r = subprocess.run(["chattr", "+i", str(stuck)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"chattr +i unsupported here: {r.stderr.decode(errors='replace').strip()}")
    try:
        r = d.cassini("-s", check=False)
        listed = d.cassini("-l").stdout
        if r.returncode == 0:
            assert r.stdout == b"3\n" and listed == b""
        else:
            assert listed.count(b"\n") == 3, listed
        d.stop()
        d.start()
        assert d.cassini("-l").stdout == listed
        assert d.cassini("-c", "--", "true").stdout == b"3\n"
        # the unremovable leftover stays in trash/; the next DELETE_ALL still works
        r = d.cassini("-s", check=False)
        assert (r.returncode, r.stdout) == (0, b"1\n") and d.cassini("-l").stdout == b""
    finally:
        subprocess.run(["chattr", "-R", "-i", str(d.data)], capture_output=True)


def test_delete_all_beside_leftovers_in_trash(open_store, tmp_path):
    """Leftovers of earlier DELETE_ALLs that could not be cleared (kept in trash/ across a
    restart) do not block the next one."""
    s = open_store()
    _make_tasks(s, 2)
    for i in range(1, 40):
        os.makedirs(tmp_path / "data" / "trash" / f"tasks.all.{i}" / "7")
    assert s.remove_all() == 2
    assert s.list_tasks() == [] and os.listdir(s.tasks_dir) == []

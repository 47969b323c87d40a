"""Storage faults at the worst moment leave each task all-or-nothing, in memory and on disk.

Faults go through the store's I/O seam (``store.fs``, saturnd/fsio.py): only that store sees
them."""

import os

import pytest

from saturnd import protocol as P
from saturnd.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "data", lambda m: None)
    s.open()
    return s


def test_remove_whose_directory_fsync_fails_keeps_the_task(store, tmp_path, monkeypatch):
    tid = store.create(P.Timing(1, 1, 1), (b"echo", b"x"))
    real = store.fs.fsync_dir

    def failing(path):
        if path == store.tasks_dir:
            raise OSError(5, "Input/output error")
        return real(path)
    monkeypatch.setattr(store.fs, "fsync_dir", failing)
    with pytest.raises(OSError):
        store.remove(tid)
    assert [t.taskid for t in store.list_tasks()] == [tid]       # the empty reply is true
    assert os.listdir(store.tasks_dir) == [str(tid)]
    monkeypatch.setattr(store.fs, "fsync_dir", real)
    store.remove(tid)
    assert store.list_tasks() == [] and os.listdir(store.tasks_dir) == []
    reopened = Store(tmp_path / "data", lambda m: None)
    reopened.open()
    assert reopened.list_tasks() == []


@pytest.mark.parametrize("failing_dir", ["root", "trash"])
def test_delete_all_whose_fsync_fails_removes_nothing(store, tmp_path, monkeypatch, failing_dir):
    """DELETE_ALL is one rename of tasks/: when it cannot be made durable, every task is
    put back (the empty reply is true); otherwise every task goes."""
    ids = [store.create(P.Timing(1, 1, 1), (b"echo", str(i).encode())) for i in range(4)]
    real = store.fs.fsync_dir
    target = store.root if failing_dir == "root" else store.trash_dir

    def failing(path):
        if path == target:
            raise OSError(28, "No space left on device")
        return real(path)
    monkeypatch.setattr(store.fs, "fsync_dir", failing)
    with pytest.raises(OSError):
        store.remove_all()
    monkeypatch.setattr(store.fs, "fsync_dir", real)
    assert [t.taskid for t in store.list_tasks()] == ids
    assert sorted(os.listdir(store.tasks_dir)) == [str(i) for i in ids]
    for t in store.list_tasks():
        assert t.argv == (b"echo", str(t.taskid).encode())
    reopened = Store(tmp_path / "data", lambda m: None)
    reopened.open()
    assert [t.taskid for t in reopened.list_tasks()] == ids
    assert store.remove_all() == 4 and store.list_tasks() == []


def _publish_until(store, tid, out, when, stop_at, monkeypatch):
    """Publish a run whose stdout is ``out``, simulating a crash at ``stop_at``:
    'before-commit' (outputs staged, no record) or 'after-commit' (record appended, outputs
    not yet in place)."""
    o, e = store.spool_paths()
    with open(o, "wb") as f:
        f.write(out)
    with open(e, "wb") as f:
        f.write(b"err " + out)

    class Crash(Exception):
        pass
    real_replace, real_write = store.fs.replace, store.fs.write

    def replace(src, dst):
        if stop_at == "after-commit" and ".new." in os.path.basename(src):
            raise Crash()
        return real_replace(src, dst)

    def write(fd, data):
        if stop_at == "before-commit" and len(data) == P.RUN_RECORD_SIZE:
            raise Crash()
        return real_write(fd, data)
    monkeypatch.setattr(store.fs, "replace", replace)
    monkeypatch.setattr(store.fs, "write", write)
    try:
        store.publish(tid, store.get(tid).token, when, 0, o, e)
    except Crash:
        pass
    finally:
        monkeypatch.setattr(store.fs, "replace", real_replace)
        monkeypatch.setattr(store.fs, "write", real_write)


@pytest.mark.parametrize("stop_at", ["before-commit", "after-commit"])
def test_outputs_always_belong_to_the_last_recorded_run(store, tmp_path, monkeypatch, stop_at):
    tid = store.create(P.Timing(1, 1, 1), (b"echo",))
    o, e = store.spool_paths()
    for path, data in ((o, b"first"), (e, b"err first")):
        with open(path, "wb") as f:
            f.write(data)
    assert store.publish(tid, store.get(tid).token, 60, 0, o, e)
    _publish_until(store, tid, b"second", 120, stop_at, monkeypatch)
    reopened = Store(tmp_path / "data", lambda m: None)      # the restart after the crash
    reopened.open()
    runs = P.decode_runs(reopened.runs(tid))
    task_dir = tmp_path / "data" / "tasks" / str(tid)
    assert sorted(os.listdir(task_dir)) == ["argv", "exit", "stderr", "stdout", "time_exec"]
    if stop_at == "before-commit":
        assert runs == [(60, 0)]
        assert reopened.output(tid, "stdout") == b"first"
        assert reopened.output(tid, "stderr") == b"err first"
    else:
        assert runs == [(60, 0), (120, 0)]
        assert reopened.output(tid, "stdout") == b"second"
        assert reopened.output(tid, "stderr") == b"err second"


def _published(store, tmp_path, tid, when, text):
    o, e = tmp_path / f"o{when}", tmp_path / f"e{when}"
    o.write_bytes(text)
    e.write_bytes(b"")
    assert store.publish(tid, store.get(tid).token, when, 0, str(o), str(e))


def test_reset_history_is_a_store_operation(store, tmp_path):
    """Runs and outputs go, the token changes (a run in flight is not recorded), what the
    caller forgets is handed the task directory; the task's error log stays."""
    tid = store.create(P.Timing(1, 1, 1), (b"echo", b"x"))
    _published(store, tmp_path, tid, 60, b"out")
    task_dir = os.path.join(store.tasks_dir, str(tid))
    with open(store.task_errors_path(tid), "wb") as f:
        f.write(b"kept")
    token = store.get(tid).token
    forgotten = []
    store.reset_history(tid, forgotten.append)
    assert forgotten == [task_dir]
    assert store.runs(tid) == b"" and store.get(tid).token != token
    assert sorted(os.listdir(task_dir)) == ["argv", "errors", "exit", "time_exec"]
    with pytest.raises(LookupError):
        store.reset_history(tid + 1)
    reopened = Store(tmp_path / "data", lambda m: None)
    reopened.open()
    assert reopened.runs(tid) == b""


def test_reset_history_whose_commit_fails_changes_nothing(store, tmp_path, monkeypatch):
    tid = store.create(P.Timing(1, 1, 1), (b"echo", b"x"))
    _published(store, tmp_path, tid, 60, b"out")
    token = store.get(tid).token

    def failing(path, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(store.fs, "write_atomic", failing)
    with pytest.raises(OSError):
        store.reset_history(tid)
    assert store.get(tid).token == token and len(store.runs(tid)) == P.RUN_RECORD_SIZE
    assert store.output(tid, "stdout") == b"out"

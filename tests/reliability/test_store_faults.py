"""Storage faults at the worst moment leave each task all-or-nothing, in memory and on disk."""

import os

import pytest

from saturnd import protocol as P
from saturnd import store as store_mod
from saturnd.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "data", lambda m: None)
    s.open()
    return s


def test_remove_whose_directory_fsync_fails_keeps_the_task(store, tmp_path, monkeypatch):
    tid = store.create(P.Timing(1, 1, 1), (b"echo", b"x"))
    real = store_mod.fsync_dir

    def failing(path):
        if path == store.tasks_dir:
            raise OSError(5, "Input/output error")
        return real(path)
    monkeypatch.setattr(store_mod, "fsync_dir", failing)
    with pytest.raises(OSError):
        store.remove(tid)
    assert [t.taskid for t in store.list_tasks()] == [tid]       # the empty reply is true
    assert os.listdir(store.tasks_dir) == [str(tid)]
    monkeypatch.setattr(store_mod, "fsync_dir", real)
    store.remove(tid)
    assert store.list_tasks() == [] and os.listdir(store.tasks_dir) == []
    reopened = Store(tmp_path / "data", lambda m: None)
    reopened.open()
    assert reopened.list_tasks() == []


def test_delete_all_failing_halfway_removes_whole_tasks_only(store, monkeypatch):
    """DELETE_ALL is task by task: a failure halfway leaves the earlier removals done and
    every other task whole (documented; no task is ever half removed)."""
    ids = [store.create(P.Timing(1, 1, 1), (b"echo", str(i).encode())) for i in range(4)]
    real = store_mod.fsync_dir
    calls = []

    def failing(path):
        if path == store.tasks_dir:
            calls.append(path)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
        return real(path)
    monkeypatch.setattr(store_mod, "fsync_dir", failing)
    with pytest.raises(OSError):
        store.remove_all()
    left = [t.taskid for t in store.list_tasks()]
    assert left == ids[2:]
    assert sorted(os.listdir(store.tasks_dir)) == [str(i) for i in ids[2:]]
    for t in store.list_tasks():
        assert t.argv == (b"echo", str(t.taskid).encode())

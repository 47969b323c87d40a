"""The start-up index (DATA_DIR/index): written at a clean stop, read and deleted at the
next start, ignored when damaged, per task when a folder changed behind its back."""

import os

import pytest

from saturnd import protocol as P
from saturnd import store as store_mod

pytestmark = pytest.mark.timeout(30)

EVERY = P.EVERY_MINUTE


def _state(s):
    return [(t.taskid, t.timing.as_tuple(), t.argv, t.cron.attributes(), t.paused)
            for t in s.list_tasks()]


def _count_reads(s, monkeypatch):
    """Files opened under tasks/ by ``s.open()``."""
    opened = []
    real = s.fs.open

    def counting(path, *args):
        if "/tasks/" in str(path):
            opened.append(str(path))
        return real(path, *args)
    monkeypatch.setattr(s.fs, "open", counting)
    return opened


def _made(open_store):
    s = open_store()
    for i in range(5):
        s.create(P.Timing(1 << i, 3, 5), (b"echo", b"%d" % i))
    s.set_paused(1, True)
    s.remove(3)
    return s


def test_index_written_at_stop_is_used_then_deleted(open_store, tmp_path, monkeypatch, logs):
    s = _made(open_store)
    want = _state(s)
    for d in (tmp_path / "data" / "tasks").iterdir():   # changed in an earlier tick than
        os.utime(d, ns=(10**18, 10**18))               # the index (mtimes are coarse)
    s.save_index()
    index = tmp_path / "data" / "index"
    assert index.exists()
    s2 = store_mod.Store(tmp_path / "data", logs.append)
    opened = _count_reads(s2, monkeypatch)
    s2.open()
    assert _state(s2) == want
    assert opened == []                    # nothing read from the task folders
    assert not index.exists()              # deleted before anything is served
    assert s2.create(EVERY, (b"x",)) == 5


def test_absent_index_reads_the_folders(open_store, tmp_path):
    s = _made(open_store)
    want = _state(s)
    assert _state(open_store()) == want


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "magic"])
def test_damaged_index_is_ignored(open_store, tmp_path, logs, damage):
    s = _made(open_store)
    want = _state(s)
    s.save_index()
    index = tmp_path / "data" / "index"
    data = bytearray(index.read_bytes())
    if damage == "flip":
        data[-3] ^= 0x40
    elif damage == "truncate":
        del data[len(data) // 2:]
    elif damage == "empty":
        data = bytearray()
    else:
        data[0] ^= 1
    index.write_bytes(bytes(data))
    s2 = open_store()
    assert _state(s2) == want
    assert any("index is damaged" in line for line in logs), logs
    assert not index.exists()


def test_folders_changed_after_the_index_are_read_again(open_store, tmp_path, logs):
    """A folder made, removed or replaced while the daemon was stopped (another daemon, a
    restore): the index is trusted only for folders it saw, unchanged since."""
    s = _made(open_store)
    s.save_index()
    # while "stopped": another writer changes things (the same store code, no index)
    other = store_mod.Store(tmp_path / "data", logs.append)
    other.tasks = {i: t.snapshot() for i, t in s.tasks.items()}
    other.next_id = 5
    other.set_argv(0, (b"changed",))         # a file replaced in folder 0: its mtime moves
    other.remove(4)
    os.utime(tmp_path / "data" / "index", ns=(1, 1))   # index older than every folder
    s2 = open_store()
    assert [(t.taskid, t.argv) for t in s2.list_tasks()] == [
        (0, (b"changed",)), (1, (b"echo", b"1")), (2, (b"echo", b"2"))]


def test_a_folder_replaced_under_the_same_name_is_read_again(open_store, tmp_path):
    s = _made(open_store)
    s.save_index()
    d = tmp_path / "data" / "tasks"
    os.rename(d / "2", tmp_path / "data" / "trash" / "2")
    os.mkdir(d / "2")
    for name in ("argv", "time_exec", "exit"):
        (d / "2" / name).write_bytes((tmp_path / "data" / "trash" / "2" / name).read_bytes())
    (d / "2" / "argv").write_bytes(P.encode_commandline((b"other",)))
    st = os.stat(d / "2")
    os.utime(tmp_path / "data" / "index", ns=(st.st_mtime_ns + 10**9, st.st_mtime_ns + 10**9))
    assert dict((t.taskid, t.argv) for t in open_store().list_tasks())[2] == (b"other",)


def test_a_folder_changed_in_the_index_s_own_tick_is_read_again(open_store, tmp_path):
    """mtimes are coarse: a folder whose mtime is not older than the index is not trusted."""
    s = _made(open_store)
    s.save_index()
    d = tmp_path / "data" / "tasks" / "0"
    (d / "argv").write_bytes(P.encode_commandline((b"edited",)))
    index = tmp_path / "data" / "index"
    st = os.stat(index)
    os.utime(d, ns=(st.st_mtime_ns, st.st_mtime_ns))
    assert dict((t.taskid, t.argv) for t in open_store().list_tasks())[0] == (b"edited",)


@pytest.mark.parametrize("change", ["create", "set_argv", "set_timing", "set_paused",
                                    "set_cron", "remove", "remove_all", "reset_taskmax"])
def test_every_change_after_save_deletes_the_index(open_store, tmp_path, change):
    s = _made(open_store)
    s.save_index()
    index = tmp_path / "data" / "index"
    assert index.exists()
    {"create": lambda: s.create(EVERY, (b"n",)),
     "set_argv": lambda: s.set_argv(0, (b"n",)),
     "set_timing": lambda: s.set_timing(0, P.Timing(1, 1, 1)),
     "set_paused": lambda: s.set_paused(0, True),
     "set_cron": lambda: s.set_cron(0, P.Timing(1, 1, 1), s.get(0).cron),
     "remove": lambda: s.remove(0),
     "remove_all": lambda: s.remove_all(),
     "reset_taskmax": lambda: s.reset_taskmax()}[change]()
    assert not index.exists()


def test_crash_while_writing_the_index_leaves_none_or_a_whole_one(open_store, tmp_path,
                                                                  monkeypatch):
    """The index is written to a temporary name and renamed: a crash before the rename
    leaves a leftover temporary file (ignored) and no index; start-up is as without one."""
    s = _made(open_store)
    want = _state(s)
    monkeypatch.setattr(s.fs, "replace", lambda a, b: (_ for _ in ()).throw(OSError(5, "EIO")))
    s.save_index()
    monkeypatch.undo()
    assert not (tmp_path / "data" / "index").exists()
    (tmp_path / "data" / ".index.tmp").write_bytes(b"torn")
    assert _state(open_store()) == want


def test_the_index_is_not_left_behind_when_it_cannot_be_deleted(open_store, tmp_path,
                                                                monkeypatch, logs):
    """If start-up cannot delete the index, the first change tries again and fails rather
    than leave an index behind the folders."""
    s = _made(open_store)
    s.save_index()
    s2 = store_mod.Store(tmp_path / "data", logs.append)
    real = s2.fs.unlink

    def failing(path):
        if str(path).endswith("/index"):
            raise OSError(13, "Permission denied")
        return real(path)
    monkeypatch.setattr(s2.fs, "unlink", failing)
    s2.open()
    assert any("cannot delete the index" in line for line in logs)
    with pytest.raises(OSError):
        s2.set_argv(0, (b"n",))
    assert s2.get(0).argv == (b"echo", b"0")
    monkeypatch.undo()
    s2.set_argv(0, (b"n",))
    assert not (tmp_path / "data" / "index").exists()


@pytest.mark.timeout(90)
def test_daemon_writes_the_index_at_a_clean_stop_only(make_daemon):
    d = make_daemon().start()
    for i in range(3):
        assert d.cassini("-c", "--", "echo", str(i)).returncode == 0
    listing = d.out("-l")
    assert d.terminate() == 0
    index = d.data / "index"
    assert index.exists(), d.log()
    d.start()
    assert not index.exists()                      # deleted before the first reply
    assert d.out("-l") == listing
    d.kill9()                                      # no clean stop: no index
    assert not index.exists()
    d.start()
    assert d.out("-l") == listing


def test_the_list_entries_kept_in_the_index_are_the_tasks_encodings(open_store, tmp_path):
    """The index keeps each task's LIST entry: the first LIST after a clean stop joins them
    (commands/list.py) -- the same bytes as encoding the tasks afresh."""
    from saturnd.commands import list as list_cmd
    s = _made(open_store)
    for d in (tmp_path / "data" / "tasks").iterdir():
        os.utime(d, ns=(10**18, 10**18))
    s.save_index()
    s2 = open_store()
    assert len(s2.list_seed) == len(s2.tasks) == 4
    for t in s2.list_tasks():
        assert s2.list_seed[t.token] == P.encode_list_entry(t.taskid, t.timing, t.argv)

    class Ctx:
        store = s2
    reply = list_cmd.handle(Ctx, None)
    assert P.encode_reply(P.LIST, reply) == P.encode_reply(
        P.LIST, P.Reply(tasks=[(t.taskid, t.timing, t.argv) for t in s.list_tasks()]))
    assert s2.list_seed is None

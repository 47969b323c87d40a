"""The on-disk store: C layout, durability recipe, recovery at start-up."""

import errno
import os
import struct
import threading

import pytest

from saturnd import protocol as P
from saturnd import store as store_mod
from saturnd.store import NeverRan, NotFound
from testkit.stubs import spool

pytestmark = pytest.mark.timeout(20)

EVERY = P.EVERY_MINUTE


def test_layout_is_the_c_layout(open_store, tmp_path):
    s = open_store()
    timing = P.Timing(1 | 1 << 30, 0xFF00, 0x3E)
    assert s.create(timing, (b"backup.sh", b"--fast")) == 0
    d = tmp_path / "data" / "tasks" / "0"
    assert (d / "argv").read_bytes() == b"\0\0\0\2\0\0\0\x09backup.sh\0\0\0\x06--fast"
    assert (d / "time_exec").read_bytes() == bytes.fromhex("0000000040000001 0000ff00 3e")
    assert (d / "exit").read_bytes() == b""
    assert (tmp_path / "data" / "taskid_max").read_bytes() == struct.pack(">Q", 1)
    t = s.get(0)
    assert s.publish(0, t.token, 1767258000, 0xFFFF, *spool(s, b"o", b"e"))
    assert (d / "exit").read_bytes() == bytes.fromhex("0000000069563790 ffff")
    assert (d / "stdout").read_bytes() == b"o" and (d / "stderr").read_bytes() == b"e"
    assert os.listdir(tmp_path / "data" / "runs") == []


def test_reload_keeps_tasks_history_outputs(open_store):
    s = open_store()
    for i in range(3):
        s.create(EVERY, (b"echo", b"%d" % i))
    t = s.get(1)
    s.publish(1, t.token, 60, 3, *spool(s, b"out", b"err"))
    s.remove(2)
    s2 = open_store()
    assert [(t.taskid, t.argv) for t in s2.list_tasks()] == [(0, (b"echo", b"0")), (1, (b"echo", b"1"))]
    assert P.decode_runs(s2.runs(1)) == [(60, 3)]
    assert s2.output(1, "stdout") == b"out"
    with pytest.raises(NeverRan):
        s2.output(0, "stdout")
    with pytest.raises(NotFound):
        s2.runs(2)
    assert s2.create(EVERY, (b"x",)) == 3              # the removed id is not handed out again


def test_next_id_survives_a_lost_taskid_max(open_store, tmp_path):
    s = open_store()
    for _ in range(5):
        s.create(EVERY, (b"x",))
    os.unlink(tmp_path / "data" / "taskid_max")
    assert open_store().create(EVERY, (b"x",)) == 5
    (tmp_path / "data" / "taskid_max").write_bytes(b"bad")
    assert open_store().create(EVERY, (b"x",)) == 6


def test_reset_taskmax_is_durable(open_store):
    s = open_store()
    for _ in range(4):
        s.create(EVERY, (b"x",))
    s.remove(3)
    s.remove(2)
    assert s.reset_taskmax() == 2
    assert open_store().create(EVERY, (b"y",)) == 2
    s = open_store()
    assert s.remove_all() == 3
    assert s.reset_taskmax() == 0
    assert open_store().create(EVERY, (b"z",)) == 0


def test_torn_last_record_is_dropped(open_store, tmp_path, logs):
    s = open_store()
    s.create(EVERY, (b"x",))
    t = s.get(0)
    s.publish(0, t.token, 120, 7, *spool(s))
    exit_path = tmp_path / "data" / "tasks" / "0" / "exit"
    with open(exit_path, "ab") as f:
        f.write(b"\0\0\0\0\0")                          # a crash in the middle of an append
    s2 = open_store()
    assert P.decode_runs(s2.runs(0)) == [(120, 7)]
    assert exit_path.read_bytes() == P.encode_run(120, 7)
    assert any("torn" in line for line in logs)


def test_damaged_and_foreign_entries_are_skipped(open_store, tmp_path, logs):
    s = open_store()
    s.create(EVERY, (b"good",))
    tasks = tmp_path / "data" / "tasks"
    (tasks / "5").mkdir()
    (tasks / "5" / "argv").write_bytes(b"\0\0\0\0")     # ARGC 0
    (tasks / "5" / "time_exec").write_bytes(EVERY.encode())
    (tasks / "6").mkdir()                               # no files at all
    (tasks / "7").write_bytes(b"a file")
    (tasks / "notes.txt").write_bytes(b"foreign")
    (tasks / "007").mkdir()                             # not a canonical id
    s2 = open_store()
    assert [t.taskid for t in s2.list_tasks()] == [0]
    assert s2.create(EVERY, (b"x",)) == 8               # never collides with an existing entry
    assert sum("skipping" in line for line in logs) == 5


def test_failed_create_leaves_nothing_half_done(open_store, tmp_path, monkeypatch):
    s = open_store()
    real = s.fs.open

    def failing(path, *args):
        if str(path).endswith("time_exec"):
            raise OSError(28, "No space left on device")
        return real(path, *args)

    monkeypatch.setattr(s.fs, "open", failing)
    with pytest.raises(OSError):
        s.create(EVERY, (b"x",))
    monkeypatch.setattr(s.fs, "open", real)
    assert s.list_tasks() == []
    assert os.listdir(tmp_path / "data" / "tasks") == []
    assert os.listdir(tmp_path / "data" / "tmp") == []
    assert s.create(EVERY, (b"x",)) == 1                # the spent id is not reused
    assert [t.taskid for t in open_store().list_tasks()] == [1]


def test_failed_set_keeps_the_old_value(open_store, tmp_path, monkeypatch):
    s = open_store()
    s.create(EVERY, (b"old",))
    monkeypatch.setattr(s.fs, "replace", lambda a, b: (_ for _ in ()).throw(OSError(5, "EIO")))
    with pytest.raises(OSError):
        s.set_argv(0, (b"new",))
    monkeypatch.undo()
    assert s.get(0).argv == (b"old",)
    assert (tmp_path / "data" / "tasks" / "0" / "argv").read_bytes() == P.encode_commandline((b"old",))
    assert sorted(os.listdir(tmp_path / "data" / "tasks" / "0")) == ["argv", "exit", "time_exec"]


def test_create_renames_into_place_after_fsync(open_store, monkeypatch, tmp_path):
    s = open_store()
    events = []
    real_fsync, real_rename = s.fs.fsync, s.fs.rename
    monkeypatch.setattr(s.fs, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(s.fs, "rename", lambda a, b: (events.append(("rename", str(b))), real_rename(a, b))[1])
    s.create(EVERY, (b"x",))
    monkeypatch.undo()
    tasks = str(tmp_path / "data" / "tasks")
    rename_at = events.index(("rename", tasks + "/0"))
    synced = {p for kind, p in events[:rename_at] if kind == "fsync"}
    build = str(tmp_path / "data" / "tmp" / "0")
    # the files with content and the folder (its entries: the empty exit's too)
    assert {build + "/argv", build + "/time_exec", build} <= synced
    assert ("fsync", tasks) in events[rename_at:]       # the directory entry is durable


def test_create_syncs_four_times(open_store, monkeypatch, tmp_path):
    """CREATE: argv, time_exec, the build folder, tasks/ -- not taskid_max (written in
    place unsynced after the commit point), not the empty exit (its folder's sync covers it)."""
    s = open_store()
    s.create(EVERY, (b"warm",))
    synced = []
    real_fsync = s.fs.fsync
    monkeypatch.setattr(s.fs, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1])
    assert s.create(EVERY, (b"x",)) == 1
    monkeypatch.undo()
    data = str(tmp_path / "data")
    assert synced == [data + "/tmp/1/argv", data + "/tmp/1/time_exec", data + "/tmp/1",
                      data + "/tasks"]
    assert (tmp_path / "data" / "taskid_max").read_bytes() == struct.pack(">Q", 2)


def test_removing_the_highest_task_makes_taskid_max_durable_first(open_store, monkeypatch,
                                                                   tmp_path):
    """taskid_max is not synced by CREATE: before the highest task's folder goes (the proof
    that its id was spent), taskid_max is made durable; a lower task's removal needs not."""
    s = open_store()
    for _ in range(3):
        s.create(EVERY, (b"x",))
    events = []
    real_fsync, real_rename = s.fs.fsync, s.fs.rename
    monkeypatch.setattr(s.fs, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(s.fs, "rename", lambda a, b: (events.append(("rename", str(a))), real_rename(a, b))[1])
    s.remove(0)
    assert not any(p.endswith("taskid_max.tmp") for _, p in events)
    s.remove(2)
    data = str(tmp_path / "data")
    synced_max = events.index(("fsync", data + "/.taskid_max.tmp"))
    assert synced_max < events.index(("rename", data + "/tasks/2"))
    monkeypatch.undo()
    (tmp_path / "data" / "tasks" / "1").rename(tmp_path / "data" / "trash" / "1")
    assert open_store().create(EVERY, (b"y",)) == 3     # no id reused after a crash


def test_stale_incarnation_is_discarded(open_store, tmp_path):
    s = open_store()
    s.create(EVERY, (b"x",))
    old = s.get(0).token
    s.set_argv(0, (b"y",))
    paths = spool(s, b"stale")
    assert not s.publish(0, old, 60, 0, *paths)
    assert not any(os.path.exists(p) for p in paths)
    assert s.runs(0) == b""
    s.remove(0)
    assert s.reset_taskmax() == 0
    s.create(EVERY, (b"z",))
    assert not s.publish(0, old, 60, 0, *spool(s, b"stale"))
    assert s.runs(0) == b""


def test_publish_truncates_to_the_cap(open_store):
    s = open_store()
    s.create(EVERY, (b"x",))
    assert s.publish(0, s.get(0).token, 0, 0, *spool(s, b"a" * 100, b"b" * 5), cap=10)
    assert s.output(0, "stdout") == b"a" * 10
    assert s.output(0, "stderr") == b"b" * 5


def test_leftovers_are_cleared_at_start(open_store, tmp_path):
    s = open_store()
    spool(s, b"junk")
    (tmp_path / "data" / "trash" / "3.9").mkdir()
    (tmp_path / "data" / "tmp" / "4").mkdir()
    open_store()
    for d in ("runs", "trash", "tmp"):
        assert os.listdir(tmp_path / "data" / d) == []


def test_large_outputs_are_handed_out_open_for_streaming(open_store):
    """STDOUT/STDERR of more than SMALL_OUTPUT bytes come back as an open file read in
    chunks (never whole); the bytes are exact, and a later run does not change them."""
    s = open_store()
    s.create(EVERY, (b"x",))
    with pytest.raises(NeverRan):
        s.output_file(0, "stdout")
    big = bytes(range(256)) * ((store_mod.SMALL_OUTPUT // 256) + 3)
    assert s.publish(0, s.get(0).token, 60, 0, *spool(s, big, b"small"))
    assert s.output_file(0, "stderr") == b"small"
    out = s.output_file(0, "stdout")
    try:
        assert isinstance(out, store_mod.OutputFile) and len(out) == len(big)
        assert s.publish(0, s.get(0).token, 120, 0, *spool(s, b"next", b""))
        chunks = list(out.chunks(4096))
        assert max(map(len, chunks)) <= 4096 and b"".join(chunks) == big
    finally:
        out.close()
    assert s.output(0, "stdout") == b"next"
    with pytest.raises(NotFound):
        s.output_file(9, "stdout")


def test_a_closed_output_file_reads_as_an_os_error(open_store):
    """Streaming an output file already closed is a storage error (the server's empty
    reply), not a TypeError from a descriptor gone None."""
    s = open_store()
    s.create(EVERY, (b"x",))
    big = b"z" * (store_mod.SMALL_OUTPUT + 1)
    assert s.publish(0, s.get(0).token, 60, 0, *spool(s, big, b""))
    out = s.output_file(0, "stdout")
    assert isinstance(out, store_mod.OutputFile)
    out.close()
    with pytest.raises(OSError) as caught:
        next(out.chunks())
    assert caught.value.errno == errno.EBADF


def test_publish_by_copy_is_capped_and_deaf_to_later_writes(open_store):
    """copy=True (the run's process group lives on): the outputs are copies of the first
    cap bytes; what the holders of the spool files write afterwards never reaches them."""
    s = open_store()
    s.create(EVERY, (b"x",))
    o, e = spool(s, b"a" * 100, b"")
    holder = os.open(o, os.O_WRONLY | os.O_APPEND)
    try:
        assert s.publish(0, s.get(0).token, 0, 0, o, e, cap=10, copy=True)
        assert not os.path.exists(o) and not os.path.exists(e)
        os.write(holder, b"late" * 1000)
    finally:
        os.close(holder)
    assert s.output(0, "stdout") == b"a" * 10
    assert s.output(0, "stderr") == b""


@pytest.mark.parametrize("name", ["argv", "time_exec", "exit"])
def test_a_symlink_in_a_task_folder_is_never_followed(open_store, tmp_path, logs, name):
    """``argv`` (or ``time_exec``, ``exit``) replaced by a symlink to a file of the right
    shape elsewhere: the task is skipped as damaged, the target never read."""
    s = open_store()
    s.create(EVERY, (b"good",))
    s.create(EVERY, (b"victim",))
    task = tmp_path / "data" / "tasks" / "1"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes({"argv": P.encode_commandline((b"cat", b"/etc/passwd")),
                           "time_exec": EVERY.encode(), "exit": b""}[name])
    os.unlink(task / name)
    os.symlink(elsewhere, task / name)
    s2 = open_store()
    assert [t.taskid for t in s2.list_tasks()] == [0]
    assert any("symlink" in line and "skipping" in line for line in logs), logs


def test_no_id_at_or_beyond_2_63_is_handed_out(open_store, tmp_path, logs):
    """A taskid_max set by hand just below 2^63: the last ids below it are handed out,
    then CREATE fails (storage error: empty reply) instead of handing out 2^63, and the
    store opens again without calling anything damaged."""
    open_store()
    (tmp_path / "data" / "taskid_max").write_bytes(struct.pack(">Q", (1 << 63) - 2))
    s = open_store()
    assert s.create(EVERY, (b"x",)) == (1 << 63) - 2
    with pytest.raises(OSError):
        s.create(EVERY, (b"y",))
    assert [t.taskid for t in s.list_tasks()] == [(1 << 63) - 2]
    logs.clear()
    s2 = open_store()
    assert [t.taskid for t in s2.list_tasks()] == [(1 << 63) - 2]
    assert not any("damaged" in line for line in logs), logs


def test_a_removed_task_is_deleted_off_the_reply_path(open_store, tmp_path, monkeypatch):
    """REMOVE answers once the rename into trash/ is durable; the folder is deleted by a
    background thread (a crash before that leaves it in trash/, cleared at start-up)."""
    s = open_store()
    s.create(EVERY, (b"x",))
    threads = []
    real = s.fs.rmtree
    monkeypatch.setattr(s.fs, "rmtree", lambda *a, **k: (threads.append(
        threading.current_thread()), real(*a, **k))[1])
    s.remove(0)
    assert s.wait_swept(10)
    assert threads and threading.main_thread() not in threads
    assert os.listdir(tmp_path / "data" / "trash") == []
    assert os.listdir(tmp_path / "data" / "tasks") == []


def test_removed_tasks_are_deleted_once_changes_pause(open_store, tmp_path, monkeypatch):
    """A script removing many tasks one after the other: deleting each folder at once
    competed with the next replies (REMOVE through the C client 1.6-1.8x its durable floor);
    the folders wait in trash/ until no change has come for SWEEP_QUIET s, then go."""
    import time
    monkeypatch.setattr(store_mod, "SWEEP_QUIET", 1.0, raising=False)
    s = open_store()
    for i in range(12):
        s.create(EVERY, (b"x", str(i).encode()))
    trash = tmp_path / "data" / "trash"
    for i in range(12):
        s.remove(i)
        time.sleep(0.02)
    assert len(os.listdir(trash)) == 12          # nothing deleted while the removals came
    assert s.wait_swept(10)
    assert os.listdir(trash) == []
    assert os.listdir(tmp_path / "data" / "tasks") == []


def test_create_writes_taskid_max_in_place(open_store, monkeypatch, tmp_path):
    """The unsynced hint is written in place (no rename: ext4 would start writing a file
    renamed over another at once)."""
    s = open_store()
    s.create(EVERY, (b"x",))
    renamed = []
    real = s.fs.replace
    monkeypatch.setattr(s.fs, "replace", lambda a, b: (renamed.append(b), real(a, b))[1])
    assert s.create(EVERY, (b"y",)) == 1
    assert renamed == []
    assert (tmp_path / "data" / "taskid_max").read_bytes() == struct.pack(">Q", 2)

"""The error log files (saturnd.errlog): bounded, oldest dropped, torn entries never shown."""

import os

import pytest

from saturnd import errlog, protocol
from saturnd.store import Store

pytestmark = pytest.mark.timeout(30)


def test_entries_round_trip_oldest_first(tmp_path):
    path = tmp_path / "errors"
    assert errlog.read_file(path) == []
    for i in range(5):
        errlog.append(path, 1000 + i, b"message %d" % i, 4096)
    assert errlog.read_file(path) == [(1000 + i, b"message %d" % i) for i in range(5)]


def test_the_file_stays_within_its_cap_and_drops_the_oldest(tmp_path):
    path = tmp_path / "errors"
    cap = 1024
    for i in range(500):
        errlog.append(path, i, b"entry number %03d" % i, cap)
        assert os.path.getsize(path) <= cap
    entries = errlog.read_file(path)
    assert entries[-1] == (499, b"entry number 499")
    times = [t for t, _ in entries]
    assert times == list(range(500 - len(times), 500))      # a contiguous newest tail
    assert len(entries) >= (cap // 2) // len(errlog.encode_entry(0, b"entry number 000")) - 1


@pytest.mark.parametrize("cut", [1, 7, 15, 20])
def test_a_torn_last_entry_is_never_shown_and_is_cut_off_by_the_next_append(tmp_path, cut):
    path = tmp_path / "errors"
    errlog.append(path, 1, b"whole", 4096)
    torn = errlog.encode_entry(2, b"torn entry")[:-cut]
    with open(path, "ab") as f:
        f.write(torn)
    assert errlog.read_file(path) == [(1, b"whole")]
    errlog.append(path, 3, b"after", 4096)
    # cut off, and told: never dropped silently
    assert errlog.read_file(path) == [(1, b"whole"),
                                      (3, errlog.damage_text(len(torn), "dropped")),
                                      (3, b"after")]


def test_a_damaged_entry_hides_what_follows_but_not_what_precedes(tmp_path):
    path = tmp_path / "errors"
    errlog.append(path, 1, b"one", 4096)
    errlog.append(path, 2, b"two", 4096)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF                       # CRC mismatch in the last entry
    path.write_bytes(bytes(data))
    assert errlog.read_file(path) == [(1, b"one")]


class _Clock:
    def now(self):
        return 1234.9


def test_task_entries_need_the_task_and_messages_are_bounded(tmp_path):
    logged = []
    store = Store(tmp_path / "data", logged.append)
    store.open()
    log = errlog.ErrorLog(store, _Clock(), logged.append)
    tid = store.create(protocol.EVERY_MINUTE, (b"true",))
    log.add_task(tid, "x" * 5000)
    log.add_task(tid + 1, "no such task")           # dropped, no file created
    log.add_daemon("daemon-wide é")
    assert log.entries(tid) == [(1234, b"x" * protocol.MAX_ERROR_MESSAGE)]
    assert not os.path.exists(log.task_path(tid + 1))
    assert log.entries() == [(1234, "daemon-wide é".encode())]
    store.remove(tid)
    assert log.entries(tid) == []


def test_an_error_log_that_cannot_be_written_never_raises(tmp_path):
    logged = []
    store = Store(tmp_path / "data", logged.append)
    store.open()
    log = errlog.ErrorLog(store, _Clock(), logged.append)
    os.mkdir(log.daemon_path)              # the log file cannot be opened
    log.add_daemon("cannot be written")
    assert any("errlog: cannot record" in m for m in logged)


def test_wire_layout_of_the_error_log_request_and_reply():
    req = protocol.Request(protocol.ERROR_LOG, taskid=5, scope=protocol.ERROR_LOG_TASK)
    assert protocol.encode_request(req) == b"EL\x01" + (5).to_bytes(8, "big")
    assert protocol.decode_request(b"EL\x01" + (5).to_bytes(8, "big")) == req
    daemon_req = protocol.decode_request(b"EL\x00" + (9).to_bytes(8, "big"))
    assert daemon_req.taskid is None and daemon_req.scope == protocol.ERROR_LOG_DAEMON
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_request(b"EL\x02" + bytes(8))
    reply = protocol.Reply(entries=[(-1, b"a"), (2, b"")])
    data = protocol.encode_reply(protocol.ERROR_LOG, reply)
    assert data == (b"OK\0\0\0\x02" + (-1).to_bytes(8, "big", signed=True) + b"\0\0\0\x01a"
                    + (2).to_bytes(8, "big") + b"\0\0\0\0")
    assert protocol.decode_reply(data, protocol.ERROR_LOG) == reply
    with pytest.raises(protocol.Truncated):            # a lying NBENTRIES
        protocol.decode_reply(b"OK\xff\xff\xff\xff", protocol.ERROR_LOG)
    assert protocol.decode_request(b"RH" + bytes(8)).taskid == 0
    assert protocol.encode_reply(protocol.CLONE, protocol.Reply(value=7)) == \
        b"OK" + (7).to_bytes(8, "big")
    existing = {protocol.LIST, protocol.CREATE, protocol.REMOVE, protocol.TIMES_EXITCODES,
                protocol.STDOUT, protocol.STDERR, protocol.TERMINATE, protocol.SET_CMD,
                protocol.DELETE_ALL, protocol.SW_TIME, protocol.EXEC_TASK,
                protocol.RESET_TASKMAX}
    own = {protocol.RESET_HISTORY: b"RH", protocol.CLONE: b"CL", protocol.ERROR_LOG: b"EL"}
    assert len(existing) == 12 and not existing & set(own)
    assert all(op.to_bytes(2, "big") == text for op, text in own.items())


def test_a_reader_is_told_of_damaged_bytes(tmp_path):
    logged = []
    store = Store(tmp_path / "data", logged.append)
    store.open()
    log = errlog.ErrorLog(store, _Clock(), logged.append)
    log.add_daemon("one")
    with open(log.daemon_path, "ab") as f:
        f.write(b"garbage!" * 3)
    entries = log.entries()
    assert entries[0] == (1234, b"one")
    assert len(entries) == 2 and b"24 byte(s)" in entries[1][1], entries


def test_a_garbage_daemon_log_is_brought_within_its_cap_at_start_up(tmp_path):
    """100,000 garbage bytes in DATA_DIR/errors: at start-up the file is rewritten within
    its 64 KiB cap and tells what was dropped; the text log says so too."""
    logged = []
    store = Store(tmp_path / "data", logged.append)
    store.open()
    path = os.path.join(store.root, "errors")
    with open(path, "wb") as f:
        f.write(os.urandom(100_000))
    log = errlog.ErrorLog(store, _Clock(), logged.append)
    assert os.path.getsize(path) <= errlog.DAEMON_CAP
    entries = log.entries()
    assert len(entries) == 1 and b"100000 bytes" in entries[0][1], entries
    assert any("errlog:" in line and "dropped" in line for line in logged), logged


def test_an_over_cap_daemon_log_keeps_its_newest_entries(tmp_path):
    logged = []
    store = Store(tmp_path / "data", logged.append)
    store.open()
    path = os.path.join(store.root, "errors")
    with open(path, "wb") as f:
        f.write(b"".join(errlog.encode_entry(i, b"entry %05d" % i) for i in range(5000)))
    assert os.path.getsize(path) > errlog.DAEMON_CAP
    log = errlog.ErrorLog(store, _Clock(), logged.append)
    assert os.path.getsize(path) <= errlog.DAEMON_CAP
    entries = log.entries()
    assert entries[-2] == (4999, b"entry 04999") and b"older" in entries[-1][1]


def test_a_fault_injected_through_store_fs_reaches_the_error_log(tmp_path):
    """The error log writes through the store's FileOps (store.fs) at the store's paths:
    a fault injected there is what the error log meets (logged, never raised)."""
    logged = []
    store = Store(tmp_path / "data", logged.append)
    store.open()
    log = errlog.ErrorLog(store, _Clock(), logged.append)
    assert log.daemon_path == store.errors_path
    tid = store.create(protocol.EVERY_MINUTE, (b"true",))
    assert log.task_path(tid) == store.task_errors_path(tid)
    calls = []

    def failing_fsync(fd):
        calls.append(fd)
        raise OSError(5, "Input/output error (injected)")
    store.fs.fsync = failing_fsync
    log.add_daemon("daemon-wide")
    log.add_task(tid, "one task")
    assert len(calls) == 2
    assert sum("errlog: cannot record" in m and "injected" in m for m in logged) == 2, logged


def test_the_store_hands_its_error_log_the_damage_it_finds_at_start_up(tmp_path):
    logged = []
    store = Store(tmp_path / "data", logged.append)
    store.open()
    os.mkdir(os.path.join(store.tasks_dir, "7"))            # a task without its files
    store = Store(tmp_path / "data", logged.append)
    log = errlog.ErrorLog(store, _Clock(), logged.append)
    store.open(errors=log)
    assert [m for _, m in log.entries()] == [b"damaged task 7 skipped at start-up: "
                                             b"No such file or directory"]


def test_the_null_error_log_takes_everything_and_keeps_nothing():
    errlog.NONE.add_daemon("nowhere")
    errlog.NONE.add_task(0, "nowhere")
    errlog.NONE.clock_change(5, 4, 0)
    assert errlog.NONE.entries() == [] and errlog.NONE.entries(3) == []

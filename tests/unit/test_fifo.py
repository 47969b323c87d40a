"""saturnd/fifo.py: the FIFO calls every user shares, each bounded by its deadline."""

import errno
import os
import threading
import time

import pytest

from saturnd import fifo

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def path(tmp_path):
    p = str(tmp_path / "pipe")
    os.mkfifo(p, 0o600)
    return p


def _later(seconds, action):
    t = threading.Timer(seconds, action)
    t.start()
    return t


def test_a_reader_opens_at_once_and_reads_nothing(path):
    fd = fifo.open_reader(path)
    try:
        assert not os.get_blocking(fd)
        assert fifo.read_some(fd, 0.05) in (None, b"")     # no writer ever: nothing
    finally:
        os.close(fd)


def test_a_reader_refuses_a_symlink_when_asked(path, tmp_path):
    link = str(tmp_path / "link")
    os.symlink(path, link)
    with pytest.raises(OSError) as e:
        fifo.open_reader(link, nofollow=True)
    assert e.value.errno == errno.ELOOP
    os.close(fifo.open_reader(link))


def test_a_writer_without_a_reader(path):
    assert fifo.try_open_writer(path) is None
    start = time.monotonic()
    with pytest.raises(OSError) as e:
        fifo.open_writer(path, start + 0.1)
    assert e.value.errno == errno.ENXIO
    assert 0.1 <= time.monotonic() - start < 2


def test_a_writer_waits_for_its_reader(path):
    held = []
    timer = _later(0.1, lambda: held.append(fifo.open_reader(path)))
    try:
        fd = fifo.open_writer(path, time.monotonic() + 5)
        assert held and not os.get_blocking(fd)
        os.close(fd)
    finally:
        timer.join()
        for fd in held:
            os.close(fd)


def test_a_missing_fifo_fails_at_once_unless_it_may_appear(tmp_path):
    late = str(tmp_path / "late")
    with pytest.raises(FileNotFoundError):
        fifo.open_writer(late, time.monotonic() + 5)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError):
        fifo.open_writer(late, time.monotonic() + 5, missing_deadline=start + 0.1)
    assert time.monotonic() - start < 2


def test_giving_up_ends_the_wait_for_a_reader(path):
    start = time.monotonic()
    with pytest.raises(OSError):
        fifo.open_writer(path, start + 10, give_up=lambda: time.monotonic() - start > 0.05)
    assert time.monotonic() - start < 2


def test_read_some_sees_bytes_then_end_of_file(path):
    rfd = fifo.open_reader(path)
    wfd = fifo.open_writer(path, time.monotonic() + 1)
    try:
        assert fifo.read_some(rfd, 0.05) is None          # a writer, no bytes yet
        os.write(wfd, b"abc")
        assert fifo.read_some(rfd, 1) == b"abc"
        os.close(wfd)
        wfd = None
        assert fifo.read_some(rfd, 1) == b""
    finally:
        os.close(rfd)
        if wfd is not None:
            os.close(wfd)


def test_write_all_stalls_on_a_reader_that_reads_nothing(path):
    rfd = fifo.open_reader(path)
    wfd = fifo.open_writer(path, time.monotonic() + 1)
    try:
        size = 1 << 20
        start = time.monotonic()
        with pytest.raises(fifo.Stalled) as e:
            fifo.write_all(wfd, b"x" * size, 0.1)
        assert 0 < e.value.written < size and isinstance(e.value, TimeoutError)
        assert time.monotonic() - start < 5
        stopped = []
        with pytest.raises(fifo.Stalled):
            fifo.write_all(wfd, b"y" * size, 10, give_up=lambda: stopped.append(1) or True,
                           step=0.01)
        assert stopped
    finally:
        os.close(wfd)
        os.close(rfd)


def test_write_all_writes_everything_to_a_reader_that_reads(path):
    rfd = fifo.open_reader(path)
    wfd = fifo.open_writer(path, time.monotonic() + 1)
    data = os.urandom(300_000)
    got = bytearray()

    def drain():
        while len(got) < len(data):
            chunk = fifo.read_some(rfd, 5)
            if not chunk:
                return
            got.extend(chunk)
    reader = threading.Thread(target=drain)
    reader.start()
    try:
        fifo.write_all(wfd, data, 5)
        reader.join(10)
        assert bytes(got) == data
    finally:
        os.close(wfd)
        os.close(rfd)


def test_write_all_tells_a_closed_reader_and_what_went_out(path):
    rfd = fifo.open_reader(path)
    wfd = fifo.open_writer(path, time.monotonic() + 1)
    os.close(rfd)
    try:
        with pytest.raises(BrokenPipeError) as e:
            fifo.write_all(wfd, b"reply", 1)
        assert e.value.written == 0
    finally:
        os.close(wfd)


def test_flock_within_a_deadline(tmp_path):
    lock = str(tmp_path / "lock")
    a = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    b = os.open(lock, os.O_RDWR)
    try:
        assert fifo.flock(a, time.monotonic() + 1)
        start = time.monotonic()
        assert not fifo.flock(b, start + 0.1)
        assert 0.1 <= time.monotonic() - start < 2
        timer = _later(0.1, lambda: os.close(a))
        assert fifo.flock(b, time.monotonic() + 5)
        timer.join()
    finally:
        os.close(b)


def test_wait_tells_the_events_or_none(path):
    rfd = fifo.open_reader(path)
    wfd = fifo.open_writer(path, time.monotonic() + 1)
    try:
        assert fifo.wait_writable(wfd, 0)
        assert not fifo.wait_readable(rfd, 0.02)
        os.write(wfd, b"!")
        assert fifo.wait_readable(rfd, None)
    finally:
        os.close(wfd)
        os.close(rfd)

"""LIST (saturnd/commands/list.py): served from memory, each task's encoded entry cached
with the LIST handler until the task changes; the store knows nothing about the wire."""

import pytest

from saturnd import protocol as P
from saturnd.commands import dispatch
from saturnd.commands import list as list_cmd
from saturnd.store import Store

pytestmark = pytest.mark.timeout(60)


class _Ctx:
    def __init__(self, store):
        self.store = store


@pytest.fixture
def open_store(tmp_path):
    def make(name="data"):
        s = Store(tmp_path / name, lambda message: None)
        s.open()
        return s
    return make


def test_list_entries_follow_every_change(open_store):
    s = open_store()
    ctx = _Ctx(s)
    every = P.EVERY_MINUTE
    s.create(every, (b"echo", b"a"))
    s.create(every, (b"echo", b"b"))

    def listed():
        reply = P.encode_reply(P.LIST, dispatch(ctx, P.Request(P.LIST)))
        return [(i, t.as_tuple(), a) for i, t, a in P.decode_reply(reply, P.LIST).tasks]

    assert listed() == [(0, every.as_tuple(), (b"echo", b"a")), (1, every.as_tuple(), (b"echo", b"b"))]
    s.set_argv(0, (b"printf", b"x y"))
    s.set_timing(1, P.Timing(1, 2, 4))
    assert listed() == [(0, every.as_tuple(), (b"printf", b"x y")), (1, (1, 2, 4), (b"echo", b"b"))]
    s.remove(1)
    assert listed() == [(0, every.as_tuple(), (b"printf", b"x y"))]
    # the same bytes as a reply built from decoded tasks
    tasks = [(t.taskid, t.timing, t.argv) for t in s.list_tasks()]
    assert P.encode_reply(P.LIST, dispatch(ctx, P.Request(P.LIST))) == \
        P.encode_reply(P.LIST, P.Reply(tasks=tasks))


def test_the_cache_keeps_the_current_tasks_of_each_store_only(open_store):
    a, b = open_store("a"), open_store("b")
    a.create(P.EVERY_MINUTE, (b"in-a",))
    b.create(P.EVERY_MINUTE, (b"in-b",))       # same id, and maybe the same token, as in a
    assert [t[2] for t in list_cmd.handle(_Ctx(a), None).tasks] == [(b"in-a",)]
    assert [t[2] for t in list_cmd.handle(_Ctx(b), None).tasks] == [(b"in-b",)]
    first = list_cmd.handle(_Ctx(a), None).tasks.entries[0]
    assert list_cmd.handle(_Ctx(a), None).tasks.entries[0] is first    # served from the cache
    a.create(P.EVERY_MINUTE, (b"more",))
    a.remove(0)
    entries = list_cmd.handle(_Ctx(a), None).tasks.entries
    assert list(list_cmd._caches[a].values()) == entries and len(entries) == 1


def test_the_store_builds_no_wire_bytes():
    import saturnd.store as store_mod
    assert not hasattr(store_mod.Task, "list_entry")
    assert not hasattr(store_mod.Store, "list_entries")

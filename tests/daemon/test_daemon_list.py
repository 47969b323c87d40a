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
    assert list(list_cmd._memory[a].entries.values()) == entries and len(entries) == 1


def test_the_store_builds_no_wire_bytes():
    import saturnd.store as store_mod
    assert not hasattr(store_mod.Task, "list_entry")
    assert not hasattr(store_mod.Store, "list_entries")


def _fresh_reply(store):
    """LIST's reply encoded afresh from the store's tasks (no memory involved)."""
    tasks = [(t.taskid, t.timing, t.argv) for t in store.list_tasks()]
    return P.encode_reply(P.LIST, P.Reply(tasks=tasks))


def test_an_unchanged_store_is_answered_with_the_same_reply_bytes(open_store):
    """The whole reply is kept while nothing changes: the second LIST neither sorts nor
    joins (the very same bytes object comes back), and any change ends that."""
    s = open_store()
    ctx = _Ctx(s)
    for i in range(3):
        s.create(P.EVERY_MINUTE, (b"echo", str(i).encode()))
    first = P.encode_reply(P.LIST, dispatch(ctx, P.Request(P.LIST)))
    assert P.encode_reply(P.LIST, dispatch(ctx, P.Request(P.LIST))) is first
    s.set_argv(1, (b"changed",))
    after = P.encode_reply(P.LIST, dispatch(ctx, P.Request(P.LIST)))
    assert after is not first and after == _fresh_reply(s)


def test_the_kept_reply_follows_any_sequence_of_changes(open_store):
    """Random changes of every kind that LIST shows -- including a removal followed by a
    creation, which leaves the count unchanged -- each followed by a LIST: always the
    bytes of a reply encoded afresh."""
    import random
    rng = random.Random(20261205)
    s = open_store()
    ctx = _Ctx(s)
    kinds = ("create", "remove", "argv", "timing", "fields", "cron", "pause", "all", "taskmax")
    seen = set()
    for step in range(400):
        ids = sorted(s.tasks)
        kind = rng.choice(kinds) if ids else "create"
        tid = rng.choice(ids) if ids else None
        if kind == "create":
            s.create(P.Timing(rng.getrandbits(60), 1, 2), (b"c", str(step).encode()))
        elif kind == "remove":
            s.remove(tid)
            if rng.random() < 0.5:     # same count as before the removal
                s.create(P.EVERY_MINUTE, (b"r", str(step).encode()))
        elif kind == "argv":
            s.set_argv(tid, (b"a", str(step).encode()))
        elif kind == "timing":
            s.set_timing(tid, P.Timing(step, 3, 5))
        elif kind == "fields":
            s.set_fields(tid, P.FIELD_MINUTES, P.Timing(step + 1, 0, 0))
        elif kind == "cron":
            from saturnd.timing import CronSpec
            s.set_cron(tid, P.Timing(7, 7, 7), CronSpec())
        elif kind == "pause":
            s.set_paused(tid, rng.random() < 0.5)
        elif kind == "all":
            if rng.random() < 0.1:
                s.remove_all()
        elif kind == "taskmax" and rng.random() < 0.1:
            s.remove_all()
            s.reset_taskmax()
        seen.add(kind)
        if rng.random() < 0.8:
            got = P.encode_reply(P.LIST, dispatch(ctx, P.Request(P.LIST)))
            assert got == _fresh_reply(s), f"step {step} ({kind})"
    assert seen == set(kinds)

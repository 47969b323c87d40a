"""LIST: every task, in increasing id order, served from memory.

Two levels of memory, one per store:

- each task's encoded entry (:func:`protocol.encode_list_entry`) is kept until the task
  changes (every change gives the task a new token, unique in its store), so a LIST
  after a change encodes only what changed; the entries of removed or changed tasks go
  at the next LIST.  After a clean stop it starts with the entries the start-up index
  kept (``Store.list_seed``);
- the last reply itself, whole, kept while ``Store.list_key()`` stays the same (no task
  put in place, changed or removed since): a LIST of 50,000 unchanged tasks then costs
  neither a sort nor a join, only writing the reply.
"""

import weakref

from ..protocol import EncodedTasks, Reply, encode_list_entry

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from ..store import Store, Task
    from . import Context


class _Memory:
    __slots__ = ("entries", "key", "last")

    def __init__(self, entries: dict[object, bytes]) -> None:
        self.entries = entries                  # token -> encoded entry
        self.key: tuple[int, int] | None = None
        self.last: EncodedTasks | None = None   # the reply for ``key``


_memory: "weakref.WeakKeyDictionary[Store, _Memory]" = weakref.WeakKeyDictionary()


def handle(ctx: "Context", request: "Request") -> Reply:
    store = ctx.store
    memory = _memory.get(store)
    if memory is None:      # the first LIST: the entries the start-up index kept, if any
        memory = _memory[store] = _Memory(getattr(store, "list_seed", None) or {})
        store.list_seed = None
    with store.lock:
        key = store.list_key()
        if memory.key == key and memory.last is not None:
            return Reply(tasks=memory.last)     # nothing changed since the last LIST
        cache = memory.entries
        get = cache.get
        tasks = store.tasks
        entries = [get(tasks[taskid].token) or _encode(cache, tasks[taskid])
                   for taskid in sorted(tasks)]
        if len(cache) > len(entries):     # entries of tasks removed or changed since
            live = {task.token for task in tasks.values()}
            for token in [token for token in cache if token not in live]:
                del cache[token]
        reply = memory.last = EncodedTasks(entries)
        memory.key = key
    return Reply(tasks=reply)


def forget_reply(store: "Store") -> None:
    """Drop the reply kept for ``store`` (its entries stay), as any change does: the next
    LIST sorts and joins again (the benchmark measures that cost so)."""
    memory = _memory.get(store)
    if memory is not None:
        memory.key = memory.last = None


def _encode(cache: dict[object, bytes], task: "Task") -> bytes:
    entry = cache[task.token] = encode_list_entry(task.taskid, task.timing, task.argv)
    return entry

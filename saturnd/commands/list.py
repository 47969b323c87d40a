"""LIST: every task, in increasing id order, served from memory.

The LIST reply cache lives here: each task's encoded entry
(:func:`protocol.encode_list_entry`) is kept until the task changes (every change
gives the task a new token, unique in its store), so a LIST of 10,000 unchanged
tasks joins bytes instead of encoding them again.  One cache per store; the
entries of removed or changed tasks go at the next LIST.  After a clean stop the cache
starts with the entries the start-up index kept (``Store.list_seed``).
"""

import weakref

from ..protocol import EncodedTasks, Reply, encode_list_entry

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from ..store import Store, Task
    from . import Context

_caches: "weakref.WeakKeyDictionary[Store, dict[object, bytes]]" = \
    weakref.WeakKeyDictionary()     # store -> {token: encoded entry}


def handle(ctx: "Context", request: "Request") -> Reply:
    store = ctx.store
    cache = _caches.get(store)
    if cache is None:       # the first LIST: the entries the start-up index kept, if any
        cache = _caches[store] = getattr(store, "list_seed", None) or {}
        store.list_seed = None
    get = cache.get
    with store.lock:
        tasks = store.tasks
        entries = [get(tasks[taskid].token) or _encode(cache, tasks[taskid])
                   for taskid in sorted(tasks)]
        if len(cache) > len(entries):     # entries of tasks removed or changed since
            live = {task.token for task in tasks.values()}
            for token in [token for token in cache if token not in live]:
                del cache[token]
    return Reply(tasks=EncodedTasks(entries))


def _encode(cache: dict[object, bytes], task: "Task") -> bytes:
    entry = cache[task.token] = encode_list_entry(task.taskid, task.timing, task.argv)
    return entry

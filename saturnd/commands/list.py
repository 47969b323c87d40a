"""LIST: every task, in increasing id order, served from memory.

The LIST reply cache lives here: each task's encoded entry
(:func:`protocol.encode_list_entry`) is kept until the task changes (every change
gives the task a new token, unique in its store), so a LIST of 10,000 unchanged
tasks joins bytes instead of encoding them again.  One cache per store, rebuilt at
each LIST with the current tokens only (a removed or changed task's entry goes).
"""

import weakref

from ..protocol import EncodedTasks, Reply, encode_list_entry

_caches = weakref.WeakKeyDictionary()     # store -> {token: encoded entry}


def handle(ctx, request):
    store = ctx.store
    old = _caches.get(store, {})
    cache = {}
    entries = []
    with store.lock:
        tasks = store.tasks
        for taskid in sorted(tasks):
            task = tasks[taskid]
            token = task.token
            entry = old.get(token)
            if entry is None:
                entry = encode_list_entry(taskid, task.timing, task.argv)
            cache[token] = entry
            entries.append(entry)
    _caches[store] = cache
    return Reply(tasks=EncodedTasks(entries))

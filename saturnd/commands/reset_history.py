"""RESET_HISTORY (this project's own): forget a task's runs and its last outputs.

Atomic and durable: an empty ``exit`` file replaces the old one (temporary file,
fsync, rename: the commit point; STDOUT/STDERR answer ``ER NR`` from then on), then
``stdout``/``stderr`` go.  The task gets a new incarnation token, so a run in flight
at that moment is discarded when it ends (as REMOVE and SW_TIME discard theirs).  A
crash between the rename and the unlinks leaves outputs no request can reach (their
run is no longer recorded); the next run replaces them.  The error log is kept: it is
what tells the user why the history may look odd.
"""

import os

from ..protocol import NF, Reply
from ..store import NotFound


def handle(ctx, request):
    store = ctx.store
    with store.lock:
        try:
            task = store._get(request.taskid)
        except NotFound:
            return Reply(errcode=NF)
        task_dir = os.path.join(store.tasks_dir, str(request.taskid))
        store.fs.write_atomic(os.path.join(task_dir, "exit"), b"")   # OSError: nothing changed
        task.token = next(store._tokens)      # runs in flight will not be recorded
        if ctx.history is not None:           # the kept runs go too (saturnd/history.py)
            ctx.history.forget(task_dir)
        try:
            for name in ("stdout", "stderr"):
                try:
                    store.fs.unlink(os.path.join(task_dir, name))
                except FileNotFoundError:
                    pass
            store.fs.fsync_dir(task_dir)
        except OSError as e:     # committed already: the outputs are unreachable
            store.log(f"reset history: task {request.taskid}: {e.strerror or e}")
    return Reply()

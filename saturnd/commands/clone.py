"""CLONE (this project's own): a new task with the same timing and command line.

The copy is made exactly as CREATE makes a task (same durability); its history,
outputs and error log start empty.  Reply: the new id.
"""

from ..protocol import NF, Reply
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    store = ctx.store
    with store.lock:       # the source cannot change or go between reading and copying
        try:
            source = store.get(request.taskid)
        except NotFound:
            return Reply(errcode=NF)
        return Reply(value=store.create(source.timing, source.argv, source.cron))

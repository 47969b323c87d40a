"""REMOVE: delete a task (a run in flight is never recorded)."""

from ..protocol import NF, Reply
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    try:
        ctx.store.remove(request.taskid)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()

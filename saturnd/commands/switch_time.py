"""SW_TIME (extension): replace a task's timing."""

from ..protocol import NF, Reply
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    try:
        ctx.store.set_timing(request.taskid, request.timing)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()

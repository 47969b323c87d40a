"""SET_CMD (extension): replace a task's command line."""

from ..protocol import NF, Reply
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    try:
        ctx.store.set_argv(request.taskid, request.argv)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()

"""EXEC_TASK (extension): run a task once now; OK once the run has started.

The run is recorded with the clock's current second.
"""

from ..protocol import NF, Reply
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    try:
        task = ctx.store.get(request.taskid)
    except NotFound:
        return Reply(errcode=NF)
    ctx.runner.start(task, int(ctx.clock.now()))
    return Reply()

"""ERROR_LOG (this project's own): the daemon-wide error log, or one task's.

See :mod:`saturnd.errlog` for what is recorded and how it is kept.
"""

from ..protocol import ERROR_LOG_DAEMON, NF, Reply

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    if request.scope == ERROR_LOG_DAEMON:
        return Reply(entries=ctx.errors.entries())
    with ctx.store.lock:        # a task being removed takes its log with it
        if request.taskid not in ctx.store.tasks:
            return Reply(errcode=NF)
        return Reply(entries=ctx.errors.entries(request.taskid))

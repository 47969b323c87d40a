"""NEXT_RUNS (this project's own request): the next COUNT start times of a task.

Computed by the scheduler's own rule from its own state (``Scheduler.next_runs``):
the daemon's time zone, the daemon's clock (the manual one when in use), the DST
and time-change rules.  At most ``scheduler.MAX_NEXT_RUNS`` times; a timing with an
empty field gets none.  ``ER NF`` for a missing task.
"""

from ..protocol import NF, PS, Reply
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
    if task.paused:                         # no next run until it is resumed
        return Reply(errcode=PS)
    assert ctx.scheduler is not None        # the daemon's Context has it
    return Reply(times=ctx.scheduler.next_runs(task.timing, request.count, task.cron))

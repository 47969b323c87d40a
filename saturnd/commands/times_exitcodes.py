"""TIMES_EXITCODES: every recorded run of a task, oldest first.

Records are appended to ``exit`` when runs *end*, so overlapping runs (a task
due again while it still runs, or several minutes crossed at once by the
manual clock) can be recorded out of order: the reply sorts them by TIME
(stable, and linear when they already are in order).
"""

from ..protocol import NF, Reply, decode_runs
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def _time(run: tuple[int, int]) -> int:
    return run[0]


def handle(ctx: "Context", request: "Request") -> Reply:
    try:
        records = ctx.store.runs(request.taskid)
    except NotFound:
        return Reply(errcode=NF)
    runs = decode_runs(records)
    runs.sort(key=_time)
    return Reply(runs=runs)

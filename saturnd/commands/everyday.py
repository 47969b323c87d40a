"""This project's own requests for everyday use (``docs/own-requests.md``).

SET_FIELDS (``cassini -t`` with some fields left out): the fields named replace the task's,
the others keep their values.  PAUSE / RESUME: the task is kept but not run by the
scheduler (EXEC_TASK still runs it); durable (``DATA_DIR/tasks/<ID>/paused``); a run in
flight goes on and is recorded.  STATUS: the daemon's state as ``name: value`` lines.
HISTORY: the kept runs of a task, with their outputs (``saturnd/history.py``).
"""

from .. import protocol as P
from ..protocol import NF, NR, Reply
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from collections.abc import Callable

    from ..store import Task
    from . import Context


def set_fields(ctx: "Context", request: "Request") -> Reply:
    try:
        ctx.store.set_fields(request.taskid, request.count, request.timing)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()


def _pause(paused: bool) -> "Callable[[Context, Request], Reply]":
    def handle(ctx: "Context", request: "Request") -> Reply:
        try:
            ctx.store.set_paused(request.taskid, paused)
        except NotFound:
            return Reply(errcode=NF)
        return Reply()
    return handle


def status(ctx: "Context", request: "Request") -> Reply:
    assert ctx.status is not None       # the daemon sets it (saturnd/daemon.py)
    return Reply(output=ctx.status().encode("utf-8", "backslashreplace"))


def history(ctx: "Context", request: "Request") -> Reply:
    try:
        if ctx.history is None:
            ctx.store.get(request.taskid)
            return Reply(runs=[])
        return Reply(runs=ctx.history.read(request.taskid, request.argv or 0, request.count))
    except NotFound:
        return Reply(errcode=NF)
    except LookupError:
        return Reply(errcode=NR)


HANDLERS = {
    P.SET_FIELDS: set_fields,
    P.PAUSE: _pause(True),
    P.RESUME: _pause(False),
    P.STATUS: status,
    P.HISTORY: history,
}


# --- the long listing's fields of everyday use (LONG_LIST, ``cassini -L``) ------------------
def long_list_attributes(ctx: "Context", task: "Task") -> list[tuple[bytes, bytes]]:
    """``paused`` = ``1`` (only when paused); ``last`` = ``TIME EXITCODE`` of the last
    recorded run (absent: never ran); ``next`` = ``TIME`` of the next run the scheduler will
    start (absent: paused, or no next run), epoch seconds in decimal."""
    attrs: list[tuple[bytes, bytes]] = []
    if task.paused:
        attrs.append((b"paused", b"1"))
    try:
        records = ctx.store.runs(task.taskid)
    except (LookupError, OSError):
        records = b""
    if records:
        when, code = P.decode_runs(records[-P.RUN_RECORD_SIZE:])[0]
        attrs.append((b"last", b"%d %d" % (when, code)))
    if not task.paused and ctx.scheduler is not None:
        try:
            times = ctx.scheduler.next_runs(task.timing, 1, task.cron)
        except Exception:           # never let a listing fail on one task
            times = []
        if times:
            attrs.append((b"next", b"%d" % times[0]))
    return attrs

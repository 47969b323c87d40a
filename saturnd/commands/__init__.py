"""One module per request (the C project's ``cmd_*.c``).

Each handler is ``handle(ctx, request) -> protocol.Reply``; ``ctx`` is a
:class:`Context`: the few pieces of the daemon a handler may use, not the daemon.
A handler never touches a FIFO.  A handler raising ``OSError`` (storage
failure) makes the server send the empty reply.
"""

from .. import errlog, protocol
from . import (create, delete_all, exec_task, list as list_cmd, remove, reset_taskmax,
               set_cmd, std, switch_time, terminate, times_exitcodes)

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable

    from ..clock import Clock
    from ..errlog import ErrorLog
    from ..history import History
    from ..runner import Runner
    from ..scheduler import Scheduler
    from ..store import Store

HANDLERS = {
    protocol.LIST: list_cmd.handle,
    protocol.CREATE: create.handle,
    protocol.REMOVE: remove.handle,
    protocol.TIMES_EXITCODES: times_exitcodes.handle,
    protocol.STDOUT: std.handle,
    protocol.STDERR: std.handle,
    protocol.TERMINATE: terminate.handle,
    protocol.SET_CMD: set_cmd.handle,
    protocol.DELETE_ALL: delete_all.handle,
    protocol.SW_TIME: switch_time.handle,
    protocol.EXEC_TASK: exec_task.handle,
    protocol.RESET_TASKMAX: reset_taskmax.handle,
}

# this project's own requests: reset history, clone, error log (docs/own-requests.md)
from . import clone, error_log, reset_history  # noqa: E402
HANDLERS.update({protocol.RESET_HISTORY: reset_history.handle, protocol.CLONE: clone.handle,
                 protocol.ERROR_LOG: error_log.handle})


class Context:
    """What a handler sees of the daemon: ``store``, ``runner``, ``clock``, ``scheduler``
    (NEXT_RUNS), ``errors`` (the :class:`saturnd.errlog.ErrorLog`, ERROR_LOG) and
    ``request_stop(reason)`` (TERMINATE)."""

    __slots__ = ("store", "runner", "clock", "scheduler", "errors", "request_stop",
                 "history", "status")

    def __init__(self, store: "Store", runner: "Runner", clock: "Clock",
                 scheduler: "Scheduler | None" = None, errors: "ErrorLog | None" = None,
                 request_stop: "Callable[[str], None] | None" = None) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        self.scheduler = scheduler
        self.errors = errlog.NONE if errors is None else errors
        self.request_stop = request_stop
        self.history: History | None = None     # HISTORY, RESET_HISTORY
        self.status: Callable[[], str] | None = None    # the STATUS text (saturnd/daemon.py)


def dispatch(ctx: Context, request: protocol.Request) -> protocol.Reply:
    return HANDLERS[request.opcode](ctx, request)

# this project's own requests
from . import next_runs  # noqa: E402

HANDLERS[protocol.NEXT_RUNS] = next_runs.handle

# this project's own requests: everyday use (-t with fields left out, pause, status, history)
from . import everyday  # noqa: E402

HANDLERS.update(everyday.HANDLERS)
# this project's own requests: cron's other fields
from . import create_cron, long_list, set_cron  # noqa: E402

HANDLERS.update({protocol.LONG_LIST: long_list.handle, protocol.CREATE_CRON: create_cron.handle,
                 protocol.SET_CRON: set_cron.handle})

# the long listing's fields of everyday use: paused, last run, next run
long_list.ATTRIBUTE_SOURCES.append(everyday.long_list_attributes)

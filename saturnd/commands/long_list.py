"""LONG_LIST (this project's own): every task with every field, in increasing id order.

Per task: what LIST gives (TASKID, TIMING, COMMANDLINE), then its attributes, ``(KEY,
VALUE)`` pairs (``docs/own-requests.md``): the cron attributes (day of month, month,
@reboot, catch-up, environment, zone) from :meth:`saturnd.timing.CronSpec.attributes`, then
those of each function of :data:`ATTRIBUTE_SOURCES`.  A client shows the keys it knows and
keeps the others, so a field added later changes no framing.
"""

from ..protocol import Reply

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from collections.abc import Callable

    from ..store import Task
    from . import Context

# functions ``(ctx, task snapshot) -> [(KEY, VALUE), ...]`` whose pairs follow the cron
# attributes of each task (other features add their fields here)
ATTRIBUTE_SOURCES: "list[Callable[[Context, Task], list[tuple[bytes, bytes]]]]" = []


def task_attributes(ctx: "Context", task: "Task") -> list[tuple[bytes, bytes]]:
    attrs = list(task.cron.attributes())
    for source in ATTRIBUTE_SOURCES:
        attrs.extend(source(ctx, task))
    return attrs


def handle(ctx: "Context", request: "Request") -> Reply:
    tasks = ctx.store.list_tasks()
    return Reply(tasks=[(t.taskid, t.timing, t.argv, task_attributes(ctx, t)) for t in tasks])

"""LONG_LIST (this project's own): every task with every field, in increasing id order.

Per task: what LIST gives (TASKID, TIMING, COMMANDLINE), then its attributes, ``(KEY,
VALUE)`` pairs (``docs/own-requests.md``): the cron attributes (day of month, month,
@reboot, catch-up, environment, zone) from :meth:`saturnd.timing.CronSpec.attributes`, then
those of each function of :data:`ATTRIBUTE_SOURCES`.  A client shows the keys it knows and
keeps the others, so a field added later changes no framing.
"""

from ..protocol import Reply

# functions ``(ctx, task snapshot) -> [(KEY, VALUE), ...]`` whose pairs follow the cron
# attributes of each task (other features add their fields here)
ATTRIBUTE_SOURCES = []


def task_attributes(ctx, task):
    attrs = list(task.cron.attributes())
    for source in ATTRIBUTE_SOURCES:
        attrs.extend(source(ctx, task))
    return attrs


def handle(ctx, request):
    tasks = ctx.store.list_tasks()
    return Reply(tasks=[(t.taskid, t.timing, t.argv, task_attributes(ctx, t)) for t in tasks])

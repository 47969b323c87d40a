"""ERROR_LOG (this project's own): the daemon-wide error log, or one task's.

See :mod:`saturnd.errlog` for what is recorded and how it is kept.
"""

from ..protocol import ERROR_LOG_DAEMON, NF, Reply


def handle(ctx, request):
    if request.scope == ERROR_LOG_DAEMON:
        return Reply(entries=ctx.errors.entries())
    with ctx.store.lock:        # a task being removed takes its log with it
        if request.taskid not in ctx.store.tasks:
            return Reply(errcode=NF)
        return Reply(entries=ctx.errors.entries(request.taskid))

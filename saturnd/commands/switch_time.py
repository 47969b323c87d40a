"""SW_TIME (extension): replace a task's timing."""

from ..protocol import NF, Reply
from ..store import NotFound


def handle(ctx, request):
    try:
        ctx.store.set_timing(request.taskid, request.timing)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()

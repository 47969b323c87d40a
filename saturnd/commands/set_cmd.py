"""SET_CMD (extension): replace a task's command line."""

from ..protocol import NF, Reply
from ..store import NotFound


def handle(ctx, request):
    try:
        ctx.store.set_argv(request.taskid, request.argv)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()

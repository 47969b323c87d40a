"""REMOVE: delete a task (a run in flight is never recorded)."""

from ..protocol import NF, Reply
from ..store import NotFound


def handle(ctx, request):
    try:
        ctx.store.remove(request.taskid)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()

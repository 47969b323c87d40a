"""TIMES_EXITCODES: every recorded run of a task, oldest first."""

from ..protocol import NF, Reply, decode_runs
from ..store import NotFound


def handle(ctx, request):
    try:
        records = ctx.store.runs(request.taskid)
    except NotFound:
        return Reply(errcode=NF)
    return Reply(runs=decode_runs(records))

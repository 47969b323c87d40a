"""STDOUT / STDERR: the output of the last finished run."""

from ..protocol import NF, NR, STDOUT, Reply
from ..store import NeverRan, NotFound


def handle(ctx, request):
    stream = "stdout" if request.opcode == STDOUT else "stderr"
    try:
        return Reply(output=ctx.store.output(request.taskid, stream))
    except NotFound:
        return Reply(errcode=NF)
    except NeverRan:
        return Reply(errcode=NR)

"""STDOUT / STDERR: the output of the last finished run.

A large output comes back as an open ``store.OutputFile`` that the server streams in
chunks (and closes): serving it never holds the whole output in memory.
"""

from ..protocol import NF, NR, STDOUT, Reply
from ..store import NeverRan, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    stream = "stdout" if request.opcode == STDOUT else "stderr"
    try:
        return Reply(output=ctx.store.output_file(request.taskid, stream))
    except NotFound:
        return Reply(errcode=NF)
    except NeverRan:
        return Reply(errcode=NR)

"""CREATE: store a new task durably, reply its id."""

from ..protocol import Reply

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    return Reply(value=ctx.store.create(request.timing, request.argv))

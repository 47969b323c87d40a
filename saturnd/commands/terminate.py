"""TERMINATE: reply OK, then the daemon stops (``ctx.request_stop``; see saturnd/daemon.py)."""

from ..protocol import Reply

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    assert ctx.request_stop is not None     # the daemon's Context has it
    ctx.request_stop("TERMINATE request")
    return Reply()

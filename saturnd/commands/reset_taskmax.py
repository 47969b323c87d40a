"""RESET_TASKMAX (extension): next id = highest existing id + 1 (0 if none)."""

from ..protocol import Reply

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    return Reply(value=ctx.store.reset_taskmax())

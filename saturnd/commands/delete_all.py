"""DELETE_ALL (extension): remove every task, all or nothing; reply how many."""

from ..protocol import Reply

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    return Reply(value=ctx.store.remove_all())

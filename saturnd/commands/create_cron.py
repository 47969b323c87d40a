"""CREATE_CRON (this project's own): CREATE with cron attributes (day of month, month,
@reboot, catch-up, environment, zone); reply the new id.  The attributes were checked when
the request was read (``protocol._check_cron_attrs``)."""

from ..protocol import Reply
from ..timing import CronSpec

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    cron = CronSpec.from_attributes(request.attrs)
    return Reply(value=ctx.store.create(request.timing, request.argv, cron))

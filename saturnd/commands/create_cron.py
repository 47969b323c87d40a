"""CREATE_CRON (this project's own): CREATE with cron attributes (day of month, month,
@reboot, catch-up, environment, zone); reply the new id.  The attributes were checked when
the request was read (``protocol._check_cron_attrs``)."""

from ..protocol import Reply
from ..timing import CronSpec


def handle(ctx, request):
    cron = CronSpec.from_attributes(request.attrs)
    return Reply(value=ctx.store.create(request.timing, request.argv, cron))

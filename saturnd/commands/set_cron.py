"""SET_CRON (this project's own): replace a task's TIMING, and those of its cron
attributes the request names (a key given replaces that attribute; the ``env`` pairs
together replace the environment; the attributes not named are kept).  A @reboot task
given a non-empty TIMING without ``reboot`` named becomes a timed task."""

from ..protocol import ATTR_FIELDS, EVERY_MINUTE, FIELD_DAYS, FIELD_HOURS, FIELD_MINUTES, NF, Reply, Timing
from ..store import NotFound
from ..timing import CronSpec


def handle(ctx, request):
    store = ctx.store
    with store.lock:
        try:
            task = store.get(request.taskid)
        except NotFound:
            return Reply(errcode=NF)
        cron = CronSpec.from_attributes(request.attrs, base=task.cron)
        if cron.reboot and request.timing.as_tuple() != (0, 0, 0) \
                and all(key != b"reboot" for key, _ in request.attrs):
            cron = cron.replace(reboot=False)   # given a timing: a timed task from now on
        old = EVERY_MINUTE if task.cron.reboot else task.timing   # @reboot: no fields
        store.set_cron(request.taskid, _kept_fields(request, old), cron)
    return Reply()


def _kept_fields(request, old):
    """The new TIMING: with a ``fields`` attribute (``cassini -t`` with some of -m -H -d
    left out), only the fields it names are replaced (as SET_FIELDS does)."""
    named = [v for k, v in request.attrs if k == ATTR_FIELDS]
    if not named or not named[-1].isdigit():
        return request.timing
    fields, new = int(named[-1]), request.timing
    return Timing(new.minutes if fields & FIELD_MINUTES else old.minutes,
                  new.hours if fields & FIELD_HOURS else old.hours,
                  new.days if fields & FIELD_DAYS else old.days)

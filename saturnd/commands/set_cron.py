"""SET_CRON (this project's own): replace a task's TIMING, and those of its cron
attributes the request names (a key given replaces that attribute; the ``env`` pairs
together replace the environment; the attributes not named are kept).  A @reboot task
given a non-empty TIMING without ``reboot`` named becomes a timed task."""

from ..protocol import NF, Reply
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
        store.set_cron(request.taskid, request.timing, cron)
    return Reply()

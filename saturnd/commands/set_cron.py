"""SET_CRON (this project's own): replace a task's TIMING, and those of its cron
attributes the request names (a key given replaces that attribute; the ``env`` pairs
together replace the environment; the attributes not named are kept)."""

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
        store.set_cron(request.taskid, request.timing, cron)
    return Reply()

"""SET_CRON (this project's own): replace a task's TIMING, and those of its cron
attributes the request names (a key given replaces that attribute; the ``env`` pairs
together replace the environment; the attributes not named are kept).  A @reboot task
given a non-empty TIMING without ``reboot`` named becomes a timed task."""

from ..protocol import ATTR_FIELDS, NF, Reply
from ..store import NotFound, kept_fields
from ..timing import CronSpec

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request, Timing
    from ..store import Task
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
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
        store.set_cron(request.taskid, _new_timing(request, task), cron)
    return Reply()


def _new_timing(request: "Request", task: "Task") -> "Timing":
    """The new TIMING: with a ``fields`` attribute (``cassini -t`` with some of -m -H -d
    left out), only the fields it names are replaced, as SET_FIELDS does."""
    named = [v for k, v in request.attrs if k == ATTR_FIELDS]
    if not named or not named[-1].isdigit():
        return request.timing
    return kept_fields(task, int(named[-1]), request.timing)

"""RESET_HISTORY (this project's own): forget a task's runs and its last outputs
(:meth:`saturnd.store.Store.reset_history` does it).

Atomic and durable: an empty ``exit`` file replaces the old one (temporary file,
fsync, rename: the commit point; STDOUT/STDERR answer ``ER NR`` from then on), then
``stdout``/``stderr`` go.  The task gets a new incarnation token, so a run in flight
at that moment is discarded when it ends (as REMOVE and SW_TIME discard theirs).  A
crash between the rename and the unlinks leaves outputs no request can reach (their
run is no longer recorded); the next run replaces them.  The error log is kept: it is
what tells the user why the history may look odd.
"""

from ..protocol import NF, Reply
from ..store import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from ..protocol import Request
    from . import Context


def handle(ctx: "Context", request: "Request") -> Reply:
    forget = ctx.history.forget if ctx.history is not None else None
    try:
        ctx.store.reset_history(request.taskid, forget)
    except NotFound:
        return Reply(errcode=NF)
    return Reply()

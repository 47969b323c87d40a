"""TERMINATE: reply OK, then the daemon stops (``ctx.request_stop``; see saturnd/daemon.py)."""

from ..protocol import Reply


def handle(ctx, request):
    ctx.request_stop("TERMINATE request")
    return Reply()

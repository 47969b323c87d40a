"""TERMINATE: reply OK, then the daemon stops (see saturnd.__main__)."""

from ..protocol import Reply


def handle(ctx, request):
    ctx.request_stop("TERMINATE request")
    return Reply()

"""CREATE: store a new task durably, reply its id."""

from ..protocol import Reply


def handle(ctx, request):
    return Reply(value=ctx.store.create(request.timing, request.argv))

"""RESET_TASKMAX (extension): next id = highest existing id + 1 (0 if none)."""

from ..protocol import Reply


def handle(ctx, request):
    return Reply(value=ctx.store.reset_taskmax())

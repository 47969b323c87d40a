"""LIST: every task, in increasing id order (served from memory, each task's
encoding cached until it changes)."""

from ..protocol import Reply


def handle(ctx, request):
    return Reply(entries=ctx.store.list_entries())

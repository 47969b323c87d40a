"""DELETE_ALL (extension): remove every task, all or nothing; reply how many."""

from ..protocol import Reply


def handle(ctx, request):
    return Reply(value=ctx.store.remove_all())

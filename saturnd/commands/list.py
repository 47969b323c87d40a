"""LIST: every task, in increasing id order (served from memory)."""

from ..protocol import Reply


def handle(ctx, request):
    return Reply(tasks=[(t.taskid, t.timing, t.argv) for t in ctx.store.list_tasks()])

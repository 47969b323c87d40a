"""A minimal, non-durable reference server for the benchmark (``python -m bench.refserver
PIPES_DIR DATA_DIR``): the floor of a Python server of this protocol.

Sequential, blocking opens, everything in memory: it reads a store's layout once at start
(``tasks/<ID>/argv``, ``time_exec``, ``exit``, ``stdout``; written by the benchmark) and then
answers LIST, CREATE, REMOVE, TIMES_EXITCODES, STDOUT and TERMINATE with the same bytes as
saturnd for the same state, but writes nothing to disk: no fsync, no rename, no error
handling beyond the protocol's.  A request is read to end of file (the benchmark's C client
closes the request pipe after writing it).  Written for this benchmark only.
"""

import os
import struct
import sys

OK, ER, NF, NR = b"OK", b"ER", b"NF", b"NR"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def load(data_dir):
    tasks = {}
    root = os.path.join(data_dir, "tasks")
    for name in os.listdir(root):
        d = os.path.join(root, name)
        task = {}
        for f in ("argv", "time_exec", "exit", "stdout"):
            try:
                with open(os.path.join(d, f), "rb") as fh:
                    task[f] = fh.read()
            except FileNotFoundError:
                task[f] = b""
        tasks[int(name)] = task
    return tasks


def answer(tasks, state, req):
    op, body = req[:2], req[2:]
    if op == b"LS":
        return OK + _U32.pack(len(tasks)) + b"".join(
            _U64.pack(i) + tasks[i]["time_exec"] + tasks[i]["argv"] for i in sorted(tasks))
    if op == b"CR":
        taskid = state["next"]
        state["next"] += 1
        tasks[taskid] = {"time_exec": body[:13], "argv": body[13:], "exit": b"", "stdout": b""}
        return OK + _U64.pack(taskid)
    taskid = _U64.unpack(body[:8])[0] if len(body) >= 8 else None
    if op == b"TM":
        return OK
    task = tasks.get(taskid)
    if task is None:
        return ER + NF
    if op == b"RM":
        del tasks[taskid]
        return OK
    if op == b"TX":
        return OK + _U32.pack(len(task["exit"]) // 10) + task["exit"]
    if op == b"SO":
        if not task["exit"]:
            return ER + NR
        return OK + _U32.pack(len(task["stdout"])) + task["stdout"]
    return ER + b"\0\0"


def serve(pipes, data_dir):
    tasks = load(data_dir)
    state = {"next": max(tasks) + 1 if tasks else 0}
    req_path = os.path.join(pipes, "saturnd-request-pipe")
    rep_path = os.path.join(pipes, "saturnd-reply-pipe")
    os.makedirs(pipes, exist_ok=True)
    for p in (req_path, rep_path):
        if not os.path.exists(p):
            os.mkfifo(p, 0o600)
    print("ready", flush=True)
    while True:
        fd = os.open(req_path, os.O_RDONLY)
        chunks = []
        while True:
            data = os.read(fd, 1 << 16)
            if not data:
                break
            chunks.append(data)
        os.close(fd)
        req = b"".join(chunks)
        if not req:
            continue
        reply = answer(tasks, state, req)
        fd = os.open(rep_path, os.O_WRONLY)
        view = memoryview(reply)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        if req[:2] == b"TM":
            return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2]))

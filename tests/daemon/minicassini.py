"""A minimal stand-in client for developing the daemon tests (NOT the project's cassini).

Implements only what tests/daemon uses, on top of ``saturnd.protocol``:
``-p DIR`` and one of ``-l -c[-m -H -d] -r -x -o -e -q -s -t -z -i -w``.
Run the suite against it with ``CASSINI="python tests/daemon/minicassini.py"``.
"""

import fcntl
import getopt
import os
import select
import sys
import time

from saturnd import protocol as P
from saturnd.timing import timing_from_strings, timing_to_string


def exchange(pipes, data, opcode, timeout=20.0):
    lock = os.open(os.path.join(pipes, "cassini-lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(os.path.join(pipes, "saturnd-request-pipe"), os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("minicassini: saturnd is not running")
                time.sleep(0.01)
        os.set_blocking(fd, True)
        os.write(fd, data)
        os.close(fd)
        fd = os.open(os.path.join(pipes, "saturnd-reply-pipe"), os.O_RDONLY)  # blocks for the writer
        buf = b""
        while True:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise SystemExit("minicassini: reply timed out")
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            try:
                reply = P.decode_reply(buf, opcode)
                break
            except P.Truncated:
                continue
        os.close(fd)
        if not buf:
            raise SystemExit("minicassini: empty reply")
        return P.decode_reply(buf, opcode)
    finally:
        os.close(lock)


def main():
    opts, rest = getopt.gnu_getopt(sys.argv[1:], "hlcqm:H:d:p:r:x:o:e:st:z:i:w")
    pipes = os.path.join("/tmp", os.environ.get("USER", "root"), "saturnd", "pipes")
    op, taskid, fields = P.LIST, None, {"m": "*", "H": "*", "d": "*"}
    for o, v in opts:
        o = o[1:]
        if o == "p":
            pipes = v
        elif o in "mHd":
            fields[o] = v
        elif o in ("l", "c", "q", "s", "w"):
            op = {"l": P.LIST, "c": P.CREATE, "q": P.TERMINATE, "s": P.DELETE_ALL,
                  "w": P.RESET_TASKMAX}[o]
        else:
            op = {"r": P.REMOVE, "x": P.TIMES_EXITCODES, "o": P.STDOUT, "e": P.STDERR,
                  "t": P.SW_TIME, "z": P.SET_CMD, "i": P.EXEC_TASK}[o]
            taskid = int(v)
    timing = P.Timing(*timing_from_strings(fields["m"], fields["H"], fields["d"]))
    argv = tuple(os.fsencode(a) for a in rest) or None
    req = P.Request(op, taskid=taskid, timing=timing if op in (P.CREATE, P.SW_TIME) else None,
                    argv=argv if op in (P.CREATE, P.SET_CMD) else None)
    reply = exchange(pipes, P.encode_request(req), op)
    if not reply.ok:
        sys.stderr.write(f"minicassini: error {P.ERRCODE_NAMES.get(reply.errcode)}\n")
        return 1
    out = sys.stdout.buffer
    if op == P.LIST:
        for tid, t, av in reply.tasks:
            out.write(b"%d: %s %s\n" % (tid, timing_to_string(*t.as_tuple()).encode(), b" ".join(av)))
    elif op in (P.CREATE, P.DELETE_ALL, P.RESET_TASKMAX):
        out.write(b"%d\n" % reply.value)
    elif op == P.TIMES_EXITCODES:
        for when, code in reply.runs:
            out.write(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)).encode() + b" %d\n" % code)
    elif op in (P.STDOUT, P.STDERR):
        out.write(reply.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

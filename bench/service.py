"""Section 2: in-daemon service time per request kind.

What is measured: the daemon's own work for one request, in-process, with the
daemon's modules on a real store in the benchmark's directory -- decoding the
request bytes (``protocol.decode_request``), the handler
(``saturnd.commands.dispatch``, which reads/writes the store with its fsyncs)
and encoding the reply (``protocol.encode_reply``).  It excludes the FIFO
transport (open/read/write of the pipes), which the ``round trip`` rows add
back: a protocol-API client talking to a real ``saturnd`` through the FIFOs.

Baseline for requests that change data: a bare write + fsync + rename of a
small file in the same directory (same file system), measured in this run.
"""

import os

from saturnd import protocol
from saturnd.commands import dispatch
from saturnd.store import Store

from .common import Daemon, add_runs, percentile, populate, summary, time_calls, time_interleaved
from .rows import row

SECTION = "2 service"
MS = 1e3


class _Ctx:
    """What a handler sees of the daemon (only ``store`` is used by these kinds)."""

    stopping = False

    def __init__(self, store):
        self.store = store
        self.runner = None
        self.clock = None

    def request_stop(self, reason):
        self.stopping = True


def _log(message):
    pass


def serve(ctx, data):
    """Request bytes -> reply bytes, as the daemon does between the two FIFOs."""
    req = protocol.decode_request(data)
    return protocol.encode_reply(req.opcode, dispatch(ctx, req))


def _store(path, ntasks, **kw):
    populate(path, ntasks, **kw)
    s = Store(path, _log)
    s.open()
    return s


def _req(op, **kw):
    return protocol.encode_request(protocol.Request(op, **kw))


def _bare_write_fsync_rename(directory, dir_fsync=False):
    """The baseline: one small file written, fsynced and renamed into place."""
    payload = b"x" * 64
    tmp = os.path.join(directory, ".bare%d.tmp" % dir_fsync)
    dst = os.path.join(directory, "bare%d" % dir_fsync)

    def once():
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dst)
        if dir_fsync:
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    return once


def _linearity(key, what, unit_name, fns, cfg):
    """Cost per item at the bigger size over cost per item at the smaller one, both
    timed in turn (interleaved) so that the machine's load hits them alike."""
    small, big = sorted(fns)
    samples = time_interleaved({s: fns[s] for s in (small, big)}, cfg.iters_big)
    per = {s: percentile(samples[s], 50) / s * 1e6 for s in (small, big)}
    return row(SECTION, key, f"{what}, {big:,} vs {small:,} {unit_name} (interleaved)",
               per[big], "us", n=len(samples[big]), baseline=f"per item at {small:,}",
               baseline_value=per[small], limit=cfg.linear_ratio, on="ratio",
               note="ratio near 1: linear growth")


def _ms(s):
    return {k: (v * MS if k != "n" else v) for k, v in s.items()}


def _list_rows(cfg, base, argv, log):
    rows = []
    # --- LIST of growing sizes (read-only, served from memory) --------------------
    # each call as after a change: the reply kept for an unchanged store is dropped first
    # (commands/list.py), so these rows time the sort, the cached entries and the join
    from saturnd.commands import list as list_cmd
    listers = {}
    kept = None
    for size in cfg.list_sizes:
        store = _store(os.path.join(base, f"list{size}"), size, argv=argv)
        ctx = _Ctx(store)
        data = _req(protocol.LIST)
        reply = serve(ctx, data)
        assert protocol.decode_reply(reply, protocol.LIST).tasks[-1][0] == size - 1
        listers[size] = (lambda ctx=ctx, data=data, store=store:
                         (list_cmd.forget_reply(store), serve(ctx, data)))
        kept = (size, lambda ctx=ctx, data=data: serve(ctx, data))
        n = max(cfg.min_iters, min(cfg.iters, cfg.list_budget // size))
        s = _ms(summary(time_calls(listers[size], n)))
        limit = None
        if size <= 10:
            limit = cfg.small_read_ms
        elif size == cfg.list_big:
            limit = cfg.list_big_ms
        rows.append(row(SECTION, f"list_{size}", f"LIST of {size:,} tasks (after a change)",
                        s["p50"], "ms",
                        p99=s["p99"], n=s["n"], limit=limit))
        log(f"  LIST {size}: p50 {s['p50']:.3f} ms")
    if kept is not None:
        s = _ms(summary(time_calls(kept[1], cfg.min_iters)))
        rows.append(row(SECTION, "list_kept", f"LIST of {kept[0]:,} unchanged tasks (the kept "
                        "reply)", s["p50"], "ms", p99=s["p99"], n=s["n"]))
    sizes = sorted(listers)
    if len(sizes) >= 2:
        small, big = sizes[-2], sizes[-1]
        rows.append(_linearity("list_linearity", "LIST cost per task", "tasks",
                               {small: listers[small], big: listers[big]}, cfg))
        log(f"  LIST linearity: {rows[-1]['ratio']:.2f}")
    return rows


def _read_rows(cfg, base, argv, log):
    rows = []
    # --- TIMES_EXITCODES and STDOUT (read the task's files) ---------------------------
    path = os.path.join(base, "runs")
    store = _store(path, 4, argv=argv)
    add_runs(path, 0, 10, stdout=b"hello world\n")
    add_runs(path, 1, cfg.tx_small_runs)
    add_runs(path, 2, cfg.tx_runs)
    add_runs(path, 3, 1, stdout=os.urandom(cfg.stdout_bytes))
    ctx = _Ctx(store)
    txers = {}
    for key, what, op, taskid, nruns, limit, iters in (
            ("tx_10", "TX of a task with 10 runs", protocol.TIMES_EXITCODES, 0, 10,
             cfg.small_read_ms, cfg.iters),
            ("stdout_small", "STDOUT of 12 bytes", protocol.STDOUT, 0, None,
             cfg.small_read_ms, cfg.iters),
            (f"tx_{cfg.tx_small_runs}", f"TX of a task with {cfg.tx_small_runs:,} runs",
             protocol.TIMES_EXITCODES, 1, cfg.tx_small_runs, None, cfg.iters_big),
            (f"tx_{cfg.tx_runs}", f"TX of a task with {cfg.tx_runs:,} runs",
             protocol.TIMES_EXITCODES, 2, cfg.tx_runs, None, cfg.iters_big),
            ("stdout_big", f"STDOUT of {cfg.stdout_bytes / 1048576:g} MiB", protocol.STDOUT, 3,
             None, None, cfg.iters_big)):
        data = _req(op, taskid=taskid)
        reply = serve(ctx, data)
        assert reply[:2] == b"OK", reply[:4]
        def fn(data=data):
            return serve(ctx, data)
        s = _ms(summary(time_calls(fn, iters)))
        if nruns:
            txers[nruns] = fn
        rows.append(row(SECTION, key, what, s["p50"], "ms", p99=s["p99"], n=s["n"], limit=limit))
        log(f"  {what}: p50 {s['p50']:.3f} ms")
    rows.append(_linearity("tx_linearity", "TX cost per run", "runs",
                           {cfg.tx_small_runs: txers[cfg.tx_small_runs],
                            cfg.tx_runs: txers[cfg.tx_runs]}, cfg))
    log(f"  TX linearity: {rows[-1]['ratio']:.2f}")
    return rows


def _change_rows(cfg, base, argv, log):
    rows = []
    # --- requests that change data (fsync before OK) vs a bare write+fsync+rename -----------
    # all timed in turn (one of each, then again), so that the disk's changing latency
    # (other processes' writes) hits the baseline and the requests alike
    path = os.path.join(base, "changes")
    nchg = cfg.change_iters
    store = _store(path, nchg, argv=argv)
    ctx = _Ctx(store)
    create = _req(protocol.CREATE, timing=protocol.EVERY_MINUTE, argv=argv)
    timing2 = protocol.Timing(1, 1, 1)
    sw_ids, rm_ids = iter(range(nchg + 2)), iter(range(nchg + 2))
    fns = {
        "bare_fsync": _bare_write_fsync_rename(path),
        "bare_fsync_dir": _bare_write_fsync_rename(path, dir_fsync=True),
        "create": lambda: serve(ctx, create),
        "sw_time": lambda: serve(ctx, _req(protocol.SW_TIME, taskid=next(sw_ids), timing=timing2)),
        "remove": lambda: serve(ctx, _req(protocol.REMOVE, taskid=next(rm_ids))),
    }
    for fn in fns.values():      # the requests are answered OK (not NF, not the empty reply)
        answer = fn()
        assert answer is None or answer[:2] == b"OK", answer
    samples = {k: _ms(summary(v)) for k, v in time_interleaved(fns, nchg, warmup=0).items()}
    bare = samples["bare_fsync"]
    rows.append(row(SECTION, "bare_fsync", "baseline: write+fsync+rename (64 B)", bare["p50"],
                    "ms", p99=bare["p99"], n=bare["n"]))
    s = samples["bare_fsync_dir"]
    rows.append(row(SECTION, "bare_fsync_dir", "write+fsync+rename+fsync(dir) (64 B)",
                    s["p50"], "ms", p99=s["p99"], n=s["n"], baseline="bare",
                    baseline_value=bare["p50"]))
    for key, what in (("create", "CREATE"), ("sw_time", "SW_TIME (replace a timing)"),
                      ("remove", "REMOVE")):
        s = samples[key]
        rows.append(row(SECTION, key, what, s["p50"], "ms", p99=s["p99"], n=s["n"],
                        baseline="bare write+fsync+rename", baseline_value=bare["p50"],
                        limit=cfg.change_ratio, on="ratio"))
        log(f"  {what}: p50 {s['p50']:.3f} ms (bare {bare['p50']:.3f} ms)")
    return rows


def _round_trip_rows(cfg, base, argv, log):
    rows = []
    create = _req(protocol.CREATE, timing=protocol.EVERY_MINUTE, argv=argv)
    # --- round trips through the FIFOs to a real daemon (adds the transport) -----------------
    d = Daemon(os.path.join(base, "daemon"))
    populate(d.data, cfg.list_big, argv=argv)
    with d:
        c = d.client()
        listing = protocol.encode_request(protocol.Request(protocol.LIST))
        assert len(c.raw(listing, protocol.LIST).tasks) == cfg.list_big
        s = _ms(summary(time_calls(lambda: c.raw(listing, protocol.LIST),
                                   max(cfg.min_iters, cfg.iters_big))))
        rows.append(row(SECTION, "rt_list_big", f"round trip: LIST of {cfg.list_big:,} tasks",
                        s["p50"], "ms", p99=s["p99"], n=s["n"],
                        note="includes the client's decoding of the reply (saturnd.protocol)"))
        tx = protocol.encode_request(protocol.Request(protocol.TIMES_EXITCODES, taskid=0))
        s = _ms(summary(time_calls(lambda: c.raw(tx, protocol.TIMES_EXITCODES), cfg.iters)))
        rows.append(row(SECTION, "rt_small", "round trip: TX of a task with 0 runs",
                        s["p50"], "ms", p99=s["p99"], n=s["n"]))
        bare_fn = _bare_write_fsync_rename(d.data)
        t = time_interleaved({"create": lambda: c.raw(create, protocol.CREATE), "bare": bare_fn},
                             cfg.change_iters)
        s, b = _ms(summary(t["create"])), _ms(summary(t["bare"]))
        rows.append(row(SECTION, "rt_create", "round trip: CREATE", s["p50"], "ms",
                        p99=s["p99"], n=s["n"], baseline="bare write+fsync+rename (interleaved)",
                        baseline_value=b["p50"]))
    return rows


def run(cfg, workdir, log):
    base = os.path.join(workdir, "service")
    os.makedirs(base)
    argv = (b"echo", b"hello", b"world")
    rows = []
    for part in (_list_rows, _read_rows, _change_rows, _round_trip_rows):
        rows += part(cfg, base, argv, log)
    return rows

"""The project's test kit: what tests/, bench/ and the soak share (never needed at run time).

- :mod:`testkit.waiting`: ``wait_for(cond, timeout, what, interval)``, the one poll loop.
- :mod:`testkit.procs`: /proc readings (alive, peak RSS, CPU time) and leftover processes.
- :mod:`testkit.pipes`: the one raw pipe client (``raw_exchange``), one well-formed
  exchange through cassini's library (``call``), and the lean benchmark client (``Client``).
- :mod:`testkit.daemon`: the daemon handle (``DaemonHandle``) and its local-process target.
- :mod:`testkit.container`: the container target (saturnd in the project image, cassini and
  saturnd-clock run inside it) and the Docker engine helpers of tests/container.
- :mod:`testkit.targets`: choosing the target (``--target`` / ``SATURND_TARGET``).
- :mod:`testkit.stubs`: scheduler stubs (store, runner) and the TZ switch.
- :mod:`testkit.workloads`: fuzz cases, the kill -9 workload, store invariants, idleness.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]     # the checkout (tests use an editable install)
T0 = 1767225600          # 2026-01-01 00:00:00 UTC, a Thursday: the manual clock's default start

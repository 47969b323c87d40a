"""Measure how long after each minute boundary saturnd starts its tasks (system clock).

Not part of the test suite (it takes real minutes).  Usage:

    .venv/bin/python tests/daemon/measure_latency.py [MINUTES] [TASKS]

Starts ``saturnd -f`` with the system clock in a temporary directory (testkit's local
daemon handle; ``$CASSINI`` for another client), creates
TASKS tasks (default 5) running ``date +%s.%N`` every minute, and for MINUTES
minute boundaries (default 3) prints, per boundary, the delay between the
boundary and the moment each task's process printed its time (min/median/max).
"""

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from testkit.daemon import LocalDaemon


def main():
    minutes = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    ntasks = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    root = Path(tempfile.mkdtemp(prefix="saturnd-measure-"))
    d = LocalDaemon(root / "d", clock="system", start_time=None, tz=None)
    try:
        d.start()
        cas = d.out
        for _ in range(ntasks):
            cas("-c", "--", "date", "+%s.%N")
        all_delays = []
        for m in range(minutes):
            boundary = (int(time.time()) // 60 + 1) * 60
            while time.time() < boundary + 3:
                time.sleep(0.2)
            delays = []
            for i in range(ntasks):
                runs = cas("-x", str(i)).splitlines()
                assert len(runs) == m + 1, (i, runs)
                delays.append(float(cas("-o", str(i))) - boundary)
            all_delays += delays
            print(f"boundary {time.strftime('%H:%M:%S', time.localtime(boundary))}: "
                  f"min {min(delays) * 1000:.1f} ms, median {statistics.median(delays) * 1000:.1f} ms, "
                  f"max {max(delays) * 1000:.1f} ms", flush=True)
        print(f"all {len(all_delays)} runs: min {min(all_delays) * 1000:.1f} ms, "
              f"median {statistics.median(all_delays) * 1000:.1f} ms, "
              f"max {max(all_delays) * 1000:.1f} ms")
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

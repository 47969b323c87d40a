#!/usr/bin/env python3
"""Golden-vector runner: plays saturnd's side of one exchange over real FIFOs.

Usage (standalone)::

    python tests/golden/runner.py [--cassini PATH] [--tags reference,extension]
                                  [--junit FILE] [-j JOBS] [CASE_NAME_OR_DIR ...]

The cases are the grader's, in ``grader/cases/`` (package ``grader.cases``); their
format is described in ``grader/cases/README.md``.

Environment: ``CASSINI`` selects the client (default: ours, i.e. the
``cassini`` script next to this Python, else ``python -m cassini``);
``GOLDEN_TAGS`` selects tags (default: all for ours, ``reference`` for another
client).  The base environment of every case has ``TZ=UTC`` and no
``POSIXLY_CORRECT``/``CASSINI_*`` variables.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# The runner's core lives in grader/golden.py (the grading kit reuses it).
from grader.golden import (  # noqa: E402,F401
    CASES_DIR, EXIT_DEADLINE, REPLY_OPEN_DEADLINE, REQUEST_DEADLINE, TAGS, Case, Result,
    cassini_command, default_cassini, describe_mismatch, hexdump, load_cases, run_case,
    selected_tags, write_junit)



def main(argv=None):
    ap = argparse.ArgumentParser(description="Run cassini's golden vectors.")
    ap.add_argument("--cassini", help="the client to test (default: $CASSINI, else ours)")
    ap.add_argument("--tags", help="comma-separated tags (default: $GOLDEN_TAGS, else all "
                                   "for ours and 'reference' for another client)")
    ap.add_argument("--junit", help="write a JUnit XML report there")
    ap.add_argument("-j", "--jobs", type=int, default=min(8, (os.cpu_count() or 2) * 2))
    ap.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    ap.add_argument("cases", nargs="*", help="case names or directories (default: all)")
    opts = ap.parse_args(argv)
    cassini, other = cassini_command(opts.cassini)
    tags = selected_tags(other, opts.tags)
    cases = [c for c in load_cases(opts.cases, CASES_DIR) if c.tag in tags]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        results = list(pool.map(lambda c: run_case(c, cassini), cases))
    for r in results:
        if opts.verbose or not r.ok:
            print(r.report())
    failed = sum(not r.ok for r in results)
    print(f"golden: {len(results) - failed} passed, {failed} failed "
          f"(tags: {','.join(sorted(tags))}; client: {' '.join(cassini)})")
    if opts.junit:
        write_junit(opts.junit, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

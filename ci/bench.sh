#!/usr/bin/env bash
# The benchmark command: the same virtual environment as ci/test.sh (created and
# the package installed in editable mode when missing), then `python -m bench`,
# which prints the table and writes bench-results.json at the repository root.
# Extra arguments go to the benchmark, e.g.:
#   ci/bench.sh                   # default run (~3-5 min)
#   ci/bench.sh --system-clock    # + scheduling on the system clock (~1 min more)
#   ci/bench.sh --tiny            # seconds-long smoke run
# Installs nothing else: hyperfine is used only with --hyperfine (when present).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${SATURND_TEST_VENV:-$root/.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import saturnd, cassini, testkit" 2>/dev/null || [ ! -x "$venv/bin/cassini" ]; then
    "$venv/bin/python" -m pip install -q -e "$root"
fi
cd "$root"
export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m bench --json "$root/bench-results.json" "$@"

#!/usr/bin/env bash
# The project's test command: a fresh virtual environment, the package with its
# test extras, then the whole pytest suite.  Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${SATURND_TEST_VENV:-$root/.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$venv/bin/python" -m pip install -q -e "$root[test]"
cd "$root"
export PATH="$venv/bin:$PATH"
exec "$venv/bin/pytest" "$@"

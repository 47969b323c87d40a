#!/usr/bin/env bash
# The project's test command: a fresh virtual environment, the package with its
# test extras, then the whole pytest suite.  Extra arguments go to pytest.
#
# Without arguments (the whole suite, as .ci/run calls it), the daemon scenarios (marker
# `scenario`, tests/daemon) then run a second time against the container target: saturnd in
# the project image ($SATURND_IMAGE, default saturnd:ci), cassini and saturnd-clock inside it
# (docker exec), the manual clock, outputs compared byte for byte.  No engine or image:
# skipped with the reason, or a failure when CI is set.  SATURND_CONTAINER_SCENARIOS=0
# leaves that second run out.
#
# Before pytest, the whole-suite run lints: `ruff check .` and `mypy` (their settings:
# pyproject.toml); a finding fails the run before any test.  SATURND_LINT=0 leaves them out,
# SATURND_LINT=1 runs them before a partial run (with pytest arguments) too.
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
lint=${SATURND_LINT:-$([ $# -eq 0 ] && echo 1 || echo 0)}
if [ "$lint" = 1 ]; then
    echo "ci/test.sh: ruff check . && mypy (SATURND_LINT=0 skips)" >&2
    "$venv/bin/ruff" check . || { echo "ci/test.sh: ruff found the above; no tests run" >&2; exit 1; }
    "$venv/bin/mypy" || { echo "ci/test.sh: mypy found the above; no tests run" >&2; exit 1; }
fi
if [ $# -gt 0 ] || [ "${SATURND_CONTAINER_SCENARIOS:-1}" = 0 ]; then
    exec "$venv/bin/pytest" "$@"
fi
status=0
"$venv/bin/pytest" || status=$?
echo "ci/test.sh: the daemon scenarios against the container target (${SATURND_IMAGE:-saturnd:ci})" >&2
t0=$(date +%s)
"$venv/bin/pytest" --target container -m scenario tests/daemon || status=$?
echo "ci/test.sh: container target took $(($(date +%s) - t0)) s" >&2
exit $status

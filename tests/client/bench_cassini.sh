#!/usr/bin/env bash
# Start-up benchmark: `cassini -l` against a fake daemon holding N tasks (default 1000),
# compared with `python -c pass`.  Needs hyperfine (apt-get install -y hyperfine).
# Usage: tests/client/bench_cassini.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$root/.venv/bin/python
dir=$(mktemp -d)
"$py" "$root/tests/client/fake_daemon.py" "$dir/pipes" --list "${1:-1000}" &
daemon=$!
trap 'kill $daemon 2>/dev/null; rm -rf "$dir"' EXIT
while [ ! -p "$dir/pipes/saturnd-reply-pipe" ]; do sleep 0.05; done
"$root/.venv/bin/cassini" -p "$dir/pipes" -l >/dev/null    # warm the bytecode cache
hyperfine -N --warmup 10 --runs "${RUNS:-100}" "$py -c pass" "$root/.venv/bin/cassini -p $dir/pipes -l"

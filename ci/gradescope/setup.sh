#!/usr/bin/env bash
# Gradescope autograder setup: run once, as root, when Gradescope builds the autograder's
# image (its Ubuntu base). The kit itself is in this zip (source/kit, see make-zip.sh):
# only what a grade needs is installed -- Python 3 for the kit, a C toolchain and make
# for the students' builds, libfaketime for the daemon's scheduling checks, tzdata for
# --tz. No network is used after this step.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 gcc libc6-dev make libfaketime tzdata >/dev/null
kit=/autograder/source/kit
test -f "$kit/grader/__main__.py" || { echo "setup.sh: no kit in $kit (build the zip with ci/gradescope/make-zip.sh)" >&2; exit 1; }
python3 -c "import sys; sys.path.insert(0, '$kit'); import grader.__main__" \
    || { echo "setup.sh: the kit does not load with $(python3 --version)" >&2; exit 1; }
echo "setup.sh: saturnd-grade ready in $kit"

#!/usr/bin/env bash
# Build the Gradescope autograder zip: setup.sh and run_autograder at the root, the kit
# (this checkout's saturnd, cassini, grader with its golden cases, ci/grade.sh) under kit/.
#   ci/gradescope/make-zip.sh [OUT.zip]        (default ./gradescope-autograder.zip)
# Course cases to grade with: put them in ci/gradescope/course-tests/ before zipping
# (they land in /autograder/source/course-tests) and set GRADE_OPTIONS in run_autograder.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
zip_out=$(realpath -m "${1:-gradescope-autograder.zip}")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$root/ci/gradescope/setup.sh" "$root/ci/gradescope/run_autograder" "$stage/"
chmod 755 "$stage/setup.sh" "$stage/run_autograder"
mkdir -p "$stage/kit/ci"
cp -r "$root/saturnd" "$root/cassini" "$root/grader" "$stage/kit/"
cp "$root/ci/grade.sh" "$stage/kit/ci/"
[ -d "$root/ci/gradescope/course-tests" ] && cp -r "$root/ci/gradescope/course-tests" "$stage/"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
rm -f "$zip_out"
(cd "$stage" && python3 -m zipfile -c "$zip_out" setup.sh run_autograder kit \
    $( [ -d course-tests ] && echo course-tests ))
echo "$zip_out"

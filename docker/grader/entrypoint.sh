#!/bin/sh
# Grade the submission mounted on /submission; reports go to /out (junit.xml,
# summary.txt, build.log).  Arguments are saturnd-grade options (e.g. --extensions).
# GRADE_SUBMISSION / GRADE_OUT override the two directories.
set -eu
submission=${GRADE_SUBMISSION:-/submission}
out=${GRADE_OUT:-/out}
if [ ! -d "$submission" ] || [ -z "$(ls -A "$submission" 2>/dev/null)" ]; then
    echo "saturnd-grader: nothing in $submission; mount a submission there:" >&2
    echo "  docker run --rm --network none -v SUBMISSION:/submission:ro -v OUT:/out saturnd-grader" >&2
    exit 2
fi
exec /opt/saturnd/ci/grade.sh "$submission" "$out" -- "$@"

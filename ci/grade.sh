#!/usr/bin/env bash
# Grade one submission: copied as plain files into a throwaway container of its own (no
# network, no capabilities, limits; see docs/grading-isolation.md), built there with make,
# its cassini and saturnd found and graded there; the container is then removed.
#
#   ci/grade.sh SUBMISSION_DIR [OUT_DIR] [-- saturnd-grade options...]
#
# SUBMISSION_DIR may be read-only (it is copied first; links, FIFOs and devices are left
# out).  OUT_DIR (default ./grade-out) receives build.log, junit.xml and summary.txt.  The
# exit status is saturnd-grade's: 0 all passed, 1 some test failed (or the build failed),
# 2 usage error.  Without a container engine (or the candidate image) everything runs on
# this machine and the first line says that NOTHING IS ISOLATED.
#
# Environment:
#   GRADE_MAKE_ARGS       arguments for make (default: none, i.e. the default target)
#   GRADE_BUILD_TIMEOUT   seconds the build may take (default 300)
#   GRADE_CASSINI         the client, relative to the submission (default: searched)
#   GRADE_SATURND         the daemon, relative to the submission (default: searched)
#   GRADE_PYTHON          the Python that runs the grader (default: the repository's
#                         .venv, else python3)
#   GRADER_CANDIDATE_IMAGE  the candidates' image (default saturnd-grader:ci)
#   GRADER_MEMORY GRADER_PIDS GRADER_CPUS GRADER_TMP_SIZE   the container's limits
# Extra grader options (e.g. --extensions, --saturnd-cmd '{saturnd} -f', --clock real
# --real-minutes 6, --reference-cassini PATH) go after "--".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

[ $# -ge 1 ] || { echo "usage: ci/grade.sh SUBMISSION_DIR [OUT_DIR] [-- saturnd-grade options]" >&2; exit 2; }
submission=$1; shift
out=./grade-out
if [ $# -ge 1 ] && [ "$1" != "--" ]; then out=$1; shift; fi
[ "${1:-}" = "--" ] && shift

python=${GRADE_PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m grader.container_grade "$submission" "$out" -- "$@"

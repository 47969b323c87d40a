#!/usr/bin/env bash
# Grade one submission: build it with make, find its cassini and saturnd, run saturnd-grade.
#
#   ci/grade.sh SUBMISSION_DIR [OUT_DIR] [-- saturnd-grade options...]
#
# SUBMISSION_DIR may be read-only (it is copied first).  OUT_DIR (default ./grade-out)
# receives build.log, junit.xml and summary.txt.  The exit status is saturnd-grade's:
# 0 all passed, 1 some test failed (or the build failed), 2 usage error.
#
# Environment:
#   GRADE_MAKE_ARGS       arguments for make (default: none, i.e. the default target)
#   GRADE_BUILD_TIMEOUT   seconds the build may take (default 300)
#   GRADE_CASSINI         the client, relative to the submission (default: searched)
#   GRADE_SATURND         the daemon, relative to the submission (default: searched)
#   GRADE_PYTHON          the Python that runs the grader (default: the repository's
#                         .venv, else python3)
# Extra grader options (e.g. --extensions, --saturnd-cmd '{saturnd} -f', --clock real
# --real-minutes 6, --reference-cassini PATH) go after "--".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log() { printf 'grade: %s\n' "$*" >&2; }

[ $# -ge 1 ] || { echo "usage: ci/grade.sh SUBMISSION_DIR [OUT_DIR] [-- saturnd-grade options]" >&2; exit 2; }
submission=$1; shift
out=./grade-out
if [ $# -ge 1 ] && [ "$1" != "--" ]; then out=$1; shift; fi
[ "${1:-}" = "--" ] && shift
[ -d "$submission" ] || { log "no such directory: $submission"; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

python=${GRADE_PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

# -- build: a private copy, as an unprivileged user when we are root, without network --------
work=${GRADER_WORK_DIR:-/var/tmp}
mkdir -p "$work"
build=$(mktemp -d "$work/grade-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
cp -a "$submission/." "$build/"
chmod 755 "$build"
runner=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    chown -R nobody:"$(id -gn nobody 2>/dev/null || echo nogroup)" "$build"
    runner=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --reset-env)
    if unshare --net true 2>/dev/null; then runner=(unshare --net "${runner[@]}"); fi
fi
status=0
if [ -f "$build/Makefile" ] || [ -f "$build/makefile" ] || [ -f "$build/GNUmakefile" ]; then
    log "building with make (log: $out/build.log)"
    (cd "$build" && env HOME="$build" PATH=/usr/local/bin:/usr/bin:/bin \
        timeout -k 5 "${GRADE_BUILD_TIMEOUT:-300}" "${runner[@]}" \
        make ${GRADE_MAKE_ARGS:-}) >"$out/build.log" 2>&1 || status=$?
else
    echo "no Makefile: nothing built" >"$out/build.log"
fi

find_prog() {   # $1: name; prints the first executable file of that name
    find "$build" -maxdepth 4 -type f -name "$1" -perm -u+x 2>/dev/null | sort | head -n 1
}
args=(--build-status "$status" --build-log "$out/build.log" --junit "$out/junit.xml"
      --summary "$out/summary.txt")
if [ "$status" = 0 ]; then
    cassini=${GRADE_CASSINI:+$build/$GRADE_CASSINI}
    saturnd=${GRADE_SATURND:+$build/$GRADE_SATURND}
    cassini=${cassini:-$(find_prog cassini)}
    saturnd=${saturnd:-$(find_prog saturnd)}
    [ -n "$cassini" ] && { log "client: ${cassini#"$build"/}"; args+=(--cassini "$cassini"); }
    [ -n "$saturnd" ] && { log "daemon: ${saturnd#"$build"/}"; args+=(--saturnd "$saturnd"); }
    if [ -z "$cassini" ] && [ -z "$saturnd" ]; then
        log "the build made neither a cassini nor a saturnd executable"
        echo "the build made neither a cassini nor a saturnd executable" >>"$out/build.log"
        args=(--build-status 127 --build-log "$out/build.log" --junit "$out/junit.xml"
              --summary "$out/summary.txt")
    fi
else
    log "the build failed (exit status $status)"
fi
set +e
"$python" -m grader "${args[@]}" "$@"
code=$?
log "report: $out/junit.xml, $out/summary.txt (exit status $code)"
exit $code

#!/usr/bin/env bash
# Build the grading image (docker/grader/Dockerfile), tagged GRADER_IMAGE (default
# saturnd-grader:ci), from a staged build context (the repository's .dockerignore is the
# runtime image's whitelist):
#
#   GRADER_BASE_IMAGE unset: an offline base -- a Debian bookworm rootfs made with
#     debootstrap --variant=minbase --include=python3,python3-docker,tzdata,gcc,libc6-dev,make,libfaketime
#     (cached in ci/.cache/), imported as saturnd-grader-base:bookworm-sdk; the image is then
#     built with --network=none;
#   GRADER_BASE_IMAGE=python:3.12-slim (or any Debian-based image with python3 >= 3.11):
#     the Dockerfile installs gcc, make and libfaketime with apt-get (needs network).
#
# Expects a running engine (ci/docker-setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/ci/.cache
mkdir -p "$cache"
image=${GRADER_IMAGE:-saturnd-grader:ci}
suite=${SATURND_BASE_SUITE:-bookworm}
mirror=${SATURND_DEBIAN_MIRROR:-}
log() { printf 'build-grader-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
t0=$(date +%s)

timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers (run ci/docker-setup.sh first)"

network=(--network=none)
base=${GRADER_BASE_IMAGE:-}
if [ -n "$base" ]; then
    network=()            # apt-get inside the build may be needed
    log "public base $base (apt-get installs what it lacks)"
else
    base=saturnd-grader-base:$suite-sdk     # -sdk: with python3-docker
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        tarball=$cache/rootfs-grader2-$suite.tar     # 2: with python3-docker
        if [ ! -s "$tarball" ]; then
            command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (apt-get install debootstrap)"
            [ "$(id -u)" = 0 ] || die "debootstrap needs root"
            rootfs=$(mktemp -d "$cache/grader-rootfs.XXXXXX")
            trap 'rm -rf "$rootfs"' EXIT
            log "debootstrap $suite with a C toolchain into $rootfs (a few minutes)"
            debootstrap --variant=minbase --include=python3,python3-docker,tzdata,gcc,libc6-dev,make,libfaketime \
                "$suite" "$rootfs" $mirror >"$cache/debootstrap-grader.log" 2>&1 \
                || { tail -n 20 "$cache/debootstrap-grader.log" >&2; die "debootstrap failed"; }
            rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
                   "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* \
                   "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
                   "$rootfs"/usr/share/locale/*/ 2>/dev/null || true
            tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
            mv "$tarball.tmp" "$tarball"
            rm -rf "$rootfs"
            trap - EXIT
        fi
        log "importing $tarball as $base"
        docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$base" <"$tarball" >/dev/null \
            || die "docker import failed"
    fi
fi

ctx=$(mktemp -d "$cache/grader-context.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/kit/ci" "$ctx/kit/docker/grader"
cp -a "$root/saturnd" "$root/cassini" "$root/grader" "$ctx/kit/"
cp -a "$root/ci/grade.sh" "$ctx/kit/ci/"
cp -a "$root/docker/grader/entrypoint.sh" "$ctx/kit/docker/grader/"
cp -a "$root/docker/grader/Dockerfile" "$ctx/Dockerfile"
find "$ctx" -name __pycache__ -prune -exec rm -rf {} +

log "building $image from $base"
docker build "${network[@]}" --build-arg "BASE_IMAGE=$base" -t "$image" "$ctx" \
    >"$cache/build-grader.log" 2>&1 \
    || { tail -n 30 "$cache/build-grader.log" >&2; die "docker build failed"; }
log "$image ready in $(($(date +%s) - t0)) s ($(($(docker image inspect --format '{{.Size}}' "$image") / 1000000)) MB)"

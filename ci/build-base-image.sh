#!/usr/bin/env bash
# Build the images the container tests use, with no image registry:
#
#   1. the base image: the public default (python:3.12-slim) when the engine already has it,
#      else a local Debian bookworm made with debootstrap (python3 + tzdata) and imported
#      as SATURND_BASE_IMAGE (default saturnd-base:bookworm). The rootfs tarball is cached
#      in ci/.cache/ (git-ignored), so a second run only re-imports it;
#   2. the project image, tagged SATURND_IMAGE (default saturnd:ci), from the repository's
#      Dockerfile with `docker build --network=none`.
#
# Prints the sizes of both images. Expects a running engine (ci/docker-setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/ci/.cache
mkdir -p "$cache"
public_base=python:3.12-slim
local_base=${SATURND_BASE_IMAGE:-saturnd-base:bookworm}
image=${SATURND_IMAGE:-saturnd:ci}
suite=${SATURND_BASE_SUITE:-bookworm}
mirror=${SATURND_DEBIAN_MIRROR:-}   # empty: debootstrap's default

t0=$(date +%s%3N)
elapsed() { local ms=$(($(date +%s%3N) - t0)); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }
log() { printf 'build-base-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers (run ci/docker-setup.sh first)"

if docker image inspect "$public_base" >/dev/null 2>&1; then
    base=$public_base
    log "using the public base $base (already present)"
elif docker image inspect "$local_base" >/dev/null 2>&1; then
    base=$local_base
    log "using the local base $base (already imported)"
else
    base=$local_base
    tarball=$cache/rootfs-$suite.tar
    if [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (run ci/docker-setup.sh)"
        [ "$(id -u)" = 0 ] || die "debootstrap needs root"
        rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
        trap 'rm -rf "$rootfs"' EXIT
        log "debootstrap $suite into $rootfs (about a minute)"
        debootstrap --variant=minbase --include=python3,tzdata "$suite" "$rootfs" $mirror \
            >"$cache/debootstrap.log" 2>&1 \
            || { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed"; }
        # Trim what a container never needs: apt lists and caches, docs, man pages,
        # message translations (a third of the rootfs; the programs speak English).
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
               "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* \
               "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
               "$rootfs"/usr/share/locale/*/ \
               "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* 2>/dev/null || true
        tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
        trap - EXIT
    else
        log "reusing cached $tarball"
    fi
    log "importing $tarball as $base"
    docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$base" <"$tarball" >/dev/null \
        || die "docker import failed"
fi

log "building $image from $base"
docker build --network=none --build-arg "BASE_IMAGE=$base" -t "$image" "$root" >"$cache/build.log" 2>&1 \
    || { tail -n 30 "$cache/build.log" >&2; die "docker build failed"; }

size() { docker image inspect --format '{{.Size}}' "$1"; }
b=$(size "$base"); i=$(size "$image")
log "base and image ready in $(elapsed)"
log "$(printf 'image %s: %d MB (base %s: %d MB, +%d kB)' "$image" $((i / 1000000)) "$base" \
    $((b / 1000000)) $(((i - b) / 1000)))"

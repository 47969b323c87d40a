#!/usr/bin/env bash
# Make a Docker engine answer on this machine, or fail loudly.
#
#   - installs docker.io, docker-compose (v1) and debootstrap from Debian when missing;
#   - starts dockerd in the background when `docker info` does not answer, trying the
#     default configuration first and then the flags some sandboxes need (vfs storage,
#     no iptables/bridge: containers here run with --network none anyway);
#   - waits for `docker info` with a deadline (SATURND_DOCKERD_WAIT, default 60 s).
#
# Idempotent: a second call with a running engine does nothing. Needs root for the
# install and the daemon start. Logs of dockerd go to ci/.cache/dockerd.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/ci/.cache
mkdir -p "$cache"
wait_s=${SATURND_DOCKERD_WAIT:-60}

now_ms() { date +%s%3N; }
elapsed() { local ms=$(($(now_ms) - $1)); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }
log() { printf 'docker-setup: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

if engine_answers; then
    log "engine already answering ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
fi

# --- packages -------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
    || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "need root to install ${need[*]}"
    log "installing ${need[*]}"
    t=$(now_ms)
    export DEBIAN_FRONTEND=noninteractive
    for try in 1 2 3; do      # a registry hiccup is worth a second try, not a red CI
        if apt-get update -qq >/dev/null \
            && apt-get install -y -qq --no-install-recommends "${need[@]}" >"$cache/apt.log" 2>&1
        then
            break
        fi
        [ $try -lt 3 ] || { tail -n 20 "$cache/apt.log" >&2; die "apt-get install ${need[*]} failed"; }
        log "apt-get failed (try $try); retrying in 5 s"
        sleep 5
    done
    log "installed in $(elapsed "$t")"
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd not found after install"
command -v docker >/dev/null 2>&1 || die "docker client not found after install"

# --- daemon ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "need root to start dockerd"

# A dockerd that runs (its pid file names a live dockerd) but does not answer yet: wait.
pidfile=/var/run/docker.pid
if [ -s "$pidfile" ] && [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" = dockerd ]; then
    log "dockerd (pid $(cat "$pidfile")) runs but does not answer; waiting for it"
    deadline=$((SECONDS + wait_s))
    until engine_answers; do
        [ $SECONDS -lt $deadline ] || die "running dockerd never answered; see $cache/dockerd.log"
        sleep 1
    done
    exit 0
fi

start_dockerd() {
    # $@: extra flags. Returns 0 once `docker info` answers, 1 when dockerd died.
    log "starting dockerd $*"
    nohup dockerd "$@" >>"$cache/dockerd.log" 2>&1 </dev/null &
    local pid=$! deadline=$((SECONDS + wait_s))
    while [ $SECONDS -lt $deadline ]; do
        if engine_answers; then
            log "engine up after $(elapsed "$start") (pid $pid)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { log "dockerd exited; last log lines:"; tail -n 5 "$cache/dockerd.log" >&2; return 1; }
        sleep 0.5
    done
    log "dockerd did not answer within ${wait_s}s; stopping it"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
}

rm -f "$pidfile"   # stale: no dockerd behind it
start=$(now_ms)
start_dockerd && exit 0
rm -f "$pidfile"
start_dockerd --iptables=false --ip6tables=false --bridge=none && exit 0
rm -f "$pidfile"
start_dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs && exit 0
die "could not start a Docker engine; see $cache/dockerd.log"

#!/bin/sh
# Container entry point: check the directories the daemon needs, then become saturnd in the
# foreground (exec: the engine's init, `--init` / `init: true`, stays PID 1 and forwards
# `docker stop`'s SIGTERM to the daemon). Extra arguments go to saturnd
# (e.g. `--clock manual --start-time EPOCH`).
set -eu
pipes=/tmp/${USER:-saturnd}/saturnd/pipes
data=${SATURND_CONTAINER_DATA:-/var/lib/saturnd}
uid=$(id -u)
[ "$$" != 1 ] || echo "saturnd-entrypoint: warning: running as PID 1; start the container with --init (compose: init: true)" >&2
if [ -d "$pipes" ] && ! [ -w "$pipes" ]; then
    echo "saturnd-entrypoint: the pipes directory $pipes (bind-mounted from the host?) is not writable by uid $uid: create the host directory first, owned by that uid (compose: SATURND_UID/SATURND_GID)" >&2
    exit 1
fi
if ! [ -w "$data" ]; then
    echo "saturnd-entrypoint: the data directory $data is not writable by uid $uid" >&2
    exit 1
fi
exec saturnd -f --data-dir "$data" "$@"

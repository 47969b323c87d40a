#!/bin/sh
# Container entry point: prepare the directories the daemon needs, then become saturnd in the
# foreground (exec: the engine's init, `--init` / compose `init: true`, stays PID 1 and
# forwards `docker stop`'s SIGTERM to the daemon). Extra arguments go to saturnd
# (e.g. `--clock manual --start-time EPOCH`).
#
# Started as a non-root user (`docker run --user UID:GID`, the image's default 1000:1000):
# checks that the pipes and data directories are writable, then runs saturnd as that user.
#
# Started as root (what docker-compose.yml does), like the entry points of postgres or redis:
#   1. chooses the daemon's user: SATURND_UID/SATURND_GID when set; else the owner of
#      $SATURND_OWNER_PATH (compose bind-mounts the checkout there, read-only), i.e. the
#      user who cloned the repository and runs compose; else 1000:1000.
#      A root-owned owner path (a checkout made by root) is not taken as a request to run
#      the daemon as root: the daemon runs as 1000:1000 and a line says so. The daemon runs
#      as root only when asked explicitly, with SATURND_UID=0;
#   2. creates the pipes directory when missing (the engine creates a missing bind-mount
#      source as root), gives it and what it holds to that user, mode 0700, and creates the
#      client lock files owned by that user (so that a root `docker compose exec ... cassini`
#      does not leave a root-only lock file behind);
#   3. gives the data directory (the named volume) to that user;
#   4. drops privileges with util-linux `setpriv` (no setuid binary; the standard library's
#      os.setgroups/setgid/setuid where a base lacks it) and execs saturnd.
set -eu
me=saturnd-entrypoint
pipes=/tmp/${USER:-saturnd}/saturnd/pipes
data=${SATURND_CONTAINER_DATA:-/var/lib/saturnd}
owner_path=${SATURND_OWNER_PATH:-/run/saturnd/checkout}
fallback=1000
[ "$$" != 1 ] || echo "$me: warning: running as PID 1; start the container with --init (compose: init: true)" >&2

is_id() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

if [ "$(id -u)" != 0 ]; then
    uid=$(id -u)
    if [ -d "$pipes" ] && ! [ -w "$pipes" ]; then
        echo "$me: the pipes directory $pipes (bind-mounted from the host?) is not writable by uid $uid: create the host directory first, owned by that uid, or start the container as root (as docker-compose.yml does) and let this entry point fix it" >&2
        exit 1
    fi
    if ! [ -w "$data" ]; then
        echo "$me: the data directory $data is not writable by uid $uid" >&2
        exit 1
    fi
    exec saturnd -f --data-dir "$data" "$@"
fi

# --- started as root: choose the daemon's user ---------------------------------------------
uid=${SATURND_UID:-}
gid=${SATURND_GID:-}
for v in "$uid" "$gid"; do
    if [ -n "$v" ] && ! is_id "$v"; then
        echo "$me: SATURND_UID/SATURND_GID must be numeric ids, got '$v'" >&2
        exit 1
    fi
done
if [ -n "$uid" ]; then
    how="SATURND_UID"
    [ -n "$gid" ] || gid=$uid
elif [ -e "$owner_path" ]; then
    uid=$(stat -c %u "$owner_path")
    og=$(stat -c %g "$owner_path")
    [ -n "$gid" ] || gid=$og
    how="the owner of the checkout"
    if [ "$uid" = 0 ]; then
        echo "$me: the checkout is owned by root: running saturnd as $fallback:$fallback instead (set SATURND_UID=0 to run it as root, or SATURND_UID/SATURND_GID to choose)" >&2
        uid=$fallback
        [ "$gid" != 0 ] || gid=$fallback
        how="the fallback for a root-owned checkout"
    fi
else
    uid=$fallback
    [ -n "$gid" ] || gid=$fallback
    how="the default"
fi
if [ "$uid" = 0 ]; then
    echo "$me: warning: SATURND_UID=0: running saturnd as root, as asked" >&2
fi
echo "$me: running saturnd as $uid:$gid ($how)" >&2

# --- the pipes directory, the lock files, the data directory ------------------------------
if [ -L "$pipes" ] || { [ -e "$pipes" ] && ! [ -d "$pipes" ]; }; then
    echo "$me: $pipes exists and is not a directory" >&2
    exit 1
fi
mkdir -p "$pipes"
# what the directory holds (FIFOs, lock files) may belong to a previous uid: give it over,
# without following symbolic links
find "$pipes" -mindepth 1 -maxdepth 1 ! -type l \( ! -user "$uid" -o ! -group "$gid" \) \
    -exec chown -h "$uid:$gid" {} +
chown "$uid:$gid" "$pipes"
chmod 0700 "$pipes"
for f in cassini-lock clock-lock; do
    if ! [ -e "$pipes/$f" ] && ! [ -L "$pipes/$f" ]; then
        (umask 077 && : >"$pipes/$f") && chown "$uid:$gid" "$pipes/$f"
    fi
done
mkdir -p "$data"
find "$data" \( ! -user "$uid" -o ! -group "$gid" \) -exec chown -h "$uid:$gid" {} +

if command -v setpriv >/dev/null 2>&1; then
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all \
        saturnd -f --data-dir "$data" "$@"
fi
# A base without util-linux: the same drop with the standard library (no supplementary
# groups, gid then uid; a non-root uid keeps no capability).
echo "$me: setpriv (util-linux) not found; dropping privileges with python3" >&2
exec python3 -c '
import os, sys
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
os.execvp(sys.argv[3], sys.argv[3:])
' "$uid" "$gid" saturnd -f --data-dir "$data" "$@"

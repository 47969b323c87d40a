# saturnd in a container: the daemon in the foreground, cassini and saturnd-clock on PATH.
#
#   docker build --network=none -t saturnd .                     # public base (python:3.12-slim)
#   docker build --network=none --build-arg BASE_IMAGE=saturnd-base:bookworm -t saturnd .
#   docker run -d --init --network none --user "$(id -u):$(id -g)" \
#       -v saturnd-data:/var/lib/saturnd -v "$PWD/pipes:/tmp/saturnd/saturnd/pipes" saturnd
#   docker exec CONTAINER cassini -l            # or, on the host: cassini -p ./pipes -l
#
# docker-compose.yml starts it as root instead (`user: "0:0"`): the entry point then prepares
# the pipes and data directories for the user who owns the checkout and drops to that user
# with util-linux `setpriv` (docker/entrypoint.sh). The daemon itself never runs as root
# unless SATURND_UID=0 asks for it.
#
# Any base with python3 (>= 3.11) and tzdata works (util-linux's setpriv is used when present); nothing
# is installed at build time (the runtime is the standard library only), so the build needs
# no network.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# USER=saturnd makes the default pipes directory of both programs /tmp/saturnd/saturnd/pipes,
# whatever uid the container runs as: bind-mount the host's pipes directory there.
# (No PYTHONPATH or other PYTHON* variable: the daemon's environment is the tasks'.)
# HOME is where tasks run; it is world-writable (sticky) so that any uid (compose's
# SATURND_UID) can use it without a password-database entry.
ENV USER=saturnd \
    HOME=/home/saturnd \
    LANG=C.UTF-8

COPY saturnd/ /opt/saturnd/saturnd/
COPY cassini/ /opt/saturnd/cassini/
COPY docker/bin/ /usr/local/bin/
COPY docker/entrypoint.sh /usr/local/bin/saturnd-entrypoint
COPY docs/man/cassini.1 /usr/local/share/man/man1/cassini.1
COPY docs/man/saturnd.8 /usr/local/share/man/man8/saturnd.8

# - a non-root default user (uid/gid 1000, the usual first desktop user);
# - home and data directory usable by any uid: a named volume mounted on /var/lib/saturnd
#   starts as a copy of this directory, mode included;
# - bytecode compiled now (the container user cannot write to /opt), for a fast cassini.
RUN set -eu; \
    grep -q '^saturnd:' /etc/group || echo 'saturnd:x:1000:' >>/etc/group; \
    grep -q '^saturnd:' /etc/passwd \
        || echo 'saturnd:x:1000:1000:saturnd:/home/saturnd:/bin/sh' >>/etc/passwd; \
    mkdir -p /home/saturnd /var/lib/saturnd /tmp/saturnd/saturnd; \
    chmod 1777 /home/saturnd /var/lib/saturnd /tmp/saturnd /tmp/saturnd/saturnd; \
    find /opt/saturnd -name __pycache__ -prune -exec rm -rf {} +; \
    python3 -m compileall -q /opt/saturnd; \
    chmod -R a+rX /opt/saturnd; \
    chmod 0755 /usr/local/bin/cassini /usr/local/bin/saturnd /usr/local/bin/saturnd-clock \
        /usr/local/bin/saturnd-entrypoint; \
    chmod 0644 /usr/local/share/man/man1/cassini.1 /usr/local/share/man/man8/saturnd.8; \
    test -e /usr/share/zoneinfo/Europe/Paris || { echo "base image lacks tzdata" >&2; exit 1; }; \
    command -v setpriv >/dev/null \
        || echo "note: base image lacks setpriv (util-linux); the entry point will use python3" >&2; \
    python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version'

VOLUME /var/lib/saturnd
WORKDIR /home/saturnd
USER 1000:1000

# Asks the daemon something real: a LIST round trip through the pipes.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD CASSINI_TIMEOUT=3 CASSINI_REPLY_TIMEOUT=3 cassini -l >/dev/null || exit 1

# Run with the engine's init (`docker run --init`, compose `init: true`) as PID 1: it forwards
# `docker stop`'s SIGTERM to saturnd, which lets running tasks finish within its grace period
# (--grace) and exits 0. Arguments after the image name go to saturnd.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/saturnd-entrypoint"]
CMD []

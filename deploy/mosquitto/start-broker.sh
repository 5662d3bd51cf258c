#!/bin/sh
# Entrypoint of the flarewatch broker container (docker-compose.yml): copy the broker's secrets
# where Mosquitto can read them, then run the image's own entrypoint.
#
# Mosquitto 2.0, started as root, drops to its `mosquitto` user (uid 1883 in eclipse-mosquitto)
# as soon as its configuration is read and only then opens password_file, acl_file and the TLS
# key (Mosquitto 2.0.0 ChangeLog, "Breaking changes": "all locations that the broker needs to
# access must be available to the unprivileged user"). The files on the host belong to whoever
# wrote them (the flarewatch image's user for `admin broker-auth`, root or certbot for the key),
# with mode 0600, so the broker could not read them and would exit. This script still runs as
# root: it copies them, owned by the broker's user and private to it, at every start.
#
# Tunables (environment; the defaults are the container's paths):
#   FLAREWATCH_BROKER_SECRETS  where the host directories auth/ and certs/ are mounted read-only
#   FLAREWATCH_BROKER_RUNTIME  where mosquitto.conf expects them (/mosquitto/auth, /mosquitto/certs)
#   FLAREWATCH_BROKER_USER     the user Mosquitto drops to
set -eu

secrets=${FLAREWATCH_BROKER_SECRETS:-/flarewatch}
runtime=${FLAREWATCH_BROKER_RUNTIME:-/mosquitto}
broker_user=${FLAREWATCH_BROKER_USER:-mosquitto}

# copy_private DIR FILE...: copy $secrets/DIR to $runtime/DIR (0700, files 0600, owned by the
# broker's user); every FILE named must be there.
copy_private() {
    dir=$1
    shift
    for name in "$@"; do
        if [ ! -f "$secrets/$dir/$name" ]; then
            echo "start-broker: missing $secrets/$dir/$name (see docs/deploy.md, First start)" >&2
            exit 1
        fi
    done
    mkdir -p "$runtime/$dir"
    # A file removed on the host must not survive in the copy (the target may be a tmpfs mount
    # point: empty it, do not remove it).
    rm -rf -- "${runtime:?}/$dir"/*
    for file in "$secrets/$dir"/*; do
        if [ -f "$file" ]; then
            cp "$file" "$runtime/$dir/"
        fi
    done
    chown -R "$broker_user" "$runtime/$dir"
    chmod 0700 "$runtime/$dir"
    chmod 0600 "$runtime/$dir"/*
}

copy_private auth passwords acl
copy_private certs server.crt server.key
exec "$@"

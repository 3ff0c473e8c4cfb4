#!/bin/sh
# First start: create the cluster in the (empty) data volume, then serve.
# Later starts: serve what is there. Interrupted first starts are redone from scratch.
set -eu

if [ ! -s "$PGDATA/PG_VERSION" ] || [ ! -f "$PGDATA/.finctl-initialised" ]; then
    rm -rf "${PGDATA:?}"/* "$PGDATA"/.finctl-initialised 2>/dev/null || true
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --auth=trust --encoding=UTF8 --no-locale >/dev/null
    {
        echo "listen_addresses = '*'"
        echo "port = $PGPORT"
        echo "unix_socket_directories = '/var/run/postgresql'"
        echo "fsync = ${POSTGRES_FSYNC:-on}"
        echo "max_connections = ${POSTGRES_MAX_CONNECTIONS:-200}"
    } >> "$PGDATA/postgresql.conf"
    # Insecure development mode, as Cockroach's --insecure: any client, any password.
    {
        echo "host all all 0.0.0.0/0 trust"
        echo "host all all ::/0 trust"
    } >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != "postgres" ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
    touch "$PGDATA/.finctl-initialised"
fi

exec postgres -D "$PGDATA" "$@"

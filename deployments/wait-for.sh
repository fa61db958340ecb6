#!/bin/bash
# wait-for.sh HOST:PORT... -- COMMAND...: run COMMAND once every HOST:PORT accepts connections.
# compose.yaml starts its services in order, but a started server is not yet a listening one:
# PostgreSQL makes its cluster on first start and Prefect's server migrates its database first.
set -euo pipefail
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    host=${1%:*} port=${1##*:}
    until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do sleep 1; done
    shift
done
shift
exec "$@"

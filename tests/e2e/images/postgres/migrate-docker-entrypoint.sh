#!/bin/sh
# btcpayserver/dockerfile-deps Postgres/18.4/scripts/migrate-docker-entrypoint.sh, as far as a
# fresh node sees it: it refuses a volume mounted at the pre-18 path, then runs the official
# entrypoint. (Its pg_upgrade path from an old cluster needs root, gosu and apt: not mirrored.)
set -e
if [ -d /var/lib/postgresql/data ]; then
  echo "Error: you are mounting the volumes on '/var/lib/postgresql/data', it should be '/var/lib/postgresql'" >&2
  exit 1
fi
exec docker-entrypoint.sh "$@"

#!/bin/sh
# The stand-in image's docker-entrypoint.sh: what docker-library/postgres 18/trixie's does, for
# Debian's real PostgreSQL. Written for this test bed, not copied; the steps, env names and
# refusals are upstream's:
# - only for `postgres` (a first argument starting with `-` gets postgres prepended); anything
#   else is exec'd as is
# - POSTGRES_PASSWORD, POSTGRES_USER (default postgres), POSTGRES_DB (default the user) and
#   POSTGRES_INITDB_ARGS each also read from *_FILE (setting both is an error)
# - creates $PGDATA (0700) and /var/run/postgresql; as root takes ownership and re-execs as
#   postgres (999) with gosu (needs CHOWN, SETUID, SETGID); as any other uid it does neither
# - a new cluster needs a password unless POSTGRES_HOST_AUTH_METHOD=trust ("Database is
#   uninitialized and superuser password is not specified."); initdb with the password from a
#   file and POSTGRES_INITDB_ARGS (initdb's own default for local and loopback is trust: the
#   catalog passes --auth-local/--auth-host); appends `host all all all <method>` to pg_hba.conf
#   (the method: POSTGRES_HOST_AUTH_METHOD, else password_encryption, scram-sha-256)
# - a socket-only temporary server: CREATE DATABASE POSTGRES_DB unless it is `postgres`, then
#   /docker-entrypoint-initdb.d/* in order (*.sh run if executable, else sourced; *.sql through
#   psql as POSTGRES_USER, PGPASSWORD set), then stops it; only on a new cluster
# - finally execs postgres (STOPSIGNAL SIGINT: a fast shutdown)
set -e
log() { printf '%s\n' "$*"; }
die() { printf 'Error: %s\n' "$*" >&2; exit 1; }

file_env() {
  local name=$1 def=${2:-} v f
  eval "v=\${$name:-}"; eval "f=\${${name}_FILE:-}"
  if [ -n "$v" ] && [ -n "$f" ]; then die "both $name and ${name}_FILE are set (but are exclusive)"; fi
  if [ -n "$f" ]; then v=$(cat "$f") || die "${name}_FILE: cannot read $f"; fi
  [ -n "$v" ] || v=$def
  eval "$name=\$v"; export "$name"; unset "${name}_FILE"
}

case ${1:-} in -*) set -- postgres "$@" ;; esac
[ "${1:-}" = postgres ] || exec "$@"

mkdir -p "$PGDATA"; chmod 00700 "$PGDATA" || :
mkdir -p /var/run/postgresql || :; chmod 03775 /var/run/postgresql || :
if [ "$(id -u)" = 0 ]; then
  find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
  find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  exec gosu postgres "$0" "$@"
fi

file_env POSTGRES_PASSWORD; file_env POSTGRES_USER postgres; file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    die "Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\"."
  fi
  ls /docker-entrypoint-initdb.d/ >/dev/null
  pw=$(mktemp); printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile="$pw" $POSTGRES_INITDB_ARGS
  rm -f "$pw"
  auth=${POSTGRES_HOST_AUTH_METHOD:-$(postgres -C password_encryption -D "$PGDATA")}
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  export PGPASSWORD=$POSTGRES_PASSWORD
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  psql_() { psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"; }
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\";" | psql_ --dbname postgres
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh) if [ -x "$f" ]; then log "$0: running $f"; "$f"; else log "$0: sourcing $f"; . "$f"; fi ;;
      *.sql) log "$0: running $f"; psql_ --dbname "$POSTGRES_DB" -f "$f" ;;
      *) [ ! -e "$f" ] || log "$0: ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  log ""; log "PostgreSQL init process complete; ready for start up."; log ""
else
  log ""; log "PostgreSQL Database directory appears to contain a database; Skipping initialization"; log ""
fi
exec "$@"

#!/bin/sh
# The stand-in image's entrypoint: what docker.io/library/mariadb:10.11's docker-entrypoint.sh
# (MariaDB/mariadb-docker 10.11/docker-entrypoint.sh) does, for Debian's real mariadbd. Written
# for this test bed, not copied: the steps, env names and refusals are upstream's.
# - only for `mariadbd`/`mysqld` (a first argument starting with `-` gets mariadbd prepended);
#   anything else is exec'd as is
# - as root: take ownership of the datadir and re-exec as mysql (999) with gosu (which needs
#   CHOWN, SETUID, SETGID); as any other uid: neither, the datadir must be that uid's
# - a new datadir needs one of MARIADB_ROOT_PASSWORD(_FILE), MARIADB_ALLOW_EMPTY_ROOT_PASSWORD,
#   MARIADB_RANDOM_ROOT_PASSWORD, else it refuses; each of ROOT_PASSWORD, PASSWORD, USER,
#   DATABASE also reads a *_FILE variant (setting both is an error), MYSQL_* names alike
# - initialises with mariadb-install-db, runs a socket-only server, sets the root password,
#   creates healthcheck@localhost/127.0.0.1/::1 with a random password written to
#   $DATADIR/.my-healthcheck.cnf (0600), the database, the user with ALL on it; then stops it
# - finally execs the server as PID 1
set -e
log() { printf '%s [Note] [Entrypoint]: %s\n' "$(date '+%F %T%z')" "$*"; }
die() { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date '+%F %T%z')" "$*" >&2; exit 1; }

# file_env NAME: $MARIADB_NAME, $MYSQL_NAME, or the file $MARIADB_NAME_FILE / $MYSQL_NAME_FILE
file_env() {
  local name=$1 v f m
  for p in MARIADB MYSQL; do
    eval "v=\${${p}_${name}:-}"; eval "f=\${${p}_${name}_FILE:-}"
    if [ -n "$v" ] && [ -n "$f" ]; then die "Both ${p}_${name} and ${p}_${name}_FILE are set (but are exclusive)"; fi
    if [ -n "$f" ]; then [ -r "$f" ] || die "${p}_${name}_FILE: cannot read $f"; v=$(cat "$f"); fi
    if [ -n "$v" ]; then eval "MARIADB_${name}=\$v"; export "MARIADB_${name}"; return; fi
  done
  eval "MARIADB_${name}=\${2:-}"
}

case ${1:-} in -*) set -- mariadbd "$@" ;; esac
case ${1:-} in mariadbd|mysqld) ;; *) exec "$@" ;; esac

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
log "Entrypoint script for MariaDB Server started."
mkdir -p "$DATADIR"
if [ "$(id -u)" = 0 ]; then
  find "$DATADIR" \! -user mysql -exec chown mysql: '{}' +
  log "Switching to dedicated user 'mysql'"
  exec gosu mysql "$0" "$@"
fi

file_env ROOT_PASSWORD; file_env PASSWORD; file_env USER; file_env DATABASE
RANDOM_ROOT=${MARIADB_RANDOM_ROOT_PASSWORD:-${MYSQL_RANDOM_ROOT_PASSWORD:-}}
EMPTY_ROOT=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}

# SQL string literal
sql_quote() { printf "'%s'" "$(printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g")"; }
client() { mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot "$@"; }

if [ ! -d "$DATADIR/mysql" ]; then
  [ -n "$MARIADB_ROOT_PASSWORD" ] || [ -n "$RANDOM_ROOT" ] || [ -n "$EMPTY_ROOT" ] ||
    die "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
  log "Initializing database files"
  mariadb-install-db --no-defaults --datadir="$DATADIR" --auth-root-authentication-method=normal \
    --skip-test-db --default-time-zone=SYSTEM --skip-log-bin --expire-logs-days=0 \
    --basedir=/usr >/dev/null
  log "Database files initialized"
  log "Starting temporary server"
  "$@" --skip-networking --socket="$SOCKET" --datadir="$DATADIR" --skip-log-bin &
  pid=$!
  for _ in $(seq 300); do client -e 'SELECT 1' >/dev/null 2>&1 && break; kill -0 "$pid" 2>/dev/null || die "Unable to start server."; sleep 0.1; done
  log "Temporary server started."
  if [ -n "$RANDOM_ROOT" ]; then
    MARIADB_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | cut -c1-32)
    log "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi
  hc=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | cut -c1-32)
  (umask 077; printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' "$SOCKET" "$hc" >"$DATADIR/.my-healthcheck.cnf")
  sql="SET @@SESSION.SQL_LOG_BIN=0;
DELETE FROM mysql.user WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'mysql.infoschema', 'mysql.session', 'root') OR host NOT IN ('localhost');
SET PASSWORD FOR 'root'@'localhost'= PASSWORD($(sql_quote "$MARIADB_ROOT_PASSWORD"));
CREATE USER 'root'@'%' IDENTIFIED BY $(sql_quote "$MARIADB_ROOT_PASSWORD");
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE USER 'healthcheck'@'127.0.0.1' IDENTIFIED BY $(sql_quote "$hc");
CREATE USER 'healthcheck'@'::1' IDENTIFIED BY $(sql_quote "$hc");
CREATE USER 'healthcheck'@'localhost' IDENTIFIED BY $(sql_quote "$hc");
GRANT USAGE ON *.* TO 'healthcheck'@'127.0.0.1', 'healthcheck'@'::1', 'healthcheck'@'localhost';"
  if [ -n "$MARIADB_DATABASE" ]; then
    log "Creating database $MARIADB_DATABASE"
    sql="$sql
CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
  fi
  if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
    log "Creating user $MARIADB_USER"
    sql="$sql
CREATE USER $(sql_quote "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_quote "$MARIADB_PASSWORD");"
    if [ -n "$MARIADB_DATABASE" ]; then
      log "Giving user $MARIADB_USER access to schema $MARIADB_DATABASE"
      sql="$sql
GRANT ALL ON \`$MARIADB_DATABASE\`.* TO $(sql_quote "$MARIADB_USER")@'%';"
    fi
  fi
  printf '%s\n' "$sql" | client --database=mysql
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh) log "$0: running $f"; . "$f" ;;
      *.sql) log "$0: running $f"; client -p"$MARIADB_ROOT_PASSWORD" <"$f" ;;
    esac
  done
  log "Stopping temporary server"
  client -p"$MARIADB_ROOT_PASSWORD" -e 'SHUTDOWN'
  wait "$pid" || true
  log "Temporary server stopped"
  log "MariaDB init process done. Ready for start up."
fi
unset MARIADB_ROOT_PASSWORD MARIADB_PASSWORD MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
exec "$@"

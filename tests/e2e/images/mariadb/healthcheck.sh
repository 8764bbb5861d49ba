#!/bin/sh
# The stand-in image's /usr/local/bin/healthcheck.sh: the two tests of upstream's (MariaDB/
# mariadb-docker 10.11/healthcheck.sh) the catalog uses, as upstream runs them: as the
# `healthcheck` user from $datadir/.my-healthcheck.cnf (0600: the check must run as the server's
# uid), over the unix socket.
#   --connect              the server answers (select @@skip_networking)
#   --innodb_initialized   InnoDB is available
# Exit 0 when every test given passes; with none, --connect.
datadir=/var/lib/mysql
tests=
for a in "$@"; do
  case $a in
    --connect|--innodb_initialized) tests="$tests ${a#--}" ;;
    --datadir=*) datadir=${a#--datadir=} ;;
    *) echo "healthcheck.sh: unknown option $a" >&2; exit 1 ;;
  esac
done
[ -n "$tests" ] || tests=connect
defaults=
[ -r "$datadir/.my-healthcheck.cnf" ] && defaults="--defaults-extra-file=$datadir/.my-healthcheck.cnf"
q() { mariadb $defaults --protocol=socket --skip-column-names --batch -e "$1"; }
for t in $tests; do
  case $t in
    connect) q 'select @@skip_networking' >/dev/null || { echo "healthcheck connect failed"; exit 1; } ;;
    innodb_initialized)
      [ -n "$(q "select 1 from information_schema.ENGINES WHERE engine='innodb' AND support in ('YES', 'DEFAULT', 'ENABLED')")" ] ||
        { echo "healthcheck innodb_initialized failed"; exit 1; } ;;
  esac
done

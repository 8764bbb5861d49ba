# shellcheck shell=bash
# docker.io/library/mariadb:10.11 - Debian's real MariaDB server (mariadbd, mariadb-install-db,
#   the mariadb client), with upstream's user mysql 999:999, /var/lib/mysql, /run/mysqld (1777),
#   ENTRYPOINT docker-entrypoint.sh, CMD mariadbd, /usr/local/bin/healthcheck.sh, gosu; the
#   entrypoint and health check are this test bed's own, doing what upstream's do (see
#   images/mariadb/). Debian 13 ships 11.8 where upstream's tag is 10.11.
mariadb_rootfs() {
  local r=$1
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}" seq base64 od
  copy_packages "$r" mariadb-server-core mariadb-client-core
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  ln -s /usr/local/bin/standin "$r/usr/local/bin/gosu"
  install -m 755 "$HERE/mariadb/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
  install -m 755 "$HERE/mariadb/healthcheck.sh" "$r/usr/local/bin/healthcheck.sh"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'mysql:x:999:999::/var/lib/mysql:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'mysql:x:999:' 'nogroup:x:65534:' >"$r/etc/group"
  mkdir -p "$r/var/lib/mysql" "$r/run/mysqld" "$r/docker-entrypoint-initdb.d" "$r/etc/mysql/conf.d"
  chown 999:999 "$r/var/lib/mysql" "$r/run/mysqld"; chmod 1777 "$r/run/mysqld"
  # upstream: bind-address and user lines commented out, skip-name-resolve, host-cache-size=0
  printf '%s\n' '[client-server]' 'socket = /run/mysqld/mysqld.sock' '[mariadbd]' \
    'datadir = /var/lib/mysql' 'skip-name-resolve' 'host-cache-size = 0' \
    'lc-messages-dir = /usr/share/mariadb' '!includedir /etc/mysql/conf.d/' >"$r/etc/mysql/my.cnf"
}

IMAGES+=(mariadb)
mariadb_ref=docker.io/library/mariadb:10.11
mariadb_changes=('ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["mariadbd"]' 'VOLUME ["/var/lib/mysql"]'
  'EXPOSE 3306' 'WORKDIR /' 'ENV MARIADB_VERSION=10.11'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')

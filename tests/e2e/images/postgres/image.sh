# shellcheck shell=bash
# docker.io/btcpayserver/postgres:18.4 - Debian's real PostgreSQL (server and client, with
#   upstream's user postgres 999:999, PGDATA /var/lib/postgresql/18/docker, VOLUME
#   /var/lib/postgresql (1777), /var/run/postgresql (3777), /docker-entrypoint-initdb.d,
#   listen_addresses '*', STOPSIGNAL SIGINT; ENTRYPOINT btcpayserver's
#   /scripts/migrate-docker-entrypoint.sh, which runs docker-library's docker-entrypoint.sh;
#   both are this test bed's own, doing what upstream's do (see images/postgres/). The root's
#   PostgreSQL ($DEBIAN_PG): Debian 13 ships 17 where upstream's tag is 18.4, sid ships 18; the
#   paths are upstream's.
postgres_rootfs() {
  local r=$1
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}" mktemp seq
  COPY_EXCLUDE="/usr/lib/postgresql/$DEBIAN_PG/lib/(bitcode|llvmjit)" \
    copy_packages "$r" "postgresql-$DEBIAN_PG" "postgresql-client-$DEBIAN_PG" libpq5 tzdata
  mkdir -p "$r/usr/lib/locale"; cp -a /usr/lib/locale/C.utf8 "$r/usr/lib/locale/"
  sed -i "s/^#listen_addresses = 'localhost'/listen_addresses = '*'/" \
    "$r/usr/share/postgresql/$DEBIAN_PG/postgresql.conf.sample"
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  ln -s /usr/local/bin/standin "$r/usr/local/bin/gosu"
  install -m 755 "$HERE/postgres/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
  install -D -m 755 "$HERE/postgres/migrate-docker-entrypoint.sh" "$r/scripts/migrate-docker-entrypoint.sh"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'postgres:x:999:999::/var/lib/postgresql:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'postgres:x:999:' 'nogroup:x:65534:' >"$r/etc/group"
  mkdir -p "$r/var/lib/postgresql" "$r/var/run/postgresql" "$r/docker-entrypoint-initdb.d"
  chown 999:999 "$r/var/lib/postgresql" "$r/var/run/postgresql"
  chmod 1777 "$r/var/lib/postgresql"; chmod 3777 "$r/var/run/postgresql"
}

IMAGES+=(postgres)
postgres_ref=docker.io/btcpayserver/postgres:18.4
postgres_changes=('ENTRYPOINT ["/scripts/migrate-docker-entrypoint.sh"]' 'CMD ["postgres"]'
  'ENV PGDATA=/var/lib/postgresql/18/docker' 'ENV LANG=C.UTF-8' 'ENV PG_MAJOR=18'
  "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/$DEBIAN_PG/bin"
  'VOLUME ["/var/lib/postgresql"]' 'EXPOSE 5432' 'STOPSIGNAL SIGINT' 'WORKDIR /')

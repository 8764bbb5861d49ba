# shellcheck shell=bash
# docker.io/filebrowser/filebrowser:v2.63.23 - upstream's Dockerfile (filebrowser/filebrowser
#   v2.63.23) on busybox 1.37: user "user" 1000:1000 (busybox adduser -D), /bin/filebrowser
#   (the stand-in, see standin/src/filebrowser.rs), /bin/tini, /init.sh, /healthcheck.sh,
#   /JSON.sh, /defaults/settings.json (port 80, address "", log stdout, database
#   /database/filebrowser.db, root /srv), /config /database /srv owned by user, USER user,
#   VOLUME /srv /config /database, EXPOSE 80, ENTRYPOINT tini -- /init.sh, no CMD. The scripts
#   are this test bed's, doing what upstream's do (see images/filebrowser/). Busybox here is
#   Debian's static build; no ca-certificates or mime.types (nothing archy's use reads them).
#   Upstream's HEALTHCHECK (/healthcheck.sh every 5s) is not carried: `podman import` takes no
#   HEALTHCHECK; the catalog's own health check applies.
filebrowser_rootfs() {
  local r=$1 d=$HERE/filebrowser
  base "$r"
  add_busybox "$r" "${ALPINE_TOOLS[@]}" ash base64 od seq tee which nslookup ping
  add_bin "$r" "$STANDIN" /bin/standin
  ln -s standin "$r/bin/filebrowser"
  install -m 755 "$d/tini" "$r/bin/tini"
  install -m 755 "$d/init.sh" "$r/init.sh"
  install -m 755 "$d/healthcheck.sh" "$r/healthcheck.sh"
  install -m 644 "$d/JSON.sh" "$r/JSON.sh"
  install -D -m 644 "$d/defaults-settings.json" "$r/defaults/settings.json"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' \
    'nobody:x:65534:65534:nobody:/home:/bin/false' 'user:x:1000:1000:Linux User,,,:/home/user:/bin/sh' \
    >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'nogroup:x:65534:' 'user:x:1000:' >"$r/etc/group"
  mkdir -p "$r/home/user" "$r/config" "$r/database" "$r/srv"
  # COPY --chown=user:user, and the RUN that makes the volumes' directories
  chown -h 1000:1000 "$r/bin/standin" "$r/bin/filebrowser" "$r/bin/tini" "$r/init.sh" "$r/healthcheck.sh"
  chown -R 1000:1000 "$r/defaults" "$r/home/user" "$r/config" "$r/database" "$r/srv"
}

IMAGES+=(filebrowser)
filebrowser_ref=docker.io/filebrowser/filebrowser:v2.63.23
filebrowser_changes=('ENTRYPOINT ["tini", "--", "/init.sh"]' 'USER user' 'VOLUME ["/srv", "/config", "/database"]'
  'EXPOSE 80' 'ENV UID=1000' 'ENV GID=1000' 'WORKDIR /'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')

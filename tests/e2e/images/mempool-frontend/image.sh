# shellcheck shell=bash
# docker.io/mempool/frontend:v3.3.1 - mempool/mempool v3.3.1 docker/frontend/Dockerfile: nginx
#   (Debian's real one here; upstream's base is nginx:1.27.0-alpine) with the app in
#   /var/www/mempool (a stand-in page), /patch/entrypoint.sh (see images/mempool-frontend/),
#   /etc/nginx/nginx.conf and conf.d/nginx-mempool.conf, all owned by 1000 with USER 1000 (no
#   passwd entry), ENTRYPOINT /patch/entrypoint.sh, CMD nginx -g 'daemon off;', STOPSIGNAL
#   SIGQUIT (from the base), curl (from the base).
mempool_frontend_rootfs() {
  local r=$1 d=$HERE/mempool-frontend
  base "$r"
  add_busybox "$r" "${ALPINE_TOOLS[@]}"
  add_bin "$r" /usr/sbin/nginx /usr/sbin/nginx
  copy_packages "$r" curl
  mkdir -p "$r/etc/nginx/conf.d" "$r/var/cache/nginx" "$r/var/log/nginx" "$r/var/run" "$r/patch" \
    "$r/var/www/mempool/browser/resources"
  cp /etc/nginx/mime.types "$r/etc/nginx/"
  install -m 644 "$d/nginx.conf" "$r/etc/nginx/nginx.conf"
  install -m 644 "$d/nginx-mempool.conf" "$r/etc/nginx/conf.d/nginx-mempool.conf"
  install -m 755 "$d/entrypoint.sh" "$r/patch/entrypoint.sh"
  printf '%s\n' '<!doctype html><html><head><title>mempool - Bitcoin Explorer</title>' \
    '<script src="/resources/config.js"></script></head><body><app-root></app-root></body></html>' \
    >"$r/var/www/mempool/browser/index.html"
  printf '%s\n' 'window.__env = { MAINNET_ENABLED: ${MAINNET_ENABLED}, TESTNET_ENABLED: ${TESTNET_ENABLED}, TESTNET4_ENABLED: ${TESTNET4_ENABLED}, SIGNET_ENABLED: ${SIGNET_ENABLED}, REGTEST_ENABLED: ${REGTEST_ENABLED}, ROOT_NETWORK: "${ROOT_NETWORK}", BASE_MODULE: "${BASE_MODULE}" };' \
    >"$r/var/www/mempool/browser/resources/config.template.js"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/:/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nginx:x:101:nginx' 'nogroup:x:65534:' >"$r/etc/group"
  touch "$r/var/run/nginx.pid"
  chown -R 1000:1000 "$r/patch" "$r/var/cache/nginx" "$r/var/log/nginx" "$r/etc/nginx/nginx.conf" \
    "$r/etc/nginx/conf.d" "$r/var/www/mempool" "$r/var/run/nginx.pid"
}

IMAGES+=(mempool_frontend)
mempool_frontend_ref=docker.io/mempool/frontend:v3.3.1
mempool_frontend_changes=('ENTRYPOINT ["/patch/entrypoint.sh"]' 'CMD ["nginx", "-g", "daemon off;"]'
  'USER 1000' 'STOPSIGNAL SIGQUIT' 'EXPOSE 80' 'WORKDIR /patch'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')

# shellcheck shell=bash
# docker.io/mempool/backend:v3.3.1 - mempool/mempool v3.3.1 docker/backend/Dockerfile: FROM
#   rust:1.84-bookworm (buildpack-deps: curl, wget, procps' ps, ...), nodesource's node 24.13.0,
#   WORKDIR /backend (owned 1000:1000), package/ (the compiled backend; here index.js is a
#   placeholder and `node` the stand-in, tests/e2e/standin/src/mempool.rs), GeoIP/,
#   mempool-config.json (start.sh's template), start.sh, wait-for-it.sh, all 1000:1000; USER
#   1000 with no passwd entry; CMD ["/backend/start.sh"]; EXPOSE 8999; no VOLUME. Tools: Debian's
#   real curl, mariadb client (the stand-in's database access), ps (procps, for the PID lock),
#   dash as /bin/sh (Debian's, as bookworm's), busybox for wget and the rest. Not mirrored: the
#   Rust toolchain, compilers, git.
mempool_backend_rootfs() {
  local r=$1 d=$HERE/mempool-backend
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}" wget nc
  add_bin "$r" /usr/bin/dash /bin/dash
  ln -sf dash "$r/bin/sh"
  copy_packages "$r" curl mariadb-client-core procps
  mkdir -p "$r/etc/ssl/certs"
  [ ! -e /etc/ssl/certs/ca-certificates.crt ] || cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  ln -s /usr/local/bin/standin "$r/usr/bin/node"
  mkdir -p "$r/backend/package/api" "$r/backend/GeoIP"
  printf '%s\n' '// the compiled mempool backend; `node` here is the archy e2e stand-in' >"$r/backend/package/index.js"
  printf '%s\n' '{' '  "version": "3.3.1",' '  "gitCommit": "9332d9db"' '}' >"$r/backend/package/api/version.json"
  install -m 644 "$d/mempool-config.json" "$r/backend/mempool-config.json"
  install -m 755 "$d/start.sh" "$r/backend/start.sh"
  install -m 755 "$d/wait-for-it.sh" "$r/backend/wait-for-it.sh"
  chown -R 1000:1000 "$r/backend"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
}

IMAGES+=(mempool_backend)
mempool_backend_ref=docker.io/mempool/backend:v3.3.1
mempool_backend_changes=('CMD ["/backend/start.sh"]' 'USER 1000' 'WORKDIR /backend' 'EXPOSE 8999'
  'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV RUSTUP_HOME=/usr/local/rustup' 'ENV CARGO_HOME=/usr/local/cargo' 'ENV RUST_VERSION=1.84.1')

#!/usr/bin/env bash
# Stand-in images for the catalog's image refs, so the real catalog manifests run unmodified
# with no registry. Each mirrors what archy depends on in the real image: entrypoint, command,
# user, volumes, stop signal, the tools a health check may call. Not mirrored: anything else.
#
#   build.sh host DIR  on the host: build the stand-in binary (cargo) into DIR/bin/ (sandbox.sh
#                   gives the suite's image cache, $CACHE/images/SUITE)
#   build.sh        inside the sandbox (as root): put the images into node's podman storage,
#                   loading the archive cached for these exact inputs or building and caching it
#
# docker.io/bitcoin/bitcoin:31.0 - the community image: /entrypoint.sh (as root) takes ownership of
#   $BITCOIN_DATA, appends -datadir, then runs bitcoind as uid 101 via gosu; debian-slim tools
#   (sh, grep, ...; no wget/curl). CMD bitcoind.
# docker.io/lightninglabs/lnd:v0.21.2-beta - ENTRYPOINT ["lnd"] (a command's first word "lnd"
#   becomes an ignored positional argument), runs as root, VOLUME /root/.lnd; alpine with
#   `apk add bash jq ca-certificates gnupg wget` (lnd's Dockerfile, final stage): bash, jq and
#   GNU wget here are Debian's (no gnupg: nothing archy runs uses it); lnd and lncli the stand-in.
# docker.io/nginxinc/nginx-unprivileged:1.29-alpine - the real nginx (Debian's build), upstream's
#   nginx.conf for this image (pid and temp paths in /tmp, logs symlinked to /dev/stdout and
#   /dev/stderr, include conf.d/*.conf), USER 101, STOPSIGNAL SIGQUIT, /docker-entrypoint.sh,
#   CMD nginx -g 'daemon off;'.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BITCOIN=docker.io/bitcoin/bitcoin:31.0
LND=docker.io/lightninglabs/lnd:v0.21.2-beta
NGINX=docker.io/nginxinc/nginx-unprivileged:1.29-alpine

# ARCHY_E2E_PODMAN_ARGS: extra podman options (the sandbox loads images before the user manager
# runs, with --cgroup-manager=cgroupfs)
upodman() { as_node podman ${ARCHY_E2E_PODMAN_ARGS:-} "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[images] %s\n' "$*" >&2; }

host() {
  local cache=${ARCHY_E2E_CACHE:-/var/cache/archy-e2e} dir=${1:?usage: build.sh host DIR} cargo
  cargo=$(command -v cargo || echo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo")
  [ -x "$cargo" ] || { log "cargo not found: needed to build the stand-in binary"; exit 1; }
  "$cargo" build --release --locked --quiet --manifest-path "$HERE/../standin/Cargo.toml" \
    --target-dir "$cache/standin-target"
  mkdir -p "$dir/bin"
  if ! cmp -s "$cache/standin-target/release/standin" "$dir/bin/standin"; then
    # atomic, for concurrent runs
    local tmp; tmp=$(mktemp "$dir/bin/standin.XXXXXX")
    install -m 755 "$cache/standin-target/release/standin" "$tmp" && mv "$tmp" "$dir/bin/standin"
  fi
}

# copy binaries into a rootfs with the shared libraries they load
add_bin() {
  local rootfs=$1 bin=$2 dest=$3 lib
  install -D -m 755 "$bin" "$rootfs$dest"
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    # cp keeps the mode: the loader must stay executable
    [ -e "$rootfs$lib" ] || { mkdir -p "$rootfs${lib%/*}"; cp -L "$lib" "$rootfs$lib"; }
  done
}

add_busybox() {
  local rootfs=$1 a; shift
  install -D -m 755 /bin/busybox "$rootfs/bin/busybox"
  for a in "$@"; do ln -sf busybox "$rootfs/bin/$a"; done
}

# copy_packages ROOTFS PKG...: the files of Debian packages as this root has them installed
# (man pages and docs left out, and paths matching the regex $COPY_EXCLUDE), and the shared
# libraries their programs and modules load
copy_packages() {
  local r=$1; shift
  dpkg -L "$@" | sort -u | grep -Ev "^/usr/share/(doc|man|lintian|locale)/${COPY_EXCLUDE:+|$COPY_EXCLUDE}" |
  while IFS= read -r f; do
    if [ -d "$f" ] && [ ! -L "$f" ]; then mkdir -p "$r$f"; continue; fi
    [ -e "$f" ] || [ -L "$f" ] || continue
    mkdir -p "$r${f%/*}"; cp -a "$f" "$r$f"
  done
  local f
  find "$r" -type f \( -perm -u+x -o -name '*.so*' \) | while IFS= read -r f; do
    { ldd "$f" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
  done | sort -u | while IFS= read -r lib; do
    [ -e "$r$lib" ] || { mkdir -p "$r${lib%/*}"; cp -L "$lib" "$r$lib"; }
  done
}

base() {
  local rootfs=$1
  mkdir -p "$rootfs"/{etc,tmp,root,proc,sys,dev,run,var/tmp}
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  chmod 700 "$rootfs/root"
  echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
}

DEBIAN_TOOLS=(sh cat grep egrep cut id ls mkdir chmod chown rm sleep test '[' echo env head tail sed ps kill
  touch true false printf tr wc readlink basename dirname mv cp ln date sort uniq awk find xargs uname
  hostname stat df du)
ALPINE_TOOLS=("${DEBIAN_TOOLS[@]}" ash wget nc less vi)

bitcoin_rootfs() {
  local r=$1
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}"
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  mkdir -p "$r/opt/bitcoin-31.0/bin" "$r/usr/sbin" "$r/home/bitcoin/.bitcoin"
  ln -s /usr/local/bin/standin "$r/opt/bitcoin-31.0/bin/bitcoind"
  ln -s /usr/local/bin/standin "$r/opt/bitcoin-31.0/bin/bitcoin-cli"
  ln -s /usr/local/bin/standin "$r/usr/sbin/gosu"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'bitcoin:x:101:101::/home/bitcoin:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'bitcoin:x:101:' 'nogroup:x:65534:' >"$r/etc/group"
  chown -R 101:101 "$r/home/bitcoin"
  # the upstream entrypoint's steps (it is bash and uses getent; these are busybox equivalents)
  cat >"$r/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
echo "$0: assuming uid:gid for bitcoin:bitcoin of $(id -u bitcoin):$(id -g bitcoin)"
if [ "$(echo "$1" | cut -c1)" = "-" ]; then
  echo "$0: assuming arguments for bitcoind"
  set -- bitcoind "$@"
fi
if [ "$(echo "$1" | cut -c1)" = "-" ] || [ "$1" = "bitcoind" ]; then
  mkdir -p "$BITCOIN_DATA"
  chmod 700 "$BITCOIN_DATA"
  chown -R bitcoin:bitcoin "$(awk -F: '$1 == "bitcoin" { print $6 }' /etc/passwd)"
  chown -R bitcoin:bitcoin "$BITCOIN_DATA"
  echo "$0: setting data directory to $BITCOIN_DATA"
  set -- "$@" -datadir="$BITCOIN_DATA"
fi
if [ "$1" = "bitcoind" ] || [ "$1" = "bitcoin-cli" ] || [ "$1" = "bitcoin-tx" ]; then
  echo
  exec gosu bitcoin "$@"
fi
echo
exec "$@"
EOF
  chmod 755 "$r/entrypoint.sh"
}

lnd_rootfs() {
  local r=$1
  base "$r"
  # GNU wget, not busybox's: the image installs the wget package
  local tools=() t
  for t in "${ALPINE_TOOLS[@]}" seq; do [ "$t" = wget ] || tools+=("$t"); done
  add_busybox "$r" "${tools[@]}"
  copy_packages "$r" bash jq wget ca-certificates
  [ -e "$r/bin/bash" ] || ln -s /usr/bin/bash "$r/bin/bash"
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  ln -s /usr/local/bin/standin "$r/bin/lnd"
  ln -s /usr/local/bin/standin "$r/bin/lncli"
  mkdir -p "$r/root/.lnd"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/:/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
}

nginx_rootfs() {
  local r=$1
  base "$r"
  add_busybox "$r" "${ALPINE_TOOLS[@]}"
  add_bin "$r" /usr/sbin/nginx /usr/sbin/nginx
  mkdir -p "$r/etc/nginx/conf.d" "$r/usr/share/nginx/html" "$r/var/cache/nginx" "$r/var/log/nginx" \
    "$r/docker-entrypoint.d"
  cp /etc/nginx/mime.types "$r/etc/nginx/"
  ln -s /dev/stdout "$r/var/log/nginx/access.log"
  ln -s /dev/stderr "$r/var/log/nginx/error.log"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/:/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nginx:x:101:nginx' 'nogroup:x:65534:' 'nobody:x:65534:' >"$r/etc/group"
  # upstream's nginx.conf after the unprivileged image's edits
  cat >"$r/etc/nginx/nginx.conf" <<'EOF'
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /tmp/nginx.pid;

events {
    worker_connections  1024;
}

http {
    proxy_temp_path /tmp/proxy_temp;
    client_body_temp_path /tmp/client_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;

    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
EOF
  cat >"$r/etc/nginx/conf.d/default.conf" <<'EOF'
server {
    listen       8080;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
EOF
  echo '<!DOCTYPE html><title>Welcome to nginx!</title><h1>Welcome to nginx!</h1>' >"$r/usr/share/nginx/html/index.html"
  echo '<!DOCTYPE html><title>Error</title><h1>An error occurred.</h1>' >"$r/usr/share/nginx/html/50x.html"
  # upstream's entrypoint, minus the configuration scripts (none apply to archy's use)
  cat >"$r/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    if find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f | grep -q .; then
        for f in /docker-entrypoint.d/*.sh; do
            entrypoint_log "$0: Launching $f"; "$f"
        done
        entrypoint_log "$0: Configuration complete; ready for start up"
    else
        entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi
exec "$@"
EOF
  chmod 755 "$r/docker-entrypoint.sh"
  chown -R 101:0 "$r/var/cache/nginx" "$r/etc/nginx"
  chmod -R g+w "$r/var/cache/nginx" "$r/etc/nginx"
}

# PostgreSQL's major version in this root (17 in trixie, 18 in sid): the postgres, nbxplorer and
# btcpayserver images copy its packages (empty on the host, where no image is built)
DEBIAN_PG=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1 || true)

# Further images, one directory each: images/NAME/image.sh defines NAME_rootfs, and appends NAME
# to IMAGES with its reference in NAME_ref and its Dockerfile-like changes in NAME_changes.
IMAGES=()
for f in "$HERE"/*/image.sh; do
  # shellcheck source=/dev/null
  . "$f"
done

# image NAME REF CHANGE...: NAME's image (from NAME_rootfs) tagged REF, with Dockerfile-like
# CHANGEs. Each image is cached as an archive keyed by what builds it (its function, the files
# in images/NAME/, the stand-in binary, the root's recipe), so an edit rebuilds that image alone.
image() {
  local name=$1 ref=$2; shift 2
  local key archive
  key=$( { declare -f "${name}_rootfs" base add_bin add_busybox copy_packages; printf '%s\n' "$ref" "$@"
           cat "$STANDIN" /.archy-e2e-recipe 2>/dev/null
           [ ! -d "$HERE/${name//_/-}" ] || cat "$HERE/${name//_/-}"/*; } | sha256sum | cut -c1-16)
  archive=$ARCHY_E2E_IMAGES/$name-$key.tar
  if [ ! -s "$archive" ]; then
    local t0 dir changes=() c; t0=$(now)
    dir=$(mktemp -d /tmp/archy-images.XXXXXX)
    chmod 1777 "$dir"   # podman runs as node: it reads the tarball and writes the archive here
    "${name}_rootfs" "$dir/rootfs"
    tar --numeric-owner -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
    chmod 644 "$dir/rootfs.tar"
    for c in "$@"; do changes+=(--change "$c"); done
    upodman import -q "${changes[@]}" "$dir/rootfs.tar" "$ref" >/dev/null
    upodman save -q -o "$dir/image.tar" "$ref"
    # atomic: a concurrent run sees the whole archive or none ($$ is the same in every sandbox:
    # each has its own PID namespace)
    local tmp; tmp=$(mktemp "$archive.tmp.XXXXXX")
    cp "$dir/image.tar" "$tmp" && chmod 644 "$tmp" && mv "$tmp" "$archive"
    find "$ARCHY_E2E_IMAGES" -maxdepth 1 -name "$name-*.tar" ! -name "${archive##*/}" -delete
    rm -rf "$dir"
    log "built $name ($ref) in $(since "$t0")"
  fi
  LOAD+=("$archive")
}

inside() {
  : "${ARCHY_E2E_IMAGES:?run inside the sandbox}"
  STANDIN=$ARCHY_E2E_IMAGES/bin/standin
  [ -x "$STANDIN" ] || { log "no stand-in binary at $STANDIN (sandbox.sh builds it)"; exit 1; }
  local t0; t0=$(now)
  LOAD=()
  image bitcoin "$BITCOIN" 'ENTRYPOINT ["/entrypoint.sh"]' 'CMD ["bitcoind"]' \
    'ENV BITCOIN_DATA=/home/bitcoin/.bitcoin' 'ENV BITCOIN_VERSION=31.0' \
    'ENV PATH=/opt/bitcoin-31.0/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'VOLUME ["/home/bitcoin/.bitcoin"]' 'EXPOSE 8332' 'EXPOSE 8333' 'WORKDIR /'
  image lnd "$LND" 'ENTRYPOINT ["lnd"]' 'VOLUME ["/root/.lnd"]' 'EXPOSE 9735' 'EXPOSE 10009' 'WORKDIR /' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  image nginx "$NGINX" 'ENTRYPOINT ["/docker-entrypoint.sh"]' 'CMD ["nginx", "-g", "daemon off;"]' \
    'USER 101' 'STOPSIGNAL SIGQUIT' 'EXPOSE 8080' 'WORKDIR /' 'ENV NGINX_VERSION=1.29' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  local n ref
  for n in "${IMAGES[@]}"; do
    ref=${n}_ref; local -n changes=${n}_changes
    image "$n" "${!ref}" "${changes[@]}"
    unset -n changes
  done
  local a
  for a in "${LOAD[@]}"; do upodman load -q -i "$a" >/dev/null; done
  log "${#LOAD[@]} images ready in $(since "$t0")"
}

case ${1:-} in
  host) host "${2:-}" ;;
  "") inside ;;
  *) echo "usage: $0 [host DIR]" >&2; exit 2 ;;
esac

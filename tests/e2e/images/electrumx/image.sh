# shellcheck shell=bash
# docker.io/lukechilds/electrumx:v1.16.0 - lukechilds/docker-electrumx at cbedc7e ("v1.16.0") +
#   550590c ("Use uvloop"): FROM python:3.7-alpine3.11, no USER (root; ALLOW_ROOT=1), CMD
#   ["init"] (/usr/local/bin/init: a self-signed certificate for SSL_CERTFILE/SSL_KEYFILE with
#   openssl if either is missing, then exec /electrumx/electrumx_server), WORKDIR and VOLUME
#   /data, the environment below. ElectrumX is the stand-in (tests/e2e/standin/src/electrumx.rs)
#   as /usr/local/bin/electrumx_server and electrumx_rpc (where `python setup.py install` puts
#   them) and /electrumx/electrumx_server (the clone init execs). Tools: busybox (ash, wget, ...;
#   nc with Alpine's `-z`, see images/electrumx/nc), Debian's real openssl (Alpine has 1.1.1).
#   /bin/sh is dash: Debian's static busybox's ash runs its own applets before PATH (so `nc -z`
#   in a `sh -c` health check would reach busybox's nc, which lacks -z), Alpine's does not.
#   Not mirrored: python3 (a health check cannot use it), pip's packages, LevelDB.
electrumx_rootfs() {
  local r=$1 d=$HERE/electrumx
  base "$r"
  add_busybox "$r" "${ALPINE_TOOLS[@]}"
  add_bin "$r" /usr/bin/dash /bin/dash
  ln -sf dash "$r/bin/sh"
  rm -f "$r/bin/nc"
  install -D -m 755 "$d/nc" "$r/usr/bin/nc"
  copy_packages "$r" openssl
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  ln -s standin "$r/usr/local/bin/electrumx_server"
  ln -s standin "$r/usr/local/bin/electrumx_rpc"
  mkdir -p "$r/electrumx" "$r/data"
  ln -s /usr/local/bin/standin "$r/electrumx/electrumx_server"
  ln -s /usr/local/bin/standin "$r/electrumx/electrumx_rpc"
  install -m 755 "$d/init" "$r/usr/local/bin/init"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/ash' 'nobody:x:65534:65534:nobody:/:/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:root' 'nogroup:x:65533:' 'nobody:x:65534:' >"$r/etc/group"
}

IMAGES+=(electrumx)
electrumx_ref=docker.io/lukechilds/electrumx:v1.16.0
electrumx_changes=('CMD ["init"]' 'VOLUME ["/data"]' 'WORKDIR /data'
  'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8' 'ENV HOME=/data' 'ENV ALLOW_ROOT=1' 'ENV EVENT_LOOP_POLICY=uvloop' 'ENV DB_DIRECTORY=/data'
  'ENV SERVICES=tcp://:50001,ssl://:50002,wss://:50004,rpc://0.0.0.0:8000'
  'ENV SSL_CERTFILE=/data/electrumx.crt' 'ENV SSL_KEYFILE=/data/electrumx.key' 'ENV HOST='
  'EXPOSE 50001' 'EXPOSE 50002' 'EXPOSE 50004' 'EXPOSE 8000')

# shellcheck shell=bash
# docker.io/lukechilds/electrumx:v1.18.0 - lukechilds/docker-electrumx at bcaeabf (Dockerfile
#   VERSION 1.18.0; see images/electrumx/init): FROM debian:trixie-slim, apt-get install
#   python3-pip build-essential libc6-dev libncurses5-dev libncursesw5-dev libleveldb-dev git (with
#   Recommends), pip plyvel uvloop, a clone of spesmilo/electrumx at 1.18.0 installed with pip
#   (electrumx_server, electrumx_rpc in /usr/local/bin; the clone's own scripts in /electrumx), no
#   USER (root; ALLOW_ROOT=1), CMD ["init"], WORKDIR and VOLUME /data, the environment below.
#   ElectrumX is the stand-in (tests/e2e/standin/src/electrumx.rs) at those four paths. Tools:
#   /bin/sh is dash and bash is there (Debian's essential set); coreutils, sed, grep, awk as
#   busybox applets here; Debian's real openssl (ca-certificates depends on it). No nc, wget,
#   curl or busybox in the real image: a health check has bash's /dev/tcp, or electrumx_rpc.
#   Not mirrored: python3 3.13 (the real image has it; nothing here runs Python), pip's packages,
#   LevelDB, the compilers.
electrumx_rootfs() {
  local r=$1 d=$HERE/electrumx
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}"
  add_bin "$r" /usr/bin/dash /bin/dash
  add_bin "$r" /bin/bash /bin/bash
  ln -sf dash "$r/bin/sh"
  copy_packages "$r" openssl
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  ln -s standin "$r/usr/local/bin/electrumx_server"
  ln -s standin "$r/usr/local/bin/electrumx_rpc"
  mkdir -p "$r/electrumx" "$r/data"
  ln -s /usr/local/bin/standin "$r/electrumx/electrumx_server"
  ln -s /usr/local/bin/standin "$r/electrumx/electrumx_rpc"
  install -m 755 "$d/init" "$r/usr/local/bin/init"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
}

IMAGES+=(electrumx)
electrumx_ref=docker.io/lukechilds/electrumx:v1.18.0
electrumx_changes=('CMD ["init"]' 'VOLUME ["/data"]' 'WORKDIR /data'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV HOME=/data' 'ENV ALLOW_ROOT=1' 'ENV COIN=Bitcoin' 'ENV EVENT_LOOP_POLICY=uvloop' 'ENV DB_DIRECTORY=/data'
  'ENV SERVICES=tcp://:50001,ssl://:50002,wss://:50004,rpc://0.0.0.0:8000'
  'ENV SSL_CERTFILE=/data/electrumx.crt' 'ENV SSL_KEYFILE=/data/electrumx.key' 'ENV HOST='
  'EXPOSE 50001' 'EXPOSE 50002' 'EXPOSE 50004' 'EXPOSE 8000')

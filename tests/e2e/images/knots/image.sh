# shellcheck shell=bash
# docker.io/btcpayserver/bitcoinknots:29.3.knots20260508 - btcpayserver/dockerfile-deps
#   BitcoinKnots/29.3.knots20260508/linuxamd64.Dockerfile: debian-slim with bitcoind and
#   bitcoin-cli in /usr/local/bin (the stand-in's), user bitcoin 999:999 with home
#   /home/bitcoin, /home/bitcoin/.bitcoin -> /data, BITCOIN_DATA=/data, VOLUME /data,
#   ENTRYPOINT /entrypoint.sh (see images/knots/docker-entrypoint.sh), CMD bitcoind, gosu.
knots_rootfs() {
  local r=$1
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}"
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  ln -s standin "$r/usr/local/bin/bitcoind"
  ln -s standin "$r/usr/local/bin/bitcoin-cli"
  ln -s standin "$r/usr/local/bin/gosu"
  install -m 755 "$HERE/knots/docker-entrypoint.sh" "$r/entrypoint.sh"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'bitcoin:x:999:999::/home/bitcoin:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'bitcoin:x:999:' 'nogroup:x:65534:' >"$r/etc/group"
  mkdir -p "$r/data" "$r/home/bitcoin"
  ln -s /data "$r/home/bitcoin/.bitcoin"
  chown -R 999:999 "$r/data" "$r/home/bitcoin"
}

IMAGES+=(knots)
knots_ref=docker.io/btcpayserver/bitcoinknots:29.3.knots20260508
knots_changes=('ENTRYPOINT ["/entrypoint.sh"]' 'CMD ["bitcoind"]' 'ENV BITCOIN_DATA=/data'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'VOLUME ["/data"]'
  'EXPOSE 8332' 'EXPOSE 8333' 'WORKDIR /')

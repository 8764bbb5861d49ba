# shellcheck shell=bash
# docker.io/btcpayserver/btcpayserver:2.4.2 - btcpayserver/btcpayserver Dockerfile (v2.4.1; 2.4.2
#   changed no packaging): the aspnet 10 (Ubuntu noble) runtime with iproute2 and
#   openssh-client, LC_ALL/LANG en_US.UTF-8, /datadir (root 0755), WORKDIR /app,
#   BTCPAY_DATADIR=/datadir, VOLUME /datadir, no USER (root), no CMD, ENTRYPOINT
#   ["/app/docker-entrypoint.sh"] (see images/btcpayserver/docker-entrypoint.sh); bash, no curl
#   or wget. Here `dotnet` is the stand-in (see standin/src/btcpay.rs), /app/BTCPayServer.dll a
#   placeholder, `ip` busybox's; psql (the root's postgresql-client-NN) is the stand-in's way to PostgreSQL,
#   which upstream's image does not have. Not here: ssh, ssh-keygen.
btcpayserver_rootfs() {
  local r=$1
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}" mktemp ip
  copy_packages "$r" bash "postgresql-client-$DEBIAN_PG" libpq5
  ln -s /usr/bin/bash "$r/bin/bash"
  ln -s /bin/busybox "$r/usr/bin/env"
  mkdir -p "$r/sbin"; ln -s /bin/busybox "$r/sbin/ip"
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  mkdir -p "$r/usr/share/dotnet" "$r/app" "$r/datadir"
  ln -s /usr/local/bin/standin "$r/usr/share/dotnet/dotnet"
  ln -s ../share/dotnet/dotnet "$r/usr/bin/dotnet"
  echo 'archy e2e stand-in: `dotnet BTCPayServer.dll` runs /usr/local/bin/standin' >"$r/app/BTCPayServer.dll"
  install -m 755 "$HERE/btcpayserver/docker-entrypoint.sh" "$r/app/docker-entrypoint.sh"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash' \
    'app:x:1654:1654::/home/app:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'ubuntu:x:1000:' 'app:x:1654:' 'nogroup:x:65534:' >"$r/etc/group"
  mkdir -p "$r/home/ubuntu" "$r/home/app"
  chown 1000:1000 "$r/home/ubuntu"; chown 1654:1654 "$r/home/app"
}

IMAGES+=(btcpayserver)
btcpayserver_ref=docker.io/btcpayserver/btcpayserver:2.4.2
btcpayserver_changes=('ENTRYPOINT ["/app/docker-entrypoint.sh"]' 'WORKDIR /app' 'ENV BTCPAY_DATADIR=/datadir'
  'ENV DOTNET_CLI_TELEMETRY_OPTOUT=1' 'ENV LC_ALL=en_US.UTF-8' 'ENV LANG=en_US.UTF-8'
  'ENV APP_UID=1654' 'ENV ASPNETCORE_HTTP_PORTS=8080' 'ENV DOTNET_RUNNING_IN_CONTAINER=true'
  'ENV DOTNET_VERSION=10.0.10' 'ENV ASPNET_VERSION=10.0.10'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'VOLUME ["/datadir"]')

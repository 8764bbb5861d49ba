# shellcheck shell=bash
# docker.io/nicolasdorier/nbxplorer:2.6.10 - btcpayserver/NBXplorer v2.6.10 Dockerfile: the
#   aspnet 10 (Ubuntu noble) runtime, WORKDIR /app, curl (added in 2.6.8 for health checks),
#   /datadir (root 0755), ENV NBXPLORER_DATADIR=/datadir, VOLUME /datadir, no USER (root), no
#   CMD, ENTRYPOINT ["dotnet", "NBXplorer.dll"]; the base image's user app 1654 (and noble's
#   ubuntu 1000), ASPNETCORE_HTTP_PORTS=8080. Here `dotnet` is the stand-in (see
#   standin/src/nbxplorer.rs), /app/NBXplorer.dll a placeholder it requires in the working
#   directory, bash and curl Debian's; psql (the root's postgresql-client-NN) is the stand-in's way to
#   PostgreSQL, which upstream's image does not have.
nbxplorer_rootfs() {
  local r=$1
  base "$r"
  add_busybox "$r" "${DEBIAN_TOOLS[@]}" mktemp
  copy_packages "$r" bash curl "postgresql-client-$DEBIAN_PG" libpq5
  ln -s /usr/bin/bash "$r/bin/bash"
  ln -s /bin/busybox "$r/usr/bin/env"
  add_bin "$r" "$STANDIN" /usr/local/bin/standin
  mkdir -p "$r/usr/share/dotnet" "$r/app" "$r/datadir"
  ln -s /usr/local/bin/standin "$r/usr/share/dotnet/dotnet"
  ln -s ../share/dotnet/dotnet "$r/usr/bin/dotnet"
  echo 'archy e2e stand-in: `dotnet NBXplorer.dll` runs /usr/local/bin/standin' >"$r/app/NBXplorer.dll"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash' \
    'app:x:1654:1654::/home/app:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'ubuntu:x:1000:' 'app:x:1654:' 'nogroup:x:65534:' >"$r/etc/group"
  mkdir -p "$r/home/ubuntu" "$r/home/app"
  chown 1000:1000 "$r/home/ubuntu"; chown 1654:1654 "$r/home/app"
}

IMAGES+=(nbxplorer)
nbxplorer_ref=docker.io/nicolasdorier/nbxplorer:2.6.10
nbxplorer_changes=('ENTRYPOINT ["dotnet", "NBXplorer.dll"]' 'WORKDIR /app' 'ENV NBXPLORER_DATADIR=/datadir'
  'ENV APP_UID=1654' 'ENV ASPNETCORE_HTTP_PORTS=8080' 'ENV DOTNET_RUNNING_IN_CONTAINER=true'
  'ENV DOTNET_VERSION=10.0.10' 'ENV ASPNET_VERSION=10.0.10'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'VOLUME ["/datadir"]')

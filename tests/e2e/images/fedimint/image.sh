# shellcheck shell=bash
# docker.io/fedimint/fedimintd:v0.11.1 - nix/flakebox.nix's `container.fedimintd`
#   (dockerTools.buildLayeredImage): no User (root: the service user under rootless podman),
#   Entrypoint the nix store's `entrypoint` script (any arguments exec'd as they are), no Cmd,
#   Env only FM_DATA_DIR=/data (no PATH: podman's default applies), Volumes /data, ExposedPorts
#   8173/tcp 8174/tcp (not the UI's 8175), no WorkingDir (flakebox's `WorkDir` key is not
#   OCI's). Contents: fedimintd (the stand-in, see standin/src/fedimint.rs), bash and curl
#   (Debian's, in place of nixpkgs'), coreutils and busybox (busybox's applets here),
#   fakeNss's /etc/passwd and /etc/group (root, nobody). Not here: rsync (not in the test
#   root), fedimint-cli, fedimint-dbtool, fedimint-recoverytool, a CA bundle.
fedimint_rootfs() {
  local r=$1 d=$HERE/fedimint
  base "$r"
  add_busybox "$r" "${ALPINE_TOOLS[@]}" ash base64 od seq tee which nslookup timeout expr md5sum sha256sum
  copy_packages "$r" bash curl
  # nixpkgs' bash is /bin/bash in the image (contents are linked at /): the entrypoint's shebang
  [ -e "$r/bin/bash" ] || ln -s /usr/bin/bash "$r/bin/bash"
  add_bin "$r" "$STANDIN" /bin/standin
  ln -s standin "$r/bin/fedimintd"
  install -D -m 755 "$d/entrypoint" "$r/nix/store/archy-e2e-standin-entrypoint/bin/entrypoint"
  install -m 755 "$d/fedimintd-container-entrypoint.sh" "$r/nix/store/archy-e2e-standin-fedimintd-container-entrypoint.sh"
  # fakeNss
  printf '%s\n' 'root:x:0:0:root user:/var/empty:/bin/sh' 'nobody:x:65534:65534:nobody:/var/empty:/bin/sh' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$r/etc/group"
  mkdir -p "$r/var/empty"
}

IMAGES+=(fedimint)
fedimint_ref=docker.io/fedimint/fedimintd:v0.11.1
fedimint_changes=('ENTRYPOINT ["/nix/store/archy-e2e-standin-entrypoint/bin/entrypoint"]' 'ENV FM_DATA_DIR=/data'
  'VOLUME ["/data"]' 'EXPOSE 8173/tcp' 'EXPOSE 8174/tcp')

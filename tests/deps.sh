#!/usr/bin/env bash
# Installs, from Debian's archive, the tools `make test` needs beyond a Rust toolchain: the e2e
# test bed's (debootstrap, unshare), the packages scenario's (make deb: dpkg-dev, debhelper) and
# the man page test's (man-db, groff). Does nothing when they are there; needs root otherwise.
set -euo pipefail
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v unshare >/dev/null || need+=(util-linux)
command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev)
command -v dh >/dev/null || need+=(debhelper)
command -v man >/dev/null || need+=(man-db)
command -v groff >/dev/null || need+=(groff-base)
# the boot-chain scenario's VM (it skips itself, saying so, where no accelerator runs it in time)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v python3 >/dev/null || need+=(python3)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "tests/deps.sh: missing ${need[*]}: install them (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "tests/deps.sh: installing ${need[*]}" >&2
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null

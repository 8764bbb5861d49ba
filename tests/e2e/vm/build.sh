#!/usr/bin/env bash
# The boot-chain scenario's machine: a bootable Debian disk image made from the test bed's
# cached root of ARCHY_E2E_SUITE (sandbox.sh build; trixie by default) plus what a real node has
# and the bed does without: a Debian kernel and initramfs, systemd as init (systemd-sysv), udev,
# logind, systemd-networkd with its wait-online (so network-online.target is reached the way a
# node reaches it), an fstab. Nothing of archy is in it: the scenario installs the packages as an
# admin would.
#
#   vm/build.sh    prints the directory holding disk.img (raw ext4, the root), vmlinuz, initrd.img
#
# Cached under $ARCHY_E2E_CACHE/vm/SUITE/<key>, keyed by the bed's recipe and this file, so a run
# after the first only makes a copy-on-write overlay of it. The bed's own pins are taken out: its
# containers.conf (a booted host has systemd as PID 1, and podman's defaults are the production
# ones) and the masked network-online wait (never masked here).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ARCHY_E2E_CACHE:-/var/cache/archy-e2e}
SUITE=${ARCHY_E2E_SUITE:-trixie}
ROOT=$CACHE/$SUITE
VMS=$CACHE/vm/$SUITE   # each suite's machine apart: a build for one does not remove the other's
PACKAGES=(linux-image-amd64 systemd-sysv udev kmod initramfs-tools e2fsprogs login passwd)
DISK_SIZE=12G

log() { printf '[vm] %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

"$HERE/../sandbox.sh" build
key=$( { cat "$ROOT/.archy-e2e-recipe"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
out=$VMS/$key
if [ -s "$out/disk.img" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; then
  echo "$out"; exit 0
fi
mkdir -p "$VMS"
exec 9>"$VMS/.lock"; flock -x 9
if [ -s "$out/disk.img" ]; then echo "$out"; exit 0; fi
t0=$(now)
work=$(mktemp -d "$VMS/build.XXXXXX")
trap 'umount -R "$work/root/proc" "$work/root/dev" 2>/dev/null || true; rm -rf --one-file-system "$work"' EXIT
log "copying the bed's root"
cp -a --reflink=auto "$ROOT" "$work/root"
r=$work/root
rm -f "$r/.archy-e2e-recipe" "$r/etc/containers/containers.conf"

log "installing ${PACKAGES[*]}"
unshare -m bash -euo pipefail -s "$r" "${PACKAGES[@]}" <<'INSTALL' >&2
r=$1; shift
mount --make-rprivate /
mount -t proc proc "$r/proc"; mount --rbind /dev "$r/dev"
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
in_root() { chroot "$r" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root apt-get -q update
in_root apt-get -q -y --no-install-recommends install "$@"
in_root apt-get clean
rm -f "$r/usr/sbin/policy-rc.d"
INSTALL

log "configuring the machine"
echo archy-vm >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tarchy-vm\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
# nothing answers DNS on this network: lookups fail at once instead of timing out
rm -f "$r/etc/resolv.conf"; echo 'nameserver 127.0.0.1' >"$r/etc/resolv.conf"
printf '/dev/vda\t/\text4\tdefaults,errors=remount-ro\t0\t1\n' >"$r/etc/fstab"
# the network: DHCP from qemu's user-mode network, which reaches nothing outside the VM
mkdir -p "$r/etc/systemd/network"
printf '[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n' >"$r/etc/systemd/network/20-wired.network"
mkdir -p "$r/etc/systemd/system/multi-user.target.wants" "$r/etc/systemd/system/network-online.target.wants" \
  "$r/etc/systemd/system/getty.target.wants" "$r/etc/systemd/system/serial-getty@ttyS1.service.d"
ln -sf /usr/lib/systemd/system/systemd-networkd.service "$r/etc/systemd/system/multi-user.target.wants/"
ln -sf /usr/lib/systemd/system/systemd-networkd-wait-online.service "$r/etc/systemd/system/network-online.target.wants/"
# the admin's console: a second serial port, root logged in there (the first is the kernel's
# and systemd's console, kept in a log). No other login exists: the service user has none.
ln -sf /usr/lib/systemd/system/serial-getty@.service "$r/etc/systemd/system/getty.target.wants/serial-getty@ttyS1.service"
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %%I dumb\n' \
  >"$r/etc/systemd/system/serial-getty@ttyS1.service.d/autologin.conf"
passwd -R "$r" -d root >/dev/null
ln -sf /usr/lib/systemd/system/multi-user.target "$r/etc/systemd/system/default.target"
# the bed has these programs for building stand-in images, not as the node's services
chroot "$r" systemctl disable --quiet nginx.service postgresql.service 2>/dev/null || true
# the bed's own user is not part of a node
chroot "$r" userdel -r node 2>/dev/null || chroot "$r" userdel node 2>/dev/null || true
sed -i '/^node:/d' "$r/etc/subuid" "$r/etc/subgid"
: >"$r/etc/machine-id"   # systemd makes one at first boot, as on a freshly installed machine

mkdir -p "$work/out"
kernel=$(ls "$r"/boot/vmlinuz-* | sort -V | tail -n 1); kver=${kernel##*/vmlinuz-}
[ -s "$r/boot/initrd.img-$kver" ] || { log "no initramfs for kernel $kver"; exit 1; }
cp "$kernel" "$work/out/vmlinuz"; cp "$r/boot/initrd.img-$kver" "$work/out/initrd.img"
log "making the disk image ($DISK_SIZE, ext4)"
mkfs.ext4 -q -F -L archy-root -d "$r" "$work/out/disk.img" "$DISK_SIZE" >&2
rm -rf "$out"; mv "$work/out" "$out"
find "$VMS" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name 'build.*' -exec rm -rf {} +
log "machine image ready in $(since "$t0")"
echo "$out"

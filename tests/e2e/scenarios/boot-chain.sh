#!/usr/bin/env bash
# archy-e2e-host: vm
#
# The real boot chain, in a booted VM (qemu): systemd as PID 1 -> logind lingering for the
# service user -> user@UID.service -> archy's generator at that manager's start -> archy.target
# -> the apps, with podman-user-wait-network-online.service reached the way a node reaches it
# (systemd-networkd, DHCP on a network that goes nowhere). Nothing is masked or started by hand.
#
# As an admin would: `apt-get install ./archy_*.deb` (sysusers, tmpfiles, setup-service-user,
# linger with logind running), the stand-in images loaded into the service user's storage, then
# `apt-get install ./archy-catalog_*.deb ./archy-app-demo_*.deb`; every app healthy with no
# command. Then a reboot with nobody logged in: every app healthy again, `archy-hook status` at
# the console shows them, the journal has the hooks' ARCHY_APP= entries. `apt-get remove
# archy-catalog` stops its apps and keeps their data; installing it again brings them back on it.
# A second reboot and a hard reset (the reset button) bring every app back with no command.
#
# Runs on the host (run.sh runs a scenario marked "archy-e2e-host" directly, not in a sandbox).
# The VM: vm/build.sh's image (the bed's cached root, ARCHY_E2E_SUITE's, with a kernel,
# systemd-sysv, udev, networkd), booted with KVM when KVM boots it, else (ARCHY_E2E_VM_TCG=1, `make e2e-vm`)
# with software emulation and fewer apps; otherwise skipped by name (exit 77), with the reason.
#   ARCHY_E2E_VM_ACCEL  kvm or tcg: no probe
#   ARCHY_E2E_VM_TCG    if set, fall back to TCG when KVM does not boot the kernel
#   ARCHY_E2E_VM_APPS   the apps that must be healthy (default: every catalog app but
#                       bitcoin-knots, which node.toml's providers leave stopped, and demo; under
#                       TCG: bitcoin-core lnd bitcoin-ui demo); the other catalog apps are masked
#   ARCHY_E2E_VM_WAIT   seconds each "every app healthy" may take (default 600; TCG 1500)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${ARCHY_E2E_CACHE:-/var/cache/archy-e2e}
IMAGES=$CACHE/images/${ARCHY_E2E_SUITE:-trixie}   # the suite's stand-in image archives (sandbox.sh)
skip() { echo "SKIP: $*"; exit 77; }
VM_T0=$(date +%s.%N)

for t in qemu-system-x86_64 qemu-img mkfs.ext4 python3; do
  command -v "$t" >/dev/null || skip "$t is not installed (tests/deps.sh installs it)"
done
debs=()
for p in archy archy-catalog archy-app-demo; do
  f=$(ls -t "$REPO/target/deb/${p}"_*.deb 2>/dev/null | head -n 1)
  [ -n "$f" ] || { echo "no ${p}_*.deb in target/deb: run make deb" >&2; exit 1; }
  debs+=("$f")
done

VM_IMAGE=$("$REPO/tests/e2e/vm/build.sh")
# the stand-in image archives: a sandbox run builds (or finds) them for the current recipe
if ! ls "$IMAGES"/bitcoin-*.tar >/dev/null 2>&1; then
  "$REPO/tests/e2e/sandbox.sh" run "$REPO/tests/e2e/vm/images.sh" >&2
fi
VM_DIR=$(mktemp -d /var/tmp/archy-vm.XXXXXX)
. "$REPO/tests/e2e/vm/lib.sh"
cleanup() {
  [ -z "${VM_PID:-}" ] || kill -KILL "$VM_PID" 2>/dev/null || true
  if [ "${rc:-1}" != 0 ] && [ -n "${ARCHY_E2E_JOURNAL:-}" ]; then
    mkdir -p "$ARCHY_E2E_JOURNAL"; cp "$VM_DIR/boot.log" "$ARCHY_E2E_JOURNAL/boot-chain.console" 2>/dev/null || true
  fi
  rm -rf "$VM_DIR"
}
trap 'rc=$?; cleanup' EXIT

# KVM when it boots the kernel: its banner on the console within 20 s (a VM without the payload
# disk, powered off again at once)
accel=${ARCHY_E2E_VM_ACCEL:-}
if [ -z "$accel" ]; then
  why="no usable /dev/kvm"
  if [ -w /dev/kvm ]; then
    vm_start kvm
    if vm_kernel_up 20; then accel=kvm
    else why="KVM does not boot a stock Debian kernel here (qemu: $(grep -a -m1 -E 'KVM internal error|error' "$VM_DIR/qemu.log" || echo "no kernel banner within 20 s"))"
    fi
    kill -KILL "$VM_PID" 2>/dev/null || true; wait "$VM_PID" 2>/dev/null || true
    rm -f "$VM_DIR/disk.qcow2" "$VM_DIR/boot.log" "$VM_DIR/qemu.log"
  fi
  if [ -z "$accel" ]; then
    [ -n "${ARCHY_E2E_VM_TCG:-}" ] ||
      skip "$why; under software emulation the whole node takes longer than make test's budget: make e2e-vm runs it with ARCHY_E2E_VM_TCG=1"
    note "$why: software emulation (TCG)"
    accel=tcg
  fi
fi
if [ "$accel" = tcg ]; then
  default_apps="bitcoin-core lnd bitcoin-ui demo"; wait_s=${ARCHY_E2E_VM_WAIT:-1500}
  images="bitcoin lnd nginx"
else
  default_apps="$(cd "$REPO/catalog/apps" && ls ./*.toml | sed 's|^\./||; s|\.toml$||' | grep -vx bitcoin-knots | tr '\n' ' ')demo"
  wait_s=${ARCHY_E2E_VM_WAIT:-600}; images=
fi
APPS=${ARCHY_E2E_VM_APPS:-$default_apps}

# the payload disk: the packages, the image archives, the check script
mkdir -p "$VM_DIR/payload/images"
cp "${debs[@]}" "$REPO/tests/e2e/vm/check.sh" "$VM_DIR/payload/"
if [ -n "$images" ]; then
  for i in $images; do cp "$IMAGES"/"$i"-*.tar "$VM_DIR/payload/images/"; done
else
  cp "$IMAGES"/*.tar "$VM_DIR/payload/images/"
fi
mkfs.ext4 -q -F -L archy-payload -d "$VM_DIR/payload" "$VM_DIR/payload.img" >/dev/null \
  "$(( $(du -sm "$VM_DIR/payload" | cut -f1) * 12 / 10 + 64 ))M"
vm_start "$accel"
note "accelerator: $accel; apps that must be healthy: $APPS"
read -ra APP_LIST <<<"$APPS"

# facts KEY: the values check.sh printed for KEY (from $facts)
fact() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }' <<<"$facts"; }
# healthy_after WHAT: every app healthy (check.sh), the chain's facts asserted, timings noted
healthy_after() {
  facts=$(vm "archy-vm-check $wait_s $APPS") || fail "check.sh failed: $facts"
  printf '%s\n' "$facts" >>"$VM_DIR/facts.log"
  if [ "$(fact healthy)" != yes ]; then
    vm 'archy-hook status' >&2 || true
    fail "$1: not every app healthy within ${wait_s}s: $(fact app | tr '\n' ';')"
  fi
  read -r mstate mat <<<"$(fact manager)"
  [ "$mstate" = active ] || fail "$1: the service user's manager is $mstate"
  [ "$(fact linger)" = yes ] || fail "$1: no linger"
  [ "$(fact user_sessions)" = 0 ] || fail "$1: the service user has $(fact user_sessions) login session(s)"
  read -r wstate wresult wload <<<"$(fact wait_online)"
  [ "$wload" = loaded ] && [ "$wresult" = success ] && [ "$wstate" = active ] ||
    fail "$1: podman-user-wait-network-online.service: $wstate $wresult $wload"
  [ "$(fact masked)" = 0 ] || fail "$1: $(fact masked) unit(s) masked"
  [ "$(fact generated)" -ge "${#APP_LIST[@]}" ] || fail "$1: the generator wrote $(fact generated) archy-*.service"
  [ "$(fact resources_failures)" = 0 ] || fail "$1: $(fact resources_failures) unit(s) failed with result 'resources'"
  local last=0 at
  while read -r _ _ _ _ at; do if [ "$at" -gt "$last" ]; then last=$at; fi; done <<<"$(fact app)"
  LAST_HEALTHY_S=$(awk -v u="$last" 'BEGIN { printf "%.1f", u / 1e6 }')
  MANAGER_S=$(awk -v u="$mat" 'BEGIN { printf "%.1f", u / 1e6 }')
}

# ---- first boot: the admin installs archy ----
t=$(vm_now)
vm 'true' >/dev/null || fail "no console"
note "first boot: power-on -> console $(vm_since "$VM_POWER_ON")s"
# the payload is mounted again after a reboot only to install from it; the check stays on the disk
MOUNT_PAYLOAD='mkdir -p /mnt/payload && { mountpoint -q /mnt/payload || mount -o ro /dev/vdb /mnt/payload; }'
vm "$MOUNT_PAYLOAD && install -m 755 /mnt/payload/check.sh /usr/local/sbin/archy-vm-check" || fail "mounting the payload"
# the catalog apps this run does not need are masked by the admin (archy's documented way)
masks=
for f in "$REPO"/catalog/apps/*.toml; do
  id=${f##*/}; id=${id%.toml}
  case " $APPS bitcoin-knots " in *" $id "*) ;; *) masks="$masks $id" ;; esac
done
if [ -n "$masks" ]; then
  vm "mkdir -p /etc/archipelago/apps && for id in $masks; do ln -sfn /dev/null /etc/archipelago/apps/\$id.toml; done"
  note "masked by the admin:$masks"
fi
t=$(vm_now)
out=$(vm 'cd /mnt/payload && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./archy_*.deb 2>&1') || fail "apt-get install archy: $out"
uid=$(vm 'id -u archy') || fail "no user archy after installing archy: $out"
note "apt-get install ./archy_*.deb: $(vm_since "$t")s; service user archy, uid $uid"
t=$(vm_now)
out=$(vm "cd / && for a in /mnt/payload/images/*.tar; do runuser -u archy -- env XDG_RUNTIME_DIR=/run/user/$uid DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus podman load -q -i \$a || exit 1; done 2>&1") ||
  fail "loading the images: $out"
note "$(ls "$VM_DIR/payload/images" | wc -l) image archives loaded into archy's storage: $(vm_since "$t")s"
t=$(vm_now)
out=$(vm 'cd /mnt/payload && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./archy-catalog_*.deb ./archy-app-demo_*.deb 2>&1') ||
  fail "apt-get install archy-catalog archy-app-demo: $out"
healthy_after "first install"
note "apt-get install archy-catalog archy-app-demo -> every app healthy: $(vm_since "$t")s"
lnd_wallet=
if [[ " $APPS " == *" lnd "* ]]; then
  lnd_wallet=$(vm 'sha256sum /var/lib/archipelago/lnd/data/chain/bitcoin/mainnet/wallet.db | cut -c1-64') || fail "no lnd wallet"
fi

# ---- reboot, nobody logged in ----
# boot WHAT HOW: reboot (HOW: reboot) or press reset (HOW: reset); then every app healthy with
# no command, and the timings noted
boot() {
  local t0 old; old=$(vm_boot_id) || fail "$1: no console before it"
  vm 'sync' >/dev/null
  t0=$(vm_now)
  # (the shell that runs the reboot does not live to say it is done: a short timeout)
  if [ "$2" = reset ]; then vm_monitor system_reset
  else VM_TIMEOUT=20 vm 'systemctl reboot --no-block' >/dev/null || true; fi
  vm_new_boot "$old" || fail "$1: no console of a new boot within 10 min"
  healthy_after "$1"
  note "$1: kernel -> user manager ${MANAGER_S}s -> every app healthy ${LAST_HEALTHY_S}s (VM clock); $2 -> all healthy at the console $(vm_since "$t0")s (host clock)"
}
boot "reboot" reboot
status=$(vm 'archy-hook status') || fail "archy-hook status at the console: $status"
for app in "${APP_LIST[@]}"; do
  grep -Eq "^$app +active/running +healthy " <<<"$status" || fail "archy-hook status: $app: $(grep "^$app " <<<"$status")"
done
note "archy-hook status (root, at the console): ${#APP_LIST[@]} apps active/running healthy"
j=$(fact journal | awk '$2 == 0 { print $1 }')
[ -z "$j" ] || fail "no ARCHY_APP= journal entries for: $j"
note "journal entries with ARCHY_APP= (all boots / this one): $(fact journal | awk '{ printf "%s %s/%s, ", $1, $2, $3 }')"

# ---- apt-get remove archy-catalog: its apps stop, their data stays; install: they return ----
t=$(vm_now)
catalog_apps=$(for a in "${APP_LIST[@]}"; do if [ -e "$REPO/catalog/apps/$a.toml" ]; then echo "$a"; fi; done | tr '\n' ' ')
# (bitcoind removes its RPC cookie when it stops, as upstream's does: not data)
count_data="cd /var/lib/archipelago && for a in $catalog_apps; do printf '%s %s\n' \$a \$(find \$a ! -name .cookie | wc -l); done"
before=$(vm "$count_data")
out=$(vm 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -q archy-catalog 2>&1') || fail "apt-get remove archy-catalog: $out"
running=$(vm "cd / && runuser -u archy -- env XDG_RUNTIME_DIR=/run/user/$uid podman ps --format '{{.Names}}'") || fail "podman ps: $running"
for a in $catalog_apps; do
  ! grep -qx "archy-$a" <<<"$running" || fail "after removing archy-catalog, archy-$a still runs"
done
grep -qx archy-demo <<<"$running" || fail "removing archy-catalog stopped demo (another package's app)"
after=$(vm "$count_data")
while read -r a n; do
  m=$(awk -v a="$a" '$1 == a { print $2 }' <<<"$after")
  [ "${m:-0}" -ge "$n" ] || fail "$a's data: $n entries before the removal, ${m:-none} after"
done <<<"$before"
note "apt-get remove archy-catalog: its apps stopped, demo kept running, their data kept ($(tr '\n' ' ' <<<"$before")entries): $(vm_since "$t")s"
t=$(vm_now)
out=$(vm "$MOUNT_PAYLOAD && cd /mnt/payload && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./archy-catalog_*.deb 2>&1") || fail "apt-get install archy-catalog again: $out"
healthy_after "reinstall"
note "apt-get install archy-catalog again -> every app healthy: $(vm_since "$t")s"
if [ -n "$lnd_wallet" ]; then
  [ "$(vm 'sha256sum /var/lib/archipelago/lnd/data/chain/bitcoin/mainnet/wallet.db | cut -c1-64')" = "$lnd_wallet" ] ||
    fail "lnd's wallet changed across the removal"
  note "lnd back on its own wallet (wallet.db unchanged)"
fi

# ---- a second reboot, then the reset button ----
boot "second reboot" reboot
boot "hard reset" reset
vm_off
note "VM powered off; whole scenario $(vm_since "$VM_T0")s"

# Helpers for the boot-chain scenario, which runs on the host and drives a qemu VM (see build.sh).
# Source it after setting VM_DIR (a fresh work dir) and VM_IMAGE (build.sh's output).
#
#   vm_start ACCEL      power on (kvm or tcg): the kernel's console goes to $VM_DIR/boot.log
#   vm CMD...           run CMD in root's shell on the VM's console (console.py); its output, status
#   vm_new_boot OLD_ID  wait for the console of a boot other than OLD_ID (after a reboot, a reset)
#   vm_monitor CMD      one qemu monitor command (system_reset: the reset button)
#   vm_off              power off from inside, and wait for qemu to end (killed after 120 s)

VM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_MEM=${ARCHY_E2E_VM_MEM:-6G}
VM_CPUS=${ARCHY_E2E_VM_CPUS:-2}
VM_TIMEOUT=${ARCHY_E2E_VM_CMD_TIMEOUT:-900}

vm_now() { date +%s.%N; }
vm_since() { awk -v a="$1" -v b="$(vm_now)" 'BEGIN { printf "%.1f", b - a }'; }
note() { printf '# %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# vm_start ACCEL: a copy-on-write overlay of the machine image on the first start (the disk
# keeps what the VM wrote across reboots and resets), the payload disk (if made) read-only as
# /dev/vdb
vm_start() {
  local accel=$1 cpu=max payload=()
  [ "$accel" = kvm ] && cpu=host
  [ ! -e "$VM_DIR/payload.img" ] || payload=(-drive if=virtio,file="$VM_DIR/payload.img",format=raw,readonly=on)
  [ -e "$VM_DIR/disk.qcow2" ] ||
    qemu-img create -q -f qcow2 -b "$VM_IMAGE/disk.img" -F raw "$VM_DIR/disk.qcow2"
  rm -f "$VM_DIR/console.sock" "$VM_DIR/monitor.sock"
  VM_POWER_ON=$(vm_now)
  # the network: qemu's user-mode network with restrict=on, which reaches nothing outside the
  # VM; its DHCP server is what systemd-networkd (and so network-online.target) waits for
  qemu-system-x86_64 -machine q35,accel="$accel" -cpu "$cpu" -m "$VM_MEM" -smp "$VM_CPUS" \
    -nographic -no-user-config -nodefaults \
    -kernel "$VM_IMAGE/vmlinuz" -initrd "$VM_IMAGE/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 systemd.show_status=1" \
    -drive if=virtio,file="$VM_DIR/disk.qcow2",format=qcow2 \
    "${payload[@]}" \
    -nic user,model=virtio-net-pci,restrict=on \
    -serial file:"$VM_DIR/boot.log" \
    -chardev socket,id=admin,path="$VM_DIR/console.sock",server=on,wait=off -serial chardev:admin \
    -monitor unix:"$VM_DIR/monitor.sock",server=on,wait=off \
    >>"$VM_DIR/qemu.log" 2>&1 &
  VM_PID=$!
  for _ in $(seq 100); do [ -S "$VM_DIR/console.sock" ] && return 0; sleep 0.1; done
  fail "qemu did not start: $(tail -n 5 "$VM_DIR/qemu.log")"
}

vm() { python3 "$VM_HERE/console.py" "$VM_DIR/console.sock" --timeout "$VM_TIMEOUT" "$*"; }
vm_boot_id() { VM_TIMEOUT=20 vm 'cat /proc/sys/kernel/random/boot_id' 2>/dev/null; }
# vm_new_boot OLD_ID: wait (up to 10 min) until a shell of a boot other than OLD_ID answers; a
# console call made while the old system shuts down may land in its dying shell
vm_new_boot() {
  local id i
  for i in $(seq 60); do
    id=$(vm_boot_id) || id=
    [ -n "$id" ] && [ "$id" != "$1" ] && return 0
    sleep 5
  done
  return 1
}
vm_monitor() { python3 "$VM_HERE/console.py" "$VM_DIR/monitor.sock" --monitor "$*"; }

vm_off() {
  VM_TIMEOUT=20 vm 'systemctl poweroff --no-block' >/dev/null 2>&1 || true
  local i
  for i in $(seq 1200); do kill -0 "$VM_PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$VM_PID" 2>/dev/null || true
}

# vm_kernel_up SECONDS: whether the kernel printed its banner on the console within SECONDS
vm_kernel_up() {
  local i
  for i in $(seq $(($1 * 10))); do
    grep -aq 'Linux version' "$VM_DIR/boot.log" 2>/dev/null && return 0
    kill -0 "$VM_PID" 2>/dev/null || return 1
    # qemu stops the VM, and stays, on an error of KVM's
    ! grep -aq 'KVM internal error' "$VM_DIR/qemu.log" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

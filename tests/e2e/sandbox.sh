#!/usr/bin/env bash
# archy's end-to-end test bed: a real systemd *user* manager, journald, a user D-Bus and rootless
# podman + quadlet inside a Debian root (13, "trixie", by default; ARCHY_E2E_SUITE=sid for the next
# one), fresh for every run. Needs root, unshare, debootstrap (installed with apt-get if missing)
# and a reachable Debian archive for `build`.
#
#   sandbox.sh build               make or update the cached root (a few minutes cold)
#   sandbox.sh run SCRIPT [ARGS]   run SCRIPT (bash, or bats if it ends in .bats) inside, as root,
#                                  once journald and the user manager of 'node' (uid 1000) are up;
#                                  exits with SCRIPT's status
#   sandbox.sh shell               an interactive shell inside (debugging)
#   sandbox.sh versions            the root's podman, crun, netavark and systemd (after build)
#
# Environment:
#   ARCHY_E2E_SUITE  the Debian suite of the root (default trixie; sid: `make e2e-next`)
#   ARCHY_E2E_CACHE  cache dir (default /var/cache/archy-e2e): each suite's root in SUITE/ (trixie/,
#                    sid/), its image archives in images/SUITE/ (they hold the root's packages)
#   ARCHY_STAGE      a DESTDIR tree (`make install DESTDIR=... PREFIX=/usr`), copied into the root
#                    before the user manager starts, so its generators run at startup
#   ARCHY_E2E_MIRROR Debian mirror for debootstrap (default: debootstrap's own)
#   ARCHY_E2E_QUIET  if set, no journal dump when SCRIPT fails
#   ARCHY_E2E_JOURNAL a host directory: when SCRIPT fails, the whole journal goes there as
#                    <script>.journal (run.sh sets it to its logs dir)
#   ARCHY_E2E_HOSTNET if set, share the host's network namespace instead of a private one
#   ARCHY_E2E_NO_IMAGES if set, do not load the stand-in images (tests/e2e/images) before boot
#   ARCHY_E2E_APPS   catalog apps to keep (space-separated); every other app in
#                    /usr/share/archipelago/apps is masked (/etc/archipelago/apps/<id>.toml ->
#                    /dev/null) before boot. Default: the script's "# archy-e2e-apps: ..." line;
#                    neither: all apps stay (archy.target starts them all at boot)
#   (a script's "# archy-e2e-node: KEY = VALUE" lines are top-level settings added to node.toml)
#   ARCHY_E2E_*      passed through to SCRIPT
#
# Inside, SCRIPT finds: the repo read-only at /src; `as_node CMD...` (run as the user, in a login-
# like session cgroup); `user_manager` (start node's user manager again, as the sandbox did: see
# user_manager_up in lib/common.sh); the stand-in images in the user's podman storage, loaded before the user
# manager started; $ARCHY_E2E_IMAGES, a host-backed cache for image tarballs;
# /etc/archipelago/node.toml with user = "node"; /var/lib/archipelago owned by node; no network
# beyond the sandbox (its own namespace), hostname archy-e2e.
#
# Facts this encodes (each one was a failure before it was handled):
# - systemd refuses "--user" unless /run/systemd/system exists: a private /run provides it.
# - systemctl ignores commands under chroot: pivot_root into the root instead.
# - podman's image unpack remounts "/": the root must be a mount point (the overlay is one).
# - crun refuses hybrid cgroups: mount a pure cgroup2 at /sys/fs/cgroup, and unshare the cgroup
#   namespace (-C) so /proc/self/cgroup shows "/" for the v1 hierarchies podman would follow.
# - cgroup2 here may have no pids controller: containers.conf pids_limit = 0.
# - podman picks its defaults by whether PID 1 is named "systemd"; here it is not, and podman
#   would fall back to cgroupfs, k8s-file logs (nothing in the journal) and file events.
#   containers.conf pins what a systemd host gets: systemd, journald, journald.
# - rootless podman healthchecks run as transient systemd timers over the user's D-Bus: start
#   dbus.socket and export DBUS_SESSION_BUS_ADDRESS; as uid 0 podman would ask the system manager.
# - netavark starts aardvark-dns (container name resolution) with `systemd-run --user --scope`,
#   so the user manager must move the caller into a scope. From outside its delegated cgroup that
#   needs write access to the common ancestor; on a real host the system manager does the move
#   (AttachProcessesToUnit), here there is none. So as_node runs commands in
#   user-1000.slice/session-1.scope (as logind would) and user-1000.slice's cgroup.procs belongs
#   to the user. Without this every network with DNS fails: "aardvark-dns exited unexpectedly".
# - pasta needs /dev/net/tun readable by the user: a private /dev/net with its own tun node.
# - quadlet's units want podman-user-wait-network-online.service, which waits for a system
#   manager's network-online state that this test bed has not got, and hangs: the test bed masks
#   it in /etc/systemd/user (production units keep the dependency; bitcoind does need the network).
# - the user manager needs its own delegated cgroup: user.slice/user-1000.slice/user@1000.service.
# - every sandbox starts in a new cgroup of its own: the cgroup namespace (-C) is rooted where
#   unshare starts, and two sandboxes rooted in the same cgroup share user@1000.service and every
#   unit's cgroup (seen: one sandbox's init.scope listing the other's manager).
# - no systemd-tmpfiles has run: /var/log/journal must exist and be setgid systemd-journal, or
#   'journalctl --user' reads nothing (volatile journals are not split per user).
# - podman's storage cannot live on overlayfs: the user's home is a fresh host directory.
# - each sandbox has its own network namespace, so published ports (127.0.0.1:8081, ...) cannot
#   collide with the host's or another sandbox's. pasta (rootless networking) needs an interface
#   with a default route to copy: a veth pair (the kernel may lack `dummy`) with a private address
#   and a gateway that does not exist. Nothing outside is reachable: a registry pull fails.
#   DNS points at loopback so lookups fail at once; a root without /etc/hosts would otherwise
#   send even "localhost" to an unreachable server, and every podman command waited 30 s.
# - libpam-systemd fails to configure in debootstrap until dbus is installed: apt-get -f install.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${ARCHY_E2E_CACHE:-/var/cache/archy-e2e}
SUITE=${ARCHY_E2E_SUITE:-trixie}
ROOT=$CACHE/$SUITE
# the stand-in images are built from the root's own packages (nginx, PostgreSQL, bash, ...): their
# archives are the suite's, kept apart so that runs on two suites do not replace each other's
IMAGES=$CACHE/images/$SUITE
MARKER=.archy-e2e-recipe

# the suites the bed knows, and what differs between them: PostgreSQL's major version (the
# postgres, nbxplorer and btcpayserver stand-in images copy the root's)
case $SUITE in
  trixie) PG=17 ;;
  sid) PG=18 ;;
  *) echo "[sandbox] error: ARCHY_E2E_SUITE=$SUITE: the bed knows trixie and sid" \
       "(for another suite, add its PostgreSQL major here)" >&2
     exit 2 ;;
esac
PACKAGES=(podman systemd crun dbus dbus-user-session uidmap catatonit netavark aardvark-dns passt
  busybox-static nftables util-linux procps bats nginx-light curl ca-certificates iproute2
  "postgresql-$PG" mariadb-server-core mariadb-client-core jq wget)

log() { printf '[sandbox] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# apt settings a suite's root needs before provision runs apt-get update; part of the recipe id.
# sid's Release file says Valid-Until a week after its Date (trixie's, a stable release's, says
# nothing), and a mirror that lags behind or serves a snapshot serves it past that date: apt in
# the new root then refuses the whole archive ("Release file ... is expired"; debootstrap does not
# check the date, so only provision's apt-get update fails). The bed installs a fixed list of
# packages at build time; how fresh the archive is does not matter to it, so for sid alone apt is
# told not to check that date (the Release file's signature is still checked).
suite_apt_conf() {
  case $SUITE in
    sid) echo 'Acquire::Check-Valid-Until "false";' ;;
  esac
}

# Everything else that shapes the root, in one function: its text is part of the recipe id.
provision() {
  local r=$1
  unshare -m bash -euo pipefail -s "$r" "${PACKAGES[@]}" <<'PROVISION'
r=$1; shift
mount --make-rprivate /
mount -t proc proc "$r/proc"; mount --rbind /dev "$r/dev"
# no service may start inside a chroot
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
in_root() { chroot "$r" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root apt-get -q update
in_root apt-get -q -y -f install
in_root apt-get -q -y --no-install-recommends install "$@"
in_root apt-get clean
rm -f "$r/usr/sbin/policy-rc.d"
in_root bash -c 'id node >/dev/null 2>&1 || useradd -m -u 1000 -s /bin/bash -G systemd-journal node
  grep -q ^node: /etc/subuid || echo node:100000:65536 >>/etc/subuid
  grep -q ^node: /etc/subgid || echo node:100000:65536 >>/etc/subgid
  [ -s /etc/machine-id ] || systemd-machine-id-setup'
mkdir -p "$r/etc/containers"
cat >"$r/etc/containers/containers.conf" <<'CONF'
# archy e2e test bed: see sandbox.sh
[containers]
pids_limit = 0
log_driver = "journald"
[engine]
cgroup_manager = "systemd"
events_logger = "journald"
CONF
PROVISION
}

recipe_id() {
  # (trixie's is the id it had before a suite could be chosen: its suite_apt_conf is empty)
  { echo "$SUITE minbase"; suite_apt_conf; printf '%s\n' "${PACKAGES[@]}"; declare -f provision; } |
    sha256sum | cut -c1-16
}

# provision_root R: the suite's apt settings into R, then provision it
provision_root() {
  local conf; conf=$(suite_apt_conf)
  if [ -n "$conf" ]; then printf '%s\n' "$conf" >"$1/etc/apt/apt.conf.d/99archy-e2e-suite"
  else rm -f "$1/etc/apt/apt.conf.d/99archy-e2e-suite"; fi
  provision "$1"
}

build() {
  local want; want=$(recipe_id)
  [ "$(cat "$ROOT/$MARKER" 2>/dev/null)" = "$want" ] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"; flock -x 8   # no run may use the root while it changes
  if [ "$(cat "$ROOT/$MARKER" 2>/dev/null)" = "$want" ]; then exec 8>&-; return 0; fi
  local t0; t0=$(now)
  if [ -x "$ROOT/usr/bin/apt-get" ] && [ -x "$ROOT/usr/bin/podman" ]; then
    # an older recipe (or the reference root): re-provision in place rather than start over
    log "re-provisioning $ROOT for recipe $want"
    rm -f "$ROOT/$MARKER"
    provision_root "$ROOT" >&2
  else
    command -v debootstrap >/dev/null || { apt-get -q update && apt-get -q -y install debootstrap; } >&2
    log "debootstrapping $ROOT (recipe $want)"
    rm -rf "$ROOT.new"
    local inc; inc=$(IFS=,; echo "${PACKAGES[*]}")
    # libpam-systemd may fail to configure here: provision's apt-get -f install repairs it
    debootstrap --variant=minbase --include="$inc" "$SUITE" "$ROOT.new" ${ARCHY_E2E_MIRROR:-} >&2 || true
    [ -x "$ROOT.new/usr/bin/apt-get" ] || die "debootstrap failed"
    provision_root "$ROOT.new" >&2
    rm -rf "$ROOT"; mv "$ROOT.new" "$ROOT"
  fi
  [ -x "$ROOT/usr/bin/podman" ] && [ -x "$ROOT/usr/libexec/podman/quadlet" ] || die "building $ROOT failed"
  echo "$want" >"$ROOT/$MARKER"
  log "root ready in $(since "$t0")"
  exec 8>&-
}

run() {
  local script=${1:?usage: sandbox.sh run SCRIPT [ARGS]}; shift
  [ -f "$script" ] || die "no such script: $script"
  if [ -n "${ARCHY_STAGE:-}" ]; then
    [ -d "$ARCHY_STAGE" ] || die "ARCHY_STAGE=$ARCHY_STAGE is not a directory"
    ARCHY_STAGE=$(cd "$ARCHY_STAGE" && pwd)
  fi
  build
  local t0; t0=$(now)
  # the stand-in images' binary is built on the host (the root has no Rust toolchain)
  "$HERE/images/build.sh" host "$IMAGES" >&2
  exec 8>"$CACHE/.lock"; flock -s 8   # a rebuild of the root waits for running sandboxes
  # every run starts from the pristine root: an overlay whose upper layer and the user's home
  # are fresh host directories, removed afterwards whatever happens
  local t; t=$(mktemp -d /var/tmp/archy-e2e.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf --one-file-system '$t'" EXIT
  mkdir -p "$t/upper" "$t/work" "$t/root" "$t/home"
  chown 1000:1000 "$t/home"
  # a script inside the repo runs from /src, so bats' `load` and relative paths work
  local inner abs; abs=$(realpath "$script")
  case $abs in
    "$REPO"/*) inner=/src/${abs#"$REPO"/} ;;
    *) inner=/.sandbox-inner/${abs##*/}; mkdir -p "$t/inner"; cp "$abs" "$t/inner/" ;;
  esac
  # a script may name the catalog apps it needs: "# archy-e2e-apps: bitcoin-core lnd"
  local apps=${ARCHY_E2E_APPS-$(sed -n 's/^# archy-e2e-apps:[[:space:]]*//p' "$abs" | head -n 1)}
  # and top-level node.toml settings of its own: "# archy-e2e-node: network = \"signet\""
  local node; node=$(sed -n 's/^# archy-e2e-node:[[:space:]]*//p' "$abs")
  local envs=() v
  for v in $(compgen -e); do case $v in ARCHY_E2E_*) envs+=("$v=${!v}") ;; esac; done
  boot_script >"$t/boot.sh"
  local rc=0 pid
  local netns=-n; [ -z "${ARCHY_E2E_HOSTNET:-}" ] || netns=
  # in the background so that a signal (Ctrl-C, run.sh's timeout) can end the namespace: when
  # unshare dies, --kill-child kills its PID 1 and with it everything inside
  # in a cgroup of its own: with -C, the cgroup unshare starts in is the root of the sandbox's
  # cgroup tree, and sandboxes sharing one would share user@1000.service and every unit's cgroup
  local cg; cg=$(own_cgroup "$t") || die "no cgroup2 hierarchy to make the sandbox's cgroup in"
  # shellcheck disable=SC2064
  trap "rm -rf --one-file-system '$t'; rm_cgroup '$cg'" EXIT
  (echo $BASHPID >"$cg/cgroup.procs"
   exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM="${TERM:-dumb}" T0="$t0" STAGE="${ARCHY_STAGE:-}" \
    SRC="$REPO" IMAGES="$IMAGES" INNER="$inner" HOSTNET="${ARCHY_E2E_HOSTNET:-}" \
    NOIMAGES="${ARCHY_E2E_NO_IMAGES:-}" APPS="$apps" NODE="$node" JOURNAL="${ARCHY_E2E_JOURNAL:-}" \
    unshare -C -m -u $netns -p -f --mount-proc --kill-child \
    bash "$t/boot.sh" "$ROOT" "$t" "${envs[@]}" -- "$@") <&0 &
  pid=$!
  # unshare ignores SIGTERM while it waits for its child: SIGKILL it (--kill-child does the rest)
  trap 'kill -KILL $pid 2>/dev/null; log "interrupted"' INT TERM
  wait "$pid" || rc=$?
  while kill -0 "$pid" 2>/dev/null; do wait "$pid" || rc=$?; done
  trap - INT TERM
  log "total $(since "$t0") (rc=$rc)"
  return "$rc"
}

# versions: what the root runs, as its own binaries say (run.sh prints it at the start of a run)
versions() {
  [ -x "$ROOT/usr/bin/podman" ] || die "no root at $ROOT: sandbox.sh build"
  # podman and crun read /proc: a private one, in a mount namespace of its own
  unshare -m --propagation private bash -euo pipefail -s "$ROOT" "$SUITE" <<'VERSIONS'
mount -t proc proc "$1/proc"
chroot "$1" sh -euc 'printf "%s: %s, %s, %s, %s\n" "$0" "$(podman --version)" "$(crun --version | head -n 1)" \
  "$(/usr/lib/podman/netavark --version)" "$(systemctl --version | head -n 1)"' "$2"
VERSIONS
}

# own_cgroup DIR: a new cgroup (named after DIR) below this process's own in the cgroup2 hierarchy
own_cgroup() {
  local fs p
  for fs in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    [ "$(stat -f -c %T "$fs" 2>/dev/null)" = cgroup2fs ] || continue
    p=$(sed -n 's/^0:://p' /proc/self/cgroup)
    mkdir "$fs${p%/}/archy-e2e.${1##*.}" && echo "$fs${p%/}/archy-e2e.${1##*.}"
    return
  done
  return 1
}
# rm_cgroup CG: remove it and what the sandbox made below it, once its processes are gone
rm_cgroup() {
  for _ in $(seq 25); do
    find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$1" ] || return 0
    sleep 0.2
  done
  log "warning: could not remove the cgroup $1"
}

# Runs as PID 1 of the sandbox's PID namespace: builds the root's mounts, boots journald and the
# user manager, runs the script; when it exits, the kernel kills everything left in the namespace.
boot_script() {
  cat <<'BOOT'
set -euo pipefail
B=$1 T=$2 R=$2/root; shift 2
envs=(); while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
for e in "${envs[@]}"; do export "$e"; done   # ARCHY_E2E_* (QUIET, ...) for this script too
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$B,upperdir=$T/upper,workdir=$T/work" "$R"
mount --bind "$T/home" "$R/home/node"
mkdir -p "$R/src" "$R/var/cache/archy-e2e/images"
mount --bind "$SRC" "$R/src"; mount -o remount,bind,ro "$R/src"
mount --bind "$IMAGES" "$R/var/cache/archy-e2e/images"
if [ -n "$JOURNAL" ]; then mkdir -p "$JOURNAL" "$R/var/tmp/archy-e2e-journal"; mount --bind "$JOURNAL" "$R/var/tmp/archy-e2e-journal"; fi
if [ -d "$T/inner" ]; then cp -r "$T/inner" "$R/.sandbox-inner"; fi
# the project's files, as a package would have put them, before any manager starts
sysusers=() tmpfiles=()
if [ -n "$STAGE" ]; then
  cp -a "$STAGE/." "$R/"
  for f in "$STAGE"/usr/lib/sysusers.d/*.conf; do [ -e "$f" ] && sysusers+=("/usr/lib/sysusers.d/${f##*/}"); done
  for f in "$STAGE"/usr/lib/tmpfiles.d/*.conf; do [ -e "$f" ] && tmpfiles+=("/usr/lib/tmpfiles.d/${f##*/}"); done
fi
mkdir -p "$R/etc/archipelago"
# the test bed's service user is node: replace the top-level `user` key (and those the script
# sets), keep everything else
keys=user; [ -z "$NODE" ] || keys="$keys|$(printf '%s\n' "$NODE" | sed -n 's/^[[:space:]]*\([A-Za-z0-9_-]*\)[[:space:]]*=.*/\1/p' | paste -sd '|')"
{ echo 'user = "node"'
  [ -z "$NODE" ] || printf '%s\n' "$NODE"
  awk -v keys="^[[:space:]]*($keys)[[:space:]]*=" '/^[[:space:]]*\[/ { t = 1 } t || $0 !~ keys' "$R/etc/archipelago/node.toml" 2>/dev/null || true
} >"$R/etc/archipelago/node.toml.new"
mv "$R/etc/archipelago/node.toml.new" "$R/etc/archipelago/node.toml"
# only the apps the script asked for: the others are masked as an admin would (archy's contract)
if [ -n "$APPS" ]; then
  mkdir -p "$R/etc/archipelago/apps"
  for f in "$R"/usr/share/archipelago/apps/*.toml; do
    [ -e "$f" ] || continue
    id=${f##*/}; id=${id%.toml}
    case " $APPS " in *" $id "*) ;; *) ln -sfn /dev/null "$R/etc/archipelago/apps/$id.toml" ;; esac
  done
fi
mkdir -p "$R/etc/systemd/user" "$R/etc/systemd/journald.conf.d"
ln -sf /dev/null "$R/etc/systemd/user/podman-user-wait-network-online.service"
# the host's kernel messages are noise here
printf '[Journal]\nReadKMsg=no\n' >"$R/etc/systemd/journald.conf.d/archy-e2e.conf"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
umount -l "$R/sys/fs/cgroup"
mount -t cgroup2 none "$R/sys/fs/cgroup"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/dev/net"; mknod -m 666 "$R/dev/net/tun" c 10 200
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mkdir -p "$R/run/systemd/system" "$R/run/systemd/journal" "$R/run/user/1000" "$R/.oldroot"
chown 1000:1000 "$R/run/user/1000"; chmod 700 "$R/run/user/1000"
US=user.slice/user-1000.slice
CG=$US/user@1000.service
mkdir -p "$R/sys/fs/cgroup/$CG" "$R/sys/fs/cgroup/$US/session-1.scope"
chown -R 1000:1000 "$R/sys/fs/cgroup/$CG" "$R/sys/fs/cgroup/$US/session-1.scope"
chown 1000:1000 "$R/sys/fs/cgroup/$US/cgroup.procs"
cd "$R"; pivot_root . .oldroot; umount -l /.oldroot; rmdir /.oldroot
mount --make-rshared /
hostname archy-e2e
printf '127.0.0.1\tlocalhost\n127.0.1.1\tarchy-e2e\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts
if [ -z "$HOSTNET" ]; then
  # nothing answers DNS in here: make lookups fail at once instead of timing out
  echo 'nameserver 127.0.0.1' >/etc/resolv.conf
  ip link set lo up
  ip link add eth0 type veth peer name uplink0
  ip addr add 10.0.2.15/24 dev eth0
  ip link set eth0 up; ip link set uplink0 up
  ip route add default via 10.0.2.2
fi
# what a package's postinst does with its sysusers.d/tmpfiles.d files
[ ${#sysusers[@]} = 0 ] || systemd-sysusers "${sysusers[@]}"
[ ${#tmpfiles[@]} = 0 ] || systemd-tmpfiles --create "${tmpfiles[@]}"
# the test bed's service user is node (see node.toml): it owns the data dir
install -d -o node -g node -m 755 /var/lib/archipelago
mkdir -p /var/log/journal; chgrp systemd-journal /var/log/journal; chmod 2755 /var/log/journal
/usr/lib/systemd/systemd-journald >/tmp/journald.log 2>&1 &
for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
journalctl --flush   # what systemd-journal-flush.service does at boot: persistent, split per user
# as_node: the test script runs as root (like an admin running apt) and acts as the user
cat >/etc/archy-e2e.env <<'ENV'
NODE_ENV="HOME=/home/node USER=node LOGNAME=node PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"
as_node() {
  (echo $BASHPID >/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope/cgroup.procs
   cd /home/node && exec setpriv --reuid 1000 --regid 1000 --init-groups env -i $NODE_ENV "$@")
}
# user_manager: start node's systemd --user as PID 1 starts user@1000.service, as far as the
# manager can tell: in its delegated cgroup, its stdout and stderr on the journal (systemd-cat
# sets $JOURNAL_STREAM to them) and $SYSTEMD_EXEC_PID, which PID 1 sets for every process it
# starts, equal to the manager's own pid (this subshell's: setpriv, env and systemd-cat each exec
# the next). Only a manager that finds itself started by systemd logs to the journal natively,
# with MESSAGE_ID and USER_UNIT, so that its own messages about a unit ("Scheduled restart job
# ...") are in `journalctl --user -u UNIT`; otherwise it logs to the console, and those lines reach
# the journal as plain stdout of "systemd". $JOURNAL_STREAM alone was enough for systemd 257
# (trixie); systemd 262 (sid) trusts it only when $SYSTEMD_EXEC_PID is its own pid, that is when
# systemd set up that stream for this very process, as PID 1 does for user@.service.
user_manager() {
  (echo $BASHPID >/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.procs
   exec setpriv --reuid 1000 --regid 1000 --init-groups env -i $NODE_ENV SYSTEMD_EXEC_PID=$BASHPID \
     systemd-cat --identifier=systemd /usr/lib/systemd/systemd --user </dev/null) &
}
export NODE_ENV; export -f as_node user_manager
ENV
. /etc/archy-e2e.env
# the stand-in images are in the user's storage before any app unit can start, as on a node
# whose images are installed (archy.target starts with the manager)
if [ -z "$NOIMAGES" ]; then
  ARCHY_E2E_IMAGES=/var/cache/archy-e2e/images ARCHY_E2E_PODMAN_ARGS="--cgroup-manager=cgroupfs --log-level=error" \
    bash /src/tests/e2e/images/build.sh
  # podman's pause process (it holds the user namespace) was made outside any session: end it,
  # so the first podman run by a unit makes it in its proper place, as on a real host
  pause=$(cat /run/user/1000/libpod/tmp/pause.pid 2>/dev/null || true)
  [ -z "$pause" ] || kill "$pause" 2>/dev/null || true
fi
user_manager
# up and its units (generators included) loaded; not "--wait": with apps in archy.target,
# startup lasts as long as their health gates and restart loops do
for _ in $(seq 600); do
  state=$(as_node systemctl --user is-system-running 2>/dev/null || true)
  case $state in starting|running|degraded|maintenance|stopping) break ;; esac
  sleep 0.05
done
case $state in starting|running|degraded) ;; *) echo "[sandbox] user manager not up: ${state:-no answer}" >&2; exit 1 ;; esac
as_node systemctl --user start dbus.socket
printf '[sandbox] user manager %s after %s\n' "$state" "$(since "$T0")" >&2
t1=$(now); rc=0
cd /
if [[ $INNER == *.bats ]]; then runner=(bats --timing); else runner=(bash); fi
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM="$TERM" BASH_ENV=/etc/archy-e2e.env \
  ARCHY_E2E_IMAGES=/var/cache/archy-e2e/images ARCHY_E2E_SRC=/src "${envs[@]}" \
  "${runner[@]}" "$INNER" "$@" || rc=$?
printf '[sandbox] %s exited %d after %s\n' "$INNER" "$rc" "$(since "$t1")" >&2
if [ "$rc" != 0 ] && [ -z "${ARCHY_E2E_QUIET:-}" ]; then
  echo "[sandbox] ---- journal (last 80 lines, without podman's own events) ----" >&2
  journalctl --no-pager -q -o short-monotonic | grep -v ' podman\[[0-9]*\]: ' | tail -n 80 >&2 || true
  echo "[sandbox] ---- the user manager's own output (generators' stderr, ...) ----" >&2
  journalctl --no-pager -q -t systemd -n 20 >&2 || true
fi
if [ "$rc" != 0 ] && [ -d /var/tmp/archy-e2e-journal ]; then
  j=/var/tmp/archy-e2e-journal/$(basename "${INNER%.*}").journal
  journalctl --no-pager -q -o short-precise >"$j" 2>&1 || true
  echo "[sandbox] the whole journal: $(basename "$j") in the logs dir" >&2
fi
exit "$rc"
BOOT
}

case ${1:-} in
  build) build ;;
  run) shift; run "$@" ;;
  shell) export ARCHY_E2E_QUIET=1; run "$HERE/lib/shell.sh" ;;
  versions) versions ;;
  *) echo "usage: $0 build | run SCRIPT [ARGS] | shell | versions" >&2; exit 2 ;;
esac

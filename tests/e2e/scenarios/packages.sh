#!/usr/bin/env bash
# archy-e2e-apps: demo
#
# Packages, as a node gets them: `dpkg -i` of archy's package, then of the sample app package
# archy-app-demo, brings the app up and healthy with no systemctl typed by anyone (archy's dpkg
# file trigger runs `archy-hook post-install`, which has the node user's manager run
# archy-reconcile.service); `dpkg -r archy-app-demo` stops the app and removes its container,
# and keeps its data. The only systemctl below are read-only queries (prop, is_state).
#
# Needs the packages in target/deb/ (make deb). Run alone, with nothing of archy preinstalled:
#   tests/e2e/sandbox.sh run tests/e2e/scenarios/packages.sh
# Under run.sh (make e2e) archy is staged before boot: the script takes it away again first, so
# that the packages still install onto a node that never had archy. The line above masks the
# staged catalog's apps, so that none of them starts at boot.
set -euo pipefail
. /src/tests/e2e/lib/common.sh
trap '[ $? = 0 ] || dump_state' EXIT

DEBS=/src/target/deb
DPKG_LOG=/tmp/dpkg.log

deb_of() {  # the newest package file of $1 in $DEBS
  ls -t "$DEBS/$1"_*.deb 2>/dev/null | head -n 1
}

echo "packages:" >&2
step "the packages are built"
ARCHY_DEB=$(deb_of archy)
DEMO_DEB=$(deb_of archy-app-demo)
[ -n "$ARCHY_DEB" ] && [ -n "$DEMO_DEB" ] || fail "no archy_*.deb or archy-app-demo_*.deb in $DEBS: run make deb"
pass

step "a node without archy"
if [ -e /usr/lib/systemd/user-generators/archy-generator ] &&
   ! dpkg -S /usr/lib/systemd/user-generators/archy-generator >/dev/null 2>&1; then
  # staged by run.sh: stop what the manager runs of it, remove what `make install` put there
  uctl stop 'archy*' >/dev/null 2>&1 || true
  rm -rf /usr/lib/systemd/user-generators/archy-generator /usr/libexec/archipelago \
    /usr/bin/archy-hook /usr/lib/systemd/user/archy-* /usr/lib/sysusers.d/archy.conf \
    /usr/lib/systemd/system/user@.service.d/archy-network-online.conf \
    /usr/lib/tmpfiles.d/archy.conf /usr/share/archipelago /usr/share/man/man[58]/archy* \
    /etc/archipelago/apps
  uctl daemon-reload
  echo "        (removed the archy that run.sh staged)" >&2
fi
[ "$(prop archy.target LoadState)" = not-found ] || fail "archy.target is $(prop archy.target LoadState)"
pass

step "node.toml pre-seeded: the test bed's user runs the apps"
mkdir -p /etc/archipelago
printf '# written by the admin before archy was installed\nuser = "node"\n' >/etc/archipelago/node.toml
pass

step "dpkg -i archy"
# confold: the admin's node.toml stays (it is the package's conffile)
dpkg -i --force-confdef --force-confold "$ARCHY_DEB" >"$DPKG_LOG" 2>&1 || fail "$(cat "$DPKG_LOG")"
[ "$(dpkg-query -W -f '${Status}' archy)" = "install ok installed" ] || fail "$(cat "$DPKG_LOG")"
grep -q '^user = "node"$' /etc/archipelago/node.toml || fail "node.toml replaced: $(cat /etc/archipelago/node.toml)"
pass

step "postinst: archy user, subordinate ids kept, linger, units applied"
id archy >/dev/null || fail "no archy user (sysusers.d)"
[ "$(grep -c '^node:' /etc/subuid)" = 1 ] || fail "/etc/subuid: $(cat /etc/subuid)"
[ "$(grep -c '^node:' /etc/subgid)" = 1 ] || fail "/etc/subgid: $(cat /etc/subgid)"
# no logind in the test bed: the marker logind reads at boot
[ -e /var/lib/systemd/linger/node ] || fail "no linger marker for node"
[ "$(stat -c %U /var/lib/archipelago)" = node ] || fail "/var/lib/archipelago is $(stat -c %U /var/lib/archipelago)'s"
# post-install reached the manager: its reconcile reloaded it (archy.target comes from the generator)
wait_for 30 is_state archy.target active || fail "archy.target: $(prop archy.target LoadState)/$(prop archy.target ActiveState)"
pass

step "dpkg -i archy-app-demo"
t_install=$(now)
dpkg -i "$DEMO_DEB" >"$DPKG_LOG" 2>&1 || fail "$(cat "$DPKG_LOG")"
grep -q 'Processing triggers for archy' "$DPKG_LOG" || fail "archy's trigger did not run: $(cat "$DPKG_LOG")"
pass

step "archy-demo.service active and its container healthy"
wait_for 180 is_state archy-demo.service active ||
  fail "archy-demo.service $(prop archy-demo.service ActiveState): $(uctl status --no-pager -n 20 archy-demo.service 2>&1)"
is_health archy-demo healthy || fail "health: $(health archy-demo)"
up=$(since "$t_install")
upodman image exists localhost/archy-demo:1 || fail "the image was not built"
pass
echo "        (active and healthy ${up} after dpkg -i began)" >&2

step "the app answers on 127.0.0.1:8090, with its data dir mounted"
page=$(curl -sf --max-time 5 http://127.0.0.1:8090/) || fail "no answer on 127.0.0.1:8090"
grep -q 'archy demo' <<<"$page" || fail "not the demo page: $page"
as_node sh -c 'echo kept >/var/lib/archipelago/demo/kept.txt'
[ "$(curl -sf --max-time 5 http://127.0.0.1:8090/files/kept.txt)" = kept ] || fail "data dir not served"
pass

step "dpkg -r archy-app-demo"
t_remove=$(now)
dpkg -r archy-app-demo >"$DPKG_LOG" 2>&1 || fail "$(cat "$DPKG_LOG")"
[ ! -e /usr/share/archipelago/apps/demo.toml ] || fail "the manifest is still there"
pass

step "stopped, unit gone, container gone, data kept"
# prerm stopped it; the trigger's reconcile reloaded the manager without its unit
gone() { [ "$(prop archy-demo.service LoadState)" = not-found ]; }
wait_for 60 gone || fail "archy-demo.service: $(prop archy-demo.service LoadState)/$(prop archy-demo.service ActiveState)"
[ "$(prop archy-demo.service ActiveState)" = inactive ] || fail "archy-demo.service: $(prop archy-demo.service ActiveState)"
! upodman container exists archy-demo || fail "container left: $(upodman ps -a)"
names=$(upodman ps -a --format '{{.Names}}')
! grep -qx archy-demo <<<"$names" || fail "podman ps -a lists archy-demo"
[ "$(cat /var/lib/archipelago/demo/kept.txt)" = kept ] || fail "data dir lost"
down=$(since "$t_remove")
pass
echo "        (stopped and removed ${down} after dpkg -r began)" >&2

echo "packages: archy installed, demo up in ${up}, down in ${down}; total $(since "$E2E_T0")" >&2

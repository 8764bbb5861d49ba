#!/usr/bin/env bash
# archy-e2e-apps: bitcoin-core lnd bitcoin-ui
#
# `make demo`: boots the test bed with archy installed from ARCHY_STAGE, lets archy.target bring
# up bitcoin-core, lnd and bitcoin-ui from the shipped catalog (stand-in images), then kills
# bitcoind and shows systemd heal it while lnd stays up. Exits 0 once all three are healthy again.
# On the host this starts a sandbox running itself.
set -uo pipefail
if [ ! -e /etc/archy-e2e.env ]; then
  [ -n "${ARCHY_STAGE:-}" ] || { echo "demo.sh: set ARCHY_STAGE (make install DESTDIR=DIR PREFIX=/usr)" >&2; exit 2; }
  exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sandbox.sh" run "${BASH_SOURCE[0]}" "$@"
fi
. /src/tests/e2e/lib/common.sh

APPS=(bitcoin-core lnd bitcoin-ui)
WAIT=${ARCHY_E2E_START_WAIT:-120}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
explain() {  # why an app is not up, in systemd's and the app's own words
  uctl status --no-pager -n 0 "archy-$1.service" | sed -n '1,4p'
  ujournal -u "archy-$1.service" | grep -v ' podman\[' | tail -n 8
}
up() {  # up ID: wait until the unit is active and its container healthy
  if wait_for "$WAIT" ready "$1"; then
    echo "archy-$1.service active, container healthy ($(secs "$T0" "$(now_us)")s after the user manager started)"
  else
    echo "archy-$1.service is not up:"; explain "$1"; return 1
  fi
}
status() { as_node archy-hook status | grep -E "^(APP|$(IFS='|'; echo "${APPS[*]}")) " | cut -c1-100; }

T0=$(mgr_us UserspaceTimestamp)
ok=0
say "archy-generator rendered the catalog's units when the user manager started; archy.target starts them"
uctl list-units --all --no-pager --no-legend 'archy-*.service' | sed 's/^[● ]*/  /'
say "bitcoin-core: active only once its health check (bitcoin-cli getblockchaininfo) passes"
up bitcoin-core || ok=1
say "lnd: starts after bitcoind is active, reaches it by its alias with the generated credentials"
up lnd && upodman exec archy-lnd lncli state || ok=1
say "bitcoin-ui: nginx in front of bitcoind's RPC, the credentials in a 0600 config"
up bitcoin-ui && curl -s --max-time 10 -d '{"jsonrpc":"1.0","id":"demo","method":"getblockchaininfo"}' \
  http://127.0.0.1:8081/rpc | head -c 120 && echo " ..." || ok=1
say "archy-hook status"
status

if ready bitcoin-core; then
  say "podman kill archy-bitcoin-core: nobody else does anything"
  inv=$(prop archy-bitcoin-core.service InvocationID); t=$(now_us); lnd_states=" "
  upodman kill archy-bitcoin-core >/dev/null
  until ready bitcoin-core; do
    s=$(prop archy-lnd.service ActiveState)
    case $lnd_states in *" $s "*) ;; *) lnd_states="$lnd_states$s " ;; esac
    [ "$(now_us)" -lt $((t + WAIT * 1000000)) ] || { explain bitcoin-core; ok=1; break; }
    sleep 0.2
  done
  echo "systemd restarted it (Restart=always); healthy again after $(secs "$t" "$(now_us)")s:" \
    "NRestarts=$(prop archy-bitcoin-core.service NRestarts)," \
    "InvocationID ${inv:0:8}... -> $(prop archy-bitcoin-core.service InvocationID | cut -c1-8)..."
  echo "lnd meanwhile:${lnd_states% } (soft dependency: Wants=, not Requires=)"
fi

say "all three, at the end"
for id in "${APPS[@]}"; do wait_for "$WAIT" ready "$id" || { explain "$id"; ok=1; }; done
status
say "$([ $ok = 0 ] && echo "demo complete: bitcoin-core, lnd and bitcoin-ui active and healthy" || echo "demo incomplete: see above")"
exit $ok

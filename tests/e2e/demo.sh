#!/usr/bin/env bash
# archy-e2e-apps: bitcoin-core lnd bitcoin-ui
#
# `make demo`: boots the test bed with archy installed from ARCHY_STAGE, lets archy.target bring
# up bitcoin-core, lnd and bitcoin-ui from the shipped catalog (stand-in images), then kills
# bitcoind and shows systemd heal it. On the host this starts a sandbox running itself.
set -uo pipefail
if [ ! -e /etc/archy-e2e.env ]; then
  [ -n "${ARCHY_STAGE:-}" ] || { echo "demo.sh: set ARCHY_STAGE (make install DESTDIR=DIR PREFIX=/usr)" >&2; exit 2; }
  exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sandbox.sh" run "${BASH_SOURCE[0]}" "$@"
fi
. /src/tests/e2e/lib/common.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
explain() {  # why an app is not up, in systemd's and the app's own words
  uctl status --no-pager -n 0 "archy-$1.service" | sed -n '1,4p'
  ujournal -u "archy-$1.service" | grep -v ' podman\[' | tail -n 8
}
up() {
  local id=$1 t; t=$(now)
  if wait_for "${ARCHY_E2E_START_WAIT:-120}" is_state "archy-$id.service" active; then
    echo "archy-$id.service: active, container $(health "archy-$id") (waited $(since "$t"))"
  else
    echo "archy-$id.service did not become active:"; explain "$id"; return 1
  fi
}

say "archy-generator rendered these units at boot (the rest of the catalog is masked here)"
uctl list-units --all --no-pager --no-legend 'archy*' | sed 's/^[● ]*/  /'
ok=0
say "bitcoin-core: active only once its health check (bitcoin-cli getblockchaininfo) passes"
up bitcoin-core || ok=1
say "lnd: reaches bitcoind by its network alias with the generated credentials"
up lnd && upodman exec archy-lnd lncli --network=mainnet state || ok=1
say "bitcoin-ui: nginx in front of bitcoind's RPC, credentials in a 0600 config"
if up bitcoin-ui; then
  curl -s --max-time 10 -d '{"jsonrpc":"1.0","id":"demo","method":"getblockchaininfo"}' http://127.0.0.1:8081/ | head -c 300; echo
else ok=1; fi
if is_state archy-bitcoin-core.service active; then
  say "kill bitcoind's container: systemd restarts it and waits for health again"
  before=$(prop archy-bitcoin-core.service InvocationID)
  upodman kill archy-bitcoin-core >/dev/null
  wait_for 60 restarts_at_least archy-bitcoin-core.service 1 && up bitcoin-core || ok=1
  echo "NRestarts=$(prop archy-bitcoin-core.service NRestarts) InvocationID $before -> $(prop archy-bitcoin-core.service InvocationID)"
fi
say "$([ $ok = 0 ] && echo "demo complete" || echo "demo incomplete: see above")"
exit $ok

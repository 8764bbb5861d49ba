#!/usr/bin/env bash
#
# `make demo`: boots the test bed with archy installed from ARCHY_STAGE and lets archy.target
# bring up the whole node from the shipped catalog (stand-in images, and Debian's real
# PostgreSQL, MariaDB and nginx): each app active once healthy, in dependency order. Then one
# request through each web UI and service the operator uses, a kill of bitcoind healed by
# systemd, and `archy-hook status`. Exits 0 once every app is healthy again.
# On the host this starts a sandbox running itself.
set -uo pipefail
if [ ! -e /etc/archy-e2e.env ]; then
  [ -n "${ARCHY_STAGE:-}" ] || { echo "demo.sh: set ARCHY_STAGE (make install DESTDIR=DIR PREFIX=/usr)" >&2; exit 2; }
  exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sandbox.sh" run "${BASH_SOURCE[0]}" "$@"
fi
. /src/tests/e2e/lib/common.sh

APPS=(bitcoin-core btcpay-postgres mempool-mariadb filebrowser bitcoin-ui lnd electrumx fedimint
  nbxplorer lnd-ui btcpayserver mempool-backend mempool-frontend)
WAIT=${ARCHY_E2E_START_WAIT:-300}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
explain() {  # why an app is not up, in systemd's and the app's own words
  uctl status --no-pager -n 0 "archy-$1.service" | sed -n '1,4p'
  ujournal -u "archy-$1.service" | grep -v ' podman\[' | tail -n 8
}
status() { as_node archy-hook status | cut -c1-150; }
# try WHAT CMD...: run a request, print its answer's first line
try() { local what=$1; shift; printf '  %-34s ' "$what"; "$@" 2>&1 | head -c 110 | tr -d '\n'; echo; }

T0=$(mgr_us UserspaceTimestamp)
ok=0
say "archy-generator rendered every manifest into a unit when the user manager started"
uctl list-units --all --no-pager --no-legend 'archy-*.service' | sed 's/^[● ]*/  /' | cut -c1-110
say "archy.target starts them; each turns active only once its health check passes"
echo "  (the mempool backend's first start needs GitHub's mining pools list; this test bed has no"
echo "   internet, so once it has said so the demo writes the row that fetch would have written)"
mempool_pools_offline "$WAIT" >/dev/null 2>&1 &
declare -A shown=()
deadline=$(( $(now_us) + WAIT * 1000000 ))
while [ ${#shown[@]} -lt ${#APPS[@]} ] && [ "$(now_us)" -lt "$deadline" ]; do
  for id in "${APPS[@]}"; do
    [ -z "${shown[$id]:-}" ] && ready "$id" || continue
    shown[$id]=1
    printf '  %-17s active and healthy %6ss after the user manager started (uid %s in its container)\n' \
      "$id" "$(secs "$T0" "$(now_us)")" "$(upodman exec "archy-$id" sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' /proc/1/status)"
  done
  sleep 0.5
done
for id in "${APPS[@]}"; do [ -n "${shown[$id]:-}" ] || { echo "archy-$id is not up:"; explain "$id"; ok=1; }; done
[ $ok = 0 ] && echo "  the whole node is up: ${#APPS[@]} apps in $(secs "$T0" "$(now_us)")s"
say "archy-hook status"
status

say "one request through each thing the operator uses (all on the host's loopback)"
try "bitcoin-ui  :8081/rpc" curl -s --max-time 10 -d '{"jsonrpc":"1.0","id":"demo","method":"getblockchaininfo"}' http://127.0.0.1:8081/rpc
try "  its RPC user may not 'stop'" curl -s -o /dev/null -w 'HTTP %{http_code} (whitelisted to state queries)' --max-time 10 -d '{"jsonrpc":"1.0","id":"demo","method":"stop"}' http://127.0.0.1:8081/rpc
try "lnd-ui      :8082/v1/state" curl -s --max-time 10 http://127.0.0.1:8082/v1/state
try "mempool     :4080/api/v1/blocks/tip/height" curl -s --max-time 10 http://127.0.0.1:4080/api/v1/blocks/tip/height
try "btcpay      :49392/api/v1/health" curl -s --max-time 10 http://127.0.0.1:49392/api/v1/health
try "filebrowser :8085/health" curl -s --max-time 10 http://127.0.0.1:8085/health
try "fedimint    :8175/ (guardian setup)" curl -s -o /dev/null -w 'HTTP %{http_code}' --max-time 10 http://127.0.0.1:8175/
electrum() {  # one Electrum protocol request, newline-delimited JSON over TCP
  exec 3<>/dev/tcp/127.0.0.1/50001 || return 1
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"server.version","params":["demo","1.4"]}' >&3
  local line; read -r -t 5 line <&3; exec 3<&-; echo "$line"
}
try "electrumx   :50001 server.version" electrum

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

say "the whole node, at the end"
for id in "${APPS[@]}"; do wait_for "$WAIT" ready "$id" || { explain "$id"; ok=1; }; done
status
say "$([ $ok = 0 ] && echo "demo complete: all ${#APPS[@]} apps active and healthy" || echo "demo incomplete: see above")"
exit $ok
